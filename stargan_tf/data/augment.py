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
    """torchvision's window choice, given its random numbers u: float64 [4, attempts] in [0, 1)."""
    h_f = tf.cast(height, tf.float64)
    w_f = tf.cast(width, tf.float64)
    # Float64 and round-half-to-even, as torchvision computes in Python.
    area = h_f * w_f * (scale[0] + (scale[1] - scale[0]) * u[0])
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_lo + (log_hi - log_lo) * u[1])
    crop_w = tf.round(tf.sqrt(area * aspect))  # [attempts]
    crop_h = tf.round(tf.sqrt(area / aspect))
    fits = (crop_w >= 1) & (crop_w <= w_f) & (crop_h >= 1) & (crop_h <= h_f)
    # torch.randint(0, n + 1): a uniform integer in [0, n].
    top = tf.floor(u[2] * (h_f - crop_h + 1))
    left = tf.floor(u[3] * (w_f - crop_w + 1))
    candidates = tf.stack([top, left, crop_h, crop_w], axis=1)  # [attempts, 4]

    # Fallback: a central crop, the whole image unless its aspect ratio is outside `ratio`.
    in_ratio = w_f / h_f
    fb_w = tf.where(in_ratio > ratio[1], tf.round(h_f * ratio[1]), w_f)
    fb_h = tf.where(in_ratio < ratio[0], tf.round(w_f / ratio[0]), h_f)
    fallback = tf.stack([tf.floor((h_f - fb_h) / 2), tf.floor((w_f - fb_w) / 2), fb_h, fb_w])

    candidates = tf.concat([candidates, fallback[None]], axis=0)  # [attempts + 1, 4]
    fits = tf.concat([fits, [True]], axis=0)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)  # The first that fits.
    return tf.cast(candidates[first], tf.int32)  # [4]: top, left, crop_height, crop_width


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


def augment(image, size, seed, randcrop_prob=0.5):
    """The official training augmentation of one image, before normalisation.

    With probability `randcrop_prob` a random resized crop to `size` (as `random_resized_crop`),
    otherwise a resize to `size` (a no-op when the image already has that size); then a
    horizontal flip with probability 0.5. `normalize` maps the result to [-1, 1].

    All its random numbers come from one draw (one op: this runs three times per example).

    Args:
      image: uint8 [H, W, 3], any size.
      size: output side in pixels.
      seed: shape-[2] integer tensor; the same seed gives the same output.
      randcrop_prob: probability of the random resized crop.

    Returns:
      uint8 [size, size, 3].
    """
    u = tf.random.stateless_uniform([2 + 4 * CROP_ATTEMPTS], seed, dtype=tf.float64)

    def _random_window():
        shape = tf.shape(image)
        u_window = tf.reshape(u[2:], [4, CROP_ATTEMPTS])
        window = _window_from_uniforms(u_window, shape[0], shape[1], CROP_SCALE, CROP_RATIO)
        return _crop(image, window)

    window = tf.cond(u[0] < randcrop_prob, _random_window, lambda: image)
    # Flipped before resizing: the same result, on fewer pixels when the image is the larger.
    window = tf.cond(u[1] < 0.5, lambda: tf.reverse(window, axis=[1]), lambda: window)
    return resize(window, size)
