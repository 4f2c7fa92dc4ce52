"""Importing the official FAN face-landmark weights (`wing.ckpt`, or the `fan` entry of an official
CelebA-HQ checkpoint) into `stargan_tf.networks.fan.FAN`.

`wing.ckpt` is `torch.save({"state_dict": state_dict})` of the official `FAN(num_modules=1,
end_relu=False, num_landmarks=98)`; it is read like the network checkpoints (weights_only=True, on
the CPU). As the official loader does, keys the network does not have are ignored; unlike it, a
key the network needs and the file lacks is an error (the official loader keeps random weights).
"""

from absl import logging

from stargan_tf.official.torch_files import (
    ConversionError,
    short_list,
    state_dict_to_numpy,
    torch_load,
)
from stargan_tf.torch_layout import official_shape, to_keras

WING_HELP = (
    "wing.ckpt comes with the official StarGAN v2 repository: bash download.sh wing "
    "(it saves expr/checkpoints/wing.ckpt and celeba_lm_mean.npz)"
)
# BatchNorm counters: no counterpart in inference.
IGNORED_SUFFIXES = (".num_batches_tracked",)


def read_official_fan(path):
    """Reads `wing.ckpt` into `{key: np.ndarray}` (also accepts a bare state dict)."""
    obj = torch_load(path)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not any(str(k).endswith("l0.weight") for k in obj):
        found = short_list(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ConversionError(
            f"{path} is not the FAN weights (wing.ckpt): expected {{'state_dict': ...}} with keys "
            f"such as conv1.conv.weight and l0.weight, found {found or 'nothing'}. {WING_HELP}."
        )
    return state_dict_to_numpy(obj, path, "state_dict")


def load_fan_state(fan, state, path="wing.ckpt"):
    """Assigns official FAN state-dict tensors to the variables of `fan`.

    Raises:
      ConversionError: a key the network needs is missing (listed), or a tensor has another shape
        than its variable (named, with both shapes in PyTorch layout).
    """
    expected = {key: (var, layout) for key, var, layout in fan.official_weights()}
    present = {k for k in state if not k.endswith(IGNORED_SUFFIXES)}
    missing = set(expected) - present
    if missing:
        raise ConversionError(
            f"{path} does not hold a 98-landmark FAN: missing keys: "
            f"{short_list(missing)}. {WING_HELP}."
        )
    unknown = present - set(expected)
    if unknown:
        logging.info(
            "%s: %d keys the FAN does not use were ignored (%s).",
            path,
            len(unknown),
            short_list(unknown),
        )
    for key, (var, layout) in expected.items():
        value = state[key]
        want = official_shape(var.shape, layout)
        if tuple(value.shape) != want:
            raise ConversionError(
                f"{path}: {key} has shape {tuple(value.shape)}, but the FAN needs {want}."
            )
        var.assign(to_keras(value, layout).astype("float32"))


def fan_from_state(state, path="wing.ckpt"):
    """Builds a FAN and loads an official FAN state dict into it."""
    from stargan_tf.networks.fan import build_fan

    l0 = state.get("l0.weight")
    fan = build_fan(num_landmarks=98 if l0 is None else int(l0.shape[0]) - 1)
    load_fan_state(fan, state, path)
    return fan


def convert_official_fan(path):
    """Converts the official FAN weights (`wing.ckpt`) into a frozen Keras FAN.

    Args:
      path: the official `wing.ckpt`.

    Returns:
      A `FAN`; `fan.get_heatmap(x)` gives the two high-pass masks of images x in [-1, 1].

    Raises:
      ConversionError: the file is missing, not a PyTorch file, or not the FAN weights.
    """
    return fan_from_state(read_official_fan(path), path)
