"""The StarGAN v2 objectives, as pure functions of tensors.

Nothing here draws random numbers: latent codes, target domains and references are inputs, as in
the official `compute_d_loss` / `compute_g_loss`. Each loss is a mean over the (local) batch and
returns `(total, metrics)`, the metrics keyed by their TensorBoard tags. The training step calls
these same functions.
"""

import tensorflow as tf


def adv_loss(logits, target):
    """Binary cross-entropy with logits against a constant target (1 real, 0 fake), batch mean."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), tf.cast(target, logits.dtype))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def r1_penalty(discriminator, x_real, y_org):
    """Zero-centred gradient penalty on real images, and D's logits on them.

    R1 = 0.5 * mean over the batch of sum over pixels of (d sum(D(x_real, y_org)) / d x_real)^2,
    computed in float32. The sum must be taken inside the tape (reduced outside, the gradient is
    None); an enclosing tape differentiates through this gradient (second order).

    Returns:
      (r1 scalar, logits [N] float32)
    """
    x_real = tf.cast(x_real, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x_real)
        out = tf.cast(discriminator(x_real, y_org), tf.float32)  # [N]
        out_sum = tf.reduce_sum(out)
    grad = tf.cast(tape.gradient(out_sum, x_real), tf.float32)  # [N, H, W, 3]
    r1 = 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=[1, 2, 3]))
    return r1, out


def _branch(z, ref):
    if (z is None) == (ref is None):
        raise ValueError(
            "Give exactly one of the latent input (z) and the reference input (x_ref)."
        )
    return "latent" if z is not None else "ref"


def target_style(nets, y_trg, z_trg=None, x_ref=None):
    """s_trg from a latent code (mapping network) or from a reference image (style encoder)."""
    if z_trg is not None:
        return nets.mapping_network(z_trg, y_trg)
    return nets.style_encoder(x_ref, y_trg)


def discriminator_loss(
    nets, x_real, y_org, y_trg, z_trg=None, x_ref=None, masks=None, lambda_reg=1.0
):
    """D's loss: real images of y_org are real, translations into y_trg are fake, plus R1.

    Args:
      nets: Networks (generator, mapping_network, style_encoder, discriminator).
      x_real: [N, H, W, 3] real images in [-1, 1]; y_org: [N] their domains.
      y_trg: [N] target domains of the fakes.
      z_trg: [N, latent_dim] latent codes (latent branch), or
      x_ref: [N, H, W, 3] reference images of y_trg (reference branch): exactly one of the two.
      masks: the generator's high-pass masks for x_real (w_hpf > 0), else None.
      lambda_reg: weight of R1.

    Returns:
      (total, {"D/<branch>/real", "D/<branch>/fake", "D/<branch>/reg"}), branch latent or ref.
    """
    branch = _branch(z_trg, x_ref)
    loss_reg, out = r1_penalty(nets.discriminator, x_real, y_org)
    loss_real = adv_loss(out, 1)
    # The fake is a constant for D: no gradient flows into G, F or E.
    s_trg = target_style(nets, y_trg, z_trg, x_ref)
    x_fake = tf.stop_gradient(nets.generator(x_real, s_trg, masks=masks))
    loss_fake = adv_loss(nets.discriminator(x_fake, y_trg), 0)
    total = loss_real + loss_fake + lambda_reg * loss_reg
    prefix = f"D/{branch}/"
    return total, {prefix + "real": loss_real, prefix + "fake": loss_fake, prefix + "reg": loss_reg}


def generator_loss(
    nets,
    x_real,
    y_org,
    y_trg,
    z_trgs=None,
    x_refs=None,
    masks=None,
    fan=None,
    lambda_sty=1.0,
    lambda_ds=1.0,
    lambda_cyc=1.0,
):
    """G's loss: adversarial + style reconstruction - diversity sensitive + cycle consistency.

    Args:
      nets: Networks.
      x_real: [N, H, W, 3] real images; y_org: [N] their domains; y_trg: [N] target domains.
      z_trgs: a pair of latent codes (z_trg, z_trg2), [N, latent_dim] each (latent branch), or
      x_refs: a pair of reference images (x_ref, x_ref2) of y_trg (reference branch).
      masks: high-pass masks for x_real (w_hpf > 0), else None.
      fan: callable image -> (mask0, mask1) (a FAN's `get_heatmap`), applied to the fake for the
        cycle reconstruction when masks are used, as the official code does; None: no masks there.
      lambda_sty, lambda_ds, lambda_cyc: weights (lambda_ds at the current step: see
        `lambda_ds_at`).

    Returns:
      (total, {"G/<branch>/adv", "G/<branch>/sty", "G/<branch>/ds", "G/<branch>/cyc"}).
    """
    branch = _branch(z_trgs, x_refs)
    first, second = z_trgs if z_trgs is not None else x_refs
    as_latent = z_trgs is not None

    def style(inp):
        return target_style(nets, y_trg, inp if as_latent else None, None if as_latent else inp)

    # Adversarial loss.
    s_trg = style(first)
    x_fake = nets.generator(x_real, s_trg, masks=masks)
    loss_adv = adv_loss(nets.discriminator(x_fake, y_trg), 1)
    # Style reconstruction loss.
    s_pred = nets.style_encoder(x_fake, y_trg)
    loss_sty = tf.reduce_mean(tf.abs(s_pred - s_trg))
    # Diversity-sensitive loss: the second translation is a constant.
    x_fake2 = tf.stop_gradient(nets.generator(x_real, style(second), masks=masks))
    loss_ds = tf.reduce_mean(tf.abs(x_fake - x_fake2))
    # Cycle-consistency loss.
    masks_fake = fan(x_fake) if (fan is not None and masks is not None) else None
    s_org = nets.style_encoder(x_real, y_org)
    x_rec = nets.generator(x_fake, s_org, masks=masks_fake)
    loss_cyc = tf.reduce_mean(tf.abs(x_rec - tf.cast(x_real, tf.float32)))

    total = loss_adv + lambda_sty * loss_sty - lambda_ds * loss_ds + lambda_cyc * loss_cyc
    prefix = f"G/{branch}/"
    return total, {
        prefix + "adv": loss_adv,
        prefix + "sty": loss_sty,
        prefix + "ds": loss_ds,
        prefix + "cyc": loss_cyc,
    }


def lambda_ds_at(step, lambda_ds, ds_iter):
    """λ_ds used at iteration `step` (0-based): linear decay from lambda_ds to 0 over ds_iter.

    The official code decrements a mutable λ_ds after each iteration and restarts it from its
    initial value on resume; as a function of the step it resumes where it was.
    """
    if ds_iter <= 0:
        return tf.constant(0.0)
    step = tf.cast(step, tf.float32)
    return lambda_ds * tf.maximum(0.0, 1.0 - step / float(ds_iter))
