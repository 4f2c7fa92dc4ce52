"""Instance normalisation and adaptive instance normalisation (AdaIN), NHWC."""

import contextlib
import threading

import keras
import tensorflow as tf

from stargan_tf.layers import initializers, placement

EPSILON = 1e-5  # PyTorch InstanceNorm2d's default.
_forced = threading.local()  # .float32: inside `float32_statistics()` (this thread's traces)


@contextlib.contextmanager
def float32_statistics():
    """Within it, instance norm accumulates its statistics in float32 on every device.

    For graphs traced for other runtimes (stargan_tf/inference/portable.py): ONNX Runtime has no
    float64 kernel for the spatial mean (GlobalAveragePool) and LiteRT no float64 MEAN among its
    built-in ops. Float32 statistics move the outputs by ~1e-5 (tests/test_parity.py).
    """
    before = getattr(_forced, "float32", False)
    _forced.float32 = True
    try:
        yield
    finally:
        _forced.float32 = before


def statistics_dtype(x):
    """The dtype instance norm accumulates x's statistics in: float64 for float32/float64 x on
    a CPU, else float32 (and float32 everywhere inside `float32_statistics()`).

    The device: `stargan_tf.layers.placement.on_cpu`.
    """
    if x.dtype not in (tf.float32, tf.float64) or getattr(_forced, "float32", False):
        return tf.float32
    return tf.float64 if placement.on_cpu(x) else tf.float32


def instance_normalize(x, epsilon=EPSILON):
    """Normalises each sample and channel over H and W; the result is float32.

    The mean and the (biased) variance of float32 inputs are accumulated in float64 on a CPU, as
    PyTorch's CPU kernels accumulate in double (each row of the map is averaged in float32 first,
    so only the [N, H, 1, C] row means are cast; the backward pass's means likewise), and in
    float32 on a GPU or TPU, as the official code's CUDA kernels do (float64 runs at a fraction
    of the float32 rate on most GPUs). float16/bfloat16 inputs (mixed precision) get float32
    statistics everywhere. See `statistics_dtype`.

    Args:
      x: [N, H, W, C] tensor of any float dtype.
      epsilon: added to the biased variance, as PyTorch does.

    Returns:
      The normalised tensor, in float32 (callers cast back after the affine part, so that
      mixed-precision runs keep the statistics in full precision).
    """
    acc = statistics_dtype(x)

    def spatial_mean(t):  # [N, H, W, C] float32 -> [N, 1, 1, C] float32, accumulated in `acc`
        if acc == tf.float32:
            return tf.reduce_mean(t, axis=[1, 2], keepdims=True)
        # Each row's mean in float32 (W terms: its round-off is that of the final float32
        # result), the mean of the rows in float64: PyTorch's double accumulation at a quarter
        # of the memory traffic of casting the whole map to float64.
        rows = tf.cast(tf.reduce_mean(t, axis=2, keepdims=True), acc)  # [N, H, 1, C]
        return tf.cast(tf.reduce_mean(rows, axis=1, keepdims=True), tf.float32)

    @tf.custom_gradient
    def normalize(x):
        # Centre first and take the variance of the centred values (two passes, no
        # stop_gradient on the mean as in tf.nn.moments).
        xc = x - spatial_mean(x)  # [N, H, W, C]
        inv_std = tf.math.rsqrt(spatial_mean(tf.square(xc)) + epsilon)  # [N, 1, 1, C]
        y = xc * inv_std

        def grad(dy):
            # The closed form of the backward pass (per sample and channel, means over H, W):
            #   dx = (dy - mean(dy) - y * mean(dy * y)) / sqrt(var + eps),
            # its means accumulated as the forward ones: what differentiating the forward ops
            # gives, in ~9 passes over the map instead of autodiff's ~15 (each mean's gradient
            # is a broadcast, casts and sums). Second derivatives (through these ops) hold too:
            # tests/test_layers.py.
            return inv_std * (dy - spatial_mean(dy) - y * spatial_mean(dy * y))

        return y, grad

    return normalize(tf.cast(x, tf.float32))


class InstanceNorm(keras.layers.Layer):
    """`nn.InstanceNorm2d` (no running statistics): optional per-channel affine weight and bias.

    Args:
      affine: learn a per-channel scale (initialised to 1) and shift (initialised to 0).
      epsilon: added to the biased variance.
    """

    def __init__(self, affine=True, epsilon=EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.affine = affine
        self.epsilon = epsilon

    def build(self, input_shape):
        if self.affine:
            channels = input_shape[-1]
            self.gamma = self.add_weight(shape=(channels,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(channels,), initializer="zeros", name="beta")

    def call(self, x):
        h = instance_normalize(x, self.epsilon)
        if self.affine:
            h = h * tf.cast(self.gamma, tf.float32) + tf.cast(self.beta, tf.float32)
        return tf.cast(h, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "affine": self.affine, "epsilon": self.epsilon}


class AdaIN(keras.layers.Layer):
    """Adaptive instance normalisation: `(1 + gamma) * IN(x) + beta`, `[gamma, beta] = fc(s)`.

    Args:
      num_features: channels C of the normalised input.
    """

    def __init__(self, num_features, **kwargs):
        super().__init__(**kwargs)
        self.num_features = num_features
        self.fc = initializers.dense(2 * num_features, name="fc")

    def build(self, x_shape, s_shape):
        # Keras passes one shape per call argument, named after it.
        self.fc.build(s_shape)

    def call(self, x, s):
        h = tf.cast(self.fc(s), tf.float32)[:, None, None, :]  # [N, 1, 1, 2C]
        gamma, beta = tf.split(h, 2, axis=-1)  # [N, 1, 1, C] each
        out = (1.0 + gamma) * instance_normalize(x) + beta
        return tf.cast(out, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "num_features": self.num_features}
