"""ModulatedConv2D, ToRGB and GenResBlk: the activation-scaling form against explicit per-sample
kernels, the demodulated variance, and gradients to the style affine layers."""

import math

import numpy as np
import pytest
import tensorflow as tf

from stargan_tf.layers.gen_resblk import GenResBlk
from stargan_tf.layers.modulated_conv import ModulatedConv2D, ToRGB

ATOL = 1e-5


def randomize(layer, rng, bias_scale=0.3):
    """Random affine biases and conv biases (they start at 0), so that the test sees them."""
    for var in layer.weights:
        if var.path.endswith("bias"):
            var.assign(rng.normal(0, bias_scale, var.shape).astype(np.float32))


def per_sample_reference(layer, x, s):
    """Builds every sample's modulated (and demodulated) kernel and convolves sample by sample."""
    w = layer.kernel.numpy() * layer.runtime_scale  # [k, k, C_in, C_out]
    m = 1.0 + (s @ layer.affine.kernel.numpy() + layer.affine.bias.numpy())  # [N, C_in]
    pad = layer.kernel_size // 2
    out = []
    for n in range(x.shape[0]):
        wn = w * m[n][None, None, :, None]  # this sample's kernel
        if layer.demodulate:
            wn = wn / np.sqrt(np.sum(wn**2, axis=(0, 1, 2)) + 1e-8)  # per output channel
        xn = x[n : n + 1]
        if layer.upsample:
            xn = np.repeat(np.repeat(xn, 2, axis=1), 2, axis=2)
        y = tf.nn.conv2d(
            xn.astype(np.float64),
            wn.astype(np.float64),
            strides=layer.strides,
            padding=[[0, 0], [pad, pad], [pad, pad], [0, 0]],
        ).numpy()
        if layer.use_bias:
            y = y + layer.bias.numpy()
        out.append(y)
    return np.concatenate(out)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize(
    "kernel_size,upsample,strides",
    [(3, False, 1), (3, True, 1), (3, False, 2), (1, False, 1), (3, True, 2)],
)
def test_modulated_conv_equals_per_sample_kernels(demodulate, kernel_size, upsample, strides):
    rng = np.random.default_rng(0)
    x = rng.normal(size=[3, 8, 8, 5]).astype(np.float32)
    s = rng.normal(size=[3, 6]).astype(np.float32)
    layer = ModulatedConv2D(
        7, kernel_size, demodulate=demodulate, upsample=upsample, strides=strides
    )
    layer(x, s)
    randomize(layer, rng)
    got = layer(x, s).numpy()
    want = per_sample_reference(layer, x, s)
    size = 8 * (2 if upsample else 1) // strides
    assert got.shape == want.shape == (3, size, size, 7)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def test_equalized_lr_storage_equals_per_sample_kernels():
    rng = np.random.default_rng(1)
    x = rng.normal(size=[2, 8, 8, 4]).astype(np.float32)
    s = rng.normal(size=[2, 6]).astype(np.float32)
    layer = ModulatedConv2D(6, 3, equalized_lr=True)
    layer(x, s)
    randomize(layer, rng)
    assert abs(layer.kernel.numpy().std() - 1) < 0.15  # stored N(0, 1), scaled at run time
    np.testing.assert_allclose(layer(x, s).numpy(), per_sample_reference(layer, x, s), atol=ATOL)


@pytest.mark.parametrize("equalized_lr", [False, True])
def test_demodulated_output_has_unit_variance(equalized_lr):
    rng = np.random.default_rng(2)
    x = rng.normal(size=[4, 32, 32, 64]).astype(np.float32)  # unit-variance i.i.d.
    s = rng.normal(size=[4, 16]).astype(np.float32)  # random styles
    layer = ModulatedConv2D(32, 3, use_bias=False, equalized_lr=equalized_lr)
    y = layer(x, s).numpy()
    std = y.std(axis=(0, 1, 2))  # per output channel
    assert np.all(np.abs(std - 1) < 0.1), std
    # Without demodulation the scale follows the weights and styles instead.
    plain = ModulatedConv2D(32, 3, demodulate=False, use_bias=False)
    assert np.abs(plain(x, s).numpy().std(axis=(0, 1, 2)) - 1).max() > 0.1


def test_modulation_starts_at_one_from_a_zero_bias():
    layer = ModulatedConv2D(4, 3)
    s = np.zeros([2, 5], np.float32)
    layer(np.zeros([2, 4, 4, 3], np.float32), s)
    # The constant 1 lives outside the parameters: weight decay pulls the scale toward 1.
    np.testing.assert_array_equal(layer.affine.bias.numpy(), 0)
    np.testing.assert_array_equal(layer.modulation(s).numpy(), 1)


def test_to_rgb_is_an_undemodulated_1x1_modconv_with_bias():
    rng = np.random.default_rng(3)
    x = rng.normal(size=[2, 4, 4, 8]).astype(np.float32)
    s = rng.normal(size=[2, 5]).astype(np.float32)
    layer = ToRGB()
    layer(x, s)
    randomize(layer, rng)
    assert (layer.filters, layer.kernel_size, layer.demodulate, layer.use_bias) == (
        3,
        1,
        False,
        True,
    )
    np.testing.assert_allclose(layer(x, s).numpy(), per_sample_reference(layer, x, s), atol=ATOL)
    assert ToRGB.from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize("dim_in,dim_out,upsample", [(8, 4, True), (4, 4, False)])
def test_gen_resblk_shapes_rgb_stream_and_gradients(dim_in, dim_out, upsample):
    rng = np.random.default_rng(4)
    x = tf.constant(rng.normal(size=[2, 8, 8, dim_in]).astype(np.float32))
    s = tf.constant(rng.normal(size=[2, 6]).astype(np.float32))
    rgb = tf.constant(rng.normal(size=[2, 8, 8, 3]).astype(np.float32))
    block = GenResBlk(dim_in, dim_out, upsample=upsample)
    size = 16 if upsample else 8
    with tf.GradientTape() as tape:
        h, rgb_out = block(x, s, rgb)
        loss = tf.reduce_sum(h * rng.normal(size=h.shape)) + tf.reduce_sum(rgb_out**2)
    assert h.shape == (2, size, size, dim_out) and rgb_out.shape == (2, size, size, 3)
    # The skip stream: the new RGB is the (bilinearly) upsampled old one plus this block's ToRGB.
    up = tf.image.resize(rgb, [size, size], method="bilinear") if upsample else rgb
    np.testing.assert_allclose(rgb_out - up, block.to_rgb(h, s), atol=ATOL)
    # residual + shortcut, / sqrt(2); an added skip feature (high-pass path) comes after.
    skip = tf.ones_like(h)
    h2, _ = block(x, s, None, skip)
    np.testing.assert_allclose(h2 - h, skip, atol=ATOL)
    sc = block._shortcut(x)
    np.testing.assert_allclose(h * math.sqrt(2) - sc, block._residual(x, s), atol=1e-4)
    grads = tape.gradient(loss, block.trainable_variables)
    affine = [(v.path, g) for v, g in zip(block.trainable_variables, grads) if "affine" in v.path]
    assert len(affine) == 6  # kernel and bias of conv1, conv2 and to_rgb's style affine layers
    for path, g in affine:
        assert g is not None and float(tf.reduce_max(tf.abs(g))) > 0, path
    names = [key for key, _, _ in block.official_weights("decode.0")]
    assert len(names) == len(block.weights) == len(set(names))
    assert ("decode.0.conv1x1.weight" in names) == (dim_in != dim_out)
