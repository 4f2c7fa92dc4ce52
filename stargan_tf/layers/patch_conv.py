"""Convolutions on small maps as one matmul over the input's patches (im2col), where that is faster.

At batch 1 the official networks' inner blocks run 3x3 (and folded 4x4, stride-2) convolutions
with 512 channels on 16x16 and 32x32 maps. oneDNN's direct convolution then reads a 9.4 MB
kernel for a few hundred output pixels and reaches 75-130 GFLOP/s on a 2-core AVX-512 machine,
while the same product as one matmul, [pixels, taps x in] x [taps x in, out], runs at 190-260:
forward and both gradients of the 16x16 one took 18.7 ms against 28.2 ms
(tools/benchmark.py --conv_floor has the per-shape numbers of an iteration). The advantage is
gone at about a thousand output pixels (a batch of 4 at 16x16 is even) and on narrow layers, and
on a GPU or TPU the vendor's kernels are the right ones, so `use_patches` picks this path only for
float32 ops placed on a CPU, for wide kernels on few pixels; everything else is tf.nn's op, as
before. (Under XLA the patches compile to a grouped convolution: not measured, and no recipe
compiles on a CPU.)

The backward passes reuse the forward's patches (kept until the backward pass: 9x, for the 4x4
ones 4x, the input of a few hundred pixels, under 5 MB a layer): the kernel gradient is
patches^T x dy (one matmul), the input gradient is TensorFlow's own transposed convolution
(oneDNN's; it runs at ~170 GFLOP/s on these shapes, the forward at ~110); the transposed
convolution of the upsampling blocks keeps its forward op and gets its two gradients from the
patches of dy the same way. R1's second order (through the input gradient, a transposed
convolution of the convolutions by patches) flows through those ops. The values are the
convolution's with the sums in another order, float32 rounding alone: tests/test_layers.py
compares them with tf.nn's in float64 and per 512-channel block in float32 (the official parity
fixtures' networks are too narrow to take this path).
"""

import tensorflow as tf

from stargan_tf.layers import placement

# Measured (forward + both gradients, time against tf.nn's op; 2-core AVX-512, TF 2.21; scratch
# script timing 20 calls of each traced function after 2 untimed): 3x3 512 -> 512 at batch 1 on
# 16x16 0.66x, on 32x32 0.78x, on 8x8 0.71x; at batch 4 on 8x8 0.83x, on 16x16 1.03x (the
# crossover); 3x3 256 -> 512 on 32x32 0.86x, 256 -> 256 on 32x32 1.06x (narrow: no gain); folded
# 4x4 stride 2, 512 -> 512 from 32x32 0.65x, from 16x16 0.62x, from 4x32x32 0.80x; 3x3 128 ->
# 256 on 64x64 1.24x (many pixels: slower).
# The transposed convolution was not timed alone: the iteration's before/after (README) covers it.
_MAX_PIXELS = 1024  # batch x output pixels (for a transposed convolution: input pixels)
_MIN_CHANNEL_PRODUCT = 256 * 512  # in x out channels; the demo's (64 at most) keep tf.nn's ops


def use_patches(pixels, kernel_shape, dtype, cpu):
    """Whether a convolution with `pixels` (static batch x output pixels, or None) and this kernel,
    computing in `dtype` on a CPU (`cpu`) or not, runs faster as a matmul over patches."""
    in_ch, out_ch = kernel_shape[-2], kernel_shape[-1]
    return (
        cpu
        and pixels is not None
        and dtype == tf.float32
        and in_ch is not None
        and out_ch is not None
        and in_ch * out_ch >= _MIN_CHANNEL_PRODUCT
        and pixels <= _MAX_PIXELS
    )


def applies(x, kernel_shape, dtype=None, stride=1):
    """`use_patches` for a "SAME" convolution of x (its static shape and placement) by this
    kernel, in `dtype` (default x's)."""
    n, h, w = x.shape[0], x.shape[1], x.shape[2]
    pixels = None if None in (n, h, w) else n * -(-h // stride) * -(-w // stride)
    return use_patches(pixels, kernel_shape, dtype or x.dtype, placement.on_cpu(x))


def _patches(x, kh, kw, stride):
    """[N, H, W, C] -> [N * Ho * Wo, kh * kw * C], "SAME" padding, taps in kernel order."""
    cols = tf.image.extract_patches(
        x, sizes=[1, kh, kw, 1], strides=[1, stride, stride, 1], rates=[1, 1, 1, 1], padding="SAME"
    )
    return tf.reshape(cols, [-1, cols.shape[-1]])


def conv2d(x, kernel, stride=1):
    """tf.nn.conv2d(x, kernel, stride, "SAME"); by `conv2d_by_patches` where `applies` says.

    Args:
      x: [N, H, W, I].
      kernel: [kh, kw, I, O].
      stride: 1 or 2.

    Returns:
      [N, ceil(H / stride), ceil(W / stride), O].
    """
    if applies(x, kernel.shape, stride=stride):
        return conv2d_by_patches(x, kernel, stride)
    return tf.nn.conv2d(x, kernel, strides=stride, padding="SAME")


def conv2d_by_patches(x, kernel, stride=1):
    """tf.nn.conv2d(x, kernel, stride, "SAME") as one matmul over x's patches, for any dtype;
    x's and the kernel's shapes must be static. The kernel gradient is patches^T x dy, the input
    gradient tf.nn's transposed convolution of dy (oneDNN's Conv2DBackpropInput)."""
    kernel = tf.convert_to_tensor(kernel)
    kh, kw, _, out_ch = kernel.shape
    n, h, w, _ = x.shape
    out_shape = [n, -(-h // stride), -(-w // stride), out_ch]

    @tf.custom_gradient
    def conv(x, kernel):
        cols = _patches(x, kh, kw, stride)  # [N * Ho * Wo, kh * kw * I]
        y = tf.reshape(tf.matmul(cols, tf.reshape(kernel, [-1, out_ch])), out_shape)

        def grad(dy):
            dy_rows = tf.reshape(dy, [-1, out_ch])
            d_kernel = tf.reshape(tf.matmul(cols, dy_rows, transpose_a=True), kernel.shape)
            d_x = tf.nn.conv2d_transpose(dy, kernel, x.shape, strides=stride, padding="SAME")
            return d_x, d_kernel

        return y, grad

    return conv(x, kernel)


def conv2d_transpose_2x(x, kernel):
    """tf.nn.conv2d_transpose(x, kernel, [N, 2H, 2W, O], 2, "SAME") for a [4, 4, O, I] kernel;
    its gradients by `conv2d_transpose_2x_by_patches` where `use_patches` says (the pixels: x's,
    those of the stride-2 convolutions of dy in the gradients). Unknown batch and spatial sizes
    are fine."""
    h, w = x.shape[1], x.shape[2]
    out_ch = kernel.shape[2]
    # Stride 1 over x: the pixels of x, as many as dy's stride-2 patches in the gradients.
    if applies(x, (4, 4, out_ch, x.shape[3])):
        return conv2d_transpose_2x_by_patches(x, kernel)
    # Static 2H and 2W where they are known: the LiteRT converter needs them to lower what follows.
    side = lambda i: 2 * x.shape[i] if x.shape[i] is not None else 2 * tf.shape(x)[i]  # noqa: E731
    out_size = tf.stack([tf.shape(x)[0], side(1), side(2), tf.shape(kernel)[2]])
    y = tf.nn.conv2d_transpose(x, kernel, out_size, strides=2, padding="SAME")
    twice = lambda d: None if d is None else 2 * d  # noqa: E731
    return tf.ensure_shape(y, [None, twice(h), twice(w), out_ch])


def conv2d_transpose_2x_by_patches(x, kernel):
    """conv2d_transpose_2x with static shapes, for any dtype, its gradients by patches: the forward
    is tf.nn's op (it is not the slow part); the input gradient is dy's 4x4 stride-2 patches x
    kernel (the convolution this one transposes), the kernel gradient those patches^T x x."""
    kernel = tf.convert_to_tensor(kernel)
    n, h, w, in_ch = x.shape
    out_shape = [n, 2 * h, 2 * w, kernel.shape[2]]

    @tf.custom_gradient
    def conv_t(x, kernel):
        y = tf.nn.conv2d_transpose(x, kernel, out_shape, strides=2, padding="SAME")

        def grad(dy):
            cols = _patches(dy, 4, 4, 2)  # [N * H * W, 16 * O]
            d_x = tf.reshape(tf.matmul(cols, tf.reshape(kernel, [-1, in_ch])), x.shape)
            x_rows = tf.reshape(x, [-1, in_ch])
            d_kernel = tf.reshape(tf.matmul(cols, x_rows, transpose_a=True), kernel.shape)
            return d_x, d_kernel

        return y, grad

    return conv_t(x, kernel)
