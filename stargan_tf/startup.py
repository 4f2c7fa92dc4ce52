"""Quiet start-up of TensorFlow in the command-line tools.

TensorFlow prints C++ log lines when it loads and when it looks for GPUs: on a CPU machine
`oneDNN custom operations are on`, `cudart_stub.cc: Could not find cuda drivers`, the AVX
`cpu_feature_guard` note and `E... failed call to cuInit: ... UNKNOWN ERROR (303)`, which reads like
a failure. TF_CPP_MIN_LOG_LEVEL=2 hides C++ INFO and WARNING lines, but TensorFlow >= 2.20 writes
the first ones before its logging reads that variable. So the tools load TensorFlow with stderr
(file descriptor 2) caught in a temporary file, look for GPUs, and then pass on every caught line
except that known start-up noise; a CPU-only machine gets one INFO line saying so instead.

Nothing is hidden when the user set TF_CPP_MIN_LOG_LEVEL themselves or runs with --verbosity=1
(or higher); C++ ERROR lines other than the cuInit one of a machine without a GPU always show.
"""

import contextlib
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_LEVEL = "2"  # C++ INFO and WARNING off; ERROR and FATAL still show.
NO_GPU_MESSAGE = "No GPU found: running on the CPU."

# C++ log lines look like `I0000 00:00:1796341111.522913    3942 port.cc:153] text`.
_CPP_LINE = r"\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] "
_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rf"|[IW]{_CPP_LINE}.*"  # INFO and WARNING: what TF_CPP_MIN_LOG_LEVEL=2 would hide
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate "
    r"compiler flags\.)\s*$"
)
_CUINIT = re.compile(rf"^E{_CPP_LINE}.*failed call to cuInit\b")


def is_noise(line, gpu_found):
    """Whether `line`, written to stderr while TensorFlow loaded, is start-up noise."""
    return bool(_NOISE.match(line)) or (not gpu_found and bool(_CUINIT.match(line)))


@contextlib.contextmanager
def _caught_stderr(state):
    """Catches what anything (C++ included) writes to file descriptor 2; on exit, writes the
    lines that are not noise to the real stderr (`state["gpu_found"]` tells about cuInit)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            text = caught.read().decode(errors="replace")
            kept = [
                line
                for line in text.splitlines(keepends=True)
                if not is_noise(line, state.get("gpu_found", False))
            ]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def _verbose():
    from absl import flags

    return flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].value >= 1


class _QuietLoader(importlib.abc.Loader):
    """Loads the `tensorflow` package through its own loader, with the noise filtered."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader  # the module keeps its own
        if _verbose():
            self.loader.exec_module(module)
            return
        os.environ.setdefault(ENV, QUIET_LEVEL)
        state = {}
        with _caught_stderr(state):
            self.loader.exec_module(module)
            # Looking for GPUs is where cuInit complains; it does not fix the logical devices.
            state["gpu_found"] = bool(module.config.list_physical_devices("GPU"))
        if not state["gpu_found"]:
            from absl import logging

            logging.info(NO_GPU_MESSAGE)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` the usual way and hands it to `_QuietLoader` (once)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow():
    """Makes the first `import tensorflow` of this process quiet (see the module docstring).

    Does nothing when TensorFlow is already imported or the user set TF_CPP_MIN_LOG_LEVEL."""
    if "tensorflow" in sys.modules or ENV in os.environ:
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
