"""stargan_tf: StarGAN v2 in TensorFlow 2 / Keras 3.

The package is built in layers; a module imports only from its own layer or the ones below it
(tests/test_layout.py checks this, and that no imports form a cycle):

  0. base: errors, files, config, losses, startup, recipes, torch_layout, model_card
  1. layers/      Keras layers (convolution blocks, AdaIN, modulated convolutions)
  2. networks/    G, F, E, D and the FAN, built from a ModelConfig
  3. data/        images into tf.data: folders, TFRecord splits, TFDS, augmentation, demo data
  4. model_dir    the one owner of a model directory's layout (config.json, checkpoints)
  5. official/    reading the official PyTorch files and converting them into our networks
  6. inference/   translating, sampling, serving: what runs a trained model
  7. metrics/     FID and LPIPS by the official protocol
  8. training/    the training loop, its checkpoints and recovery; perf/ (FLOP counts, timing)
  9. the commands: cli (shared flags, errors) and the entry points train, sample, translate,
     export, evaluate, convert, align, make_tfrecords, demo, app

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
    "load_networks": "stargan_tf.model_dir",
    "save_networks": "stargan_tf.model_dir",
    "ConversionError": "stargan_tf.official.checkpoint",
    "convert_official_checkpoint": "stargan_tf.official.checkpoint",
    "FAN": "stargan_tf.networks.fan",
    "convert_official_fan": "stargan_tf.official.fan",
    "translate": "stargan_tf.inference.translation",
}

__all__ = sorted(_EXPORTS)

# The layers of the docstring, lowest first: module name prefixes.
LAYERS = (
    (
        "stargan_tf.errors",
        "stargan_tf.files",
        "stargan_tf.config",
        "stargan_tf.losses",
        "stargan_tf.startup",
        "stargan_tf.recipes",
        "stargan_tf.torch_layout",
        "stargan_tf.model_card",
    ),
    ("stargan_tf.layers",),
    ("stargan_tf.networks",),
    ("stargan_tf.data",),
    ("stargan_tf.model_dir",),
    ("stargan_tf.official",),
    ("stargan_tf.inference",),
    ("stargan_tf.metrics",),
    ("stargan_tf.training", "stargan_tf.perf"),
    (
        "stargan_tf.cli",
        "stargan_tf.train",
        "stargan_tf.sample",
        "stargan_tf.translate",
        "stargan_tf.export",
        "stargan_tf.evaluate",
        "stargan_tf.convert",
        "stargan_tf.align",
        "stargan_tf.make_tfrecords",
        "stargan_tf.demo",
        "stargan_tf.app",
    ),
)


def layer_of(module):
    """The layer (index into LAYERS) of a module of this package, or None; the package is 0."""
    if module == "stargan_tf":
        return 0
    for i, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return i
    return None


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'stargan_tf' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
