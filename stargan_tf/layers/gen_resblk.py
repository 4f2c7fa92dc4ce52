"""The modulated-convolution decoder block (GenResBlk) with its RGB skip output."""

import math

import keras
import tensorflow as tf

from stargan_tf.layers import initializers
from stargan_tf.layers.blocks import conv_weights, lrelu, upsample_nearest2x
from stargan_tf.layers.modulated_conv import ModulatedConv2D, ToRGB


def upsample_bilinear2x(rgb):
    # Half-pixel bilinear, as PyTorch's align_corners=False; StyleGAN2's [1, 3, 3, 1] upsampling
    # filter gives the same values away from the borders.
    size = [2 * rgb.shape[1], 2 * rgb.shape[2]]
    return tf.cast(tf.image.resize(tf.cast(rgb, tf.float32), size, method="bilinear"), rgb.dtype)


class GenResBlk(keras.layers.Layer):
    """A StyleGAN2 decoder block on a residual path, and its contribution to the RGB image.

    `block(x, s, rgb=None, skip=None) -> (x', rgb')`:
    residual = [nearest x2] -> modconv3x3 + bias -> LReLU(0.2) -> modconv3x3 + bias -> LReLU;
    shortcut = [nearest x2] -> [conv1x1 without bias when dim_in != dim_out];
    x' = (residual + shortcut) / sqrt(2) [+ skip];
    rgb' = [bilinear x2](rgb) + ToRGB(x', s)  (rgb None: ToRGB(x', s) alone).
    No noise inputs. Unlike AdainResBlk the shortcut is kept when the generator adds high-pass
    features (`skip`).

    Args:
      dim_in: input channels.
      dim_out: output channels.
      upsample: double H and W (features: nearest, as AdainResBlk; rgb: bilinear).
      equalized_lr: weight storage of the modulated convs (see ModulatedConv2D).
    """

    def __init__(self, dim_in, dim_out, upsample=False, equalized_lr=False, **kwargs):
        super().__init__(**kwargs)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.upsample = upsample
        self.equalized_lr = equalized_lr
        self.learned_sc = dim_in != dim_out
        self.conv1 = ModulatedConv2D(
            dim_out, 3, upsample=upsample, equalized_lr=equalized_lr, name="conv1"
        )
        self.conv2 = ModulatedConv2D(dim_out, 3, equalized_lr=equalized_lr, name="conv2")
        self.to_rgb = ToRGB(equalized_lr=equalized_lr, name="to_rgb")
        if self.learned_sc:
            self.conv1x1 = initializers.conv2d(dim_out, 1, use_bias=False, name="conv1x1")

    def build(self, *shapes, **kwargs):
        # The sublayers create their variables on the first call.
        pass

    def _shortcut(self, x):
        if self.upsample:
            x = upsample_nearest2x(x)
        if self.learned_sc:
            x = self.conv1x1(x)
        return x

    def _residual(self, x, s):
        x = lrelu(self.conv1(x, s))
        return lrelu(self.conv2(x, s))

    def call(self, x, s, rgb=None, skip=None):
        x = (self._residual(x, s) + self._shortcut(x)) / math.sqrt(2)  # unit variance
        if skip is not None:
            x = x + skip
        out = self.to_rgb(x, s)
        if rgb is not None:
            out = out + (upsample_bilinear2x(rgb) if self.upsample else rgb)
        return x, out

    def official_weights(self, prefix):
        """Names in the official style (`decode.0.conv1.weight`, `decode.0.to_rgb.affine.bias`)."""
        out = self.conv1.official_weights(f"{prefix}.conv1")
        out += self.conv2.official_weights(f"{prefix}.conv2")
        out += self.to_rgb.official_weights(f"{prefix}.to_rgb")
        if self.learned_sc:
            out += conv_weights(f"{prefix}.conv1x1", self.conv1x1)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "dim_in": self.dim_in,
            "dim_out": self.dim_out,
            "upsample": self.upsample,
            "equalized_lr": self.equalized_lr,
        }
