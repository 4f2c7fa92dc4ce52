"""The official sample grids: reference-guided (sources across, references down) and
latent-guided (sources across, one row per target domain and latent code)."""

import numpy as np
import tensorflow as tf

from stargan_tf.inference import mean_style
from stargan_tf.inference.translation import generate
from stargan_tf.inference.images import tile, to_uint8


def reference_guided(networks, x_src, x_ref, y_ref):
    """Every source translated in the style of every reference.

    Args:
      networks: the (EMA) networks (with the FAN when w_hpf > 0).
      x_src: [N, S, S, 3] sources in [-1, 1].
      x_ref: [R, S, S, 3] references; y_ref: [R] their domains (the target domains).

    Returns:
      uint8 [R, N, S, S, 3]: row r holds the sources in the style of reference r.
    """
    n = x_src.shape[0]
    s_ref = networks.style_encoder(x_ref, y_ref)  # [R, style_dim]
    rows = []
    for r in range(x_ref.shape[0]):
        s_trg = tf.repeat(s_ref[r : r + 1], n, axis=0)  # [N, style_dim]
        rows.append(generate(networks, x_src, s_trg))
    return np.stack(rows)


def reference_grid(x_src, x_ref, x_fake):
    """The official `reference.jpg` layout: a blank cell then the sources on the first row; each
    further row a reference, then the sources in its style.

    Args:
      x_src: [N, S, S, 3] sources in [-1, 1]; x_ref: [R, S, S, 3] references in [-1, 1].
      x_fake: uint8 [R, N, S, S, 3] from `reference_guided`.

    Returns:
      uint8 [H, W, 3].
    """
    blank = np.full([1] + list(x_src.shape[1:]), 255, np.uint8)
    rows = [np.concatenate([blank, to_uint8(x_src)])]
    for r in range(x_fake.shape[0]):
        rows.append(np.concatenate([to_uint8(x_ref[r : r + 1]), x_fake[r]]))
    return tile(rows)


def latent_guided(networks, x_src, z_trg, psi=1.0, s_avg=None):
    """Every source translated into every domain, with every latent code.

    Args:
      networks: the (EMA) networks (with the FAN when w_hpf > 0).
      x_src: [N, S, S, 3] sources in [-1, 1].
      z_trg: [K, latent_dim] latent codes, each mapped into every domain.
      psi: ψ truncation of the styles toward their domain's mean style (1 = none).
      s_avg: [num_domains, style_dim] the mean styles (`mean_style.mean_styles`); needed when
        psi != 1.

    Returns:
      uint8 [num_domains, K, N, S, S, 3].
    """
    n = x_src.shape[0]
    out = []
    for d in range(networks.config.num_domains):
        y_trg = tf.fill([n], d)  # [N]
        row = []
        for k in range(z_trg.shape[0]):
            s_trg = networks.mapping_network(tf.repeat(z_trg[k : k + 1], n, axis=0), y_trg)
            if psi != 1.0:
                s_trg = mean_style.truncate(s_trg, tf.gather(s_avg, y_trg), psi)
            row.append(generate(networks, x_src, s_trg))
        out.append(np.stack(row))
    return np.stack(out)


def latent_grid(x_src, x_fake):
    """The official latent-guided layout: the sources on the first row, then one row per (target
    domain, latent code), domains in order.

    Args:
      x_src: [N, S, S, 3] sources in [-1, 1].
      x_fake: uint8 [num_domains, K, N, S, S, 3] from `latent_guided`.

    Returns:
      uint8 [H, W, 3].
    """
    rows = [to_uint8(x_src)] + [row for domain in x_fake for row in domain]
    return tile(rows)
