"""Reading published PyTorch weight files (`.pth`, `.ckpt` state dicts) as float32 numpy arrays."""

import hashlib
import os

import numpy as np

from stargan_tf.errors import UserError

TORCH_MISSING = (
    "Reading PyTorch weight files needs torch: pip install 'stargan_tf[torch]' (or the CPU "
    "wheel: pip install torch --index-url https://download.pytorch.org/whl/cpu)."
)


def load_state_dict(path, what):
    """A PyTorch state dict file -> {key: float32 numpy array}, `num_batches_tracked` dropped.

    Read with `torch.load(weights_only=True)` (tensors and containers only, no code runs).
    Half-precision files are upcast to float32.

    Args:
      path: the file.
      what: what it should be, for messages (e.g. "--inception_weights").

    Raises:
      UserError: the file is missing, unreadable, or torch is not installed.
    """
    if not path or not os.path.isfile(path):
        raise UserError(f"{what}={path} is not a file.")
    try:
        import torch  # An optional extra, only for reading weight files.
    except ImportError:
        raise UserError(TORCH_MISSING) from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several kinds (pickle, zip, unsupported global...).
        raise UserError(f"{what}={path} is not a readable PyTorch state dict: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{what}={path} holds a {type(state).__name__}, not a state dict.")
    return {
        key.removeprefix("module."): value.detach().to(torch.float32).numpy()
        for key, value in state.items()
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
