"""Which order the residual blocks trace their linear ops in: ours (the default) or the official.

Ours folds each 3x3 convolution into the 2x resampling beside it (stargan_tf/layers/folded_conv.py),
resamples the shortcut on the side where its 1x1 convolution sees fewer pixels, and runs small,
wide maps' convolutions as matmuls (stargan_tf/layers/patch_conv.py). The official order is the
PyTorch code's: conv3x3 -> avgpool2 and nearest2x -> conv3x3, the shortcut's 1x1 convolution on
the large grid, every convolution a convolution. Both are the same maps of the same weights; the
official order does 36/16 of the folded convolutions' arithmetic.

`official()` is for counting the model's FLOPs as the official code does them (tools/benchmark.py's
utilization in model FLOPs) and for tests that compare the two orders. It is read when a function
is traced, so trace a fresh tf.function inside it; functions traced outside keep our order.
"""

import contextlib

_official = False


@contextlib.contextmanager
def official():
    """Within this context, blocks trace the official order of ops."""
    global _official
    before, _official = _official, True
    try:
        yield
    finally:
        _official = before


def is_official():
    """True inside `official()`."""
    return _official
