"""Where a tensor's op runs, for the choices that depend on it (instance norm's statistics dtype,
convolutions by patches)."""

import tensorflow as tf


def on_cpu(x):
    """Whether x's op runs on a CPU.

    The device is the one x's op was placed on or asked for (`tf.device` scopes, e.g. a replica's
    under tf.distribute); where none is named, the default one: a GPU or TPU if this process has
    one, else the CPU.
    """
    device = (getattr(x, "device", "") or "").upper()
    if device:
        return ":CPU:" in device or device.startswith("CPU:") or device.endswith("/CPU")
    return not (tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
