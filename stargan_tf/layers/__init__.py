"""Building blocks of the StarGAN v2 networks (NHWC)."""

from stargan_tf.layers.blocks import AdainResBlk, ResBlk
from stargan_tf.layers.highpass import HighPass
from stargan_tf.layers.normalization import AdaIN, InstanceNorm, instance_normalize

__all__ = ["AdaIN", "AdainResBlk", "HighPass", "InstanceNorm", "ResBlk", "instance_normalize"]
