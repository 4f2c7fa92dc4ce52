"""Helpers shared by the four networks: size checks, channel plans, official weight names."""

import math

import tensorflow as tf


def check_img_size(img_size):
    """Raises ValueError unless img_size is a power of two >= 32."""
    if not isinstance(img_size, int) or img_size < 32 or img_size & (img_size - 1):
        raise ValueError(
            f"img_size={img_size!r} is not supported: use a power of two from 32 up "
            "(256, 512, ...)."
        )


def official_dim_in(img_size):
    """The official channel count of the first convolution: 2**14 // img_size."""
    return 2**14 // img_size


def log2(n):
    return int(round(math.log2(n)))


def check_image(x, img_size, name):
    """Checks that x is NHWC with H = W = img_size and 3 channels (a static check)."""
    shape = x.shape
    if shape.rank != 4 or shape[1] != img_size or shape[2] != img_size or shape[3] != 3:
        raise ValueError(
            f"{name} expects images of shape [N, {img_size}, {img_size}, 3] (NHWC), got "
            f"{list(shape)}; resize the images to img_size={img_size}."
        )


def pick_domain(out, y):
    """out[i, y[i]] for every sample i.

    Args:
      out: [N, num_domains, ...] tensor.
      y: [N] integer domain labels.
    """
    y = tf.cast(tf.reshape(y, [-1]), tf.int32)  # [N]
    return tf.gather(out, y, axis=1, batch_dims=1)  # [N, ...]
