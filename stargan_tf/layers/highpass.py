"""The high-pass filter the face (w_hpf > 0) generator applies to masked encoder features."""

import keras
import numpy as np
import tensorflow as tf

from stargan_tf.torch_layout import LAPLACIAN


class HighPass(keras.layers.Layer):
    """Depthwise 3x3 Laplacian divided by `w_hpf`, zero padding 1 (the official `HighPass`).

    The filter is a constant, not a weight: the official code keeps it in a buffer
    (`hpf.filter`), which the checkpoint converter reads to recover `w_hpf`.

    Args:
      w_hpf: weight of the high-pass path (> 0); the filter is `LAPLACIAN / w_hpf`.
    """

    def __init__(self, w_hpf, **kwargs):
        super().__init__(**kwargs)
        if not w_hpf > 0:
            raise ValueError(f"HighPass needs w_hpf > 0, got {w_hpf}.")
        self.w_hpf = float(w_hpf)

    @property
    def filter(self):
        """The 3x3 filter as the official `hpf.filter` buffer holds it."""
        return LAPLACIAN / np.float32(self.w_hpf)

    def call(self, x):
        channels = x.shape[-1]
        kernel = tf.constant(self.filter, dtype=x.dtype)[:, :, None, None]  # [3, 3, 1, 1]
        kernel = tf.tile(kernel, [1, 1, channels, 1])  # [3, 3, C, 1]
        # Stride 1, 3x3: "SAME" pads one pixel on every side, as PyTorch's padding=1.
        return tf.nn.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="SAME")

    def get_config(self):
        return {**super().get_config(), "w_hpf": self.w_hpf}
