"""The StarGAN v2 generator G(x, s): a ResBlk encoder and an AdaIN or modulated-conv decoder."""

import keras
import tensorflow as tf

from stargan_tf.config import DECODERS
from stargan_tf.layers import initializers
from stargan_tf.layers.blocks import AdainResBlk, ResBlk, conv_weights, lrelu, norm_weights
from stargan_tf.layers.gen_resblk import GenResBlk
from stargan_tf.layers.highpass import HighPass
from stargan_tf.layers.normalization import InstanceNorm
from stargan_tf.networks import common

# Feature sizes at which the face generator (w_hpf > 0) adds high-pass filtered encoder features.
HPF_SIZES = (32, 64, 128)


class Generator(keras.Model):
    """Translates images x into the style s: `generator(x, s, masks=None)` -> [N, H, W, 3].

    The encoder halves the resolution `log2(img_size) - 4` times (one more when `w_hpf > 0`),
    doubling channels up to `max_conv_dim`, then two bottleneck blocks; the decoder mirrors it with
    blocks conditioned on s: AdainResBlks and a normalised 1x1 conv to RGB ("adain", the paper's),
    or StyleGAN2 GenResBlks whose ToRGB outputs add up along a bilinearly upsampled RGB skip
    stream ("modconv", for 512 px). With `w_hpf > 0` (faces) and masks given, encoder features at
    32, 64 and 128 px, multiplied by the masks, are high-pass filtered and added to the decoder's
    (with "modconv": to the block's output, before its ToRGB).

    Args:
      img_size: image height and width in pixels, a power of two >= 32.
      style_dim: length of the style code s.
      max_conv_dim: cap on the number of channels of any block.
      w_hpf: weight of the high-pass path; 0 disables it (AFHQ), 1 is the CelebA-HQ recipe.
      dim_in: channels of the first convolution; None = the official 2**14 // img_size.
      decoder: "adain" (the paper's AdaIN decoder) or "modconv" (StyleGAN2 modulated convs).
    """

    def __init__(
        self,
        img_size=256,
        style_dim=64,
        max_conv_dim=512,
        w_hpf=1,
        dim_in=None,
        decoder="adain",
        **kwargs,
    ):
        super().__init__(**kwargs)
        common.check_img_size(img_size)
        if decoder not in DECODERS:
            raise ValueError(f"decoder={decoder!r} is not one of {', '.join(DECODERS)}.")
        self.decoder = decoder
        self.img_size = img_size
        self.style_dim = style_dim
        self.max_conv_dim = max_conv_dim
        self.w_hpf = float(w_hpf)
        self.dim_in = dim_in
        dim_in = common.official_dim_in(img_size) if dim_in is None else dim_in

        self.from_rgb = initializers.conv2d(dim_in, 3, name="from_rgb")
        self.encode = []
        self.decode = []
        repeat_num = common.log2(img_size) - 4 + (1 if self.w_hpf > 0 else 0)
        dim_out = dim_in
        for _ in range(repeat_num):  # down/up-sampling blocks
            dim_out = min(dim_in * 2, max_conv_dim)
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            # The decoder mirrors the encoder: its first block is the encoder's last, reversed.
            self.decode.insert(0, self._decoder_block(dim_out, dim_in, upsample=True))
            dim_in = dim_out
        for _ in range(2):  # bottleneck blocks
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, self._decoder_block(dim_out, dim_out))
        if decoder == "adain":
            self.to_rgb_norm = InstanceNorm(affine=True, name="to_rgb_norm")
            self.to_rgb_conv = initializers.conv2d(3, 1, name="to_rgb_conv")
        self.hpf = HighPass(self.w_hpf, name="hpf") if self.w_hpf > 0 else None

    def _decoder_block(self, dim_in, dim_out, upsample=False):
        if self.decoder == "modconv":
            return GenResBlk(dim_in, dim_out, upsample=upsample)
        return AdainResBlk(dim_in, dim_out, w_hpf=self.w_hpf, upsample=upsample)

    def _high_pass(self, size, masks, cache):
        """The masked, high-pass filtered encoder features to add at `size` px, or None."""
        if masks is None or size not in HPF_SIZES:
            return None
        mask = masks[0] if size == 32 else masks[1]  # [N, Hm, Wm, 1]
        # Bilinear with half-pixel centres, no antialiasing = PyTorch align_corners=False.
        mask = tf.image.resize(tf.cast(mask, tf.float32), [size, size], method="bilinear")
        return self.hpf(tf.cast(mask, cache[size].dtype) * cache[size])

    def build(self, *input_shapes):
        # The sublayers create their variables on the first call (see build_networks).
        pass

    def call(self, x, s, masks=None):
        common.check_image(x, self.img_size, "Generator")
        if masks is not None and self.hpf is None:
            raise ValueError(
                "Generator got masks but w_hpf = 0: masks are only used when w_hpf > 0."
            )
        x = self.from_rgb(x)
        cache = {}
        for block in self.encode:
            if masks is not None and x.shape[1] in HPF_SIZES:
                cache[x.shape[1]] = x
            x = block(x)
        if self.decoder == "modconv":
            rgb = None
            for block in self.decode:
                size = x.shape[1] * (2 if block.upsample else 1)
                x, rgb = block(x, s, rgb, self._high_pass(size, masks, cache))
            return tf.cast(rgb, tf.float32)
        for block in self.decode:
            x = block(x, s)
            skip = self._high_pass(x.shape[1], masks, cache)
            if skip is not None:
                x = x + tf.cast(skip, x.dtype)
        x = self.to_rgb_conv(lrelu(self.to_rgb_norm(x)))
        return tf.cast(x, tf.float32)

    def official_weights(self):
        """[(official state-dict key, variable, layout)] for every weight.

        The modconv decoder's weights have names in the same style (`decode.0.to_rgb.weight`),
        which no official checkpoint holds.
        """
        out = conv_weights("from_rgb", self.from_rgb)
        for i, block in enumerate(self.encode):
            out += block.official_weights(f"encode.{i}")
        for i, block in enumerate(self.decode):
            out += block.official_weights(f"decode.{i}")
        if self.decoder == "adain":
            out += norm_weights("to_rgb.0", self.to_rgb_norm)
            out += conv_weights("to_rgb.2", self.to_rgb_conv)
        return out

    def get_config(self):
        return {
            **super().get_config(),
            "img_size": self.img_size,
            "style_dim": self.style_dim,
            "max_conv_dim": self.max_conv_dim,
            "w_hpf": self.w_hpf,
            "dim_in": self.dim_in,
            "decoder": self.decoder,
        }
