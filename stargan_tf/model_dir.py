"""Saving and loading networks: a model directory holding `config.json` and TF checkpoints.

Layout of a model directory (written by the converter; training writes the same)::

    DIR/config.json            {"format": "stargan_tf", "version": 1, "model": {...}, "source": ...}
    DIR/MODEL_CARD.md          what the model is, how it was made, its license (model_card.py)
    DIR/checkpoints/checkpoint tf.train.CheckpointManager's index of checkpoints
    DIR/checkpoints/ckpt-<step>.index, .data-*
    DIR/mean_styles/<key>.npz  the mean style of each domain (ψ truncation), per weights

A checkpoint is a `tf.train.Checkpoint` whose children are `step` and `nets` (generator,
mapping_network, style_encoder, discriminator) and/or `nets_ema` (the EMA copies of G, F, E), and,
for w_hpf > 0 models, `fan` (the frozen FAN that makes the generator's masks, official key names).
"""

import json
import os
import re

import tensorflow as tf
from absl import logging

from stargan_tf import model_card
from stargan_tf.config import ModelConfig
from stargan_tf.errors import UserError
from stargan_tf.files import write_text_atomic
from stargan_tf.networks import Networks, build_networks
from stargan_tf.networks.fan import build_fan

CONFIG_FILE = "config.json"
CHECKPOINT_SUBDIR = "checkpoints"
FORMAT = "stargan_tf"
VERSION = 1
# tf.train.CheckpointManager's default name; every checkpoint is `<dir>/ckpt-<step>.index|data-*`.
CHECKPOINT_PREFIX = "ckpt"
INDEX_RE = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)\.index$")
# What a save killed part-way leaves: TensorFlow writes the shards under `<prefix>-N_temp*/`.
TEMP_RE = re.compile(rf"^{CHECKPOINT_PREFIX}-\d+_temp")
SLOTS = ("nets", "nets_ema", "fan")
# The mean style of each domain (for ψ truncation), cached per weights
# (stargan_tf.inference.mean_style).
MEAN_STYLES_SUBDIR = "mean_styles"


class ModelDirError(UserError):
    """A model directory is missing, incomplete or not ours."""


def write_json_atomic(path, obj):
    """Writes JSON to path atomically (see `stargan_tf.files.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def checkpoint_dir(directory):
    """Where a model directory keeps its checkpoints."""
    return os.path.join(directory, CHECKPOINT_SUBDIR)


def checkpoint_prefix(ckpt_dir, step):
    """The path prefix of checkpoint `step` in a checkpoint directory."""
    return os.path.join(ckpt_dir, f"{CHECKPOINT_PREFIX}-{step}")


def checkpoint_step(path):
    """The step of a checkpoint path prefix (`.../<prefix>-<step>`), or None."""
    m = INDEX_RE.match(os.path.basename(path) + ".index") if path else None
    return int(m.group(1)) if m else None


def checkpoint_files(ckpt_dir, step):
    """Names of the files of checkpoint `step` in a checkpoint directory: index and data shards."""
    base = os.path.basename(checkpoint_prefix(ckpt_dir, step))
    return [
        name
        for name in tf.io.gfile.listdir(ckpt_dir)
        if name == base + ".index" or name.startswith(base + ".data-")
    ]


def checkpoint_path(directory, step=None):
    """The checkpoint prefix of `step` (None: the latest) in a model directory, or None."""
    ckpt_dir = checkpoint_dir(directory)
    if step is None:
        return tf.train.latest_checkpoint(ckpt_dir)
    path = checkpoint_prefix(ckpt_dir, step)
    return path if tf.io.gfile.exists(path + ".index") else None


def latest_step(directory):
    """The step of a model directory's latest checkpoint, or None without one."""
    return checkpoint_step(checkpoint_path(directory))


def mean_styles_path(directory, key):
    """The cache file of the mean styles of weights with fingerprint `key`."""
    return os.path.join(directory, MEAN_STYLES_SUBDIR, f"{key}.npz")


def read_meta(directory):
    """The config.json of a model directory, as a dict."""
    with open(os.path.join(directory, CONFIG_FILE)) as f:
        return json.load(f)


def write_meta(directory, meta):
    """Writes a model directory's config.json (atomically)."""
    write_json_atomic(os.path.join(directory, CONFIG_FILE), meta)


def nets_checkpoint(networks: Networks):
    """A tf.train.Checkpoint node holding the networks present in `networks`.

    Each network's variables are keyed by their official parameter names
    (`generator/decode.0.conv1.weight`, values in Keras layouts). Keras 3 keeps lists of layers in
    its own tracker, which tf.train.Checkpoint does not follow; naming every variable explicitly
    also keeps checkpoints readable across refactors of the Keras structure.
    """
    nodes = {}
    for name, net in networks.items():
        variables = {key: var for key, var, _ in net.official_weights()}
        if len(variables) != len(net.weights):
            raise AssertionError(f"{name}: {len(net.weights)} weights but {len(variables)} named.")
        nodes[name] = tf.train.Checkpoint(**variables)
    return tf.train.Checkpoint(**nodes)


def fan_checkpoint(fan):
    """A tf.train.Checkpoint node holding the FAN's weights, keyed by their official names."""
    return tf.train.Checkpoint(**{key: var for key, var, _ in fan.official_weights()})


def save_networks(networks: Networks, directory, step=0, ema=True, source=None):
    """Writes `networks` and their config to a model directory (see the module docstring).

    Args:
      networks: the networks to save.
      directory: the model directory; created if missing.
      step: the training step the weights belong to (names the checkpoint).
      ema: store them as the EMA networks (`nets_ema`) or as the trained ones (`nets`).
      source: JSON-serialisable provenance (e.g. the converted file), kept in config.json.

    Returns:
      The checkpoint path prefix written.
    """
    os.makedirs(directory, exist_ok=True)
    slot = "nets_ema" if ema else "nets"
    nodes = {slot: nets_checkpoint(networks)}
    if networks.fan is not None:  # the FAN of w_hpf > 0 models travels with them
        nodes["fan"] = fan_checkpoint(networks.fan)
    root = tf.train.Checkpoint(step=tf.Variable(step, dtype=tf.int64), **nodes)
    manager = tf.train.CheckpointManager(
        root, checkpoint_dir(directory), max_to_keep=None, checkpoint_name=CHECKPOINT_PREFIX
    )
    # The checkpoint is complete (index and data) before CheckpointManager records it as latest;
    # the config is written last, atomically, so a directory with a config is a usable one.
    path = manager.save(checkpoint_number=step)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": networks.config.to_dict(),
        "source": source,
    }
    write_meta(directory, meta)
    model_card.write_card(directory, meta)  # what the weights are, how made, their license
    return path


def read_model_config(directory) -> ModelConfig:
    """Reads the ModelConfig of a model directory."""
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isdir(directory):
        raise ModelDirError(f"Model directory {directory} does not exist.")
    if not os.path.exists(path):
        raise ModelDirError(
            f"{directory} is not a stargan_tf model directory: it has no {CONFIG_FILE} "
            "(convert an official checkpoint with stargan-tf-convert, or train one)."
        )
    try:
        with open(path) as f:
            meta = json.load(f)
        if meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format')!r}, expected {FORMAT!r}")
        return ModelConfig.from_dict(meta["model"])
    except (ValueError, KeyError, TypeError) as e:
        raise ModelDirError(f"{path} is not a valid stargan_tf config: {e}") from None


def slots(path):
    """Which of SLOTS (trained networks, EMA networks, FAN) the checkpoint at `path` holds."""
    names = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
    return {slot for slot in SLOTS if slot in names}


def load_networks(directory, ema=None, step=None) -> Networks:
    """Loads the networks of a model directory.

    Args:
      directory: a model directory (written by the converter or by training).
      ema: True for the EMA networks, False for the trained ones, None for the EMA networks when
        the checkpoint has them (the ones to sample and export), else the trained ones.
      step: the checkpoint step to load; None = the latest.

    Returns:
      Networks; `discriminator` is set only when loading the trained networks; `fan` when the
      model has w_hpf > 0 and the checkpoint holds the FAN (training and converting store it).
    """
    config = read_model_config(directory)
    path = checkpoint_path(directory, step)
    if path is None:
        which = "any checkpoint" if step is None else f"a checkpoint of step {step}"
        raise ModelDirError(f"{checkpoint_dir(directory)} holds no {which}.")
    held = slots(path)
    if ema is None:
        ema = "nets_ema" in held
    slot = "nets_ema" if ema else "nets"
    if slot not in held:
        raise ModelDirError(f"{path} holds no {'EMA' if ema else 'trained'} networks ({slot}).")
    fan = build_fan() if config.w_hpf > 0 and "fan" in held else None
    networks = build_networks(config, discriminator=not ema, fan=fan)
    nodes = {slot: nets_checkpoint(networks)}
    if fan is not None:
        nodes["fan"] = fan_checkpoint(fan)
    root = tf.train.Checkpoint(**nodes)
    # expect_partial: the file may also hold optimizers and the other set of networks.
    root.read(path).assert_existing_objects_matched().expect_partial()
    logging.info(
        "Loaded %s networks%s from %s.",
        "EMA" if ema else "trained",
        " and the FAN" if networks.fan is not None else "",
        path,
    )
    return networks


def export_card(directory, step, ema):
    """The model card of an export of model directory `directory` at `step` (None: its latest)."""
    if step is None:  # the latest checkpoint, as loading took it
        step = latest_step(directory)
    return model_card.card_text(
        read_meta(directory),
        exported_from={"directory": os.path.abspath(directory), "step": step, "ema": ema},
    )
