"""Reading PyTorch files (official checkpoints, `.pth` state dicts) safely, as float32 arrays."""

import hashlib
import os
import re

import numpy as np

from stargan_tf.errors import UserError


class ConversionError(UserError):
    """An official checkpoint cannot be read or does not fit the requested config."""


def short_list(items, limit=12):
    items = sorted(items)
    more = f" (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def torch_load(path):
    """`torch.load`s a PyTorch file safely (weights_only=True, onto the CPU).

    Raises:
      ConversionError: torch is missing, the file is missing, a directory, or not a readable
        PyTorch file. The message is one line that says what to do.
    """
    try:
        import torch
    except ImportError:
        raise ConversionError(
            "Reading PyTorch checkpoints needs torch, which is not installed: "
            "pip install 'stargan_tf[torch]' (or pip install torch)."
        ) from None
    if not os.path.exists(path):
        raise ConversionError(f"Checkpoint file not found: {path}")
    if os.path.isdir(path):
        raise ConversionError(f"{path} is a directory; pass the official .ckpt file itself.")
    with open(path, "rb") as f:
        magic = f.read(4)
    # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (protocol byte
    # 0x80).
    if not (magic.startswith(b"PK") or magic[:1] == b"\x80"):
        what = "an empty file" if not magic else "neither a zip archive nor a pickle"
        raise ConversionError(f"{path} is not a PyTorch checkpoint: it is {what}.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for foreign files: report them all alike.
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Weights only load failed" in str(e):
            reason = "it holds Python objects that a safe (weights_only) load refuses to run"
        raise ConversionError(f"{path} is not a readable PyTorch checkpoint ({reason}).") from None


def state_dict_to_numpy(state_dict, path, entry):
    """`{key: np.ndarray}` of a PyTorch state dict, without DataParallel `module.` prefixes."""
    if not isinstance(state_dict, dict):
        raise ConversionError(f"{path}: entry {entry!r} is not a state dict.")
    out = {}
    for key, value in state_dict.items():
        # Files saved from an nn.DataParallel wrapper prefix every key with "module.".
        key = re.sub(r"^(module\.)+", "", key)
        out[key] = value.detach().cpu().float().numpy()
    return out


def load_state_dict(path, what):
    """A PyTorch state dict file -> {key: float32 numpy array}, `num_batches_tracked` dropped.

    Read as `torch_load` reads (tensors and containers only, no code runs). Half-precision files
    are upcast to float32; a `{"state_dict": ...}` wrapper is opened.

    Args:
      path: the file.
      what: what it should be, for messages (e.g. "--inception_weights").

    Raises:
      UserError: the file is missing, unreadable, or torch is not installed.
    """
    if not path or not os.path.isfile(path):
        raise UserError(f"{what}={path} is not a file.")
    state = torch_load(path)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{what}={path} holds a {type(state).__name__}, not a state dict.")
    return {
        key: value
        for key, value in state_dict_to_numpy(state, path, what).items()
        if not key.endswith("num_batches_tracked")
    }


def require(state, keys, path, what, expected):
    """Raises a UserError naming the first missing key, when `state` lacks any of `keys`."""
    missing = [k for k in keys if k not in state]
    if missing:
        raise UserError(
            f"{what}={path} lacks {missing[0]} ({len(missing)} keys missing): expected {expected}."
        )


def sha256(path, chunk=1 << 20):
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def shape_error(path, what, key, got, want):
    """Raises a UserError: a weight of the file has the wrong shape for the network."""
    raise UserError(
        f"{what}={path}: {key} has shape {tuple(np.shape(got))} where the network needs "
        f"{tuple(np.shape(want))} (in the Keras layout): not the expected network's weights."
    )
