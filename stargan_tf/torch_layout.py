"""What the official PyTorch checkpoints hold, in plain numpy (no TensorFlow import).

Network entries, tensor layouts and the high-pass filter buffer, shared by the networks (which
name their weights after the official keys) and the checkpoint converter.
"""

import numpy as np

NETWORK_NAMES = ("generator", "mapping_network", "style_encoder", "discriminator")

# The high-pass filter; the official buffer `hpf.filter` holds LAPLACIAN / w_hpf.
LAPLACIAN = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)  # 3x3, sums to 0

# Layouts of official tensors.
CONV = "conv"  # PyTorch [out, in, kh, kw]  <->  Keras [kh, kw, in, out]
LINEAR = "linear"  # PyTorch [out, in]  <->  Keras [in, out]
VECTOR = "vector"  # unchanged


def to_keras(value, layout):
    """An official tensor (numpy) in the Keras layout."""
    if layout == CONV:
        return np.transpose(value, (2, 3, 1, 0))
    if layout == LINEAR:
        return np.transpose(value, (1, 0))
    return value


def official_shape(keras_shape, layout):
    """The shape an official tensor has for a Keras variable of `keras_shape`."""
    s = tuple(keras_shape)
    if layout == CONV:
        return (s[3], s[2], s[0], s[1])
    if layout == LINEAR:
        return (s[1], s[0])
    return s
