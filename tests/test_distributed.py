"""Acceptance tests of training under tf.distribute: replicas, workers, resume, TensorBoard.

Every run happens in a subprocess (tests/train_worker.py): logical CPU devices and multi-worker
strategies must be configured before TensorFlow initialises. All runs start from the same tiny
model (written once by the worker's "init" task, with non-zero biases) and train on fixed global
batches of 4, one distinct batch per step. The biases are N(0, 0.1^2) bounded away from 0
(|b| >= 0.02, see train_worker.MIN_ABS_BIAS_NOISE): the biases upstream of an instance norm have
a zero gradient up to float32 rounding, and only weight decay keeps their Adam updates from
following that rounding noise, which differs between one device and two replicas.

Runs go in three groups of concurrent processes (2 CPU cores): mirrored + one device (the latter
is also the first half of the resume test and the TensorBoard run); the two multi-worker workers;
a 6-iteration run + the resumption of the one-device run to 6 + a run refused for another --lr.
Almost all of the time is tracing the training step (once per process, twice for 2 replicas).
TrainConfig.deterministic is not acted on by the Trainer: the worker calls
tf.config.experimental.enable_op_determinism() itself.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_worker.py")
RESULT_PREFIX = "RESULT_JSON: "
# A group of concurrent workers fails when together they used less than IDLE_CPU seconds of CPU
# in the last IDLE_TIMEOUT seconds (a hang, e.g. a worker waiting for a collective that never
# comes: its gRPC threads still tick, ~0.1 s a minute), or after TIMEOUT seconds in all.
# Unloaded, a group takes 30-60 s; on a machine shared with other jobs it can take 10x that,
# hence a wall-clock limit far above the idle one.
IDLE_TIMEOUT = 120
IDLE_CPU = 2.0
TIMEOUT = float(os.environ.get("STARGAN_DISTRIBUTED_TIMEOUT", 1500))

LOSS_TAGS = [f"D/{b}/{t}" for b in ("latent", "ref") for t in ("real", "fake", "reg")] + [
    f"G/{b}/{t}" for b in ("latent", "ref") for t in ("adv", "sty", "ds", "cyc")
]


# Running workers.


class Worker:
    """One train_worker.py process; stdout and stderr go to files (no pipe can fill up)."""

    def __init__(self, spec, tmpdir, name, env=None):
        self.name = name
        self.out_path = os.path.join(tmpdir, f"{name}.stdout")
        self.err_path = os.path.join(tmpdir, f"{name}.stderr")
        full_env = dict(os.environ)
        full_env.pop("TF_CONFIG", None)
        full_env.update({"CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"})
        full_env.update(env or {})
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, WORKER, json.dumps(spec)], stdout=out, stderr=err, env=full_env
            )

    def stderr_tail(self, chars=6000):
        with open(self.err_path, errors="replace") as f:
            text = f.read()
        return text[-chars:]

    def results(self):
        with open(self.out_path) as f:
            lines = [ln for ln in f.read().splitlines() if ln.startswith(RESULT_PREFIX)]
        return json.loads(lines[-1][len(RESULT_PREFIX) :])["results"] if lines else None

    def cpu_seconds(self):
        """User + system CPU time of the process so far (Linux /proc), or None."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_workers(specs, tmpdir, names, envs=None, timeout=TIMEOUT, idle_timeout=IDLE_TIMEOUT):
    """Runs the worker specs concurrently; returns each one's list of task results.

    On a failure, a hang (no CPU used by any of them for idle_timeout s) or a timeout, every
    process still running is killed and the test fails with the failing worker's error and the
    tail of its stderr.
    """
    envs = envs or [None] * len(specs)
    workers = [Worker(s, tmpdir, n, e) for s, n, e in zip(specs, names, envs)]
    deadline = time.time() + timeout
    history = []  # (time, CPU seconds of the pending workers), since `pending` last changed
    try:
        pending = list(workers)
        while pending:
            now, cpu = time.time(), [w.cpu_seconds() for w in pending]
            if None not in cpu:
                history.append((now, sum(cpu)))
                while len(history) > 1 and history[1][0] <= now - idle_timeout:
                    history.pop(0)
                if (
                    history[0][0] <= now - idle_timeout
                    and history[-1][1] - history[0][1] < IDLE_CPU
                ):
                    pytest.fail(
                        f"workers {[w.name for w in pending]} hang: less than {IDLE_CPU} s of CPU "
                        f"in {idle_timeout} s\n--- stderr tail of {pending[0].name} ---\n"
                        f"{pending[0].stderr_tail()}"
                    )
            for w in list(pending):
                if w.proc.poll() is not None:
                    pending.remove(w)
                    history = []
                    if w.proc.returncode != 0:
                        results = w.results()
                        error = results[-1].get("error") if results else None
                        pytest.fail(
                            f"worker {w.name} exited with {w.proc.returncode}: "
                            f"{json.dumps(error, indent=1)}\n--- stderr tail ---\n"
                            f"{w.stderr_tail()}"
                        )
            if pending and time.time() > deadline:
                pytest.fail(
                    f"workers {[w.name for w in pending]} did not finish in {timeout} s"
                    f"\n--- stderr tail of {pending[0].name} ---\n"
                    f"{pending[0].stderr_tail()}"
                )
            time.sleep(0.2)
    finally:
        for w in workers:
            w.kill()
    out = []
    for w in workers:
        results = w.results()
        assert results is not None, f"worker {w.name} printed no result:\n{w.stderr_tail()}"
        for r in results:
            assert "error" not in r or r["error"].get("user_error"), (
                f"worker {w.name}: {json.dumps(r['error'], indent=1)}"
            )
        out.append(results)
    return out


def train_task(strategy, workdir, init_dir, total_iters, weights_out=None, **extra):
    task = {
        "kind": "train",
        "strategy": strategy,
        "workdir": str(workdir),
        "init_dir": str(init_dir),
        "total_iters": total_iters,
        "num_batches": 6,
    }
    if weights_out:
        task["weights_out"] = str(weights_out)
    task.update(extra)
    return task


def load_weights(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def max_abs_diff(a, b, prefix=""):
    """(max |a - b| over the keys starting with prefix, the key where it is)."""
    keys = [k for k in a if k.startswith(prefix)]
    assert keys and sorted(keys) == sorted(k for k in b if k.startswith(prefix))
    diffs = {k: float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in keys}
    worst = max(diffs, key=diffs.get)
    return diffs[worst], worst


def report(name, **values):
    """Printed measurements (pytest -s shows them; -rA lists them with the passes)."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in values.items()))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


# Fixtures.


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture(scope="module")
def init_dir(tmp):
    """The tiny model every run starts from: fixed seed, non-zero biases."""
    path = tmp / "init"
    ((result,),) = run_workers(
        [{"tasks": [{"kind": "init", "dir": str(path), "seed": 0}]}], tmp, ["init"]
    )
    assert result["perturbed_biases"] > 0 and result["min_abs_bias"] >= 0.0199
    assert os.path.exists(path / "config.json")
    return path


# Every training run uses this config (besides total_iters). λ_ds = 2 decaying over 10
# iterations makes λ_ds visibly a function of the step; op determinism makes resumption exact;
# a checkpoint every 2 iterations, all kept, gives the multi-worker test its step-2 reference.
CONFIG = {
    "deterministic": True,
    "lambda_ds": 2.0,
    "ds_iter": 10,
    "save_every": 2,
    "keep_checkpoints": 10,
    "print_every": 1,
    "sample_every": 1,
}


@pytest.fixture(scope="module")
def mirrored_and_single(tmp, init_dir):
    """3 iterations with MirroredStrategy over 2 logical CPUs and with OneDeviceStrategy,
    concurrently, in two processes.

    The single-device run is also the first half of the resume test (it is resumed to 6
    iterations by `resume_runs`), renders the sample grid and writes the TensorBoard logs, and
    its step-2 checkpoint is the reference of the 2-iteration multi-worker run."""
    mirrored = {
        "devices": 2,
        "deterministic": True,
        "tasks": [
            train_task(
                "mirrored",
                tmp / "mirrored",
                init_dir,
                3,
                tmp / "mirrored.npz",
                check_split=3,
                config=CONFIG,
            )
        ],
    }
    single = {
        "deterministic": True,
        "tasks": [
            train_task(
                "one_device",
                tmp / "single",
                init_dir,
                3,
                tmp / "single.npz",
                sample=True,
                config=CONFIG,
            )
        ],
    }
    started = time.time()
    (m,), (s,) = run_workers([mirrored, single], tmp, ["mirrored", "single"])
    return {
        "mirrored": m,
        "single": s,
        "seconds": time.time() - started,
        "mirrored_weights": load_weights(tmp / "mirrored.npz"),
        "single_weights": load_weights(tmp / "single.npz"),
        "single_workdir": tmp / "single",
        "mirrored_workdir": tmp / "mirrored",
        "init": init_dir,
    }


@pytest.fixture(scope="module")
def resume_runs(tmp, init_dir, mirrored_and_single):
    """Concurrently: 6 iterations in one run; a new process resuming the 3-iteration
    single-device run to 6; and a run in the finished mirrored workdir with another --lr."""
    full = {
        "deterministic": True,
        "tasks": [
            train_task("one_device", tmp / "full6", init_dir, 6, tmp / "full6.npz", config=CONFIG)
        ],
    }
    resumed = {
        "deterministic": True,
        "tasks": [
            train_task(
                "one_device",
                mirrored_and_single["single_workdir"],
                init_dir,
                6,
                tmp / "resumed.npz",
                sample=True,
                config=CONFIG,
            )
        ],
    }
    workdir = mirrored_and_single["mirrored_workdir"]
    before = workdir_state(workdir)
    mismatch = {
        "tasks": [train_task("one_device", workdir, init_dir, 6, config={**CONFIG, "lr": 2e-4})]
    }
    started = time.time()
    (r6,), (rr,), (mm,) = run_workers(
        [full, resumed, mismatch], tmp, ["full6", "resume3to6", "mismatch"]
    )
    return {
        "full": r6,
        "first": mirrored_and_single["single"],
        "resumed": rr,
        "seconds": time.time() - started,
        "full_weights": load_weights(tmp / "full6.npz"),
        "resumed_weights": load_weights(tmp / "resumed.npz"),
        "resumed_workdir": mirrored_and_single["single_workdir"],
        "mismatch": mm,
        "mismatch_workdir": workdir,
        "mismatch_before": before,
        "mismatch_after": workdir_state(workdir),
    }


def workdir_state(workdir):
    """config.json and the checkpoint files of a workdir, to see that nothing changed."""
    files = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
    stats = [os.stat(os.path.join(workdir, "checkpoints", f)).st_mtime_ns for f in files]
    with open(os.path.join(workdir, "config.json")) as f:
        return f.read(), files, stats


def checkpoint_weights(workdir, step):
    """The nets and nets_ema of `workdir/checkpoints/ckpt-<step>`, keyed as the worker's npz."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(os.path.join(workdir, "checkpoints", f"ckpt-{step}"))
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    out = {}
    for name in reader.get_variable_to_shape_map():
        if name.startswith(("nets/", "nets_ema/")) and name.endswith(suffix):
            # tf.train.Checkpoint escapes "." as ".." and "/" as ".S" in attribute names.
            key = re.sub(
                r"\.(\.|S)", lambda m: "." if m.group(1) == "." else "/", name[: -len(suffix)]
            )
            out[key] = reader.get_tensor(name)
    return out


# 1. Mirrored == single device.


@pytest.mark.training
def test_mirrored_two_replicas_equals_one_device(mirrored_and_single):
    m, s = mirrored_and_single["mirrored"], mirrored_and_single["single"]
    # The two replicas are real: two of them, each fed its half of the same global batch.
    assert m["num_replicas"] == 2 and s["num_replicas"] == 1
    assert m["split_ok"], m["split_sizes"]
    assert m["split_sizes"] == [[2, 2]] * 3
    assert m["step"] == s["step"] == 3
    assert m["steps_run"] == s["steps_run"] == [0, 1, 2]
    # Losses summed over replicas are means over the global batch (not doubled).
    assert set(m["metrics"]) == set(s["metrics"]) == set(LOSS_TAGS) | {"G/lambda_ds"}
    metric_diff = max(abs(m["metrics"][k] - s["metrics"][k]) for k in s["metrics"])
    assert metric_diff < 1e-4, (m["metrics"], s["metrics"])

    a, b = mirrored_and_single["mirrored_weights"], mirrored_and_single["single_weights"]
    nets_diff, nets_key = max_abs_diff(a, b, "nets/")
    ema_diff, ema_key = max_abs_diff(a, b, "nets_ema/")
    # How far training moved the weights (the diff is meaningful only against it).
    init = checkpoint_weights(mirrored_and_single["init"], 0)
    moved = max(float(np.max(np.abs(b[k] - init[k]))) for k in init)
    report(
        "mirrored vs one device, 3 iterations",
        nets_max_diff=f"{nets_diff:.3g} ({nets_key})",
        ema_max_diff=f"{ema_diff:.3g} ({ema_key})",
        max_weight_change=f"{moved:.3g}",
        metric_max_diff=f"{metric_diff:.3g}",
        seconds=f"{mirrored_and_single['seconds']:.0f} (concurrent)",
        train_seconds=f"mirrored {m['train_seconds']:.0f}, single {s['train_seconds']:.0f}",
    )
    assert moved > 1e-4  # training did change the weights
    assert nets_diff <= 1e-4, (nets_key, nets_diff)
    assert ema_diff <= 1e-4, (ema_key, ema_diff)


# 2. MultiWorkerMirroredStrategy on localhost.


@pytest.mark.training
def test_multi_worker_mirrored_on_localhost(tmp, init_dir, mirrored_and_single):
    workdir = tmp / "multi_worker"
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    specs, envs = [], []
    for index in range(2):
        specs.append(
            {
                "deterministic": True,
                "tasks": [
                    train_task(
                        "multi_worker",
                        workdir,
                        init_dir,
                        2,
                        tmp / f"worker{index}.npz",
                        check_split=2,
                        config=CONFIG,
                    )
                ],
            }
        )
        envs.append(
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                )
            }
        )
    started = time.time()
    (w0,), (w1,) = run_workers(specs, tmp, ["worker0", "worker1"], envs)
    seconds = time.time() - started

    for w in (w0, w1):
        assert w["num_replicas"] == 2
        assert w["split_ok"], w["split_sizes"]  # each worker feeds its half of every batch
        assert w["split_sizes"] == [[2]] * 2
        assert w["step"] == 2 and w["steps_run"] == [0, 1]
    assert w0["is_chief"] and not w1["is_chief"]
    checksum_diff = max(abs(a - b) for a, b in zip(w0["checksum"], w1["checksum"]))
    a, b = load_weights(tmp / "worker0.npz"), load_weights(tmp / "worker1.npz")
    workers_diff, key = max_abs_diff(a, b)
    # The product's layout: the chief's checkpoints in workdir/checkpoints, the other worker's
    # temporary copy deleted.
    assert os.path.exists(workdir / "checkpoints" / "ckpt-2.index")
    assert not [n for n in os.listdir(workdir) if n.startswith(".worker-tmp")], os.listdir(workdir)
    # Two workers of one replica each train as one device on the global batch does.
    reference = checkpoint_weights(mirrored_and_single["single_workdir"], 2)
    ref_diff, ref_key = max_abs_diff(a, reference)
    report(
        "multi-worker, 2 workers x 2 iterations",
        checksum_max_diff=f"{checksum_diff:.3g}",
        workers_max_weight_diff=f"{workers_diff:.3g}",
        vs_one_device_step2=f"{ref_diff:.3g} ({ref_key})",
        seconds=f"{seconds:.0f}",
        train_seconds=f"{w0['train_seconds']:.0f}",
    )
    assert checksum_diff <= 1e-6, (w0["checksum"], w1["checksum"])
    assert workers_diff <= 1e-6, key
    assert ref_diff <= 1e-4, ref_key


# 3. Exact resume.


@pytest.mark.training
def test_resume_is_exact(resume_runs):
    r6, r3, rr = resume_runs["full"], resume_runs["first"], resume_runs["resumed"]
    assert r6["steps_run"] == list(range(6)) and r3["steps_run"] == [0, 1, 2]
    assert rr["steps_run"] == [3, 4, 5]  # it resumed: only the remaining iterations ran
    assert r6["step"] == rr["step"] == 6
    diff, key = max_abs_diff(resume_runs["full_weights"], resume_runs["resumed_weights"])
    metric_diff = max(abs(r6["metrics"][k] - rr["metrics"][k]) for k in r6["metrics"])
    # λ_ds is a function of the step: at iteration 5 (0-based), 2 * (1 - 5/10) = 1.
    report(
        "resume 3 + 3 vs 6",
        max_weight_diff=f"{diff:.3g} ({key})",
        metric_max_diff=f"{metric_diff:.3g}",
        lambda_ds=rr["metrics"]["G/lambda_ds"],
        seconds=f"{resume_runs['seconds']:.0f} (full6, resume and mismatch, concurrent)",
        train_seconds=f"full6 {r6['train_seconds']:.0f}, resume {rr['train_seconds']:.0f}",
    )
    assert rr["metrics"]["G/lambda_ds"] == pytest.approx(r6["metrics"]["G/lambda_ds"], abs=1e-7)
    assert rr["metrics"]["G/lambda_ds"] == pytest.approx(1.0, abs=1e-6)
    assert r3["metrics"]["G/lambda_ds"] == pytest.approx(2.0 * (1 - 2 / 10), abs=1e-6)
    assert diff <= 1e-6, key
    assert metric_diff <= 1e-6, (r6["metrics"], rr["metrics"])


# 4. A config mismatch on resume is refused.


@pytest.mark.training
def test_resume_with_another_lr_is_refused(resume_runs):
    result = resume_runs["mismatch"]
    error = result.get("error")
    assert error is not None, "training resumed with another --lr"
    assert error["user_error"], error  # an instance of stargan_tf.errors.UserError
    message = error["message"]
    report("config mismatch", message=message)
    assert "--lr" in message and "0.0001" in message and "0.0002" in message, message
    assert "steps_run" not in result
    # Nothing was trained or rewritten.
    assert resume_runs["mismatch_after"] == resume_runs["mismatch_before"]


# 5. TensorBoard and the sample grid.


def read_events(logs):
    """({scalar tag: {step: [values]}}, {image tag: {step: [tensors]}}) of every event file."""
    import tensorflow as tf

    event_files = [
        os.path.join(d, f)
        for d, _, fs in os.walk(logs)
        for f in fs
        if f.startswith("events.out.tfevents")
    ]
    assert event_files, f"no event file under {logs}"
    scalars, images = {}, {}
    for path in event_files:
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars" or value.HasField("simple_value"):
                    v = (
                        value.simple_value
                        if value.HasField("simple_value")
                        else float(tf.make_ndarray(value.tensor))
                    )
                    scalars.setdefault(value.tag, {}).setdefault(event.step, []).append(v)
                elif plugin == "images":
                    images.setdefault(value.tag, {}).setdefault(event.step, []).append(
                        tf.make_ndarray(value.tensor)
                    )
    return len(event_files), scalars, images


@pytest.mark.training
def test_tensorboard_scalars_and_sample_grid(resume_runs):
    """The logs of the single-device run: steps 1-3, then 4-6 after the resume."""
    import tensorflow as tf
    from PIL import Image

    workdir = resume_runs["resumed_workdir"]
    num_files, scalars, images = read_events(workdir / "logs")
    wanted = LOSS_TAGS + ["G/lambda_ds", "perf/images_per_second"]
    missing = [t for t in wanted if t not in scalars]
    assert not missing, f"missing tags {missing}; found {sorted(scalars)}"
    steps = list(range(1, 7))
    for tag in wanted:
        assert sorted(scalars[tag]) == steps, (tag, scalars[tag])
        assert all(len(v) == 1 and np.isfinite(v[0]) for v in scalars[tag].values()), tag
    assert all(v[0] > 0 for v in scalars["perf/images_per_second"].values())
    # The logged values are the metrics each run returned (of its last iteration).
    for step, result in ((3, resume_runs["first"]), (6, resume_runs["resumed"])):
        for tag, value in result["metrics"].items():
            assert scalars[tag][step][0] == pytest.approx(value, rel=1e-6, abs=1e-7), (tag, step)
    for step in steps:
        want = 2.0 * (1 - (step - 1) / 10)
        assert scalars["G/lambda_ds"][step][0] == pytest.approx(want, abs=1e-6), step

    # Grid: rows = the sources, their reconstructions, one row per domain (latent) at ψ = 1 and
    # at ψ = 0.7, one per reference; columns = a blank or reference cell + 2 sources; 32 px cells
    # with 2 px gaps.
    height, width = (1 + 1 + 2 + 2 + 2) * 34 - 2, (1 + 2) * 34 - 2
    assert "samples" in images, sorted(images)
    assert sorted(images["samples"]) == steps
    (tensor,) = images["samples"][6]  # [width, height, png]
    assert int(tensor[0]) == width and int(tensor[1]) == height
    decoded = tf.io.decode_png(tensor[2]).numpy()
    assert decoded.shape == (height, width, 3)
    for step in steps:
        assert os.path.exists(workdir / "samples" / f"{step:06d}.png"), step
    with Image.open(workdir / "samples" / "000006.png") as image:
        assert image.size == (width, height) and image.mode == "RGB"
        pixels = np.asarray(image)
    np.testing.assert_array_equal(pixels, decoded)
    report("tensorboard", event_files=num_files, tags=len(scalars), grid=f"{width}x{height}")


# 4. Preemption of one worker of a cluster.


@pytest.mark.faults
def test_sigterm_to_one_worker_stops_the_cluster_at_one_step(tmp, init_dir):
    """SIGTERM reaches only the non-chief worker; both save the same step, and resume from it."""
    workdir = tmp / "preempted_cluster"

    def run(total_iters, **extra):
        ports = [free_port(), free_port()]
        cluster = {"worker": [f"localhost:{p}" for p in ports]}
        specs = [
            {
                "tasks": [
                    train_task(
                        "multi_worker",
                        workdir,
                        init_dir,
                        total_iters,
                        config=CONFIG,
                        **(extra if index == 1 else {}),
                    )
                ]
            }
            for index in range(2)
        ]
        envs = [
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                )
            }
            for index in range(2)
        ]
        return [
            r for (r,) in run_workers(specs, tmp, [f"p{total_iters}w0", f"p{total_iters}w1"], envs)
        ]

    w0, w1 = run(50, sigterm_self_at_step=2)
    stopped = w0.get("preempted_at")
    assert stopped is not None and w1.get("preempted_at") == stopped, (w0, w1)
    assert 2 <= stopped <= 4 and w0["step"] == w1["step"] == stopped
    assert os.path.exists(workdir / "checkpoints" / f"ckpt-{stopped}.index")
    w0, w1 = run(stopped + 1)
    assert w0["steps_run"] == w1["steps_run"] == [stopped], (w0["steps_run"], w1["steps_run"])
