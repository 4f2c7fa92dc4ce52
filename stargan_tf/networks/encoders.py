"""Networks that read an image: the style encoder E(x, y) and the discriminator D(x, y).

Both share one trunk shape: conv3x3, `log2(img_size) - 2` downsampling ResBlks, LeakyReLU, a 4x4
valid conv (4x4 -> 1x1), LeakyReLU; then per-domain outputs picked by the label.
"""

import keras
import tensorflow as tf

from stargan_tf.layers import initializers
from stargan_tf.layers.blocks import ResBlk, conv_weights, dense_weights, lrelu
from stargan_tf.networks import common


class _Trunk(keras.layers.Layer):
    """The shared trunk: image [N, S, S, 3] -> features [N, dim_out]."""

    def __init__(self, img_size, max_conv_dim, dim_in, **kwargs):
        super().__init__(**kwargs)
        self.img_size = img_size
        dim_in = common.official_dim_in(img_size) if dim_in is None else dim_in
        self.conv_in = initializers.conv2d(dim_in, 3, name="conv_in")
        self.blocks = []
        dim_out = dim_in
        for _ in range(common.log2(img_size) - 2):
            dim_out = min(dim_in * 2, max_conv_dim)
            self.blocks.append(ResBlk(dim_in, dim_out, downsample=True))
            dim_in = dim_out
        self.dim_out = dim_out
        self.conv_out = initializers.conv2d(dim_out, 4, padding="valid", name="conv_out")

    def call(self, x):
        h = self.conv_in(x)
        for block in self.blocks:
            h = block(h)
        h = lrelu(self.conv_out(lrelu(h)))  # [N, 1, 1, dim_out]
        return tf.reshape(h, [-1, self.dim_out])  # [N, dim_out]

    def official_weights(self, prefix):
        # Official nn.Sequential indices: 0 conv, 1..R ResBlks, R+1 LReLU, R+2 conv4x4, R+3 LReLU.
        out = conv_weights(f"{prefix}.0", self.conv_in)
        for i, block in enumerate(self.blocks):
            out += block.official_weights(f"{prefix}.{i + 1}")
        out += conv_weights(f"{prefix}.{len(self.blocks) + 2}", self.conv_out)
        return out


class StyleEncoder(keras.Model):
    """`style_encoder(x, y)` -> s, [N, style_dim]: the style of images x in domains y.

    Args:
      img_size: image height and width in pixels, a power of two >= 32.
      style_dim: length of the style code s.
      num_domains: number of domains (output heads).
      max_conv_dim: cap on the number of channels of any block.
      dim_in: channels of the first convolution; None = the official 2**14 // img_size.
    """

    def __init__(
        self, img_size=256, style_dim=64, num_domains=2, max_conv_dim=512, dim_in=None, **kwargs
    ):
        super().__init__(**kwargs)
        common.check_img_size(img_size)
        self.img_size = img_size
        self.style_dim = style_dim
        self.num_domains = num_domains
        self.max_conv_dim = max_conv_dim
        self.dim_in = dim_in
        self.shared = _Trunk(img_size, max_conv_dim, dim_in, name="shared")
        self.unshared = [initializers.dense(style_dim) for _ in range(num_domains)]

    def build(self, *input_shapes):
        # The sublayers create their variables on the first call (see build_networks).
        pass

    def call(self, x, y):
        common.check_image(x, self.img_size, "StyleEncoder")
        h = self.shared(x)  # [N, dim_out]
        out = tf.stack([head(h) for head in self.unshared], axis=1)  # [N, num_domains, style_dim]
        return tf.cast(common.pick_domain(out, y), tf.float32)  # [N, style_dim]

    def official_weights(self):
        """[(official state-dict key, variable, layout)] for every weight."""
        out = self.shared.official_weights("shared")
        for d, head in enumerate(self.unshared):
            out += dense_weights(f"unshared.{d}", head)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "img_size": self.img_size,
            "style_dim": self.style_dim,
            "num_domains": self.num_domains,
            "max_conv_dim": self.max_conv_dim,
            "dim_in": self.dim_in,
        }


class Discriminator(keras.Model):
    """Multi-task discriminator: `discriminator(x, y)` -> logits [N] of real vs fake in domain y;
    `discriminator(x)` -> logits of every domain, [N, num_domains].

    Args:
      img_size: image height and width in pixels, a power of two >= 32.
      num_domains: number of domains (output logits).
      max_conv_dim: cap on the number of channels of any block.
      dim_in: channels of the first convolution; None = the official 2**14 // img_size.
    """

    def __init__(self, img_size=256, num_domains=2, max_conv_dim=512, dim_in=None, **kwargs):
        super().__init__(**kwargs)
        common.check_img_size(img_size)
        self.img_size = img_size
        self.num_domains = num_domains
        self.max_conv_dim = max_conv_dim
        self.dim_in = dim_in
        self.main = _Trunk(img_size, max_conv_dim, dim_in, name="main")
        self.conv_logits = initializers.conv2d(num_domains, 1, name="conv_logits")

    def build(self, *input_shapes):
        # The sublayers create their variables on the first call (see build_networks).
        pass

    def call(self, x, y=None):
        common.check_image(x, self.img_size, "Discriminator")
        h = self.main(x)[:, None, None, :]  # [N, 1, 1, dim_out]
        out = tf.reshape(self.conv_logits(h), [-1, self.num_domains])  # [N, num_domains]
        out = tf.cast(out, tf.float32)
        return out if y is None else common.pick_domain(out, y)  # [N]

    def official_weights(self):
        """[(official state-dict key, variable, layout)] for every weight."""
        out = self.main.official_weights("main")
        out += conv_weights(f"main.{len(self.main.blocks) + 4}", self.conv_logits)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "img_size": self.img_size,
            "num_domains": self.num_domains,
            "max_conv_dim": self.max_conv_dim,
            "dim_in": self.dim_in,
        }
