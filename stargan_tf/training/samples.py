"""The fixed sample grid rendered during training: latent- and reference-guided translations."""

import numpy as np
import tensorflow as tf

from stargan_tf.inference.images import tile, to_uint8


def render_grid(nets, x_src, y_src, x_ref, y_ref, z_trg, masks=None):
    """Renders the grid of the official debug images, in one picture.

    Rows: the sources (after a blank cell); for each domain d, the sources translated with the
    latent code z_trg[d] mapped into d (a blank cell first); for each reference, the reference
    image then the sources translated in its style.

    Args:
      nets: the (EMA) networks.
      x_src: [K, S, S, 3] sources in [-1, 1]; y_src: [K] their domains (unused by G; kept for
        callers that label the grid).
      x_ref: [R, S, S, 3] references; y_ref: [R] their domains.
      z_trg: [num_domains, latent_dim] one fixed latent code per target domain.
      masks: high-pass masks of the sources (w_hpf > 0), else None.

    Returns:
      uint8 [H, W, 3].
    """
    del y_src
    k = x_src.shape[0]
    blank = np.full([1] + list(x_src.shape[1:]), 255, np.uint8)
    rows = [np.concatenate([blank, to_uint8(x_src)])]
    for d in range(z_trg.shape[0]):
        y = tf.fill([k], d)
        z = tf.repeat(z_trg[d:d + 1], k, axis=0)
        fake = nets.generator(x_src, nets.mapping_network(z, y), masks=masks)
        rows.append(np.concatenate([blank, to_uint8(fake)]))
    for r in range(x_ref.shape[0]):
        s = nets.style_encoder(x_ref[r:r + 1], y_ref[r:r + 1])
        fake = nets.generator(x_src, tf.repeat(s, k, axis=0), masks=masks)
        rows.append(np.concatenate([to_uint8(x_ref[r:r + 1]), to_uint8(fake)]))
    return tile(rows)
