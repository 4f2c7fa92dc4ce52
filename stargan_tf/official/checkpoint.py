"""Importing the official PyTorch StarGAN v2 checkpoints (clovaai/stargan-v2).

The official files (`{step:06d}_nets_ema.ckpt`, `{step:06d}_nets.ckpt`) are `torch.save` of
`{"generator": state_dict, "mapping_network": ..., "style_encoder": ..., ["discriminator": ...],
["fan": ...]}`. They are read with `torch.load(weights_only=True)` (a checkpoint is a pickle:
nothing in it may run code) onto the CPU (the published files were saved from GPUs); the model
config is inferred from the tensor shapes; PyTorch layouts are transposed to Keras ones.
"""

import math
import re

import numpy as np
from absl import logging

from stargan_tf.config import MODEL_FIELDS, ModelConfig
from stargan_tf.official.torch_files import (
    ConversionError,
    short_list,
    state_dict_to_numpy,
    torch_load,
)
from stargan_tf.torch_layout import LAPLACIAN, NETWORK_NAMES, official_shape, to_keras

# This module imports TensorFlow only when it builds networks (inside functions), so that a bad
# file is reported in one line before TensorFlow loads and logs.
REQUIRED = ("generator", "mapping_network", "style_encoder")


def read_official_checkpoint(path):
    """Reads an official checkpoint into `{network: {key: np.ndarray}}`.

    Args:
      path: the official `*_nets_ema.ckpt` or `*_nets.ckpt`; its `fan` entry (the FAN of
        w_hpf > 0 models), when present, is read as the network `fan`.

    Raises:
      ConversionError: torch is missing, the file is missing, not a PyTorch checkpoint, or not a
        StarGAN v2 checkpoint. The message is one line that says what to do.
    """
    obj = torch_load(path)
    if not isinstance(obj, dict) or not any(k in obj for k in NETWORK_NAMES):
        found = short_list(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError(
            f"{path} is a PyTorch file but not a StarGAN v2 checkpoint: expected the entries "
            f"{', '.join(REQUIRED)} [, discriminator, fan], found {found or 'nothing'}."
        )
    unknown = set(obj) - set(NETWORK_NAMES) - {"fan"}
    missing = set(REQUIRED) - set(obj)
    if unknown or missing:
        parts = []
        if missing:
            parts.append(f"missing entries: {short_list(missing)}")
        if unknown:
            parts.append(f"unknown entries: {short_list(map(str, unknown))}")
        raise ConversionError(f"{path} is not a StarGAN v2 checkpoint ({'; '.join(parts)}).")
    state = {net: state_dict_to_numpy(obj[net], path, net) for net in NETWORK_NAMES if net in obj}
    if "fan" in obj:
        state["fan"] = state_dict_to_numpy(obj["fan"], path, "fan")
    return state


def _count(keys, pattern):
    """1 + the largest integer captured by `pattern` among keys, or 0."""
    found = [int(m.group(1)) for k in keys if (m := re.fullmatch(pattern, k))]
    return max(found) + 1 if found else 0


def infer_model_config(state, path="checkpoint"):
    """Infers the ModelConfig fields from the tensor shapes of an official state dict.

    Returns:
      A dict of ModelConfig fields, without domain_names.
    """
    g, f, e = state["generator"], state["mapping_network"], state["style_encoder"]

    def need(net, sd, key):
        if key not in sd:
            raise ConversionError(
                f"{path}: {net}/{key} is missing; is this a StarGAN v2 checkpoint?"
            )
        return sd[key].shape

    latent_dim = need("mapping_network", f, "shared.0.weight")[1]
    num_domains = _count(f, r"unshared\.(\d+)\.0\.weight")
    style_dim = need("mapping_network", f, "unshared.0.6.weight")[0]
    dim_in = need("generator", g, "from_rgb.weight")[0]
    # E (and D): log2(img_size) - 2 downsampling ResBlks at shared.1 ... shared.R.
    num_blocks_e = _count(e, r"shared\.(\d+)\.conv1\.weight") - 1
    img_size = 2 ** (num_blocks_e + 2)
    # G: log2(img_size) - 4 down/up blocks, + 1 with the high-pass path, + 2 bottleneck blocks.
    repeat_num = _count(g, r"encode\.(\d+)\.conv1\.weight") - 2
    extra = repeat_num - (int(math.log2(img_size)) - 4)
    if extra not in (0, 1):
        raise ConversionError(
            f"{path}: the generator has {repeat_num + 2} encoder blocks, which fits no generator "
            f"for img_size={img_size} (the style encoder has {num_blocks_e} blocks)."
        )
    if "hpf.filter" in g:
        center = float(g["hpf.filter"][1, 1])
        w_hpf = 8.0 / center
        if extra != 1 or not np.allclose(g["hpf.filter"], LAPLACIAN / w_hpf, rtol=1e-5):
            raise ConversionError(
                f"{path}: generator/hpf.filter is not the official high-pass filter."
            )
    else:
        w_hpf = 1.0 if extra == 1 else 0.0
    # Channels grow min(2 * c, max_conv_dim) per block; find the cap from the widest block.
    widths = [
        need("style_encoder", e, f"shared.{i}.conv2.weight")[0] for i in range(1, num_blocks_e + 1)
    ]
    uncapped = [dim_in * 2 ** (i + 1) for i in range(num_blocks_e)]
    max_conv_dim = 512 if widths == [min(u, 512) for u in uncapped] else max(widths)
    return dict(
        img_size=int(img_size),
        style_dim=int(style_dim),
        latent_dim=int(latent_dim),
        num_domains=int(num_domains),
        max_conv_dim=int(max_conv_dim),
        w_hpf=float(w_hpf),
        dim_in=None if dim_in == 2**14 // img_size else int(dim_in),
        decoder="adain",  # the only decoder of the official code
    )


def resolve_config(state, path="checkpoint", domain_names=None, **overrides):
    """The ModelConfig of an official state dict: inferred values, then the stated ones.

    A stated w_hpf that contradicts a `hpf.filter` stored in the file is an error; other stated
    values that contradict the file surface when the weights are loaded (naming the tensor).
    """
    unknown = set(overrides) - set(MODEL_FIELDS)
    if unknown:
        raise ConversionError(f"Unknown config fields: {short_list(unknown)}.")
    inferred = infer_model_config(state, path)
    stated = {k: v for k, v in overrides.items() if v is not None}
    if stated.get("decoder", "adain") != "adain":
        raise ConversionError(
            f"decoder={stated['decoder']} was given, but official checkpoints hold the AdaIN "
            "decoder (there are no official modconv weights); drop the flag or use --decoder=adain."
        )
    if (
        "w_hpf" in stated
        and "hpf.filter" in state["generator"]
        and stated["w_hpf"] != inferred["w_hpf"]
    ):
        raise ConversionError(
            f"w_hpf={stated['w_hpf']} was given, but generator/hpf.filter in {path} holds the "
            "filter "
            f"of w_hpf={inferred['w_hpf']:g}; drop the flag."
        )
    if isinstance(domain_names, str):
        domain_names = [n.strip() for n in domain_names.split(",") if n.strip()]
    fields = {**inferred, **stated, "domain_names": tuple(domain_names or ())}
    try:
        return ModelConfig(**fields), inferred
    except ValueError as e:
        raise ConversionError(f"{path}: {e}") from None


def load_official_state(networks, state, path="checkpoint"):
    """Assigns official state-dict tensors to the matching variables of `networks`.

    Raises:
      ConversionError: keys missing from or unknown to the networks (listed), or a tensor whose
        shape differs from the variable's (named, with both shapes in PyTorch layout).
    """
    from stargan_tf.networks import official_weights

    expected = {(net, key): (var, layout) for net, key, var, layout in official_weights(networks)}
    present = {
        (net, key) for net, sd in state.items() if net != "fan" for key in sd if key != "hpf.filter"
    }
    missing = {f"{n}/{k}" for n, k in set(expected) - present}
    unknown = {f"{n}/{k}" for n, k in present - set(expected)}
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing keys: {short_list(missing)}")
        if unknown:
            parts.append(f"unknown keys: {short_list(unknown)}")
        raise ConversionError(
            f"{path} does not fit the model config {_describe(networks.config)}: "
            f"{'; '.join(parts)}."
        )
    for (net, key), (var, layout) in expected.items():
        value = state[net][key]
        want = official_shape(var.shape, layout)
        if tuple(value.shape) != want:
            raise ConversionError(
                f"{path}: {net}/{key} has shape {tuple(value.shape)}, but the model config "
                f"{_describe(networks.config)} needs {want}."
            )
        var.assign(to_keras(value, layout).astype(var.dtype))


def _describe(config):
    return "(" + ", ".join(f"{k}={getattr(config, k)}" for k in MODEL_FIELDS) + ")"


def convert_official_checkpoint(path, domain_names=None, **overrides):
    """Converts an official `*_nets_ema.ckpt` or `*_nets.ckpt` into our networks.

    Args:
      path: the official checkpoint file.
      domain_names: names of the domains in id order (list or comma-separated string); the
        official files store none. CelebA-HQ: female,male; AFHQ: cat,dog,wild. Default domain0, ...
      **overrides: ModelConfig fields to state rather than infer (img_size, style_dim, latent_dim,
        num_domains, max_conv_dim, w_hpf, dim_in); None means infer. A value that contradicts the
        file is an error naming the tensor and both shapes.

    Returns:
      Networks with the converted weights; `discriminator` is None when the file has none; `fan`
      holds the converted FAN when the file has one and w_hpf > 0.
    """
    state = read_official_checkpoint(path)
    config, _ = resolve_config(state, path, domain_names, **overrides)
    return networks_from_state(state, config, path)


def networks_from_state(state, config, path="checkpoint", fan=None):
    """Builds the networks of `config` and loads an official state dict into them (and its `fan`
    entry into `networks.fan` when w_hpf > 0; else `fan`, e.g. from wing.ckpt)."""
    from stargan_tf.networks import build_networks
    from stargan_tf.official.fan import fan_from_state

    if config.decoder != "adain":
        raise ConversionError(
            f"{path}: official checkpoints hold the AdaIN decoder and cannot fill a "
            f"decoder={config.decoder} model; build the config with decoder='adain'."
        )
    if "fan" in state and config.w_hpf > 0:
        fan = fan_from_state(state["fan"], f"{path} (entry 'fan')")
    networks = build_networks(config, discriminator="discriminator" in state, fan=fan)
    load_official_state(networks, state, path)
    if "fan" in state and config.w_hpf == 0:
        logging.warning(
            "%s holds a 'fan' entry (the face-landmark network for w_hpf > 0); it is "
            "skipped: this model has w_hpf = 0 and uses no masks.",
            path,
        )
    return networks
