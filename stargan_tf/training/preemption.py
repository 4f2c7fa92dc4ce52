"""Stopping a run cleanly on SIGTERM/SIGINT: finish the iteration in flight, save, exit 42.

The signal handler only records the request. The trainer feeds it into every iteration, where it
rides the all-reduce of the iteration's metrics: each worker learns, at the same step, that some
worker was signalled, so all of them take part in the same checkpoint save (a collective under
MultiWorkerMirroredStrategy) and exit together. TF's PreemptionCheckpointHandler does the same
agreement through the coordination service, but it owns its own CheckpointManager and run counter
and restores on construction; our checkpoints are numbered by step and resume the data stream
from the step, so the flag is carried by the step we already run.
"""

import signal
import threading

from absl import logging

# TensorFlow's convention (PreemptionCheckpointHandler's default exit code, and what cluster
# managers such as Kubernetes restart policies are configured with): "preempted, restart me".
PREEMPTED_EXIT_CODE = 42


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint at `step`."""

    def __init__(self, step, signal_name):
        super().__init__(
            f"stopped on {signal_name} at step {step}; a checkpoint of step {step} "
            "was saved, and running the same command again resumes from it."
        )
        self.step = step
        self.signal_name = signal_name


class StopRequest:
    """Records SIGTERM/SIGINT while installed (a context manager); a second SIGINT aborts at once.

    Handlers are installed only from the main thread (Python's rule); elsewhere it records nothing.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    @property
    def requested(self):
        return self.signal_name is not None

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait
        self.signal_name = name
        logging.warning(
            "%s received: finishing this iteration, then saving a checkpoint and "
            "exiting with status %d.",
            name,
            PREEMPTED_EXIT_CODE,
        )

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        return False
