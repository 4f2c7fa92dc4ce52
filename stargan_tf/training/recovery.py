"""Finding the checkpoint to resume from after a crash: the newest one that loads.

TensorFlow writes a checkpoint's shards under `ckpt-N_temp/`, merges them into `ckpt-N.index` and
`ckpt-N.data-*`, and only then rewrites the `checkpoint` state file (atomically) to name it: a
save killed part-way never becomes "latest". What a crash can still leave: the temp directory, a
half-merged `ckpt-N` that the state file does not name, or (disk trouble, a copy gone wrong) a
named checkpoint whose files are damaged. The trainer tries the candidates newest first; the
damaged ones are moved aside into `corrupt/`, never deleted.
"""

import fcntl
import os
import re
import time

import tensorflow as tf
from absl import logging

from stargan_tf.errors import UserError, describe

INDEX_RE = re.compile(r"^ckpt-(\d+)\.index$")
CORRUPT_SUBDIR = "corrupt"
LOCK_FILE = ".lock"
# What reading a damaged checkpoint raises: TF errors (DataLoss, NotFound, ...), the reader's
# IndexError ("Read less bytes than requested") on a torn file, assertion/value errors on a
# checkpoint that does not match the networks.
LOAD_ERRORS = (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError, OSError)


def prefix(directory, step):
    return os.path.join(directory, f"ckpt-{step}")


def candidate_steps(directory):
    """Steps of the checkpoints in `directory`, newest first: those the state file names and any
    complete-looking `ckpt-N.index` beside them (a save killed before the state file was
    rewritten; loading it decides whether it is whole)."""
    steps = set()
    if not tf.io.gfile.isdir(directory):
        return []
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception as e:  # noqa: BLE001 - a garbled state file is one of the faults handled
        logging.warning("The checkpoint state file in %s does not parse (%s); looking for "
                        "checkpoint files instead.", directory, e)
        state = None
    if state is not None:
        for path in list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]:
            m = INDEX_RE.match(os.path.basename(path) + ".index")
            if m:
                steps.add(int(m.group(1)))
    for name in tf.io.gfile.listdir(directory):
        m = INDEX_RE.match(name)
        if m:
            steps.add(int(m.group(1)))
    return sorted(steps, reverse=True)


def remove_partial_writes(directory):
    """Deletes what killed saves leave behind: `ckpt-N_temp*` shard directories."""
    if not tf.io.gfile.isdir(directory):
        return
    for name in tf.io.gfile.listdir(directory):
        if re.match(r"^ckpt-\d+_temp", name.rstrip("/")):
            path = os.path.join(directory, name.rstrip("/"))
            logging.info("Removing %s, left by a checkpoint save that did not finish.", path)
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)


def quarantine(directory, step):
    """Moves the files of checkpoint `step` into `directory/corrupt/` (kept for inspection)."""
    dest = os.path.join(directory, CORRUPT_SUBDIR)
    tf.io.gfile.makedirs(dest)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = f"ckpt-{step}"
    for name in tf.io.gfile.listdir(directory):
        if name == base + ".index" or name.startswith(base + ".data-"):
            tf.io.gfile.rename(os.path.join(directory, name),
                               os.path.join(dest, f"{name}.{stamp}"), overwrite=True)
    return dest


def rewrite_state(directory, steps):
    """Points the state file at the checkpoints of `steps` (oldest first; the last is latest)."""
    paths = [prefix(directory, s) for s in steps]
    tf.compat.v1.train.update_checkpoint_state(directory, paths[-1], all_model_checkpoint_paths=paths)


def restore_newest_valid(checkpoint, directory, chief=True):
    """Restores `checkpoint` from the newest checkpoint in `directory` that loads.

    Damaged newer ones are logged and (on the chief) moved aside, and the state file rewritten
    to name only the loadable ones. Returns the step restored, or None when there is none.

    Raises:
      UserError: checkpoints exist but none of them loads.
    """
    steps = candidate_steps(directory)
    failed = []
    for step in steps:
        path = prefix(directory, step)
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except LOAD_ERRORS as e:
            reason = describe(e)
            logging.warning("Checkpoint %s does not load (%s); trying the one before it.", path,
                            reason)
            failed.append((step, reason))
            continue
        if failed and chief:
            for bad, _ in failed:
                dest = quarantine(directory, bad)
            logging.warning("Resuming from step %d; the damaged checkpoint(s) of step %s were "
                            "moved to %s.", step, ", ".join(str(b) for b, _ in failed), dest)
            rewrite_state(directory, sorted(s for s in steps if s <= step))
        return step
    if failed:
        raise UserError(f"No checkpoint in {directory} loads ({'; '.join(f'ckpt-{s}: {r}' for s, r in failed)}). "
                        "Restore them from a backup, or move the directory away to start afresh.")
    return None


class WorkdirLock:
    """An exclusive lock on a run directory, so two runs never write into one (released by the
    kernel when the process dies, even by kill -9)."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(f"--workdir={os.path.dirname(self.path)} is in use by a running "
                            f"training (pid {holder}); wait for it to end, or use another --workdir.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


__all__ = ["candidate_steps", "remove_partial_writes", "quarantine", "rewrite_state",
           "restore_newest_valid", "WorkdirLock"]
