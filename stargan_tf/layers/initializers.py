"""Weight initialisers that match the official PyTorch code."""

import keras


def he_normal():
    """Kaiming normal (fan_in, gain sqrt(2)), *untruncated*, as PyTorch's `kaiming_normal_`.

    Keras's `HeNormal` draws from a truncated normal, which has a smaller variance.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal"
    )


def conv2d(filters, kernel_size, use_bias=True, padding="same", name=None):
    """A stride-1 `Conv2D` with the official initialisation (He weights, zero bias).

    Every convolution in the StarGAN v2 networks has stride 1 (downsampling is an average pool),
    so Keras's "same" padding is symmetric here and equals PyTorch's `padding=k // 2`.
    """
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=he_normal(),
        bias_initializer="zeros",
        name=name,
    )


def dense(units, name=None):
    """A `Dense` layer with the official initialisation (He weights, zero bias)."""
    return keras.layers.Dense(
        units, kernel_initializer=he_normal(), bias_initializer="zeros", name=name
    )
