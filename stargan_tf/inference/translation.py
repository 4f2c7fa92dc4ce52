"""Translating images into a target domain, guided by a reference image or a seeded latent code."""

import weakref

import numpy as np
import tensorflow as tf

from stargan_tf.inference import mean_style, models
from stargan_tf.inference.images import as_model_images
from stargan_tf.inference.images import to_uint8

GENERATE_BATCH = 32  # Images per generator call in `generate`: bounded memory at any img_size.
_compiled = weakref.WeakKeyDictionary()  # generator -> its tf.function, traced once per model.


def _compiled_generator(networks):
    generator = networks.generator
    if generator not in _compiled:
        size = generator.img_size
        _compiled[generator] = tf.function(
            lambda x, s: generator(x, s, masks=networks.masks(x)),
            input_signature=[
                tf.TensorSpec([None, size, size, 3], tf.float32),
                tf.TensorSpec([None, generator.style_dim], tf.float32),
            ],
        )
    return _compiled[generator]


def generate(networks, x_real, s_trg, batch_size=GENERATE_BATCH, uint8=True):
    """x_fake = generator(x_real, s_trg, masks of x_real) as uint8 images, a batch at a time.

    Args:
      networks: `Networks` (with the FAN when w_hpf > 0).
      x_real: [N, S, S, 3] in [-1, 1]; s_trg: [N, style_dim].
      batch_size: images per generator call.
      uint8: False returns the generator's float32 outputs as they are (not clipped).

    Returns:
      uint8 (or float32) numpy [N, S, S, 3].
    """
    run = _compiled_generator(networks)
    convert = to_uint8 if uint8 else lambda x: x.numpy()
    x_real = tf.convert_to_tensor(x_real, tf.float32)
    s_trg = tf.convert_to_tensor(s_trg, tf.float32)
    out = [
        convert(run(x_real[i : i + batch_size], s_trg[i : i + batch_size]))
        for i in range(0, x_real.shape[0], batch_size)
    ]
    return np.concatenate(out)


def latent_codes(seeds, latent_dim):
    """One latent code z ~ N(0, I) per seed: float32 [N, latent_dim] for int64 seeds [N].

    A code depends on its seed alone (Philox, stateless), so the same seed gives the same z in
    any batch, on CPU and GPU, here and in an exported SavedModel.
    """
    seeds = tf.cast(tf.reshape(seeds, [-1]), tf.int64)  # [N]
    return tf.map_fn(
        lambda seed: tf.random.stateless_normal(
            [latent_dim], tf.stack([seed, tf.constant(0, tf.int64)]), alg="philox"
        ),
        seeds,
        fn_output_signature=tf.TensorSpec([latent_dim], tf.float32),
    )  # [N, latent_dim]


def _domain_ids(config, target_domain, n):
    if isinstance(target_domain, (str, int, np.integer)):
        return tf.fill([n], models.domain_id(config, target_domain))  # [N]
    ids = [models.domain_id(config, d) for d in target_domain]
    if len(ids) != n:
        raise ValueError(f"Got {len(ids)} target domains for {n} images.")
    return tf.constant(ids, tf.int32)  # [N]


def target_style(networks, target_domain, reference=None, seed=None, psi=1.0, model_dir=None):
    """One style code s_trg [1, style_dim] of a target domain.

    Args:
      networks: `Networks`.
      target_domain: a domain name or id.
      reference: a reference image of the target domain (as `translate` takes it), or None.
      seed: the latent code's seed when no reference (None = 0).
      psi: ψ truncation of the latent-guided style (see `translate`); 1 = none.
      model_dir: the model directory caching the mean styles (`mean_style.mean_styles`), or None.
    """
    if reference is not None and seed is not None:
        raise ValueError("Give a reference image or a seed, not both.")
    psi = _check_psi(psi, reference)
    config = networks.config
    y_trg = tf.constant([models.domain_id(config, target_domain)])  # [1]
    if reference is not None:
        return networks.style_encoder(as_model_images(reference, config.img_size), y_trg)
    z_trg = latent_codes([0 if seed is None else int(seed)], config.latent_dim)  # [1, latent_dim]
    s_trg = networks.mapping_network(z_trg, y_trg)
    return _truncated(networks, s_trg, y_trg, psi, model_dir)


def _check_psi(psi, reference):
    psi = mean_style.check_psi(psi)
    if reference is not None and psi != 1.0:
        raise ValueError(
            f"psi={psi:g} with a reference image: ψ truncates latent-guided styles toward the "
            "mean of F's styles; a reference's style is used as it is (psi=1)."
        )
    return psi


def _truncated(networks, s_trg, y_trg, psi, model_dir=None):
    """s_trg pulled toward the mean styles of the domains y_trg [N] by psi; itself at psi = 1."""
    if psi == 1.0:
        return s_trg
    s_avg = mean_style.mean_styles(networks, model_dir)  # [num_domains, style_dim]
    return mean_style.truncate(s_trg, tf.gather(s_avg, y_trg), psi)


def translate(networks, images, target_domain, reference=None, seed=None, psi=1.0):
    """Translates images into a target domain with one style (or one style per image).

    Args:
      networks: `Networks` (e.g. `stargan_tf.load_networks(dir)`, the EMA networks); models with
        w_hpf > 0 need their FAN (`networks.fan`) for the masks.
      images: [N, H, W, 3] or one [H, W, 3] image; uint8 of any size (resized to the model's as
        the data pipelines do) or float32 in [-1, 1] at the model's size.
      target_domain: a domain name or id, or one per image.
      reference: a reference image of the target domain ([H, W, 3], same conventions as `images`)
        whose style every image takes, or one per image ([N, H, W, 3]); None for latent-guided.
      seed: latent-guided: the int seed of the latent code z, the same for every image (the
        exported `translate_latent` signature gives the same output for the same seed). None with
        no reference = seed 0.
      psi: ψ truncation of the latent-guided style: s_trg = s_avg + ψ · (s_trg − s_avg), s_avg
        the target domain's mean style (`mean_style.mean_styles`: the mean of F over 10,000
        fixed codes, computed on the first call and then kept in memory). 1 (default) = no
        truncation (the arithmetic is skipped: exactly the untruncated output); 0 = the mean
        style, whatever the seed; in (0, 1) between; > 1 extrapolates away from the mean.
        Reference-guided styles come from the style encoder and are not truncated: with a
        reference, psi must be 1. The exported `translate_latent_psi` signature gives the same
        output for the same seed and ψ.

    Returns:
      float32 numpy [N, S, S, 3] (x_fake, nominally in [-1, 1]), or [S, S, 3] for one image.
    """
    config = networks.config
    models.check_supported(networks)
    if reference is not None and seed is not None:
        raise ValueError("Give a reference image or a seed, not both.")
    psi = _check_psi(psi, reference)
    single = np.ndim(images) == 3
    x_real = as_model_images(images, config.img_size)  # [N, S, S, 3]
    n = x_real.shape[0]
    y_trg = _domain_ids(config, target_domain, n)  # [N]
    if reference is not None:
        x_ref = as_model_images(reference, config.img_size)  # [1 or N, S, S, 3]
        if x_ref.shape[0] == 1:
            x_ref = tf.repeat(x_ref, n, axis=0)
        s_trg = networks.style_encoder(x_ref, y_trg)
    else:
        z_trg = latent_codes(tf.fill([n], 0 if seed is None else int(seed)), config.latent_dim)
        s_trg = _truncated(networks, networks.mapping_network(z_trg, y_trg), y_trg, psi)
    x_fake = networks.generator(x_real, s_trg, masks=networks.masks(x_real)).numpy()
    return x_fake[0] if single else x_fake
