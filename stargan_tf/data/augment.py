"""The official StarGAN v2 training augmentation, as pure functions of an explicit seed.

The official transform (torchvision, on PIL images) is, per image:

    with probability p:  RandomResizedCrop(img_size, scale=(0.8, 1.0), ratio=(0.9, 1.1))
    Resize([img_size, img_size])
    RandomHorizontalFlip()          # p = 0.5
    ToTensor(); Normalize(0.5, 0.5) # [0, 255] -> [-1, 1]

Here every random choice comes from a `seed` argument (a shape-[2] integer tensor, as the
`tf.random.stateless_*` ops take), so each function gives the same output eagerly and inside
`tf.data` for the same seed, and a pipeline built from them is a function of its seeds.

Images stay uint8 [H, W, 3] until `normalize`, as in the official PIL pipeline: a resize rounds
its result to 8 bits (half up) as PIL does, and uint8 elements keep tf.data buffers (and so
iterator checkpoints) four times smaller than float32 ones. `augment` flips the crop window
before resizing it: bilinear resizing with half-pixel centres is mirror symmetric, so this
equals the official crop, resize, flip order, with the flip on the smaller image.
"""

import math

import tensorflow as tf

CROP_SCALE = (0.8, 1.0)  # Range of the crop's area, as a fraction of the image's area.
CROP_RATIO = (0.9, 1.1)  # Range of the crop's aspect ratio (width / height), sampled log-uniformly.
CROP_ATTEMPTS = 10  # torchvision's tries before it falls back to a central crop.


def _window_from_uniforms(u, height, width, scale, ratio):
    """torchvision's window choice, given its random numbers u: float64 [..., 4, attempts] in
    [0, 1); int32 [..., 4] windows (any leading batch shape, one image size)."""
    h_f = tf.cast(height, tf.float64)
    w_f = tf.cast(width, tf.float64)
    u0, u1, u2, u3 = tf.unstack(u, axis=-2)  # each [..., attempts]
    # Float64 and round-half-to-even, as torchvision computes in Python.
    area = h_f * w_f * (scale[0] + (scale[1] - scale[0]) * u0)
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_lo + (log_hi - log_lo) * u1)
    crop_w = tf.round(tf.sqrt(area * aspect))  # [..., attempts]
    crop_h = tf.round(tf.sqrt(area / aspect))
    fits = (crop_w >= 1) & (crop_w <= w_f) & (crop_h >= 1) & (crop_h <= h_f)
    # torch.randint(0, n + 1): a uniform integer in [0, n].
    top = tf.floor(u2 * (h_f - crop_h + 1))
    left = tf.floor(u3 * (w_f - crop_w + 1))
    candidates = tf.stack([top, left, crop_h, crop_w], axis=-1)  # [..., attempts, 4]

    # Fallback: a central crop, the whole image unless its aspect ratio is outside `ratio`.
    in_ratio = w_f / h_f
    fb_w = tf.where(in_ratio > ratio[1], tf.round(h_f * ratio[1]), w_f)
    fb_h = tf.where(in_ratio < ratio[0], tf.round(w_f / ratio[0]), h_f)
    fallback = tf.stack([tf.floor((h_f - fb_h) / 2), tf.floor((w_f - fb_w) / 2), fb_h, fb_w])

    lead = tf.shape(u)[:-2]
    fallback = tf.broadcast_to(fallback, tf.concat([lead, [1, 4]], 0))
    candidates = tf.concat([candidates, fallback], axis=-2)  # [..., attempts + 1, 4]
    fits = tf.concat([fits, tf.ones(tf.concat([lead, [1]], 0), tf.bool)], axis=-1)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=-1, output_type=tf.int32)  # The first fit.
    window = tf.gather(candidates, first, axis=-2, batch_dims=len(u.shape) - 2)
    return tf.cast(window, tf.int32)  # [..., 4]: top, left, crop_height, crop_width


def crop_window(seed, height, width, scale=CROP_SCALE, ratio=CROP_RATIO, attempts=CROP_ATTEMPTS):
    """The window torchvision's `RandomResizedCrop.get_params` picks, as a stateless function.

    Tries `attempts` (area, aspect ratio) pairs and takes the first that fits in the image, at a
    uniformly random position; when none fits, the largest central crop whose aspect ratio is
    within `ratio`.

    Args:
      seed: shape-[2] integer tensor.
      height, width: the image's size in pixels (int32 scalars or Python ints).
      scale: (min, max) area of the crop as a fraction of the image's area.
      ratio: (min, max) aspect ratio (width / height) of the crop, sampled log-uniformly.
      attempts: how many random windows to try.

    Returns:
      int32 [4]: top, left, crop_height, crop_width.
    """
    u = tf.random.stateless_uniform([4, attempts], seed, dtype=tf.float64)
    return _window_from_uniforms(u, height, width, scale, ratio)


def normalize(image):
    """uint8 [0, 255] -> float32 [-1, 1]: x / 127.5 - 1, the official Normalize(0.5, 0.5).

    One Dequantize op (min_range + x * (max_range - min_range) / 255) instead of three
    element-wise ops: at 512 px this is a visible share of the pipeline's time.
    """
    image = tf.convert_to_tensor(image)
    if image.dtype != tf.uint8:
        raise TypeError(f"normalize expects uint8 images, got {image.dtype}.")
    return tf.raw_ops.Dequantize(
        input=tf.bitcast(image, tf.quint8), min_range=-1.0, max_range=1.0, mode="MIN_COMBINED"
    )


def resize(image, size):
    """Resizes a uint8 [H, W, 3] image to [size, size, 3] (bilinear, half-pixel centres), as PIL.

    An image already of that size is returned as is. Shrinking is antialiased, as PIL's bilinear
    filter is (torchvision's Resize on PIL images); enlarging is plain bilinear. The result is
    rounded to uint8, half up.
    """
    shape = tf.shape(image)
    height, width = shape[0], shape[1]

    def _resize():
        x = tf.cast(image, tf.float32)  # TF's float kernel is faster than its uint8 one.
        shrink = (height > size) | (width > size)
        x = tf.cond(
            shrink,
            lambda: tf.image.resize(x, [size, size], "bilinear", antialias=True),
            lambda: tf.image.resize(x, [size, size], "bilinear"),
        )
        # Bilinear and triangle-filter results lie within [0, 255]: no clipping needed.
        return tf.cast(x + 0.5, tf.uint8)

    out = tf.cond((height == size) & (width == size), lambda: image, _resize)
    return tf.ensure_shape(out, [size, size, 3])


def _crop(image, window):
    return image[window[0] : window[0] + window[2], window[1] : window[1] + window[3]]


def random_resized_crop(image, size, seed):
    """torchvision's `RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1))`.

    Args:
      image: uint8 [H, W, 3].
      size: output side in pixels.
      seed: shape-[2] integer tensor.

    Returns:
      uint8 [size, size, 3]: the window `crop_window(seed, H, W)`, resized.
    """
    shape = tf.shape(image)
    return resize(_crop(image, crop_window(seed, shape[0], shape[1])), size)


def random_flip_left_right(image, seed, prob=0.5):
    """Mirrors the image ([H, W, C], any dtype) horizontally with probability `prob`."""
    flip = tf.random.stateless_uniform([], seed) < prob
    return tf.cond(flip, lambda: tf.reverse(image, axis=[1]), lambda: image)


def augment_uniforms(seed):
    """All the random numbers of one image's augmentation: float64 [2 + 4 * CROP_ATTEMPTS]
    (one op: this runs three times per example)."""
    return tf.random.stateless_uniform([2 + 4 * CROP_ATTEMPTS], seed, dtype=tf.float64)


def params_from_uniforms(u, height, width, randcrop_prob=0.5):
    """`augment_params` of a batch of images of one size, from their `augment_uniforms`.

    Args:
      u: float64 [N, 2 + 4 * CROP_ATTEMPTS].
      height, width: the images' size in pixels.
      randcrop_prob: probability of the random resized crop.

    Returns:
      int32 [N, 5] (see `augment_params`).
    """
    u = tf.convert_to_tensor(u, tf.float64)
    u_window = tf.reshape(u[:, 2:], [-1, 4, CROP_ATTEMPTS])
    window = _window_from_uniforms(u_window, height, width, CROP_SCALE, CROP_RATIO)  # [N, 4]
    whole = tf.stack([0, 0, tf.cast(height, tf.int32), tf.cast(width, tf.int32)])
    window = tf.where((u[:, 0] < randcrop_prob)[:, None], window, whole[None])
    return tf.concat([window, tf.cast(u[:, 1:2] < 0.5, tf.int32)], axis=1)


def augment_params(seed, height, width, randcrop_prob=0.5):
    """The random choices of `augment` for one image, as numbers.

    Args:
      seed: shape-[2] integer tensor (the seed `augment` takes).
      height, width: the image's size in pixels.
      randcrop_prob: probability of the random resized crop.

    Returns:
      int32 [5]: top, left, crop_height, crop_width (the whole image when no crop is drawn),
      flip (1 = mirror). `augment` and the batched `crop_resize_flip` apply them.
    """
    return params_from_uniforms(augment_uniforms(seed)[None], height, width, randcrop_prob)[0]


def augment(image, size, seed, randcrop_prob=0.5):
    """The official training augmentation of one image, before normalisation.

    With probability `randcrop_prob` a random resized crop to `size` (as `random_resized_crop`),
    otherwise a resize to `size` (a no-op when the image already has that size); then a
    horizontal flip with probability 0.5. `normalize` maps the result to [-1, 1].

    Args:
      image: uint8 [H, W, 3], any size.
      size: output side in pixels.
      seed: shape-[2] integer tensor; the same seed gives the same output.
      randcrop_prob: probability of the random resized crop.

    Returns:
      uint8 [size, size, 3].
    """
    shape = tf.shape(image)
    params = augment_params(seed, shape[0], shape[1], randcrop_prob)
    window = _crop(image, params[:4])  # The whole image is a slice TF forwards without a copy.
    # Flipped before resizing: the same result, on fewer pixels when the image is the larger.
    window = tf.cond(params[4] > 0, lambda: tf.reverse(window, axis=[1]), lambda: window)
    return resize(window, size)


def _taps(offset, length, mirror, size):
    """Source indices and weights of bilinear resizing (half-pixel centres) along one axis.

    For each image b and output position o: the two source positions `lower`, `upper` (absolute
    indices in the uncropped image) and the weight `lerp` of `upper`, with TF's ResizeBilinear
    arithmetic (float32 position (o + 0.5) * length / size - 0.5, clamped to the window), so
    results equal `resize` of the cropped window. `mirror` reads the window right to left.
    """
    length_f = tf.cast(length, tf.float32)[:, None]  # [B, 1]
    scale = length_f / float(size)
    pos = (tf.range(size, dtype=tf.float32)[None] + 0.5) * scale - 0.5  # [B, size]
    pos_floor = tf.floor(pos)
    last = length[:, None] - 1
    lower = tf.maximum(tf.cast(pos_floor, tf.int32), 0)
    upper = tf.minimum(tf.cast(tf.math.ceil(pos), tf.int32), last)
    mirror = mirror[:, None] > 0
    lower = tf.where(mirror, last - lower, lower) + offset[:, None]
    upper = tf.where(mirror, last - upper, upper) + offset[:, None]
    return lower, upper, pos - pos_floor


def crop_resize_flip(images, params, size):
    """Applies `augment_params` choices to a batch: crop, resize to `size`, mirror, per image.

    Equal to `augment` image by image for windows no larger than `size` (always the case when
    the images are `size` already, as in training), up to float rounding that can move a rare
    pixel by one level. Made of gathers and element-wise ops on the whole batch, so it runs on
    an accelerator, where it costs next to nothing (see `finish_batch`).

    Args:
      images: uint8 [B, H, W, 3].
      params: int32 [B, 5] from `augment_params` (top, left, crop_height, crop_width, flip).
      size: output side in pixels.

    Returns:
      uint8 [B, size, size, 3].
    """
    images = tf.convert_to_tensor(images)
    params = tf.convert_to_tensor(params, tf.int32)
    top, left, crop_h, crop_w, flip = tf.unstack(params, axis=1)
    x_lo, x_hi, x_lerp = _taps(left, crop_w, flip, size)
    y_lo, y_hi, y_lerp = _taps(top, crop_h, tf.zeros_like(flip), size)
    # Columns first, then rows: the order of ResizeBilinear's kernel, hence its rounding.
    left_px = tf.cast(tf.gather(images, x_lo, axis=2, batch_dims=1), tf.float32)
    right_px = tf.cast(tf.gather(images, x_hi, axis=2, batch_dims=1), tf.float32)
    cols = left_px + (right_px - left_px) * x_lerp[:, None, :, None]  # [B, H, size, 3]
    upper_px = tf.gather(cols, y_lo, axis=1, batch_dims=1)
    lower_px = tf.gather(cols, y_hi, axis=1, batch_dims=1)
    out = upper_px + (lower_px - upper_px) * y_lerp[:, :, None, None]
    return tf.cast(out + 0.5, tf.uint8)  # Half up, as `resize` (values lie within [0, 255]).


CROPS_KEY = "crops"  # A training batch's augmentation parameters, when it is left to the device.


def finish_batch(batch):
    """Completes a training batch on the device: augmentation (if left to it) and normalisation.

    A batch from `pipeline.train_dataset(..., augment_on="device")` holds decoded uint8 images
    and, under `CROPS_KEY`, int32 [B, 3, 5] parameters for x_real, x_ref, x_ref2; they are
    applied by `crop_resize_flip`. Every uint8 image is then mapped to float32 [-1, 1]
    (`normalize`). Float images pass through.

    Returns:
      The batch without `CROPS_KEY`, images float32 in [-1, 1].
    """
    batch = dict(batch)
    crops = batch.pop(CROPS_KEY, None)
    if crops is not None:
        for j, key in enumerate(("x_real", "x_ref", "x_ref2")):
            size = batch[key].shape[1]
            batch[key] = crop_resize_flip(batch[key], crops[:, j], size)
    return {k: normalize(v) if v.dtype == tf.uint8 else v for k, v in batch.items()}
