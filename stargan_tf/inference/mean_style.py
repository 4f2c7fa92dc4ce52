"""The mean style of each domain, and ψ (psi) truncation toward it.

The mean style s_avg[y] of domain y is the mean of F(z, y) over many latent codes z (the official
code, `translate_using_latent`, averages 10,000 codes). Truncating a latent-guided style,

    s_trg = s_avg[y] + ψ · (s_trg − s_avg[y]),

trades diversity for fidelity: ψ = 1 leaves it as it is, ψ = 0 gives every code the domain's mean
style, ψ > 1 extrapolates (more varied, less faithful styles).

`mean_styles(networks, model_dir)` computes the mean styles once and caches them in the model
directory (`mean_styles/<fingerprint>.npz`), keyed by a hash of the mapping network's weights and
the codes averaged: a checkpoint with other weights gets its own entry, never a stale one.
"""

import hashlib
import io
import math
import os
import tempfile
import weakref

import numpy as np
import tensorflow as tf
from absl import logging

from stargan_tf import model_dir as model_dir_lib

NUM_CODES = 10_000  # Latent codes averaged per domain (official: 10,000).
SEED = 777  # Seed of those codes (Philox, stateless): the same codes on any machine.
BATCH = 2_000  # Codes per mapping-network call.
_FORMAT = 1  # Version of the cache files' content.
_memory = weakref.WeakKeyDictionary()  # mapping network -> {key: s_avg}, for repeated calls.


def check_psi(psi):
    """Returns psi as a float; raises ValueError when it is negative, NaN or infinite.

    ψ in [0, 1] interpolates between the mean style and the style; ψ > 1 extrapolates away from
    the mean (allowed, as in StyleGAN); a negative ψ would mirror the style through the mean.
    """
    try:
        value = float(psi)
    except (TypeError, ValueError):
        raise ValueError(f"psi={psi!r} is not a number.") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"psi={psi!r} must be a finite number >= 0 (1 = no truncation, 0 = the domain's mean "
            "style, > 1 extrapolates)."
        )
    return value


def latent_codes_for_mean(num_codes, latent_dim, seed=SEED):
    """The latent codes z ~ N(0, I) averaged: float32 [num_codes, latent_dim], fixed by seed."""
    return tf.random.stateless_normal(
        [num_codes, latent_dim], tf.constant([seed, 1], tf.int64), alg="philox"
    )


def fingerprint(mapping_network, num_codes=NUM_CODES, seed=SEED):
    """A hex digest of the mapping network's weights (every byte) and the codes averaged."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f"v{_FORMAT} codes={num_codes} seed={seed};".encode())
    for weight in mapping_network.weights:  # (not by path: Keras numbers layer names per process)
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{value.dtype}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def compute_mean_styles(networks, num_codes=NUM_CODES, seed=SEED, batch_size=BATCH):
    """The mean of F(z, y) over `num_codes` fixed latent codes, for every domain y.

    Returns:
      float32 numpy [num_domains, style_dim].
    """
    config = networks.config
    z_many = latent_codes_for_mean(num_codes, config.latent_dim, seed)  # [num_codes, latent_dim]
    s_avg = np.zeros([config.num_domains, config.style_dim], np.float64)
    for d in range(config.num_domains):
        for i in range(0, num_codes, batch_size):
            z = z_many[i : i + batch_size]
            s_many = networks.mapping_network(z, tf.fill([z.shape[0]], d))  # [B, style_dim]
            s_avg[d] += np.sum(s_many.numpy(), axis=0, dtype=np.float64)
    return (s_avg / num_codes).astype(np.float32)


def cache_path(directory, key):
    """Where the mean styles of weights with fingerprint `key` are cached in a model directory."""
    return model_dir_lib.mean_styles_path(directory, key)


def _read_cache(path, key, shape):
    if not os.path.exists(path):
        return None
    try:
        with np.load(path) as f:
            if str(f["fingerprint"]) == key and f["s_avg"].shape == shape:
                return f["s_avg"].astype(np.float32)
    except (OSError, ValueError, KeyError, EOFError) as e:  # e.g. a file truncated by hand
        logging.warning("Ignoring the unreadable mean-style cache %s (%s).", path, e)
    return None


def _write_cache(path, key, s_avg, num_codes, seed):
    """Writes the cache file atomically (a temporary file beside it, renamed over it)."""
    buf = io.BytesIO()
    np.savez(buf, fingerprint=np.array(key), s_avg=s_avg, num_codes=num_codes, seed=seed)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mean_styles.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
    except OSError as e:  # A read-only model directory still samples, without the cache.
        logging.warning("Could not cache the mean styles in %s (%s).", directory, e)
        return False
    return True


def mean_styles(networks, model_dir=None, num_codes=NUM_CODES, seed=SEED):
    """The mean style s_avg[y] of every domain: the mean of F(z, y) over fixed latent codes.

    Computed once per set of mapping-network weights: kept in memory for the networks' lifetime
    and, with model_dir, in `model_dir/mean_styles/<fingerprint>.npz`; weights that change (a
    newer checkpoint, training) get a new fingerprint and are computed afresh.

    Args:
      networks: `Networks` (the EMA ones, as sampled and exported).
      model_dir: the model directory to cache them in (and read them from), or None.
      num_codes: latent codes averaged per domain (official: 10,000).
      seed: seed of the codes.

    Returns:
      float32 numpy [num_domains, style_dim].
    """
    config = networks.config
    key = fingerprint(networks.mapping_network, num_codes, seed)
    known = _memory.setdefault(networks.mapping_network, {})
    if key in known:
        return known[key].copy()
    s_avg = None
    path = cache_path(model_dir, key) if model_dir else None
    if path:
        s_avg = _read_cache(path, key, (config.num_domains, config.style_dim))
    if s_avg is None:
        s_avg = compute_mean_styles(networks, num_codes, seed)
        if path and _write_cache(path, key, s_avg, num_codes, seed):
            logging.info("Cached the mean styles (%d codes per domain) in %s.", num_codes, path)
    known.clear()  # Only the current weights' entry is worth keeping.
    known[key] = s_avg
    return s_avg.copy()


def truncate(s_trg, s_avg_trg, psi):
    """s_avg_trg + psi · (s_trg − s_avg_trg); s_trg itself (the same tensor) when psi is 1.

    Args:
      s_trg: [N, style_dim] styles; s_avg_trg: [N, style_dim] the mean styles of their domains.
      psi: a Python float, or a float32 tensor [N] or [N, 1] (one ψ per style).
    """
    if isinstance(psi, (int, float)) and psi == 1.0:
        return s_trg  # ψ = 1 skips the arithmetic: the output is the untruncated one, bit for bit.
    psi = tf.reshape(tf.cast(psi, tf.float32), [-1, 1]) if tf.is_tensor(psi) else psi
    return s_avg_trg + psi * (s_trg - s_avg_trg)
