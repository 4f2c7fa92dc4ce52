"""stargan_tf: StarGAN v2 in TensorFlow 2 / Keras 3.

The public names are imported lazily, so that command-line tools can check their inputs and fail
fast, with one line, before TensorFlow loads.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ModelConfig": "stargan_tf.config",
    "Generator": "stargan_tf.networks",
    "MappingNetwork": "stargan_tf.networks",
    "StyleEncoder": "stargan_tf.networks",
    "Discriminator": "stargan_tf.networks",
    "Networks": "stargan_tf.networks",
    "build_networks": "stargan_tf.networks",
    "official_variable_map": "stargan_tf.networks",
    "load_networks": "stargan_tf.checkpoint",
    "save_networks": "stargan_tf.checkpoint",
    "ConversionError": "stargan_tf.official_checkpoint",
    "convert_official_checkpoint": "stargan_tf.official_checkpoint",
    "FAN": "stargan_tf.networks.fan",
    "convert_official_fan": "stargan_tf.official_fan",
    "translate": "stargan_tf.inference.translation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stargan_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
