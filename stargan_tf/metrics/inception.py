"""InceptionV3 feature extractors for the FID, in Keras, converted from the published weights.

Two variants, both giving 2048-d pool features:
  * `official`: torchvision's ImageNet InceptionV3 (`inception_v3_google-0cc3c7bd.pth`), cut as
    the official StarGAN v2 `metrics/fid.py` cuts it (blocks of the stem, Mixed_5b..6e,
    Mixed_7a..7c, global average pool). Input: ImageNet-normalised 299x299 images made by
    `official_input` (PIL bilinear resizes on uint8 images, as the official loader does).
    torchvision's `transform_input` is *not* applied: the official class never runs it.
  * `fid`: pytorch-fid's FID Inception (`pt_inception-2015-12-05-6726825d.pth`, a port of the
    TensorFlow FID graph): its Mixed_5*/6b-e/7b average pools exclude padding and Mixed_7c pools
    with a max. Input: images in [0, 1] of any size, resized in float to 299x299 (bilinear,
    half-pixel, no antialias) and mapped to [-1, 1] inside the model, as pytorch-fid does.

Layers are named after the PyTorch keys (dots replaced by "__"), which the converter relies on.
"""

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from stargan_tf.official import torch_files
from stargan_tf.metrics.config import VARIANTS
from stargan_tf.torch_layout import CONV, to_keras

FEATURE_DIM = 2048
INPUT_SIZE = 299
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
BN_EPS = 1e-3  # torchvision's BasicConv2d.


def _sep(name):
    return name.replace(".", "__")


class _Builder:
    """Builds the functional graph; `convs` maps each torch prefix to its (conv, bn) layers."""

    def __init__(self, variant):
        self.variant = variant
        self.convs = {}

    def conv(self, x, name, filters, kernel, stride=1, padding=(0, 0)):
        """torchvision's BasicConv2d: conv (no bias, symmetric zero padding) + BN + ReLU."""
        kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
        padding = (padding, padding) if isinstance(padding, int) else padding
        if any(padding):
            x = keras.layers.ZeroPadding2D(padding, name=_sep(name) + "__pad")(x)
        conv = keras.layers.Conv2D(
            filters, kernel, stride, "valid", use_bias=False, name=_sep(name) + "__conv"
        )
        bn = keras.layers.BatchNormalization(epsilon=BN_EPS, name=_sep(name) + "__bn")
        self.convs[name] = (conv, bn)
        return keras.layers.ReLU()(bn(conv(x)))

    def avg_pool_3x3(self, x, include_pad):
        # PyTorch AvgPool2d(3, 1, padding=1); count_include_pad=True divides by 9 everywhere,
        # False by the number of real pixels, which is what TF's "same" average pool does.
        if include_pad:
            x = keras.layers.ZeroPadding2D(1)(x)
            return keras.layers.AveragePooling2D(3, 1, "valid")(x)
        return keras.layers.AveragePooling2D(3, 1, "same")(x)

    def block_a(self, x, name, pool_features):
        b1 = self.conv(x, f"{name}.branch1x1", 64, 1)
        b5 = self.conv(x, f"{name}.branch5x5_1", 48, 1)
        b5 = self.conv(b5, f"{name}.branch5x5_2", 64, 5, padding=2)
        b3 = self.conv(x, f"{name}.branch3x3dbl_1", 64, 1)
        b3 = self.conv(b3, f"{name}.branch3x3dbl_2", 96, 3, padding=1)
        b3 = self.conv(b3, f"{name}.branch3x3dbl_3", 96, 3, padding=1)
        bp = self.avg_pool_3x3(x, include_pad=self.variant == "official")
        bp = self.conv(bp, f"{name}.branch_pool", pool_features, 1)
        return keras.layers.Concatenate()([b1, b5, b3, bp])

    def block_b(self, x, name):
        b3 = self.conv(x, f"{name}.branch3x3", 384, 3, stride=2)
        bd = self.conv(x, f"{name}.branch3x3dbl_1", 64, 1)
        bd = self.conv(bd, f"{name}.branch3x3dbl_2", 96, 3, padding=1)
        bd = self.conv(bd, f"{name}.branch3x3dbl_3", 96, 3, stride=2)
        bp = keras.layers.MaxPooling2D(3, 2, "valid")(x)
        return keras.layers.Concatenate()([b3, bd, bp])

    def block_c(self, x, name, c7):
        b1 = self.conv(x, f"{name}.branch1x1", 192, 1)
        b7 = self.conv(x, f"{name}.branch7x7_1", c7, 1)
        b7 = self.conv(b7, f"{name}.branch7x7_2", c7, (1, 7), padding=(0, 3))
        b7 = self.conv(b7, f"{name}.branch7x7_3", 192, (7, 1), padding=(3, 0))
        bd = self.conv(x, f"{name}.branch7x7dbl_1", c7, 1)
        bd = self.conv(bd, f"{name}.branch7x7dbl_2", c7, (7, 1), padding=(3, 0))
        bd = self.conv(bd, f"{name}.branch7x7dbl_3", c7, (1, 7), padding=(0, 3))
        bd = self.conv(bd, f"{name}.branch7x7dbl_4", c7, (7, 1), padding=(3, 0))
        bd = self.conv(bd, f"{name}.branch7x7dbl_5", 192, (1, 7), padding=(0, 3))
        bp = self.avg_pool_3x3(x, include_pad=self.variant == "official")
        bp = self.conv(bp, f"{name}.branch_pool", 192, 1)
        return keras.layers.Concatenate()([b1, b7, bd, bp])

    def block_d(self, x, name):
        b3 = self.conv(x, f"{name}.branch3x3_1", 192, 1)
        b3 = self.conv(b3, f"{name}.branch3x3_2", 320, 3, stride=2)
        b7 = self.conv(x, f"{name}.branch7x7x3_1", 192, 1)
        b7 = self.conv(b7, f"{name}.branch7x7x3_2", 192, (1, 7), padding=(0, 3))
        b7 = self.conv(b7, f"{name}.branch7x7x3_3", 192, (7, 1), padding=(3, 0))
        b7 = self.conv(b7, f"{name}.branch7x7x3_4", 192, 3, stride=2)
        bp = keras.layers.MaxPooling2D(3, 2, "valid")(x)
        return keras.layers.Concatenate()([b3, b7, bp])

    def block_e(self, x, name, pool):
        b1 = self.conv(x, f"{name}.branch1x1", 320, 1)
        b3 = self.conv(x, f"{name}.branch3x3_1", 384, 1)
        b3 = keras.layers.Concatenate()(
            [
                self.conv(b3, f"{name}.branch3x3_2a", 384, (1, 3), padding=(0, 1)),
                self.conv(b3, f"{name}.branch3x3_2b", 384, (3, 1), padding=(1, 0)),
            ]
        )
        bd = self.conv(x, f"{name}.branch3x3dbl_1", 448, 1)
        bd = self.conv(bd, f"{name}.branch3x3dbl_2", 384, 3, padding=1)
        bd = keras.layers.Concatenate()(
            [
                self.conv(bd, f"{name}.branch3x3dbl_3a", 384, (1, 3), padding=(0, 1)),
                self.conv(bd, f"{name}.branch3x3dbl_3b", 384, (3, 1), padding=(1, 0)),
            ]
        )
        if pool == "max":  # pytorch-fid's Mixed_7c (FIDInceptionE_2): a max pool, pads ignored.
            bp = keras.layers.MaxPooling2D(3, 1, "same")(x)
        else:
            bp = self.avg_pool_3x3(x, include_pad=pool == "avg_include_pad")
        bp = self.conv(bp, f"{name}.branch_pool", 192, 1)
        return keras.layers.Concatenate()([b1, b3, bd, bp])


def build_inception(variant="official"):
    """The Keras InceptionV3 feature extractor of a variant, with fresh (untrained) weights.

    Returns:
      (model, convs): model maps [N, 299, 299, 3] (official: ImageNet-normalised; fid: see
      `build_fid_inception`'s input) to {"block1".."block3": stem and Mixed_6e outputs,
      "features": [N, 2048]}; convs maps each PyTorch prefix (e.g. "Mixed_5b.branch1x1") to its
      (Conv2D, BatchNormalization) layers.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown Inception variant {variant!r}; expected one of {VARIANTS}.")
    b = _Builder(variant)
    fid = variant == "fid"
    if fid:
        images = keras.Input([None, None, 3], name="images01")  # [N, H, W, 3] in [0, 1]
        x = keras.layers.Lambda(
            lambda t: 2.0 * tf.image.resize(t, [INPUT_SIZE, INPUT_SIZE], "bilinear") - 1.0
        )(images)
    else:
        images = keras.Input([INPUT_SIZE, INPUT_SIZE, 3], name="images")
        x = images
    x = b.conv(x, "Conv2d_1a_3x3", 32, 3, stride=2)
    x = b.conv(x, "Conv2d_2a_3x3", 32, 3)
    x = b.conv(x, "Conv2d_2b_3x3", 64, 3, padding=1)
    block1 = x = keras.layers.MaxPooling2D(3, 2, "valid")(x)  # [N, 73, 73, 64]
    x = b.conv(x, "Conv2d_3b_1x1", 80, 1)
    x = b.conv(x, "Conv2d_4a_3x3", 192, 3)
    block2 = x = keras.layers.MaxPooling2D(3, 2, "valid")(x)  # [N, 35, 35, 192]
    x = b.block_a(x, "Mixed_5b", 32)
    x = b.block_a(x, "Mixed_5c", 64)
    x = b.block_a(x, "Mixed_5d", 64)
    x = b.block_b(x, "Mixed_6a")
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        x = b.block_c(x, name, c7)
    block3 = x  # [N, 17, 17, 768]
    x = b.block_d(x, "Mixed_7a")
    x = b.block_e(x, "Mixed_7b", "avg_exclude_pad" if fid else "avg_include_pad")
    x = b.block_e(x, "Mixed_7c", "max" if fid else "avg_include_pad")
    features = keras.layers.GlobalAveragePooling2D()(x)  # [N, 2048]
    outputs = {"block1": block1, "block2": block2, "block3": block3, "features": features}
    return keras.Model(images, outputs, name=f"inception_{variant}"), b.convs


def load_torch_weights(convs, state, path, what="--inception_weights"):
    """Copies a PyTorch Inception state dict (numpy, see `torch_files.load_state_dict`) into
    the layers of `build_inception`. Keys the extractor does not use (fc, AuxLogits) are ignored.

    Raises:
      UserError: a needed key is missing or has the wrong shape.
    """
    suffixes = ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var")
    keys = [f"{prefix}.{s}" for prefix in convs for s in suffixes]
    torch_files.require(state, keys, path, what, "a torchvision or pytorch-fid InceptionV3")
    for prefix, (conv, bn) in convs.items():
        kernel = to_keras(state[f"{prefix}.conv.weight"], CONV)
        if tuple(kernel.shape) != tuple(conv.kernel.shape):
            torch_files.shape_error(path, what, f"{prefix}.conv.weight", kernel, conv.kernel)
        conv.kernel.assign(kernel)
        bn.set_weights(
            [state[f"{prefix}.bn.{k}"] for k in ("weight", "bias", "running_mean", "running_var")]
        )


class InceptionExtractor:
    """FID features of uint8 images, by either variant.

    `features(images_u8)` takes uint8 [N, S, S, 3] images (all one size) and returns float32
    [N, 2048]: the official variant resizes them to 299 with PIL bilinear (uint8, as the official
    loader does) and ImageNet-normalises; the fid variant passes them as [0, 1] floats to
    pytorch-fid's float resize. Real images of other sizes are first made img_size square by
    `pil_resize` (the official loader's first step; generated images already have that size).
    """

    def __init__(self, variant, weights_path, batch_size=32):
        self.variant = variant
        self.weights_path = weights_path
        self.batch_size = batch_size
        state = torch_files.load_state_dict(weights_path, "--inception_weights")
        self.model, convs = build_inception(variant)
        load_torch_weights(convs, state, weights_path)
        self._weights_sha256 = None
        self._outputs = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def outputs(self, x):
        """The model's outputs (blocks and features, numpy) for its preprocessed input x."""
        return {k: v.numpy() for k, v in self._outputs(tf.convert_to_tensor(x)).items()}

    @property
    def weights_sha256(self):
        """The SHA-256 of the weights file (computed once): part of the statistics' cache key."""
        if self._weights_sha256 is None:
            self._weights_sha256 = torch_files.sha256(self.weights_path)
        return self._weights_sha256

    def features(self, images_u8):
        images_u8 = np.asarray(images_u8)
        if images_u8.dtype != np.uint8 or images_u8.ndim != 4:
            raise ValueError(
                f"Expected uint8 images [N, H, W, 3], got {images_u8.dtype} {images_u8.shape}."
            )
        out = []
        for i in range(0, len(images_u8), self.batch_size):
            batch = images_u8[i : i + self.batch_size]
            if self.variant == "official":
                x = official_input(batch)
            else:
                x = batch.astype(np.float32) / 255.0
            out.append(self._outputs(tf.constant(x))["features"].numpy())
        return np.concatenate(out) if out else np.zeros([0, FEATURE_DIM], np.float32)


def pil_resize(image_u8, size):
    """uint8 [H, W, 3] -> uint8 [size, size, 3] by PIL bilinear (torchvision `Resize([s, s])` on
    a PIL image): a fixed-point triangle filter, antialiased when shrinking, rounded to uint8.
    The same size returns the image unchanged."""
    image = Image.fromarray(np.asarray(image_u8, np.uint8))
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image)


def official_input(images_u8):
    """uint8 [N, S, S, 3] -> float32 [N, 299, 299, 3]: PIL bilinear to 299 (uint8), then
    `(x / 255 - mean) / std` with the ImageNet mean and std, as the official eval loader."""
    resized = np.stack([pil_resize(image, INPUT_SIZE) for image in images_u8])
    return (resized.astype(np.float32) / np.float32(255) - IMAGENET_MEAN) / IMAGENET_STD
