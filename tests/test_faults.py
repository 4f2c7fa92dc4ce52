"""Fault injection on real training runs: kill -9 at random times, SIGTERM, NaN losses, a damaged
latest checkpoint, two runs on one workdir.

`make test` runs the quickest (bad shards and images, the saver's ordering), `make test-train` the
SIGTERM and NaN runs;
the tests marked `faults` (kill -9 trials, a damaged latest checkpoint, a full disk: 7 training
processes or more each) run in `make test-faults`, with 10 kill -9 trials (STARGAN_KILL_TRIALS,
default 3).
"""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from cli_helpers import run_module, subprocess_env, wait_for_exit
from test_train_cli import TINY

KILL_TRIALS = int(os.environ.get("STARGAN_KILL_TRIALS", "3"))
STEP_LINE = re.compile(r"step (\d+)/\d+ \|")


class Run:
    """A training process whose stderr goes to a file the test can watch."""

    def __init__(self, split_dir, workdir, log_path, *flags):
        self.log_path = log_path
        self.log = open(log_path, "w")
        argv = [
            sys.executable,
            "-m",
            "stargan_tf.train",
            f"--train_data={split_dir}",
            f"--workdir={workdir}",
            *TINY,
            "--print_every=1",
            *flags,
        ]
        self.proc = subprocess.Popen(
            argv, stdout=self.log, stderr=subprocess.STDOUT, env=subprocess_env()
        )

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_for(self, pattern, timeout=900):
        """Waits until `pattern` appears in the log; returns the match (None if the run ended)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                return re.search(pattern, self.text())
            time.sleep(0.1)
        raise AssertionError(f"{pattern!r} not seen in {timeout} s:\n{self.text()[-3000:]}")

    def wait(self, timeout=900):
        try:
            return wait_for_exit(self.proc, timeout, f"the training run logging to {self.log_path}")
        finally:
            self.log.close()


def checkpoint_state_steps(ckpt_dir):
    state = tf.train.get_checkpoint_state(str(ckpt_dir))
    if state is None:
        return []
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


def assert_loads_and_finite(prefix):
    """Reads every tensor of a checkpoint (checksums verified) and checks the floats are finite."""
    reader = tf.train.load_checkpoint(str(prefix))
    step = None
    for key in reader.get_variable_to_shape_map():
        value = reader.get_tensor(key)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), f"{prefix}: {key} is not finite"
        if key.startswith("step/"):
            step = int(value)
    return step


@pytest.mark.faults
def test_kill_9_at_random_times_then_resume(split, tmp_path):
    work = tmp_path / "run"
    ckpt = work / "checkpoints"
    seed = int(os.environ.get("STARGAN_KILL_SEED", time.time_ns() % 10_000))
    rng = np.random.default_rng(seed)
    print(f"kill -9 trials: {KILL_TRIALS}, seed {seed} (STARGAN_KILL_SEED reproduces it)")
    # A checkpoint every step, so that kills land in checkpoint writes too.
    flags = ["--save_every=1", "--sample_every=1000", "--keep_checkpoints=3", "--total_iters=1000"]
    resumed = []
    for trial in range(KILL_TRIALS):
        run = Run(split, work, tmp_path / f"trial{trial}.log", *flags)
        # Two step lines: the checkpoint of the first step is complete (a kill before any is
        # complete leaves nothing to resume from, rightly), then a kill at a random time.
        run.wait_for(r"(?s)step \d+/\d+ \|.*step \d+/\d+ \|")
        time.sleep(rng.uniform(0, 2.5))
        run.proc.send_signal(signal.SIGKILL)
        assert run.wait() == -signal.SIGKILL
        text = run.text()
        m = re.search(r"at step (\d+)", text)
        resumed.append(int(m.group(1)) if m else 0)
        # Whatever the kill interrupted, every checkpoint the state file names loads.
        steps = checkpoint_state_steps(ckpt)
        assert steps, f"trial {trial}: no checkpoint after a kill:\n{text[-2000:]}"
        for step in steps:
            assert assert_loads_and_finite(ckpt / f"ckpt-{step}") == step
    assert resumed[0] == 0 and resumed == sorted(resumed), resumed
    assert all(r > 0 for r in resumed[1:]), resumed  # every restart resumed from a checkpoint
    latest = max(checkpoint_state_steps(ckpt))
    final = Run(split, work, tmp_path / "final.log", *flags[:-1], f"--total_iters={latest + 2}")
    assert final.wait() == 0, final.text()[-3000:]
    assert f"at step {latest}" in final.text()
    assert f"step {latest + 2}/{latest + 2}" in final.text()
    assert assert_loads_and_finite(ckpt / f"ckpt-{latest + 2}") == latest + 2
    assert not [n for n in os.listdir(ckpt) if "_temp" in n]


@pytest.mark.training
def test_sigterm_saves_the_step_in_flight_and_exits_42(split, tmp_path):
    work = tmp_path / "run"
    flags = ["--save_every=1000", "--sample_every=1000", "--total_iters=1000"]
    run = Run(split, work, tmp_path / "a.log", *flags)
    seen = int(run.wait_for(r"step ([3-9]|\d\d+)/1000 \|").group(1))

    # While it runs, a second run on the same workdir is refused (nothing of the first clobbered).
    status, _, stderr = run_module(
        "stargan_tf.train",
        f"--train_data={split}",
        f"--workdir={work}",
        *TINY,
        *flags,
        what="a second training run on a workdir in use",
    )
    assert status == 2, stderr[-3000:]
    assert "is in use by a running training" in stderr

    run.proc.send_signal(signal.SIGTERM)
    assert run.wait() == 42, run.text()[-3000:]
    m = re.search(r"stopped on SIGTERM at step (\d+)", run.text())
    assert m, run.text()[-3000:]
    stopped = int(m.group(1))
    logged = [int(s) for s in STEP_LINE.findall(run.text())]
    assert stopped >= seen and stopped == max(logged)  # the iteration in flight, finished
    assert checkpoint_state_steps(work / "checkpoints") == [stopped]
    assert assert_loads_and_finite(work / "checkpoints" / f"ckpt-{stopped}") == stopped

    again = Run(
        split,
        work,
        tmp_path / "b.log",
        "--save_every=1000",
        "--sample_every=1000",
        f"--total_iters={stopped + 1}",
    )
    assert again.wait() == 0, again.text()[-3000:]
    assert f"at step {stopped}" in again.text()
    assert f"step {stopped + 1}/{stopped + 1}" in again.text()


@pytest.mark.training
def test_nan_loss_stops_with_the_term_and_step(split, tmp_path):
    work = tmp_path / "run"
    run = Run(
        split,
        work,
        tmp_path / "nan.log",
        "--save_every=2",
        "--sample_every=1000",
        "--total_iters=6",
        "--fault_nan_step=3",
    )
    assert run.wait() == 1, run.text()[-3000:]
    errors = [line for line in run.text().splitlines() if re.match(r"^\S+: error: ", line)]
    assert len(errors) == 1 and "Traceback" not in run.text(), run.text()[-3000:]
    assert re.search(r"error: step 3: loss D/\S+ is nan", errors[0]), errors[0]
    assert "ckpt-2) is untouched" in errors[0]
    assert checkpoint_state_steps(work / "checkpoints") == [2]
    assert assert_loads_and_finite(work / "checkpoints" / "ckpt-2") == 2

    # The same run with --nan_policy=skip goes on, counts the skipped step, stays finite.
    skip = Run(
        split,
        work,
        tmp_path / "skip.log",
        "--save_every=2",
        "--sample_every=1000",
        "--total_iters=4",
        "--fault_nan_step=3",
        "--nan_policy=skip",
    )
    assert skip.wait() == 0, skip.text()[-3000:]
    assert "step 3: non-finite" in skip.text() and "1 skipped so far" in skip.text()
    assert assert_loads_and_finite(work / "checkpoints" / "ckpt-4") == 4


@pytest.mark.faults
def test_damaged_latest_checkpoint_falls_back_to_the_previous(split, tmp_path):
    work = tmp_path / "run"
    ckpt = work / "checkpoints"
    common = ["--save_every=2", "--sample_every=1000"]
    assert Run(split, work, tmp_path / "a.log", *common, "--total_iters=4").wait() == 0
    data = next(p for p in ckpt.iterdir() if p.name.startswith("ckpt-4.data"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])  # a torn write
    (ckpt / "ckpt-6_temp").mkdir()  # what a save killed mid-way leaves
    run = Run(split, work, tmp_path / "b.log", *common, "--total_iters=6")
    assert run.wait() == 0, run.text()[-3000:]
    text = run.text()
    assert "ckpt-4 does not load" in text and "at step 2" in text, text[-3000:]
    assert any(p.name.startswith("ckpt-4.data") for p in (ckpt / "corrupt").iterdir())
    assert checkpoint_state_steps(ckpt) == [2, 4, 6] or checkpoint_state_steps(ckpt)[-1] == 6
    for step in checkpoint_state_steps(ckpt):
        assert assert_loads_and_finite(ckpt / f"ckpt-{step}") == step
    assert not (ckpt / "ckpt-6_temp").exists()


@pytest.mark.parametrize("policy", ["bad"])
def test_bad_nan_policy_is_a_usage_error(split, tmp_path, policy):
    from cli_helpers import assert_usage_error, run_module

    assert_usage_error(
        run_module(
            "stargan_tf.train",
            f"--train_data={split}",
            f"--workdir={tmp_path / 'w'}",
            *TINY,
            f"--nan_policy={policy}",
        ),
        "nan_policy",
    )


def test_truncated_shard_is_named_before_training(split, tmp_path):
    import shutil

    from cli_helpers import assert_usage_error, run_module

    copy = tmp_path / "train"
    shutil.copytree(split, copy)
    shard = sorted(copy.glob("*.tfrecord"))[-1]
    shard.write_bytes(shard.read_bytes()[:-100])  # an interrupted copy
    assert_usage_error(
        run_module(
            "stargan_tf.train",
            f"--train_data={copy}",
            f"--workdir={tmp_path / 'w'}",
            *TINY,
            "--total_iters=2",
        ),
        shard.name,
        "truncated",
        "make_tfrecords",
    )
    assert not (tmp_path / "w" / "checkpoints").exists()


def test_an_image_of_another_size_mid_dataset_is_resized(tmp_path):
    from data_helpers import write_split
    from stargan_tf.data import pipeline

    rng = np.random.default_rng(0)
    images = {
        d: [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(6)] for d in ("a", "b")
    }
    images["b"][3] = rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)  # another size, mid-split
    write_split(str(tmp_path / "s"), images, img_size=32)
    source = pipeline.open_source(str(tmp_path / "s"))
    ds = pipeline.train_dataset(source, 32, 4, 8, seed=0, randcrop_prob=0.0)
    for batch in ds.take(12):
        assert batch["x_real"].shape == (4, 32, 32, 3) and batch["x_ref"].shape == (4, 32, 32, 3)
    shapes = [tuple(x.shape) for x, _, _ in pipeline.eval_dataset(source, 32, 5)]
    assert shapes == [(5, 32, 32, 3), (5, 32, 32, 3), (2, 32, 32, 3)]


@pytest.mark.faults
def test_checkpoint_write_on_a_full_disk(split, tmp_path):
    """A file-size limit (RLIMIT_FSIZE: the kernel fails writes past it with EFBIG, as a full disk
    fails them with ENOSPC; no root needed) makes the second checkpoint's write fail."""
    import resource

    work = tmp_path / "run"
    ckpt = work / "checkpoints"
    common = ["--save_every=2", "--sample_every=1000"]
    assert Run(split, work, tmp_path / "a.log", *common, "--total_iters=2").wait() == 0
    data_bytes = max(p.stat().st_size for p in ckpt.iterdir() if ".data-" in p.name)

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (data_bytes // 2, data_bytes // 2))

    log = open(tmp_path / "b.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stargan_tf.train",
            f"--train_data={split}",
            f"--workdir={work}",
            *TINY,
            "--print_every=1",
            *common,
            "--total_iters=4",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=subprocess_env(),
        preexec_fn=limit_file_size,
    )
    status = wait_for_exit(proc, 900, "the training run on a full disk")
    log.close()
    text = (tmp_path / "b.log").read_text()
    assert status == 1, text[-3000:]
    errors = [line for line in text.splitlines() if re.match(r"^\S+: error: ", line)]
    assert len(errors) == 1 and "Traceback" not in text, text[-3000:]
    assert "step 4: writing the checkpoint" in errors[0] and "(ckpt-2) is intact" in errors[0]
    assert "File too large" in errors[0] and "function_node" not in errors[0]
    assert checkpoint_state_steps(ckpt) == [2]
    assert assert_loads_and_finite(ckpt / "ckpt-2") == 2
    assert not [n for n in os.listdir(ckpt) if "_temp" in n]
    # With the space back, the same command resumes from step 2.
    again = Run(split, work, tmp_path / "c.log", *common, "--total_iters=4")
    assert again.wait() == 0, again.text()[-3000:]
    assert "at step 2" in again.text() and assert_loads_and_finite(ckpt / "ckpt-4") == 4


def test_checkpoint_saver_never_names_deleted_files(tmp_path):
    # tf.train.CheckpointManager deletes the oldest checkpoint before it rewrites the state file
    # without it: a kill in between left a state file naming files that were gone (10 kill -9
    # trials caught it). CheckpointSaver rewrites the state file first.
    from stargan_tf.training import recovery

    v = tf.Variable(0.0)
    ckpt = tf.train.Checkpoint(v=v)
    d = str(tmp_path / "ckpts")
    saver = recovery.CheckpointSaver(ckpt, d, max_to_keep=3)
    deleted_while_named = []
    real_delete = recovery.delete_checkpoint

    def watching_delete(directory, step):
        # Whenever a file is deleted, the state file must not name that checkpoint any more.
        if step in recovery.named_steps(directory):
            deleted_while_named.append(step)
        real_delete(directory, step)

    recovery.delete_checkpoint = watching_delete
    try:
        for step in range(1, 7):
            v.assign(float(step))
            saver.save(step)
            named = recovery.named_steps(d)
            assert named == list(range(max(1, step - 2), step + 1)), named
            for s in named:
                assert assert_loads_and_finite(f"{d}/ckpt-{s}") is None  # loads (no step variable)
    finally:
        recovery.delete_checkpoint = real_delete
    assert deleted_while_named == []
    assert sorted(recovery.candidate_steps(d)) == [4, 5, 6]
    # An old checkpoint left unnamed (a save killed while deleting) goes at the next save.
    for name in os.listdir(f"{d}"):
        if name.startswith("ckpt-6."):
            (tmp_path / "ckpts" / name.replace("ckpt-6", "ckpt-2")).write_bytes(
                (tmp_path / "ckpts" / name).read_bytes()
            )
    saver.save(7)
    assert recovery.named_steps(d) == [5, 6, 7]
    assert not [n for n in os.listdir(d) if n.startswith(("ckpt-2.", "ckpt-4."))]
    # Resumed from an older step (--resume_step=5): later checkpoints are replaced one by one.
    v.assign(50.0)
    saver.save(6)
    assert recovery.named_steps(d) == [5, 7, 6]
    assert tf.train.latest_checkpoint(d).endswith("ckpt-6")
    # On start, a state file naming a missing checkpoint (left by TensorFlow's manager) is
    # repaired; the newest loadable one is restored.
    for name in os.listdir(d):
        if name.startswith("ckpt-5."):
            os.remove(os.path.join(d, name))
    assert recovery.restore_newest_valid(ckpt, d) == 6 and float(v.numpy()) == 50.0
    assert recovery.named_steps(d) == [7, 6]  # 6 stays the latest
