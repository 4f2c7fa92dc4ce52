"""LPIPS as the official StarGAN v2 code computes it (`metrics/lpips.py`), in Keras.

torchvision's ImageNet AlexNet `features` (`alexnet-owt-7be5be79.pth`; only `features.*` is
read) gives the five ReLU outputs; each is unit-normalised over channels (eps 1e-10 *inside*
the square root, unlike the `lpips` package's eps outside), the squared difference of the two
images' maps is weighted by a 1x1 convolution without bias (the official
`metrics/lpips_weights.ckpt`, the same values as the `lpips` package's v0.1 alex weights) and
averaged over channels and space; the five layers add up. Inputs are images in [-1, 1], shifted
and scaled by the official constants before AlexNet.
"""

import keras
import numpy as np
import tensorflow as tf

from stargan_tf.official import torch_files
from stargan_tf.torch_layout import CONV, to_keras

# The official input scaling of images in [-1, 1] (ImageNet statistics in that range).
SHIFT = np.array([-0.03, -0.088, -0.188], np.float32)
SCALE = np.array([0.458, 0.448, 0.450], np.float32)
NORM_EPS = 1e-10
# AlexNet's convolutions: (torch index in `features`, filters, kernel, stride, padding), and
# whether a 3x3/2 max pool follows its ReLU.
ALEXNET_CONVS = (
    (0, 64, 11, 4, 2, True),
    (3, 192, 5, 1, 2, True),
    (6, 384, 3, 1, 1, False),
    (8, 256, 3, 1, 1, False),
    (10, 256, 3, 1, 1, False),
)
CHANNELS = tuple(c[1] for c in ALEXNET_CONVS)


def build_alexnet():
    """AlexNet features as a Keras model: [N, H, W, 3] (scaled) -> the 5 ReLU outputs.

    Returns:
      (model, convs): convs maps torch indices of `features` to their Conv2D layers.
    """
    x = images = keras.Input([None, None, 3])
    outputs, convs = [], {}
    for index, filters, kernel, stride, padding, pool in ALEXNET_CONVS:
        # Explicit symmetric padding: "same" with stride 4 would pad like TF, not PyTorch.
        x = keras.layers.ZeroPadding2D(padding)(x)
        convs[index] = keras.layers.Conv2D(filters, kernel, stride, name=f"features_{index}")
        x = keras.layers.ReLU()(convs[index](x))
        outputs.append(x)
        if pool and index != 10:  # The pool after ReLU 5 feeds no tapped layer.
            x = keras.layers.MaxPooling2D(3, 2, "valid")(x)
    return keras.Model(images, outputs, name="alexnet_features"), convs


def _normalize(f):
    return f * tf.math.rsqrt(tf.reduce_sum(tf.square(f), axis=-1, keepdims=True) + NORM_EPS)


class LPIPS:
    """The official LPIPS: `distances(x, y)` per pair, `lpips_given_images(group)` per group.

    Args:
      alexnet_weights: torchvision's AlexNet state dict file (`alexnet-owt-7be5be79.pth`).
      lpips_weights: the official `metrics/lpips_weights.ckpt` (keys
        `lpips_weights.{0..4}.main.1.weight`), or the `lpips` package's `weights/v0.1/alex.pth`
        (keys `lin{0..4}.model.1.weight`, the same values).
    """

    def __init__(self, alexnet_weights, lpips_weights):
        self.alexnet, convs = build_alexnet()
        state = torch_files.load_state_dict(alexnet_weights, "--alexnet_weights")
        keys = [f"features.{i}.{w}" for i in convs for w in ("weight", "bias")]
        torch_files.require(
            state,
            keys,
            alexnet_weights,
            "--alexnet_weights",
            "torchvision's AlexNet (features.0.weight ... features.10.bias)",
        )
        for index, conv in convs.items():
            kernel = to_keras(state[f"features.{index}.weight"], CONV)
            if kernel.shape != tuple(conv.kernel.shape):
                torch_files.shape_error(
                    alexnet_weights,
                    "--alexnet_weights",
                    f"features.{index}.weight",
                    kernel,
                    conv.kernel,
                )
            conv.set_weights([kernel, state[f"features.{index}.bias"]])
        self.layer_weights = self._read_layer_weights(lpips_weights)
        self._distances = tf.function(self._compute, reduce_retracing=True)

    @staticmethod
    def _read_layer_weights(path):
        state = torch_files.load_state_dict(path, "--lpips_weights")
        official = [f"lpips_weights.{i}.main.1.weight" for i in range(5)]
        package = [f"lin{i}.model.1.weight" for i in range(5)]
        keys = package if all(k in state for k in package) else official
        torch_files.require(
            state,
            keys,
            path,
            "--lpips_weights",
            "the official metrics/lpips_weights.ckpt (lpips_weights.0.main.1.weight ...)",
        )
        weights = []
        for key, channels in zip(keys, CHANNELS):
            w = state[key]
            if w.shape != (1, channels, 1, 1):
                torch_files.shape_error(path, "--lpips_weights", key, w, (1, channels, 1, 1))
            weights.append(tf.constant(w.reshape(channels)))  # [C]
        return weights

    def _compute(self, x, y):
        x = (tf.cast(x, tf.float32) - SHIFT) / SCALE
        y = (tf.cast(y, tf.float32) - SHIFT) / SCALE
        layers = []
        for fx, fy, w in zip(self.alexnet(x), self.alexnet(y), self.layer_weights):
            d = tf.square(_normalize(fx) - _normalize(fy))  # [N, h, w, C]
            # The 1x1 conv to one channel, then the mean over space (and that one channel).
            layers.append(tf.reduce_mean(tf.tensordot(d, w, [[3], [0]]), axis=[1, 2]))  # [N]
        return tf.stack(layers, axis=1)  # [N, 5]

    def per_layer(self, x, y):
        """Per-pair, per-layer terms, float32 numpy [N, 5], of images x, y [N, H, W, 3] in
        [-1, 1]."""
        return self._distances(tf.convert_to_tensor(x), tf.convert_to_tensor(y)).numpy()

    def distances(self, x, y):
        """Per-pair LPIPS distances, float32 numpy [N]. The official LPIPS of the batch (a
        `torch.mean` over batch and space) is their mean."""
        return self.per_layer(x, y).sum(axis=1)

    def lpips_given_images(self, group):
        """The official `calculate_lpips_given_images`: the mean over all pairs i < j of the
        outputs group[i], group[j] (each [N, H, W, 3]) of the batch-mean LPIPS, a Python float."""
        values = [
            np.float32(np.mean(self.distances(group[i], group[j])))
            for i in range(len(group) - 1)
            for j in range(i + 1, len(group))
        ]
        return float(np.mean(np.array(values, np.float32)))
