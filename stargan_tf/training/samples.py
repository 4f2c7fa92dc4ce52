"""The fixed sample grid rendered during training: latent- and reference-guided translations."""

import numpy as np
import tensorflow as tf

from stargan_tf.inference import mean_style
from stargan_tf.inference.images import tile, to_uint8

SAMPLE_PSI = 0.7  # ψ of the grid's truncated latent rows (the official debug images: 0.5, 0.7, 1).
# Latent codes averaged for the mean styles of the ψ rows. The weights change between grids, so
# they are computed afresh each time: 1,000 codes instead of the 10,000 of sampling and export
# (10x cheaper; the error of their mean is ~3x larger, ~1/sqrt(1000) of the styles' spread, and
# scaled by 1 - ψ in the truncated style: see the README's ψ section for the numbers measured).
SAMPLE_MEAN_CODES = 1_000


def render_grid(
    nets,
    x_src,
    y_src,
    x_ref,
    y_ref,
    z_trg,
    masks=None,
    psi=SAMPLE_PSI,
    num_mean_codes=SAMPLE_MEAN_CODES,
):
    """Renders the grid of the official debug images, in one picture.

    Rows (each after a blank or reference cell):
      1. the sources x_src;
      2. their cycle reconstructions x_rec = G(x_fake, E(x_src, y_src)), x_fake the source i
         translated in the style of reference i mod R (the diagonal of the reference rows);
      3. for each domain d, the sources translated with the latent code z_trg[d] mapped into d;
      4. the same at ψ = psi: the style pulled toward the mean style of d (official ψ = 0.7);
      5. for each reference, the reference image then the sources translated in its style.

    Args:
      nets: the (EMA) networks (with the FAN when w_hpf > 0: the reconstructions' masks).
      x_src: [K, S, S, 3] sources in [-1, 1]; y_src: [K] their domains (for E in x_rec).
      x_ref: [R, S, S, 3] references; y_ref: [R] their domains.
      z_trg: [num_domains, latent_dim] one fixed latent code per target domain.
      masks: high-pass masks of the sources (w_hpf > 0), else None.
      psi: ψ of the truncated latent rows.
      num_mean_codes: latent codes averaged for the mean styles of those rows.

    Returns:
      uint8 [H, W, 3].
    """
    k = x_src.shape[0]
    blank = np.full([1] + list(x_src.shape[1:]), 255, np.uint8)

    def row(x, first=blank):
        return np.concatenate([first, to_uint8(x)])

    s_avg = mean_style.compute_mean_styles(nets, num_mean_codes)  # [num_domains, style_dim]
    latent_rows = {1.0: [], psi: []}
    for d in range(z_trg.shape[0]):
        y = tf.fill([k], d)
        s_trg = nets.mapping_network(tf.repeat(z_trg[d : d + 1], k, axis=0), y)  # [K, style_dim]
        for p in latent_rows:
            s = mean_style.truncate(s_trg, tf.gather(s_avg, y), p)
            latent_rows[p].append(row(nets.generator(x_src, s, masks=masks)))
    ref_rows, x_fake = [], []
    for r in range(x_ref.shape[0]):
        s = nets.style_encoder(x_ref[r : r + 1], y_ref[r : r + 1])
        fake = nets.generator(x_src, tf.repeat(s, k, axis=0), masks=masks)  # [K, S, S, 3]
        ref_rows.append(row(fake, to_uint8(x_ref[r : r + 1])))
        x_fake.append(fake)
    x_fake = tf.stack([x_fake[i % len(x_fake)][i] for i in range(k)])  # [K, S, S, 3]
    s_src = nets.style_encoder(x_src, y_src)  # [K, style_dim]
    x_rec = nets.generator(x_fake, s_src, masks=None if masks is None else nets.masks(x_fake))
    rows = [row(x_src), row(x_rec)] + latent_rows[1.0] + latent_rows[psi] + ref_rows
    return tile(rows)
