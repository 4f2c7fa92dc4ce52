"""StyleGAN2's modulated convolution (ModulatedConv2D) and its RGB head (ToRGB), NHWC.

Modulation is applied to activations around one shared convolution instead of building a kernel
per sample (the grouped-convolution form): with `m = 1 + affine(s)` per input channel and
`d = rsqrt(sum_{kh,kw,i} (w * m_i)^2 + 1e-8)` per output channel,

    conv(x, w * m) * d  ==  conv(x * m, w) * d,

and `sum (w * m_i)^2 = (m^2) @ (sum_{kh,kw} w^2)`, a [N, C_in] x [C_in, C_out] product. The two
forms are the same math; this one needs no per-sample kernels (tests/test_modulated_conv.py checks
it against the explicit per-sample form).

Weight storage (measured with tools/modconv_storage_study.py, for the 512 px
modulated-convolution decoder): the kernels are stored He-scaled (`|w| ~ sqrt(2 / fan_in)`, as
every other conv of the networks), so the official lr 1e-4 suits them. With demodulation the
output ignores the scale of `w`, and Adam's relative step is `lr / |w|`: StyleGAN2's
equalised-lr storage (`w ~ N(0, 1)`, scaled at run time) moves the 3x3 kernels sqrt(fan_in / 2)
times more slowly. A GenResBlk fitting a random teacher block with the official Adam (lr 1e-4,
beta1 0, beta2 0.99, L2 1e-4), both forms starting from the same function, reached 0.61 (64
channels) and 0.54 (256 channels) of its starting loss after 1000 steps with He-scaled storage,
0.83 and 0.84 with equalised storage. `equalized_lr=True` keeps the StyleGAN2 form available.
"""

import math

import keras
import tensorflow as tf

from stargan_tf.layers import initializers
from stargan_tf.layers.blocks import upsample_nearest2x
from stargan_tf.torch_layout import CONV, LINEAR, VECTOR

DEMOD_EPSILON = 1e-8  # StyleGAN2's


class ModulatedConv2D(keras.layers.Layer):
    """A convolution whose input channels are scaled per sample by `1 + affine(s)`.

    `layer(x, s)`: x [N, H, W, C_in], s [N, style_dim] -> [N, H', W', filters]. Order: modulate,
    [nearest x2 upsampling], conv (zero padding kernel_size // 2 on every side, as PyTorch),
    [demodulate], [+ bias].

    The affine layer's bias starts at 0 and the constant 1 is added outside the parameters (the
    StyleGAN2-TF form), so that L2 weight decay pulls the modulation toward scale 1, not 0.

    Args:
      filters: output channels C_out.
      kernel_size: odd kernel height and width.
      demodulate: divide each output channel of each sample by the norm of its modulated kernel
        (`rsqrt(sum w'^2 + 1e-8)`), which restores unit variance for unit-variance inputs.
      upsample: double H and W with nearest-neighbour upsampling before the convolution.
      strides: 1 or 2 (with symmetric padding, unlike Keras's "same").
      use_bias: add a per-channel bias (initialised to 0) after demodulation.
      equalized_lr: store the kernel as N(0, 1) and scale it by sqrt(2 / fan_in) at run time
        (StyleGAN2); False (default) stores the He-scaled kernel itself (see the module docstring).
    """

    def __init__(
        self,
        filters,
        kernel_size,
        demodulate=True,
        upsample=False,
        strides=1,
        use_bias=True,
        equalized_lr=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kernel_size % 2 != 1:
            raise ValueError(f"ModulatedConv2D needs an odd kernel_size, got {kernel_size}.")
        if strides not in (1, 2):
            raise ValueError(f"ModulatedConv2D supports strides 1 or 2, got {strides}.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.strides = strides
        self.use_bias = use_bias
        self.equalized_lr = equalized_lr

    def build(self, x_shape, s_shape):
        # Keras passes one shape per call argument, named after it.
        channels = x_shape[-1]
        fan_in = self.kernel_size * self.kernel_size * channels
        self.runtime_scale = math.sqrt(2.0 / fan_in) if self.equalized_lr else 1.0
        init = (
            keras.initializers.RandomNormal(0.0, 1.0)
            if self.equalized_lr
            else initializers.he_normal()
        )
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, channels, self.filters),
            initializer=init,
            name="kernel",
        )
        if self.use_bias:
            self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        self.affine = initializers.dense(channels, name="affine")
        self.affine.build(s_shape)

    def modulation(self, s):
        """The per-sample input-channel scales `1 + affine(s)`: [N, C_in], float32."""
        return 1.0 + tf.cast(self.affine(s), tf.float32)

    def call(self, x, s):
        m = self.modulation(s)  # [N, C_in]
        w = tf.cast(self.kernel, tf.float32) * self.runtime_scale  # [k, k, C_in, C_out]
        x = x * tf.cast(m, x.dtype)[:, None, None, :]
        if self.upsample:
            x = upsample_nearest2x(x)
        pad = self.kernel_size // 2
        # Stride 1, odd kernel: "SAME" pads k // 2 on every side, and runs faster on CPUs than
        # explicit padding; stride 2 needs explicit symmetric padding ("SAME" pads the end more).
        padding = "SAME" if self.strides == 1 else [[0, 0], [pad, pad], [pad, pad], [0, 0]]
        x = tf.nn.conv2d(
            x, tf.cast(w, x.dtype), strides=self.strides, padding=padding
        )  # [N, H', W', C_out]
        if self.demodulate:
            # sum over kh, kw, i of (w[kh, kw, i, o] * m[n, i])^2 for every sample n and output o.
            norm2 = tf.matmul(tf.square(m), tf.reduce_sum(tf.square(w), axis=[0, 1]))  # [N, C_out]
            d = tf.math.rsqrt(norm2 + DEMOD_EPSILON)
            x = x * tf.cast(d, x.dtype)[:, None, None, :]
        if self.use_bias:
            x = x + tf.cast(self.bias, x.dtype)
        return x

    def official_weights(self, prefix):
        """Names in the official style (there are no official modconv weights to convert)."""
        out = [(f"{prefix}.weight", self.kernel, CONV)]
        if self.use_bias:
            out.append((f"{prefix}.bias", self.bias, VECTOR))
        out += [
            (f"{prefix}.affine.weight", self.affine.kernel, LINEAR),
            (f"{prefix}.affine.bias", self.affine.bias, VECTOR),
        ]
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "demodulate": self.demodulate,
            "upsample": self.upsample,
            "strides": self.strides,
            "use_bias": self.use_bias,
            "equalized_lr": self.equalized_lr,
        }


class ToRGB(ModulatedConv2D):
    """StyleGAN2's RGB head: a 1x1 modulated conv to 3 channels, not demodulated, plus bias.

    Args:
      equalized_lr: as ModulatedConv2D's.
    """

    def __init__(self, equalized_lr=False, **kwargs):
        super().__init__(3, 1, demodulate=False, use_bias=True, equalized_lr=equalized_lr, **kwargs)

    def get_config(self):
        config = super().get_config()
        for fixed in ("filters", "kernel_size", "demodulate", "upsample", "strides", "use_bias"):
            del config[fixed]
        return config
