"""Finding the checkpoint to resume from after a crash: the newest one that loads.

TensorFlow writes a checkpoint's shards under a temporary directory, merges them into the
checkpoint's `.index` and `.data-*` files (names: `stargan_tf.model_dir`), and only then rewrites
the `checkpoint` state file (atomically) to name it: a save killed part-way never becomes
"latest". What a crash can still leave: the temp directory, a half-merged checkpoint that the
state file does not name, or (disk trouble, a copy gone wrong) a
named checkpoint whose files are damaged. The trainer tries the candidates newest first; the
damaged ones are moved aside into `corrupt/`, never deleted.

`CheckpointSaver` replaces `tf.train.CheckpointManager` for saving: the manager deletes the
oldest checkpoint *before* it rewrites the state file without it, so a kill in between leaves a
state file naming files that are gone (seen in the kill -9 trials). Here the state file is
rewritten first, then the old files go; a kill in between leaves only unnamed old files, which
the next save removes.
"""

import os
import time

import tensorflow as tf
from absl import logging

from stargan_tf.errors import UserError, describe
from stargan_tf.model_dir import (
    INDEX_RE,
    TEMP_RE,
    checkpoint_files,
    checkpoint_prefix,
    checkpoint_step,
)

CORRUPT_SUBDIR = "corrupt"
LOCK_FILE = ".lock"
# What reading a damaged checkpoint raises: TF errors (DataLoss, NotFound, ...), the reader's
# IndexError ("Read less bytes than requested") on a torn file, assertion/value errors on a
# checkpoint that does not match the networks.
LOAD_ERRORS = (tf.errors.OpError, AssertionError, ValueError, IndexError, KeyError, OSError)


def prefix(directory, step):
    return checkpoint_prefix(directory, step)


def candidate_steps(directory):
    """Steps of the checkpoints in `directory`, in the order to try them: any complete-looking
    checkpoint index newer than the state file's latest (a save killed before the state file was
    rewritten; loading it decides whether it is whole), then the state file's checkpoints, latest
    first, then other older files."""
    if not tf.io.gfile.isdir(directory):
        return []
    named = named_steps(directory, warn=True)
    files = set()
    for name in tf.io.gfile.listdir(directory):
        m = INDEX_RE.match(name)
        if m:
            files.add(int(m.group(1)))
    latest = named[-1] if named else -1
    unnamed = sorted(files - set(named), reverse=True)
    return [s for s in unnamed if s > latest] + named[::-1] + [s for s in unnamed if s < latest]


def remove_partial_writes(directory):
    """Deletes what killed saves leave behind: temporary shard directories (`TEMP_RE`)."""
    if not tf.io.gfile.isdir(directory):
        return
    for name in tf.io.gfile.listdir(directory):
        if TEMP_RE.match(name.rstrip("/")):
            path = os.path.join(directory, name.rstrip("/"))
            logging.info("Removing %s, left by a checkpoint save that did not finish.", path)
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)


def _files_of(directory, step):
    """Names of the files of checkpoint `step` in `directory`: its index and data shards."""
    return checkpoint_files(directory, step)


def quarantine(directory, step):
    """Moves the files of checkpoint `step` into `directory/corrupt/` (kept for inspection)."""
    dest = os.path.join(directory, CORRUPT_SUBDIR)
    tf.io.gfile.makedirs(dest)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for name in _files_of(directory, step):
        tf.io.gfile.rename(
            os.path.join(directory, name), os.path.join(dest, f"{name}.{stamp}"), overwrite=True
        )
    return dest


def rewrite_state(directory, steps):
    """Points the state file (rewritten atomically) at the checkpoints of `steps`, oldest first:
    the last is the latest."""
    paths = [prefix(directory, s) for s in steps]
    tf.compat.v1.train.update_checkpoint_state(
        directory, paths[-1], all_model_checkpoint_paths=paths
    )


def _exists(directory, step):
    return tf.io.gfile.exists(prefix(directory, step) + ".index")


def named_steps(directory, warn=False):
    """Steps the state file names, oldest first (latest last); [] without a readable one."""
    try:
        state = tf.train.get_checkpoint_state(directory)
    except Exception as e:  # noqa: BLE001 - a garbled state file is one of the faults handled
        if warn:
            logging.warning(
                "The checkpoint state file in %s does not parse (%s); looking for "
                "checkpoint files instead.",
                directory,
                e,
            )
        return []
    if state is None:
        return []
    steps = []
    for path in list(state.all_model_checkpoint_paths) + [state.model_checkpoint_path]:
        step = checkpoint_step(path)
        if step is not None:
            steps = [s for s in steps if s != step] + [step]  # The latest goes last.
    return steps


def delete_checkpoint(directory, step):
    """Deletes the files of checkpoint `step` (index first: without it, no reader takes the data
    files for a checkpoint)."""
    for name in sorted(_files_of(directory, step), key=lambda n: not n.endswith(".index")):
        tf.io.gfile.remove(os.path.join(directory, name))


class CheckpointSaver:
    """Writes a checkpoint per step (named by `stargan_tf.model_dir`) into a directory and keeps
    the `max_to_keep` newest.

    Each save: the checkpoint is written (TensorFlow writes shards to a temp directory and merges
    them into place), the state file is rewritten atomically to name it and the kept ones, and
    only then are the older files deleted. "Newest" is the order of saving, as for
    `tf.train.CheckpointManager`: a run resumed from an older step (--resume_step) replaces the
    later checkpoints one save at a time.
    """

    def __init__(self, checkpoint, directory, max_to_keep):
        self.checkpoint = checkpoint
        self.directory = directory
        self.max_to_keep = max_to_keep
        # Created on first access: restoring creates it too and then expects it in the file
        # (checkpoints written by tf.train.CheckpointManager have it), so every save writes it.
        checkpoint.save_counter  # noqa: B018

    def save(self, step):
        """Saves checkpoint `step`; returns its path prefix."""
        self.checkpoint.save_counter.assign_add(1)
        path = self.checkpoint.write(prefix(self.directory, step))
        previous = [s for s in named_steps(self.directory) if s != step]
        kept = [s for s in previous if _exists(self.directory, s)]
        kept = kept[max(0, len(kept) - (self.max_to_keep - 1)) :] if self.max_to_keep > 1 else []
        kept.append(step)
        rewrite_state(self.directory, kept)
        # The state file no longer names them: deleting them can be cut short safely. Unnamed
        # checkpoints older than the kept ones (left by a save killed while deleting) go too.
        for old in candidate_steps(self.directory):
            if old not in kept and (old in previous or old < min(kept)):
                delete_checkpoint(self.directory, old)
        return path


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
            logging.warning(
                "Checkpoint %s does not load (%s); trying the one before it.", path, reason
            )
            failed.append((step, reason))
            continue
        named = named_steps(directory)
        dangling = [s for s in named if not _exists(directory, s)]
        if chief and (failed or dangling or not named or named[-1] != step):
            # The state file first (atomically), so that a kill never leaves it naming moved
            # files: the loadable checkpoints it named, in their order, and this one as latest.
            bad = {b for b, _ in failed}
            rewrite_state(
                directory,
                [s for s in named if s != step and s not in bad and _exists(directory, s)] + [step],
            )
        if failed and chief:
            for bad, _ in failed:
                dest = quarantine(directory, bad)
            logging.warning(
                "Resuming from step %d; the damaged checkpoint(s) of step %s were moved to %s.",
                step,
                ", ".join(str(b) for b, _ in failed),
                dest,
            )
        return step
    if failed:
        reasons = [f"{os.path.basename(prefix(directory, s))}: {r}" for s, r in failed]
        raise UserError(
            f"No checkpoint in {directory} loads ({'; '.join(reasons)}). "
            "Restore them from a backup, or move the directory away to start afresh."
        )
    return None


# Where the Windows lock sits: one byte far past the pid that the file holds, so that a refused
# run can still read the holder's pid (Windows forbids reading a locked range).
_WINDOWS_LOCK_OFFSET = 1 << 30


def _try_lock(fd):
    """Locks the open file `fd` for this process without waiting; False when another holds it.

    The OS releases the lock when the process dies, even by kill -9. The platform modules are
    imported here, not at module level, so that the training path imports on every OS."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd):
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


class WorkdirLock:
    """An exclusive lock on a run directory, so two runs never write into one (released by the
    OS when the process dies, even by kill -9): flock on POSIX, msvcrt.locking on Windows."""

    def __init__(self, workdir):
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd = None

    def acquire(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise UserError(
                f"--workdir={os.path.dirname(self.path)} is in use by a running "
                f"training (pid {holder}); wait for it to end, or use another "
                "--workdir."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            _unlock(self._fd)
            os.close(self._fd)
            self._fd = None


__all__ = [
    "candidate_steps",
    "remove_partial_writes",
    "quarantine",
    "rewrite_state",
    "named_steps",
    "delete_checkpoint",
    "CheckpointSaver",
    "restore_newest_valid",
    "WorkdirLock",
]
