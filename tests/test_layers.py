"""The building blocks against small PyTorch references written from torch.nn primitives.

Each test computes the same thing twice: once with our NHWC Keras layer and once with PyTorch
(NCHW) on identical data and weights, the way the official StarGAN v2 code computes it. Weights
travel PyTorch -> Keras through the blocks' own `official_weights()` lists and `to_keras`, so the
official parameter names and layouts are checked along the way.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
import torch.nn.functional as F
from torch import nn

from stargan_tf.layers import folded_conv, initializers, op_order, patch_conv
from stargan_tf.layers.blocks import AdainResBlk, ResBlk, avg_pool2x, upsample_nearest2x
from stargan_tf.layers.highpass import HighPass
from stargan_tf.layers.normalization import AdaIN, InstanceNorm, instance_normalize
from stargan_tf.perf import flops
from stargan_tf.torch_layout import to_keras

ATOL = 1e-5


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def nchw_to_nhwc(x):
    return np.transpose(x, (0, 2, 3, 1))  # [N, C, H, W] -> [N, H, W, C]


def nhwc_to_nchw(x):
    return np.transpose(x, (0, 3, 1, 2))  # [N, H, W, C] -> [N, C, H, W]


def random_nchw(seed, shape, scale=1.0, shift=0.0):
    """Float32 [N, C, H, W] data, deterministic per seed."""
    rng = np.random.default_rng(seed)
    return (shift + scale * rng.standard_normal(shape)).astype(np.float32)


def assert_close_nchw(keras_out_nhwc, torch_out_nchw, atol=ATOL):
    """Compares a Keras [N, H, W, C] output with a PyTorch [N, C, H, W] one."""
    ours = nhwc_to_nchw(np.asarray(keras_out_nhwc))
    ref = torch_out_nchw.detach().numpy()
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=atol)


@torch.no_grad()
def randomize_(module, seed):
    """Random, moderately scaled parameters so that outputs stay O(1) and atol 1e-5 is fair."""
    torch.manual_seed(seed)
    for name, p in module.named_parameters():
        if p.dim() > 1:  # conv / linear weight: unit-variance outputs
            p.copy_(torch.randn_like(p) / math.sqrt(p[0].numel()))
        elif "norm" in name and name.endswith("weight"):  # affine IN scale around 1
            p.copy_(1.0 + 0.3 * torch.randn_like(p))
        else:  # biases and IN shifts: non-zero, so a dropped bias shows
            p.copy_(0.3 * torch.randn_like(p))


def load_official(block, prefix, torch_module):
    """Copies `torch_module`'s state dict into `block` through `block.official_weights(prefix)`.

    Also checks that the official names cover exactly the reference's parameters and every
    Keras weight of the block (no unnamed or missing weight).
    """
    entries = block.official_weights(prefix)
    state = torch_module.state_dict()
    names = [key for key, _, _ in entries]
    assert all(key.startswith(prefix + ".") for key in names), names
    assert sorted(key[len(prefix) + 1 :] for key in names) == sorted(state)
    assert {id(v) for _, v, _ in entries} == {id(v) for v in block.weights}
    for key, var, layout in entries:
        var.assign(to_keras(state[key[len(prefix) + 1 :]].numpy(), layout))


# Small PyTorch references, written from the structure of the official blocks (core/model.py).


class TorchResBlk(nn.Module):
    """(shortcut + residual) / sqrt(2); IN -> LReLU -> conv -> [pool] -> IN -> LReLU -> conv."""

    def __init__(self, dim_in, dim_out, normalize, downsample):
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else None

    def forward(self, x):
        sc = x if self.conv1x1 is None else self.conv1x1(x)
        sc = F.avg_pool2d(sc, 2) if self.downsample else sc
        h = self.norm1(x) if self.normalize else x
        h = self.conv1(F.leaky_relu(h, 0.2))
        h = F.avg_pool2d(h, 2) if self.downsample else h
        h = self.norm2(h) if self.normalize else h
        h = self.conv2(F.leaky_relu(h, 0.2))
        return (sc + h) / math.sqrt(2)


class TorchAdaIN(nn.Module):
    """(1 + gamma) * IN(x) + beta, with [gamma, beta] = fc(s) split gamma first."""

    def __init__(self, style_dim, num_features):
        super().__init__()
        self.norm = nn.InstanceNorm2d(num_features, affine=False, eps=1e-5)
        self.fc = nn.Linear(style_dim, 2 * num_features)

    def forward(self, x, s):
        gamma, beta = self.fc(s)[:, :, None, None].chunk(2, dim=1)  # [N, C, 1, 1] each
        return (1 + gamma) * self.norm(x) + beta


class TorchAdainResBlk(nn.Module):
    """Residual alone when w_hpf > 0, else (residual + shortcut) / sqrt(2)."""

    def __init__(self, dim_in, dim_out, style_dim, w_hpf, upsample):
        super().__init__()
        self.w_hpf, self.upsample = w_hpf, upsample
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, padding=1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, padding=1)
        self.norm1 = TorchAdaIN(style_dim, dim_in)
        self.norm2 = TorchAdaIN(style_dim, dim_out)
        self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, bias=False) if dim_in != dim_out else None

    def up(self, x):
        return F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x

    def forward(self, x, s):
        h = self.up(F.leaky_relu(self.norm1(x, s), 0.2))
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), s), 0.2))
        if self.w_hpf > 0:
            return h
        sc = self.up(x)
        sc = sc if self.conv1x1 is None else self.conv1x1(sc)
        return (h + sc) / math.sqrt(2)


# ------------------------------------------------------------------------------------------------
# 1. Instance normalisation
# ------------------------------------------------------------------------------------------------


def test_instance_normalize_matches_torch():
    x = random_nchw(0, (2, 6, 8, 8), scale=3.0, shift=2.0)  # [N, C, H, W]
    ref = nn.InstanceNorm2d(6, affine=False, eps=1e-5)(torch.from_numpy(x))
    assert_close_nchw(instance_normalize(tf.constant(nchw_to_nhwc(x))), ref)


@pytest.mark.parametrize("affine", [False, True])
def test_instance_norm_layer_matches_torch(affine):
    x = random_nchw(1, (2, 5, 8, 12), scale=2.0, shift=-1.0)  # [N, C, H, W], non-square
    torch_norm = nn.InstanceNorm2d(5, affine=affine, eps=1e-5)
    if affine:
        torch.manual_seed(1)
        with torch.no_grad():  # defaults (1, 0) would hide a swapped or ignored gamma/beta
            torch_norm.weight.copy_(1.0 + 0.5 * torch.randn(5))
            torch_norm.bias.copy_(0.5 * torch.randn(5))
    layer = InstanceNorm(affine=affine)
    x_nhwc = tf.constant(nchw_to_nhwc(x))  # [N, H, W, C]
    layer(x_nhwc)  # build
    if affine:
        layer.gamma.assign(torch_norm.weight.detach().numpy())
        layer.beta.assign(torch_norm.bias.detach().numpy())
    else:
        assert layer.weights == []
    assert_close_nchw(layer(x_nhwc), torch_norm(torch.from_numpy(x)))


def test_instance_normalize_uses_biased_variance():
    # Few pixels (2x3), so the biased (ddof=0) and unbiased (ddof=1) variances differ by 20%.
    x = nchw_to_nhwc(random_nchw(2, (2, 4, 2, 3), scale=4.0, shift=1.0))  # [N, H, W, C]
    mean = x.mean(axis=(1, 2), keepdims=True)
    biased = (x - mean) / np.sqrt(x.var(axis=(1, 2), ddof=0, keepdims=True) + 1e-5)
    unbiased = (x - mean) / np.sqrt(x.var(axis=(1, 2), ddof=1, keepdims=True) + 1e-5)
    out = np.asarray(instance_normalize(tf.constant(x)))
    np.testing.assert_allclose(out, biased, rtol=0, atol=ATOL)
    assert np.abs(out - unbiased).max() > 0.1


def _normalize_float64(x, eps=1e-5):
    """Instance norm by its definition, differentiated by autodiff, in float64."""
    xc = x - tf.reduce_mean(x, [1, 2], keepdims=True)
    return xc * tf.math.rsqrt(tf.reduce_mean(xc * xc, [1, 2], keepdims=True) + eps)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "tf.function"])
def test_instance_normalize_gradients_are_autodiffs(compiled):
    # instance_normalize has a closed-form backward pass (tf.custom_gradient): its value, its
    # gradient and the gradient of its gradient's norm (second order, as R1 takes) against
    # autodiff of the definition in float64. Measured error (float32 maps, float64 statistics):
    # 7e-8, 1.4e-7, 2.3e-7 relative to the largest element; tolerance 1e-6.
    rng = np.random.default_rng(0)
    x64 = tf.constant(rng.normal(size=(2, 5, 6, 3)) * 3 + 1)  # a mean to cancel, as after a conv
    w64 = tf.constant(rng.normal(size=(2, 5, 6, 3)))

    def value_grad_second(fn, x, w):
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                inner.watch(x)
                loss = tf.reduce_sum(tf.sin(tf.cast(fn(x), x.dtype)) * w)
            g = inner.gradient(loss, x)
            r = tf.reduce_sum(g * g)
        return fn(x), g, outer.gradient(r, x)

    ours = value_grad_second
    if compiled:
        ours = tf.function(value_grad_second)
    got = ours(instance_normalize, tf.cast(x64, tf.float32), tf.cast(w64, tf.float32))
    want = value_grad_second(_normalize_float64, x64, w64)
    for name, a, b in zip(("value", "gradient", "second order"), got, want):
        b = np.asarray(b)
        err = np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max()
        assert err < 1e-6, (name, err)


# Large mean, small spread: statistics computed in 16 bits lose the spread (the mean itself is only
# known to a few units) or overflow (float16 sums of 256 values near 1000 exceed 65504).
LOW_PRECISION = [
    # (input dtype, Keras policy, noise std, tolerance): bfloat16 has 8 significand bits (spacing 4
    # near 1000), float16 has 11 (spacing 0.5); the output is rounded to the compute dtype.
    ("bfloat16", "mixed_bfloat16", 8.0, 2e-2),
    ("float16", "mixed_float16", 1.0, 4e-3),
]


@pytest.mark.parametrize("dtype,policy,noise,tol", LOW_PRECISION)
def test_instance_norm_low_precision_keeps_float32_statistics(dtype, policy, noise, tol):
    x32 = nchw_to_nhwc(random_nchw(3, (2, 4, 16, 16), scale=noise, shift=1000.0))  # [N, H, W, C]
    x = tf.cast(tf.constant(x32), dtype)
    # Reference: the same (rounded) input, normalised entirely in float32.
    ref = np.asarray(instance_normalize(tf.cast(x, tf.float32)))

    # The function itself always returns float32.
    out_fn = instance_normalize(x)
    assert out_fn.dtype == tf.float32
    np.testing.assert_allclose(np.asarray(out_fn), ref, rtol=0, atol=1e-5)

    # The layer returns its compute dtype, with statistics still taken in float32.
    layer = InstanceNorm(affine=True, dtype=policy)
    out = layer(x)
    assert out.dtype == dtype
    assert layer.gamma.dtype == "float32"  # mixed precision keeps float32 variables
    out = np.asarray(tf.cast(out, tf.float32))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol)
    np.testing.assert_allclose(out.var(axis=(1, 2)), 1.0, atol=2e-2)  # unit variance survives
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0.0, atol=2e-2)

    # A float32 layer given a low-precision input computes (and returns) float32.
    assert InstanceNorm(affine=False)(x).dtype == tf.float32


# ------------------------------------------------------------------------------------------------
# 2. AdaIN
# ------------------------------------------------------------------------------------------------


def test_adain_matches_torch():
    n, c, style_dim = 2, 6, 5
    x = random_nchw(4, (n, c, 8, 8), scale=2.0, shift=0.5)  # [N, C, H, W]
    s = np.random.default_rng(5).standard_normal((n, style_dim)).astype(np.float32)  # [N, S]
    ref_layer = TorchAdaIN(style_dim, c)
    randomize_(ref_layer, seed=5)

    layer = AdaIN(c)
    layer(tf.constant(nchw_to_nhwc(x)), tf.constant(s))  # build
    # PyTorch nn.Linear weight [2C, S] -> Keras Dense kernel [S, 2C].
    layer.fc.kernel.assign(to_keras(ref_layer.fc.weight.detach().numpy(), "linear"))
    layer.fc.bias.assign(ref_layer.fc.bias.detach().numpy())
    assert layer.fc.kernel.shape == (style_dim, 2 * c)

    out = layer(tf.constant(nchw_to_nhwc(x)), tf.constant(s))
    assert_close_nchw(out, ref_layer(torch.from_numpy(x), torch.from_numpy(s)))


# ------------------------------------------------------------------------------------------------
# 3. Residual blocks
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim_in,dim_out", [(8, 8), (4, 8)])
@pytest.mark.parametrize("downsample", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_resblk_matches_torch(normalize, downsample, dim_in, dim_out):
    x = random_nchw(6, (2, dim_in, 16, 16))  # [N, C_in, H, W]
    ref_blk = TorchResBlk(dim_in, dim_out, normalize, downsample)
    randomize_(ref_blk, seed=6)

    blk = ResBlk(dim_in, dim_out, normalize=normalize, downsample=downsample)
    x_nhwc = tf.constant(nchw_to_nhwc(x))
    blk(x_nhwc)  # build
    load_official(blk, "encode.0", ref_blk)

    out = blk(x_nhwc)  # [N, H', W', C_out]
    size = 8 if downsample else 16
    assert out.shape == (2, size, size, dim_out)
    assert_close_nchw(out, ref_blk(torch.from_numpy(x)))


@pytest.mark.parametrize("dim_in,dim_out", [(8, 8), (8, 4)])
@pytest.mark.parametrize("upsample", [False, True])
@pytest.mark.parametrize("w_hpf", [0, 1])
def test_adain_resblk_matches_torch(w_hpf, upsample, dim_in, dim_out):
    style_dim = 6
    x = random_nchw(7, (2, dim_in, 8, 8))  # [N, C_in, H, W]
    s = np.random.default_rng(8).standard_normal((2, style_dim)).astype(np.float32)  # [N, S]
    ref_blk = TorchAdainResBlk(dim_in, dim_out, style_dim, w_hpf, upsample)
    randomize_(ref_blk, seed=7)

    blk = AdainResBlk(dim_in, dim_out, w_hpf=w_hpf, upsample=upsample)
    x_nhwc, s_tf = tf.constant(nchw_to_nhwc(x)), tf.constant(s)
    blk(x_nhwc, s_tf)  # build
    load_official(blk, "decode.0", ref_blk)

    out = blk(x_nhwc, s_tf)  # [N, H', W', C_out]
    size = 16 if upsample else 8
    assert out.shape == (2, size, size, dim_out)
    assert_close_nchw(out, ref_blk(torch.from_numpy(x), torch.from_numpy(s)))


def test_adain_resblk_hpf_keeps_unused_shortcut_weights():
    # Official w_hpf > 0 checkpoints still hold decode.*.conv1x1.weight; we must own it to load
    # them, but the output is the residual path alone.
    dim_in, dim_out, style_dim = 8, 4, 6
    x = tf.constant(nchw_to_nhwc(random_nchw(9, (2, dim_in, 8, 8))))  # [N, H, W, C_in]
    s = tf.constant(np.random.default_rng(9).standard_normal((2, style_dim)), tf.float32)
    blk = AdainResBlk(dim_in, dim_out, w_hpf=1, upsample=True)
    out = np.asarray(blk(x, s))

    assert tuple(blk.conv1x1.kernel.shape) == (1, 1, dim_in, dim_out)
    assert "decode.0.conv1x1.weight" in [key for key, _, _ in blk.official_weights("decode.0")]
    np.testing.assert_allclose(out, np.asarray(blk._residual(x, s)), rtol=0, atol=0)

    # Changing the shortcut weights changes nothing.
    blk.conv1x1.kernel.assign(10.0 * np.ones((1, 1, dim_in, dim_out), np.float32))
    np.testing.assert_allclose(np.asarray(blk(x, s)), out, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------------
# 4. High-pass filter
# ------------------------------------------------------------------------------------------------

# Written out here rather than imported, so that a wrong library constant shows.
LAPLACIAN_3X3 = np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], np.float32)


@pytest.mark.parametrize("w_hpf", [1.0, 0.5, 2.0])
def test_highpass_matches_torch(w_hpf):
    c = 5
    x = random_nchw(10, (2, c, 8, 8))  # [N, C, H, W]
    # Depthwise: one [1, 3, 3] filter per channel -> [C, 1, 3, 3].
    weight = (torch.from_numpy(LAPLACIAN_3X3) / w_hpf)[None, None].repeat(c, 1, 1, 1)
    ref = F.conv2d(torch.from_numpy(x), weight, padding=1, groups=c)
    assert_close_nchw(HighPass(w_hpf)(tf.constant(nchw_to_nhwc(x))), ref)


def test_highpass_filter_and_validation():
    np.testing.assert_allclose(HighPass(2.0).filter, LAPLACIAN_3X3 / 2.0, rtol=0, atol=0)
    np.testing.assert_allclose(HighPass(1).filter, LAPLACIAN_3X3, rtol=0, atol=0)
    for bad in (0, 0.0, -1.0):
        with pytest.raises(ValueError):
            HighPass(bad)


# ------------------------------------------------------------------------------------------------
# 5. Resampling
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (2, 3, 5, 7)])  # [N, C, H, W]
def test_upsample_nearest2x_matches_torch(shape):
    x = random_nchw(11, shape)
    ref = F.interpolate(torch.from_numpy(x), scale_factor=2, mode="nearest")
    assert_close_nchw(upsample_nearest2x(tf.constant(nchw_to_nhwc(x))), ref, atol=0)


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (2, 3, 16, 12), (2, 3, 7, 9)])  # [N, C, H, W]
def test_avg_pool2x_matches_torch(shape):
    # Odd sizes too: both drop the last row/column.
    x = random_nchw(12, shape)
    ref = F.avg_pool2d(torch.from_numpy(x), 2)
    assert_close_nchw(avg_pool2x(tf.constant(nchw_to_nhwc(x))), ref, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# 6. Mask resizing (generator, w_hpf > 0)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("src,dst", [(256, 32), (256, 64), (256, 128), (16, 64)])
def test_mask_resize_matches_torch_bilinear(src, dst):
    # The generator resizes face masks as tf.image.resize(..., "bilinear"); the official code uses
    # F.interpolate(mode="bilinear"), whose default is align_corners=False.
    rng = np.random.default_rng(13)
    mask = rng.uniform(0.0, 1.0, (2, 1, src, src)).astype(np.float32)  # [N, 1, H, W] heatmap
    ours = tf.image.resize(tf.constant(nchw_to_nhwc(mask)), [dst, dst], method="bilinear")
    ref = F.interpolate(torch.from_numpy(mask), size=dst, mode="bilinear", align_corners=False)
    assert_close_nchw(ours, ref, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# 7. Initialisation
# ------------------------------------------------------------------------------------------------


def tail_fractions(w, std):
    a = np.abs(np.asarray(w)) / std
    return (a > 2.0).mean(), (a > 2.5).mean()


def test_he_normal_is_untruncated():
    keras.utils.set_random_seed(14)
    shape = (3, 3, 256, 256)  # [kh, kw, in, out]; fan_in = 2304
    std = math.sqrt(2.0 / (3 * 3 * 256))
    w = np.asarray(initializers.he_normal()(shape))
    assert abs(w.std() / std - 1.0) < 0.02
    assert abs(w.mean()) < 0.01 * std
    beyond2, beyond25 = tail_fractions(w, std)
    # Untruncated normal: P(|z| > 2) = 4.55%, P(|z| > 2.5) = 1.24% (sampling error ~0.03%).
    assert 0.043 < beyond2 < 0.048, beyond2
    assert 0.011 < beyond25 < 0.014, beyond25

    # The checks above do tell the two apart: Keras's HeNormal is a normal truncated at two of its
    # own (inflated) standard deviations, i.e. at ~2.27 target stds, so it has no |w| > 2.5 std.
    truncated = np.asarray(keras.initializers.HeNormal(seed=14)(shape))
    t_beyond2, t_beyond25 = tail_fractions(truncated, std)
    assert t_beyond25 == 0.0 and t_beyond2 < 0.04


def test_initial_weights_of_layers():
    keras.utils.set_random_seed(15)
    conv = initializers.conv2d(64, 3, name="c")
    conv.build((None, 8, 8, 32))
    np.testing.assert_array_equal(np.asarray(conv.bias), np.zeros(64, np.float32))
    std = math.sqrt(2.0 / (3 * 3 * 32))
    assert abs(np.asarray(conv.kernel).std() / std - 1.0) < 0.03  # He, fan_in

    no_bias = initializers.conv2d(4, 1, use_bias=False)
    no_bias.build((None, 8, 8, 32))
    assert no_bias.bias is None and len(no_bias.weights) == 1

    dense = initializers.dense(16, name="d")
    dense.build((None, 8))
    np.testing.assert_array_equal(np.asarray(dense.bias), np.zeros(16, np.float32))

    norm = InstanceNorm(affine=True)
    norm.build((None, 8, 8, 6))
    np.testing.assert_array_equal(np.asarray(norm.gamma), np.ones(6, np.float32))
    np.testing.assert_array_equal(np.asarray(norm.beta), np.zeros(6, np.float32))


@pytest.mark.parametrize(
    "device,expected",
    [
        (None, tf.float64),
        ("/CPU:0", tf.float64),
        ("/GPU:0", tf.float32),
        ("/device:TPU:0", tf.float32),
    ],
)
def test_instance_norm_statistics_dtype_follows_the_device(device, expected):
    """float64 statistics where PyTorch's CPU kernels accumulate in double, float32 on an
    accelerator (as the official CUDA kernels): read off the traced graph, so this runs on a
    machine without a GPU (the graph asks for the device; nothing runs there)."""
    from stargan_tf.layers import normalization

    @tf.function
    def normalize(x):
        if device is None:  # no device named: the default (the CPU on this machine)
            return normalization.instance_normalize(x)
        with tf.device(device):
            return normalization.instance_normalize(tf.identity(x))

    graph = normalize.get_concrete_function(tf.TensorSpec([2, 8, 8, 4])).graph
    casts = {op.get_attr("DstT") for op in graph.get_operations() if op.type == "Cast"}
    assert (tf.float64 in casts) == (expected == tf.float64), casts
    assert normalization.statistics_dtype(tf.zeros([1, 2, 2, 1], tf.bfloat16)) == tf.float32


def _official_order(kind, x, kernel, bias):
    if kind == "down":
        return avg_pool2x(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME"), bias))
    return tf.nn.bias_add(tf.nn.conv2d(upsample_nearest2x(x), kernel, 1, "SAME"), bias)


@pytest.mark.parametrize("kind", ["down", "up"])
@pytest.mark.parametrize("shape", [(2, 8, 8, 3, 5), (1, 4, 6, 4, 2), (1, 2, 2, 2, 3)])
def test_folded_resampling_convolutions_are_the_official_order(kind, shape):
    """conv3x3 -> avgpool2 and nearest2x -> conv3x3 as one (transposed) stride-2 4x4 convolution:
    the same values and gradients (x, kernel, bias, and R1's second order through x) in float64,
    where only reassociation separates them (measured <= 4e-15 relative; float32: <= 1.5e-6 at
    16-64 px, 256-512 channels)."""
    n, h, w, c_in, c_out = shape
    rng = np.random.default_rng(sum(shape))
    x = tf.constant(rng.normal(size=(n, h, w, c_in)))
    kernel = tf.Variable(rng.normal(size=(3, 3, c_in, c_out)))
    bias = tf.Variable(rng.normal(size=(c_out,)))
    side = (h // 2, w // 2) if kind == "down" else (2 * h, 2 * w)
    out_weights = tf.constant(rng.normal(size=(n, *side, c_out)))
    fold = folded_conv.conv_avg_pool if kind == "down" else folded_conv.upsample_conv
    results = []
    for f in (fold, lambda *args: _official_order(kind, *args)):
        with tf.GradientTape() as outer:
            with tf.GradientTape(persistent=True) as inner:
                inner.watch(x)
                y = f(x, kernel, bias)
                loss = tf.reduce_sum(y * out_weights)
            dx = inner.gradient(loss, x)
            r1 = tf.reduce_sum(tf.square(dx))
        d_kernel, d_bias = inner.gradient(loss, [kernel, bias])
        results.append([y, dx, d_kernel, d_bias, outer.gradient(r1, kernel)])
    names = ("y", "dL/dx", "dL/dkernel", "dL/dbias", "dR1/dkernel")
    for ours, official, name in zip(*results, names):
        np.testing.assert_allclose(
            ours.numpy(), official.numpy(), rtol=1e-12, atol=1e-12, err_msg=name
        )


@pytest.mark.parametrize("kind", ["down", "up"])
def test_folded_resampling_convolutions_take_unknown_sizes(kind):
    """Traced with unknown batch and spatial sizes (as SavedModel signatures are), the static
    channel count survives and the values are those of known sizes."""
    fold = folded_conv.conv_avg_pool if kind == "down" else folded_conv.upsample_conv
    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 4)), tf.float32)
    traced = tf.function(
        lambda x: fold(x, kernel), input_signature=[tf.TensorSpec([None, None, None, 3])]
    )
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 8, 6, 3)), tf.float32)
    y = traced(x)
    side = (4, 3) if kind == "down" else (16, 12)
    assert traced.get_concrete_function().structured_outputs.shape[-1] == 4
    assert y.shape == (2, *side, 4)
    np.testing.assert_allclose(y.numpy(), fold(x, kernel).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("block", ["ResBlk/down", "AdainResBlk/up"])
def test_blocks_in_the_official_order_of_ops(block):
    """Inside op_order.official() a block traces the official code's ops (conv3x3 -> avgpool2,
    nearest2x -> conv3x3, the shortcut's 1x1 convolution on the large grid): the same values
    as our order in float64 (reassociation alone: <= 1e-12), with the official FLOPs, which
    tools/benchmark.py reports as model FLOPs."""
    n, h, c_in, c_out = 2, 8, 4, 6
    rng = np.random.default_rng(7)
    x = tf.constant(rng.normal(size=(n, h, h, c_in)))
    s = tf.constant(rng.normal(size=(n, 5)))
    keras.mixed_precision.set_dtype_policy("float64")
    try:
        if block == "ResBlk/down":
            layer = ResBlk(c_in, c_out, downsample=True)
            call = lambda x: layer(x)  # noqa: E731
        else:
            layer = AdainResBlk(c_in, c_out, upsample=True)
            call = lambda x: layer(x, s)  # noqa: E731
        call(x)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    ours = tf.function(call)
    with op_order.official():
        official = tf.function(call)
        y_official = official(x)
        counted_official = flops.count_function_flops(official, x)
    assert not op_order.is_official()
    np.testing.assert_allclose(ours(x).numpy(), y_official.numpy(), rtol=1e-12, atol=1e-12)
    # Forward conv FLOPs, 2 per multiply-add: conv1 + conv2 + the shortcut's 1x1 convolution.
    big, small = n * h * h, n * (h // 2) ** 2
    # ResBlk's conv1 is c_in -> c_in: 9 taps on the large grid, folded 16 on the small.
    if block == "ResBlk/down":
        official_flops = 2 * (big * c_in * 9 * c_in + small * c_out * 9 * c_in + big * c_out * c_in)
        our_flops = 2 * (small * c_in * 16 * c_in + small * c_out * 9 * c_in + small * c_out * c_in)
    else:  # x is the small grid here; the output 4x its pixels
        big, small = n * (2 * h) ** 2, n * h * h
        official_flops = 2 * (big * c_out * 9 * c_in + big * c_out * 9 * c_out + big * c_out * c_in)
        our_flops = 2 * (small * c_in * 16 * c_out + big * c_out * 9 * c_out + small * c_out * c_in)
    assert counted_official["conv"] == official_flops
    assert flops.count_function_flops(ours, x)["conv"] == our_flops


# ------------------------------------------------------------------------------------------------
# 6. Convolutions as a matmul over patches (small, wide maps on the CPU)
# ------------------------------------------------------------------------------------------------


def _patch_and_tf_nn(kind):
    """(ours by patches, tf.nn's op) for one kind of convolution: f(x, kernel)."""
    if kind == "3x3":
        return patch_conv.conv2d_by_patches, lambda x, k: tf.nn.conv2d(x, k, 1, "SAME")
    if kind == "4x4/2":
        return (
            lambda x, k: patch_conv.conv2d_by_patches(x, k, stride=2),
            lambda x, k: tf.nn.conv2d(x, k, 2, "SAME"),
        )

    def transposed(x, k):
        n, h, w, _ = x.shape
        return tf.nn.conv2d_transpose(x, k, [n, 2 * h, 2 * w, k.shape[2]], 2, "SAME")

    return patch_conv.conv2d_transpose_2x_by_patches, transposed


@pytest.mark.parametrize("kind", ["3x3", "4x4/2", "transposed"])
def test_patch_convolutions_are_tf_nn_convolutions(kind):
    """The matmul-over-patches forms give tf.nn's values and gradients (x, kernel, and R1's second
    order through x) in float64, where only reassociation separates them (measured <= 3e-15
    relative)."""
    rng = np.random.default_rng(len(kind))
    x = tf.constant(rng.normal(size=(2, 6, 4, 3)))
    kernel_shape = {"3x3": (3, 3, 3, 5), "4x4/2": (4, 4, 3, 5), "transposed": (4, 4, 5, 3)}[kind]
    kernel = tf.Variable(rng.normal(size=kernel_shape))
    results = []
    for f in _patch_and_tf_nn(kind):
        with tf.GradientTape() as outer:
            with tf.GradientTape(persistent=True) as inner:
                inner.watch(x)
                y = f(x, kernel)
                loss = tf.reduce_sum(y * tf.sin(y))  # dy depends on y: a real second order
            dx = inner.gradient(loss, x)
            r1 = tf.reduce_sum(tf.square(dx))
        results.append([y, dx, inner.gradient(loss, kernel), outer.gradient(r1, kernel)])
    for ours, reference, name in zip(*results, ("y", "dL/dx", "dL/dkernel", "dR1/dkernel")):
        np.testing.assert_allclose(
            ours.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12, err_msg=name
        )


def test_patch_path_is_chosen_for_few_pixels_wide_kernels_float32_cpu():
    wide = (3, 3, 512, 512)
    assert patch_conv.use_patches(256, wide, tf.float32, cpu=True)  # 16x16 at batch 1
    assert patch_conv.use_patches(1024, (4, 4, 512, 512), tf.float32, cpu=True)  # the limit
    assert not patch_conv.use_patches(2048, wide, tf.float32, cpu=True)  # many pixels
    assert not patch_conv.use_patches(None, wide, tf.float32, cpu=True)  # unknown batch
    assert not patch_conv.use_patches(256, (3, 3, 256, 256), tf.float32, cpu=True)  # narrow
    assert not patch_conv.use_patches(256, wide, tf.bfloat16, cpu=True)
    assert not patch_conv.use_patches(256, wide, tf.float32, cpu=False)  # a GPU's or TPU's op
    with tf.device("/CPU:0"):
        x = tf.zeros([2, 32, 32, 512])
    assert patch_conv.applies(x, (4, 4, 512, 512), stride=2)  # 2 x 16 x 16 out
    assert not patch_conv.applies(x, wide)  # 2 x 32 x 32 out
    assert not patch_conv.applies(x, wide, dtype=tf.bfloat16)  # the layer's compute dtype


def _extracts_patches(f, *args):
    graph = tf.function(f).get_concrete_function(*args).graph
    return any(op.type == "ExtractImagePatches" for op in graph.get_operations())


@pytest.mark.parametrize("block", ["ResBlk", "ResBlk/down", "AdainResBlk/up"])
def test_blocks_on_small_wide_maps_take_the_patch_path_with_float32_accuracy(block, monkeypatch):
    """A 512-channel block at batch 1 on a 16x16 map runs its convolutions by patches (on the CPU);
    its output and the gradients of x and of every kernel are about as close to a float64 run of
    the same weights as the same block's float32 run with tf.nn's convolutions (the patch path
    switched off), measured in the same test. Bound: 3x that error; the ratio measured
    0.26-1.57 over the three blocks, 20 values and five kernel settings (default,
    ONEDNN_MAX_CPU_ISA=AVX2 and SSE41, TF_ENABLE_ONEDNN_OPTS=0, TF_NUM_INTRAOP_THREADS=1; one
    process each)."""
    rng = np.random.default_rng(5)
    style = tf.constant(rng.normal(size=(1, 8)), tf.float32)

    def make(dtype, x):
        # The blocks' sublayers follow the global policy, not the block's dtype.
        keras.config.set_dtype_policy(dtype)
        try:
            if block.startswith("ResBlk"):
                layer = ResBlk(512, 512, downsample=block.endswith("down"))
                call = layer
            else:
                layer = AdainResBlk(512, 512, upsample=True)
                call = lambda x: layer(x, tf.cast(style, dtype))  # noqa: E731
            call(x)  # build
        finally:
            keras.config.set_dtype_policy("float32")
        return layer, call

    x64 = tf.constant(rng.normal(size=(1, 16, 16, 512)))
    x32 = tf.cast(x64, tf.float32)
    blk32, call32 = make("float32", x32)
    blk64, call64 = make("float64", x64)
    for w32, w64 in zip(blk32.weights, blk64.weights):
        w64.assign(tf.cast(w32, tf.float64) + tf.cast(rng.normal(size=w32.shape) * 0.01, w64.dtype))
        w32.assign(tf.cast(w64, tf.float32))

    def run(call, x, blk):
        kernels = [v for v in blk.trainable_variables if len(v.shape) == 4]
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_mean(tf.sin(call(x)))
        grads = tape.gradient(loss, [x, *kernels])
        return [tf.cast(t, tf.float64) for t in [call(x), *grads]]

    with tf.device("/CPU:0"):
        assert _extracts_patches(call32, x32)
        reference = run(call64, x64, blk64)
        patches = run(call32, x32, blk32)
        monkeypatch.setattr(patch_conv, "use_patches", lambda *args: False)
        assert not _extracts_patches(call32, x32)
        tf_nn = run(call32, x32, blk32)
    names = ["y", "dL/dx"] + [
        f"dL/d{v.path}" for v in blk32.trainable_variables if len(v.shape) == 4
    ]
    for name, ref, ours, theirs in zip(names, reference, patches, tf_nn):
        scale = float(tf.reduce_max(tf.abs(ref)))
        err_ours = float(tf.reduce_max(tf.abs(ours - ref))) / scale
        err_tf_nn = float(tf.reduce_max(tf.abs(theirs - ref))) / scale
        assert err_ours <= 3 * err_tf_nn, (name, err_ours, err_tf_nn)
