"""Building blocks of the StarGAN v2 networks (NHWC)."""

from stargan_tf.layers.blocks import AdainResBlk, ResBlk
from stargan_tf.layers.gen_resblk import GenResBlk
from stargan_tf.layers.highpass import HighPass
from stargan_tf.layers.modulated_conv import ModulatedConv2D, ToRGB
from stargan_tf.layers.normalization import AdaIN, InstanceNorm, instance_normalize

__all__ = [
    "AdaIN",
    "AdainResBlk",
    "GenResBlk",
    "HighPass",
    "InstanceNorm",
    "ModulatedConv2D",
    "ResBlk",
    "ToRGB",
    "instance_normalize",
]
