"""The FAN face-landmark network (the official `core/wing.py`) that makes the high-pass masks.

A 98-landmark Face Alignment Network: a CoordConv stem, bottleneck ConvBlocks, one depth-4
hourglass and a 1x1 head giving 98 landmark heatmaps plus a boundary channel at 64x64. It is
never trained here: its BatchNorms always use their running statistics and it runs in float32.
`get_heatmap(x)` turns images into the generator's two masks (see `stargan_tf.networks.face_masks`).
"""

import keras
import tensorflow as tf

from stargan_tf.networks import face_masks
from stargan_tf.layers.blocks import avg_pool2x, conv_weights, upsample_nearest2x
from stargan_tf.torch_layout import VECTOR

FAN_SIZE = 256  # input height and width the FAN runs at
DTYPE = "float32"  # whatever the global mixed-precision policy: the masks are computed in fp32


def _conv(filters, kernel_size, use_bias=True, padding="same", strides=1, name=None):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        dtype=DTYPE,
        name=name,
    )


def _batch_norm(name):
    # PyTorch's BatchNorm2d epsilon (Keras's default is 1e-3).
    return keras.layers.BatchNormalization(epsilon=1e-5, dtype=DTYPE, name=name)


def batch_norm_weights(prefix, bn):
    """Official names of a BatchNorm2d's weights and running statistics."""
    return [
        (f"{prefix}.weight", bn.gamma, VECTOR),
        (f"{prefix}.bias", bn.beta, VECTOR),
        (f"{prefix}.running_mean", bn.moving_mean, VECTOR),
        (f"{prefix}.running_var", bn.moving_variance, VECTOR),
    ]


def add_coords(x, with_r=True):
    """Appends CoordConv channels: row and column coordinates in [-1, 1] and, with_r, the radius.

    x: [N, H, W, C] -> [N, H, W, C + 2 (+ 1)]. The official `AddCoordsTh` calls the row
    coordinate x and the column coordinate y; the radius is divided by its maximum.
    """
    height, width = x.shape[1], x.shape[2]
    rows = tf.linspace(-1.0, 1.0, height)[:, None] * tf.ones([1, width])  # [H, W]
    cols = tf.ones([height, 1]) * tf.linspace(-1.0, 1.0, width)[None, :]  # [H, W]
    coords = [rows, cols]
    if with_r:
        radius = tf.sqrt(rows**2 + cols**2)
        coords.append(radius / tf.reduce_max(radius))
    coords = tf.stack(coords, axis=-1)[None]  # [1, H, W, 2 or 3]
    coords = tf.tile(tf.cast(coords, x.dtype), [tf.shape(x)[0], 1, 1, 1])  # [N, H, W, 2 or 3]
    return tf.concat([x, coords], axis=-1)


class ConvBlock(keras.layers.Layer):
    """The FAN bottleneck: three BN-ReLU-conv3x3 stages (out/2, out/4, out/4 channels),
    concatenated, plus the input (through BN-ReLU-conv1x1 when the channel count changes)."""

    def __init__(self, in_planes, out_planes, **kwargs):
        super().__init__(dtype=DTYPE, **kwargs)
        self.bn1, self.bn2, self.bn3 = (_batch_norm(f"bn{i}") for i in (1, 2, 3))
        self.conv1 = _conv(out_planes // 2, 3, use_bias=False, name="conv1")
        self.conv2 = _conv(out_planes // 4, 3, use_bias=False, name="conv2")
        self.conv3 = _conv(out_planes // 4, 3, use_bias=False, name="conv3")
        self.downsample_bn = self.downsample_conv = None
        if in_planes != out_planes:
            self.downsample_bn = _batch_norm("downsample_bn")
            self.downsample_conv = _conv(out_planes, 1, use_bias=False, name="downsample_conv")

    def call(self, x):
        out1 = self.conv1(tf.nn.relu(self.bn1(x, training=False)))
        out2 = self.conv2(tf.nn.relu(self.bn2(out1, training=False)))
        out3 = self.conv3(tf.nn.relu(self.bn3(out2, training=False)))
        residual = x
        if self.downsample_conv is not None:
            residual = self.downsample_conv(tf.nn.relu(self.downsample_bn(x, training=False)))
        return tf.concat([out1, out2, out3], axis=-1) + residual

    def official_weights(self, prefix):
        out = []
        for i in (1, 2, 3):
            out += batch_norm_weights(f"{prefix}.bn{i}", getattr(self, f"bn{i}"))
            out += conv_weights(f"{prefix}.conv{i}", getattr(self, f"conv{i}"))
        if self.downsample_conv is not None:
            out += batch_norm_weights(f"{prefix}.downsample.0", self.downsample_bn)
            out += conv_weights(f"{prefix}.downsample.2", self.downsample_conv)
        return out


class HourGlass(keras.layers.Layer):
    """CoordConv (1x1, 256 + 3 -> 256) then a recursive hourglass of `depth` levels.

    Level l: up = b1_l(x); low = b2_l(avgpool(x)); low = level l-1 of low (b2_plus_1 at the
    bottom); out = up + nearest_x2(b3_l(low)).
    """

    def __init__(self, depth=4, features=256, **kwargs):
        super().__init__(dtype=DTYPE, **kwargs)
        self.depth = depth
        self.coordconv = _conv(features, 1, padding="valid", name="coordconv")
        self.blocks = {}
        for level in range(depth, 0, -1):
            names = [f"b1_{level}", f"b2_{level}"] + ([f"b2_plus_{level}"] if level == 1 else [])
            for name in names + [f"b3_{level}"]:
                self.blocks[name] = ConvBlock(features, features, name=name)

    def _level(self, level, x):
        up = self.blocks[f"b1_{level}"](x)
        low = self.blocks[f"b2_{level}"](avg_pool2x(x))
        if level > 1:
            low = self._level(level - 1, low)
        else:
            low = self.blocks[f"b2_plus_{level}"](low)
        low = self.blocks[f"b3_{level}"](low)
        return up + upsample_nearest2x(low)

    def call(self, x):
        # The first (and here only) hourglass has no previous heatmap: no boundary channels.
        x = self.coordconv(add_coords(x, with_r=True))
        return self._level(self.depth, x)

    def official_weights(self, prefix):
        out = conv_weights(f"{prefix}.coordconv.conv", self.coordconv)
        for name, block in self.blocks.items():
            out += block.official_weights(f"{prefix}.{name}")
        return out


class FAN(keras.Model):
    """The official face-landmark network: `fan(x01)` -> [N, 64, 64, num_landmarks + 1].

    The input is [N, 256, 256, 3] in [0, 1]; the output holds the raw landmark heatmaps and, last,
    the boundary channel (the official `outputs[-1]`, NHWC). Weights come from the official
    `wing.ckpt` (`stargan_tf.convert_official_fan`); the network is frozen (`trainable=False`).

    Args:
      num_landmarks: number of landmark heatmaps (98 for the official wing.ckpt).
    """

    def __init__(self, num_landmarks=98, **kwargs):
        super().__init__(dtype=DTYPE, **kwargs)
        self.num_landmarks = num_landmarks
        # The 7x7 stride-2 stem pads 3 on every side, as PyTorch (Keras "same" pads asymmetrically).
        self.conv1 = _conv(64, 7, strides=2, padding="valid", name="conv1")
        self.bn1 = _batch_norm("bn1")
        self.conv2 = ConvBlock(64, 128, name="conv2")
        self.conv3 = ConvBlock(128, 128, name="conv3")
        self.conv4 = ConvBlock(128, 256, name="conv4")
        self.m0 = HourGlass(depth=4, features=256, name="m0")
        self.top_m_0 = ConvBlock(256, 256, name="top_m_0")
        self.conv_last0 = _conv(256, 1, padding="valid", name="conv_last0")
        self.bn_end0 = _batch_norm("bn_end0")
        self.l0 = _conv(num_landmarks + 1, 1, padding="valid", name="l0")
        self.trainable = False

    def build(self, input_shape):
        # The sublayers create their variables on the first call (see `build_fan`).
        pass

    def call(self, x01):
        shape = x01.shape
        if shape.rank != 4 or shape[1] != FAN_SIZE or shape[2] != FAN_SIZE or shape[3] != 3:
            raise ValueError(
                f"FAN expects images of shape [N, {FAN_SIZE}, {FAN_SIZE}, 3] in "
                f"[0, 1], got {list(shape)}; use get_heatmap for other sizes."
            )
        x = tf.cast(x01, DTYPE)
        x = add_coords(x, with_r=True)  # [N, 256, 256, 6]
        x = self.conv1(tf.pad(x, [[0, 0], [3, 3], [3, 3], [0, 0]]))  # [N, 128, 128, 64]
        x = tf.nn.relu(self.bn1(x, training=False))
        x = avg_pool2x(self.conv2(x))  # [N, 64, 64, 128]
        x = self.conv4(self.conv3(x))  # [N, 64, 64, 256]
        x = self.top_m_0(self.m0(x))
        x = tf.nn.relu(self.bn_end0(self.conv_last0(x), training=False))
        return self.l0(x)  # [N, 64, 64, num_landmarks + 1]

    def get_heatmap(self, x):
        """The two high-pass masks of images x in [-1, 1] (the official `get_heatmap`).

        Args:
          x: [N, H, W, 3] images in [-1, 1], any square size (resized to 256 bilinearly).

        Returns:
          (mask0, mask1), each [N, 256, 256, 1] float32 in [0, 1]: the mask with face line and
          mouth (the generator uses it at 32 px) and the one without (at 64 and 128 px). No
          gradient flows through them.
        """
        x = tf.stop_gradient(tf.cast(x, DTYPE))
        if x.shape[1] != FAN_SIZE or x.shape[2] != FAN_SIZE:
            # Half-pixel bilinear without antialiasing = F.interpolate(mode="bilinear").
            x = tf.image.resize(x, [FAN_SIZE, FAN_SIZE], method="bilinear")
        heatmaps = self(x * 0.5 + 0.5)[..., : self.num_landmarks]  # [N, 64, 64, 98]
        masks = face_masks.masks_from_heatmaps(heatmaps, FAN_SIZE)
        return tuple(tf.stop_gradient(m) for m in masks)

    def official_weights(self):
        """[(official state-dict key, variable, layout)] for every weight."""
        out = conv_weights("conv1.conv", self.conv1) + batch_norm_weights("bn1", self.bn1)
        for name in ("conv2", "conv3", "conv4"):
            out += getattr(self, name).official_weights(name)
        out += self.m0.official_weights("m0")
        out += self.top_m_0.official_weights("top_m_0")
        out += conv_weights("conv_last0", self.conv_last0)
        out += batch_norm_weights("bn_end0", self.bn_end0)
        out += conv_weights("l0", self.l0)
        return out

    def get_config(self):
        return {**super().get_config(), "num_landmarks": self.num_landmarks}


def build_fan(num_landmarks=98):
    """A FAN with its variables created (one call on a dummy image); weights uninitialised."""
    fan = FAN(num_landmarks, name="fan")
    fan(tf.zeros([1, FAN_SIZE, FAN_SIZE, 3]))
    return fan
