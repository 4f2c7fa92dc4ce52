"""A 3x3 convolution and the 2x resampling beside it, as one convolution on the small grid.

The blocks of StarGAN v2 run a stride-1 3x3 convolution (padding 1) on the large grid of a
resampling step: ResBlk convolves and then average-pools 2x2; AdainResBlk upsamples (nearest
neighbour) and then convolves. Both are linear, so each pair is one convolution whose kernel is
the 3x3 kernel convolved with the 2x2 box:

  conv3x3 -> avgpool2  ==  conv4x4, stride 2, padding 1, kernel box(K) / 4
  nearest2 -> conv3x3  ==  transposed conv4x4, stride 2, padding 1, kernel flip(box(K))

where box(K)[i, j] = sum of K[i - a, j - b] over a, b in {0, 1} (4x4 from 3x3). Per output pixel
the folded form multiplies 16 input taps instead of 9 taps at 4 output pixels, so these
convolutions need 16/36 of the FLOPs of the official order (forward and both gradients), and no
pooling or upsampled tensor is made. The values differ from the official order's by float32
rounding alone (the sums are reassociated): tests/test_layers.py checks both forms against each
other, and the parity tests against the official code's outputs and gradients.

The layers keep their 3x3 kernels (and official names): the 4x4 kernel is made from it in every
call, which costs a few element-wise ops on the weights.
"""

import tensorflow as tf

from stargan_tf.layers import patch_conv


def box_kernel(kernel):
    """[3, 3, I, O] -> [4, 4, I, O]: the kernel convolved with a 2x2 box of ones."""
    pad = lambda top, left: tf.pad(  # noqa: E731
        kernel, [[top, 1 - top], [left, 1 - left], [0, 0], [0, 0]]
    )
    return pad(0, 0) + pad(1, 0) + pad(0, 1) + pad(1, 1)


def conv_avg_pool(x, kernel, bias=None):
    """avgpool2x2(conv3x3(x, kernel, padding 1) + bias) as one strided convolution.

    Args:
      x: [N, H, W, I] with H and W even.
      kernel: [3, 3, I, O] (a Keras Conv2D's kernel).
      bias: [O] or None.

    Returns:
      [N, H/2, W/2, O].
    """
    k4 = box_kernel(tf.cast(kernel, x.dtype)) * tf.constant(0.25, x.dtype)
    # "SAME" pads a 4x4, stride-2 kernel on an even side by 1 on each side.
    y = patch_conv.conv2d(x, k4, stride=2)
    return y if bias is None else tf.nn.bias_add(y, tf.cast(bias, x.dtype))


def upsample_conv(x, kernel, bias=None):
    """conv3x3(nearest2x(x), kernel, padding 1) + bias as one transposed convolution.

    Args:
      x: [N, H, W, I].
      kernel: [3, 3, I, O] (a Keras Conv2D's kernel).
      bias: [O] or None.

    Returns:
      [N, 2H, 2W, O].
    """
    # A transposed convolution scatters input (i, j) to outputs 2i + r - 1 (r in 0..3): the
    # upsample-then-convolve weight of that pair is box(K) read backwards, in/out swapped.
    k4 = tf.reverse(box_kernel(tf.cast(kernel, x.dtype)), axis=[0, 1])
    k4 = tf.transpose(k4, [0, 1, 3, 2])  # [4, 4, O, I], as conv2d_transpose wants
    y = patch_conv.conv2d_transpose_2x(x, k4)
    return y if bias is None else tf.nn.bias_add(y, tf.cast(bias, x.dtype))
