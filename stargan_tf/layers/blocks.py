"""Residual blocks of the StarGAN v2 networks: ResBlk (encoders) and AdainResBlk (decoder).

Each block also reports its weights under the official PyTorch parameter names
(`official_weights()`), which the checkpoint converter uses. On small, wide maps (a few hundred
pixels, 512 channels: the official networks' inner blocks at batch 1) the convolutions run as
matmuls over patches on the CPU (stargan_tf/layers/patch_conv.py): the same maps, faster there.
"""

import math

import keras
import tensorflow as tf

from stargan_tf.layers import folded_conv, initializers, op_order, patch_conv
from stargan_tf.layers.normalization import AdaIN, InstanceNorm
from stargan_tf.torch_layout import CONV, LINEAR, VECTOR


def lrelu(x):
    return tf.nn.leaky_relu(x, alpha=0.2)


def avg_pool2x(x):
    return tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID")  # [N, H/2, W/2, C]


def upsample_nearest2x(x):
    # Exact nearest-neighbour x2, as PyTorch's F.interpolate(scale_factor=2, mode="nearest").
    y = tf.repeat(tf.repeat(x, 2, axis=1), 2, axis=2)  # [N, 2H, 2W, C]
    # tf.repeat loses the static H in a traced graph; the LiteRT converter needs it to lower the
    # convolutions that follow, so a reshape states it. (A reshape leaves the values and their
    # gradients as tf.repeat makes them: the deterministic runs measured before stay the same.)
    h, w, c = (x.shape[i] if x.shape[i] is not None else tf.shape(x)[i] for i in (1, 2, 3))
    return tf.reshape(y, [-1, 2 * h, 2 * w, c])


def conv_weights(prefix, conv):
    """Official names of a conv layer's weights: `<prefix>.weight` and `<prefix>.bias`."""
    out = [(f"{prefix}.weight", conv.kernel, CONV)]
    if conv.use_bias:
        out.append((f"{prefix}.bias", conv.bias, VECTOR))
    return out


def dense_weights(prefix, dense):
    """Official names of a Dense layer's weights (a PyTorch `nn.Linear`)."""
    return [(f"{prefix}.weight", dense.kernel, LINEAR), (f"{prefix}.bias", dense.bias, VECTOR)]


def norm_weights(prefix, norm):
    """Official names of an affine InstanceNorm's weights."""
    return [(f"{prefix}.weight", norm.gamma, VECTOR), (f"{prefix}.bias", norm.beta, VECTOR)]


def _conv_then(conv, x, fold):
    """`conv` (a Keras 3x3 Conv2D, built here if it is not yet) applied by `fold`
    (stargan_tf/layers/folded_conv.py) to x in the layer's compute dtype."""
    if not conv.built:
        conv.build(x.shape)
    x = tf.cast(x, conv.compute_dtype)
    return fold(x, conv.kernel, conv.bias if conv.use_bias else None)


def _conv3x3(conv, x):
    """conv(x) for a Keras 3x3 "same" Conv2D, as a matmul over patches on small, wide maps
    (stargan_tf/layers/patch_conv.py); elsewhere the layer's own call, unchanged."""
    if not conv.built:
        conv.build(x.shape)
    # Keras "same" 3x3 stride-1 NHWC layers (initializers.conv2d): patch_conv.conv2d's op.
    if op_order.is_official() or not patch_conv.applies(
        x, conv.kernel.shape, tf.as_dtype(conv.compute_dtype)
    ):
        return conv(x)
    return _conv_then(conv, x, _patch_conv3x3)


def _patch_conv3x3(x, kernel, bias=None):
    y = patch_conv.conv2d_by_patches(x, tf.cast(kernel, x.dtype))  # _conv3x3 checked `applies`
    return y if bias is None else tf.nn.bias_add(y, tf.cast(bias, x.dtype))


class ResBlk(keras.layers.Layer):
    """Pre-activation residual block: `(shortcut(x) + residual(x)) / sqrt(2)`.

    residual = [IN] -> LReLU(0.2) -> conv3x3 -> [avgpool2] -> [IN] -> LReLU -> conv3x3;
    shortcut = [conv1x1 without bias when dim_in != dim_out] -> [avgpool2].

    With downsample, conv3x3 -> avgpool2 runs as one stride-2 4x4 convolution and the shortcut
    pools before its 1x1 convolution (both orders are the same linear map; this one needs fewer
    FLOPs: stargan_tf/layers/folded_conv.py). The weights are the official ones either way.

    Args:
      dim_in: input channels.
      dim_out: output channels.
      normalize: use affine instance normalisation (generator encoder), or none (E, D).
      downsample: halve H and W with a 2x2 average pool.
    """

    def __init__(self, dim_in, dim_out, normalize=False, downsample=False, **kwargs):
        super().__init__(**kwargs)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.normalize = normalize
        self.downsample = downsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = initializers.conv2d(dim_in, 3, name="conv1")
        self.conv2 = initializers.conv2d(dim_out, 3, name="conv2")
        if normalize:
            self.norm1 = InstanceNorm(affine=True, name="norm1")
            self.norm2 = InstanceNorm(affine=True, name="norm2")
        if self.learned_sc:
            self.conv1x1 = initializers.conv2d(dim_out, 1, use_bias=False, name="conv1x1")

    def _shortcut(self, x):
        if op_order.is_official():
            x = self.conv1x1(x) if self.learned_sc else x
            return avg_pool2x(x) if self.downsample else x
        if self.downsample:  # pooling first: the 1x1 convolution then runs on a quarter the pixels
            x = avg_pool2x(x)
        if self.learned_sc:
            x = self.conv1x1(x)
        return x

    def _residual(self, x):
        if self.normalize:
            x = self.norm1(x)
        if self.downsample and op_order.is_official():
            x = avg_pool2x(self.conv1(lrelu(x)))
        elif self.downsample:
            x = _conv_then(self.conv1, lrelu(x), folded_conv.conv_avg_pool)
        else:
            x = _conv3x3(self.conv1, lrelu(x))
        if self.normalize:
            x = self.norm2(x)
        return _conv3x3(self.conv2, lrelu(x))

    def call(self, x):
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)  # unit variance

    def official_weights(self, prefix):
        out = conv_weights(f"{prefix}.conv1", self.conv1) + conv_weights(
            f"{prefix}.conv2", self.conv2
        )
        if self.normalize:
            out += norm_weights(f"{prefix}.norm1", self.norm1)
            out += norm_weights(f"{prefix}.norm2", self.norm2)
        if self.learned_sc:
            out += conv_weights(f"{prefix}.conv1x1", self.conv1x1)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "dim_in": self.dim_in,
            "dim_out": self.dim_out,
            "normalize": self.normalize,
            "downsample": self.downsample,
        }


class AdainResBlk(keras.layers.Layer):
    """Decoder block with AdaIN: residual alone when `w_hpf > 0`, else
    `(residual + shortcut)/sqrt(2)`.

    residual = AdaIN -> LReLU(0.2) -> [nearest x2] -> conv3x3 -> AdaIN -> LReLU -> conv3x3;
    shortcut = [nearest x2] -> [conv1x1 without bias when dim_in != dim_out].

    With upsample, nearest x2 -> conv3x3 runs as one stride-2 transposed 4x4 convolution and the
    shortcut upsamples after its 1x1 convolution (the same linear maps with fewer FLOPs:
    stargan_tf/layers/folded_conv.py). The weights are the official ones either way.

    Args:
      dim_in: input channels.
      dim_out: output channels.
      w_hpf: weight of the high-pass path; > 0 drops the shortcut, as the official code does
        (the shortcut weights still exist, unused, so official checkpoints load).
      upsample: double H and W with nearest-neighbour upsampling.
    """

    def __init__(self, dim_in, dim_out, w_hpf=0.0, upsample=False, **kwargs):
        super().__init__(**kwargs)
        self.dim_in = dim_in
        self.dim_out = dim_out
        self.w_hpf = float(w_hpf)
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.conv1 = initializers.conv2d(dim_out, 3, name="conv1")
        self.conv2 = initializers.conv2d(dim_out, 3, name="conv2")
        self.norm1 = AdaIN(dim_in, name="norm1")
        self.norm2 = AdaIN(dim_out, name="norm2")
        if self.learned_sc:
            self.conv1x1 = initializers.conv2d(dim_out, 1, use_bias=False, name="conv1x1")

    def build(self, x_shape, s_shape):
        # Keras passes one shape per call argument, named after it.
        if self.learned_sc:
            # Built even when w_hpf > 0 leaves it unused, so that the weights match the official
            # ones.
            self.conv1x1.build(tuple(x_shape[:-1]) + (self.dim_in,))

    def _shortcut(self, x):
        if op_order.is_official():
            x = upsample_nearest2x(x) if self.upsample else x
            return self.conv1x1(x) if self.learned_sc else x
        if self.learned_sc:  # before upsampling: on a quarter of the pixels
            x = self.conv1x1(x)
        if self.upsample:
            x = upsample_nearest2x(x)
        return x

    def _residual(self, x, s):
        x = lrelu(self.norm1(x, s))
        if self.upsample and op_order.is_official():
            x = self.conv1(upsample_nearest2x(x))
        elif self.upsample:
            x = _conv_then(self.conv1, x, folded_conv.upsample_conv)
        else:
            x = _conv3x3(self.conv1, x)
        x = lrelu(self.norm2(x, s))
        return _conv3x3(self.conv2, x)

    def call(self, x, s):
        out = self._residual(x, s)
        if self.w_hpf == 0:
            out = (out + self._shortcut(x)) / math.sqrt(2)
        return out

    def official_weights(self, prefix):
        out = conv_weights(f"{prefix}.conv1", self.conv1) + conv_weights(
            f"{prefix}.conv2", self.conv2
        )
        out += dense_weights(f"{prefix}.norm1.fc", self.norm1.fc)
        out += dense_weights(f"{prefix}.norm2.fc", self.norm2.fc)
        if self.learned_sc:
            out += conv_weights(f"{prefix}.conv1x1", self.conv1x1)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "dim_in": self.dim_in,
            "dim_out": self.dim_out,
            "w_hpf": self.w_hpf,
            "upsample": self.upsample,
        }
