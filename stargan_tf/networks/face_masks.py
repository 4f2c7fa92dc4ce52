"""From FAN landmark heatmaps to the generator's two high-pass masks (the official `preprocess`).

The 98 heatmaps (the WFLW landmark order) are upsampled to 256 px (bilinear, align_corners=True),
truncated below 0.1, min-max normalised per map, then reshaped part by part: some parts are shifted
up or down and raised to a power to sharpen them, others dropped. Mask 0 sums every kept part; mask
1 leaves out the face line, the mouth and the eyebrows. Both are clamped to [0, 1].
"""

import numpy as np
import tensorflow as tf

# Landmark index ranges [start, end) of the 98-point layout, as the official `index_map`.
CHIN = (8, 25)  # the face line, minus its 8 outermost points on each side
EYEBROWS = (33, 51)
NOSE = (51, 55)
NOSTRILS = (55, 60)
EYES = (60, 76)
LIP_UPPER = (77, 82)
LIP_LOWER = (83, 88)
LIP_INNER = (88, 96)
# 96 and 97 are the pupils: kept as they are.

TRUNCATE_BELOW = 0.1
NORMALIZE_EPS = 1e-6


def align_corners_matrix(size_in, size_out):
    """[size_out, size_in] weights of 1-D linear interpolation with align_corners=True.

    Output pixel i samples the input at i * (size_in - 1) / (size_out - 1), as PyTorch's
    `F.interpolate(..., mode="bilinear", align_corners=True)` (which `tf.image.resize` lacks).
    """
    src = np.arange(size_out) * ((size_in - 1) / max(size_out - 1, 1))
    lo = np.minimum(np.floor(src).astype(int), size_in - 1)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = src - lo
    m = np.zeros([size_out, size_in], np.float64)
    np.add.at(m, (np.arange(size_out), lo), 1 - frac)
    np.add.at(m, (np.arange(size_out), hi), frac)
    return m.astype(np.float32)


def resize_align_corners(x, size):
    """Bilinear resize of [N, H, W, C] to [N, size, size, C] with align_corners=True."""
    rows = tf.constant(align_corners_matrix(x.shape[1], size))  # [size, H]
    cols = tf.constant(align_corners_matrix(x.shape[2], size))  # [size, W]
    return tf.einsum("ih,nhwc,jw->nijc", rows, x, cols)  # [N, size, size, C]


def shift(x, n):
    """Moves maps [N, H, W, C] up by n rows (down when n < 0), wrapping around: the official
    `shift`, a row permutation."""
    if not n:
        return x
    # tf.roll(x, -n, axis=1) as two slices: LiteRT has no built-in roll (exports, portable.py).
    n %= x.shape[1]
    return tf.concat([x[:, n:], x[:, :n]], axis=1)


def normalize(x):
    """Per-map min-max normalisation to [0, 1] of [N, H, W, C]."""
    low = tf.reduce_min(x, axis=[1, 2], keepdims=True)  # [N, 1, 1, C]
    high = tf.reduce_max(x, axis=[1, 2], keepdims=True)
    return (x - low) / (high - low + NORMALIZE_EPS)


def masks_from_heatmaps(heatmaps, size=256):
    """The two masks from raw landmark heatmaps.

    Args:
      heatmaps: [N, h, w, 98] raw FAN heatmaps (the boundary channel removed).
      size: the mask size; the official shifts are in pixels at 256 (the FAN's input size).

    Returns:
      (mask0, mask1), each [N, size, size, 1] in [0, 1].
    """
    x = resize_align_corners(tf.cast(heatmaps, tf.float32), size)  # [N, size, size, 98]
    x = tf.where(x < TRUNCATE_BELOW, tf.zeros_like(x), x)
    x = normalize(x)
    sw = size // 256  # the official scale of the part shifts

    def part(span):
        return x[..., span[0] : span[1]]

    # Part by part, as the official code edits the channels in place (ranges it zeroes later are
    # left out: the eyebrow edges 33 and 46 and the lip corners 76 and 82).
    chin = part(CHIN) ** 3
    eyebrows = shift(part(EYEBROWS), -7 * sw) ** 2
    eyebrows = tf.concat([eyebrows[..., 1:13], eyebrows[..., 14:]], axis=-1)  # drop 33 and 46
    # The nose tip stays; the rest of the nose moves up by 4 px.
    nose = tf.concat([part(NOSE)[..., :1], shift(part(NOSE)[..., 1:], 4 * sw)], axis=-1)
    nostrils = shift(part(NOSTRILS), 8 * sw) ** 4
    # Eyes: a sharpened copy 8 px lower plus a copy 24 px lower (these shifts do not scale).
    eyes = shift(part(EYES), -8) ** 3 + shift(part(EYES), -24)
    lip_upper = shift(part(LIP_UPPER), -8 * sw) ** 4
    lip_lower = shift(part(LIP_LOWER), 8 * sw) ** 4
    lip_inner = shift(part(LIP_INNER), -2 * sw) ** 3
    pupils = x[..., 96:98]

    def total(parts):
        summed = tf.reduce_sum(tf.concat(parts, axis=-1), axis=-1, keepdims=True)
        return summed  # [N, size, size, 1]

    # Mask 1 leaves out the face line, the mouth and the eyebrows.
    mask1 = total([nose, nostrils, eyes, pupils])
    mask0 = total([chin, eyebrows, nose, nostrils, eyes, lip_upper, lip_lower, lip_inner, pupils])

    def clean(m):
        # NaN cannot come from finite heatmaps (the normaliser has an epsilon); zero it as the
        # official code does, then clamp.
        return tf.clip_by_value(tf.where(tf.math.is_nan(m), tf.zeros_like(m), m), 0.0, 1.0)

    return clean(mask0), clean(mask1)
