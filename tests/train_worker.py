"""Runs tiny StarGAN v2 trainings in a fresh process, for tests/test_distributed.py.

Multi-device and multi-worker runs must configure TensorFlow before it initialises, so every run
of the distributed tests happens in a process of its own:

    python tests/train_worker.py '<json spec>'

The spec:
    {"devices": 2,              # logical CPU devices to split the CPU into (0: no split)
     "deterministic": false,    # tf.config.experimental.enable_op_determinism() first
     "tasks": [...]}            # run in order, in this process

Tasks:
    {"kind": "init", "dir": D, "seed": 0}
        Builds the tiny model with a fixed seed, adds N(0, 0.1^2) noise, resampled where
        |noise| < min_abs_noise (default MIN_ABS_BIAS_NOISE), to every bias and norm beta
        (official key `*.bias`), saves the trained networks (`nets`) as a model directory.
    {"kind": "train", "strategy": "one_device" | "mirrored" | "multi_worker", "workdir": W,
     "init_dir": D, "total_iters": N, "weights_out": F.npz, "data_seed": 0, "num_batches": 4,
     "config": {TrainConfig overrides}, "sample": false, "check_split": 3}
        Trains with the Trainer (`train()`: restores the latest checkpoint of W, trains to N).
        Writes every weight of nets and nets_ema (keys `nets/<official key>`,
        `nets_ema/<official key>`) to weights_out, and reports the step, the last metrics,
        a checksum of the weights, the number of replicas, and (check_split > 0) whether the first
        check_split distributed batches are the per-replica slices of the global batches.
        "sigterm_self_at_step": k sends this process SIGTERM as it starts step k; a run that
        stops on it reports "preempted_at" (the step saved).
        A UserError is reported as {"error": {"type", "message", "user_error": true}}.

The process prints one line `RESULT_JSON: {"results": [one dict per task]}` on stdout.
"""

import json
import os
import signal
import sys
import time
import traceback

import numpy as np

RESULT_PREFIX = "RESULT_JSON: "
GLOBAL_BATCH = 4
IMG_SIZE = 32
LATENT_DIM = 4
NUM_DOMAINS = 2


def model_config():
    from support import tiny

    return tiny(img_size=IMG_SIZE, latent_dim=LATENT_DIM, num_domains=NUM_DOMAINS)


def make_batches(seed, num_batches, batch=GLOBAL_BATCH):
    """`num_batches` distinct global batches, stacked: {name: [num_batches, batch, ...]}."""
    rng = np.random.default_rng(seed)
    shape = [num_batches, batch, IMG_SIZE, IMG_SIZE, 3]

    def images():
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)

    def labels():
        return rng.integers(0, NUM_DOMAINS, [num_batches, batch]).astype(np.int32)

    def latents():
        return rng.standard_normal([num_batches, batch, LATENT_DIM]).astype(np.float32)

    return {
        "x_real": images(),
        "x_ref": images(),
        "x_ref2": images(),
        "y_org": labels(),
        "y_trg": labels(),
        "z_trg": latents(),
        "z_trg2": latents(),
    }


def make_dataset(batches):
    """A Dataset of global batches (one per step, cycling), sharded by data across workers."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(batches).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return ds.with_options(options)


def sample_input(seed=123):
    rng = np.random.default_rng(seed)
    return {
        "x_src": rng.uniform(-1, 1, [2, IMG_SIZE, IMG_SIZE, 3]).astype(np.float32),
        "y_src": np.array([0, 1], np.int32),
        "x_ref": rng.uniform(-1, 1, [2, IMG_SIZE, IMG_SIZE, 3]).astype(np.float32),
        "y_ref": np.array([1, 0], np.int32),
    }


# Biases upstream of an instance norm (most of G's: from_rgb, the convs of every block, ...) have
# a zero gradient in exact arithmetic; in float32 it is rounding noise of ~1e-8, which differs
# between a full batch and the sum of two half batches. Their Adam update is then driven by
# weight_decay * b: it dominates the noise when |b| >> 1e-4. With b ~ N(0, 0.1^2) some of the
# ~1000 bias elements land within 1e-4 of 0, and their update follows the noise (2-replica vs 1
# replica: 1.3e-4 apart after 3 iterations for |b| = 2e-5). So the noise is N(0, 0.1^2)
# conditioned on |b| >= MIN_ABS_BIAS_NOISE (resampled), which keeps weight decay ahead of it.
MIN_ABS_BIAS_NOISE = 0.02


def bias_noise(rng, shape, min_abs, std=0.1):
    """N(0, std^2) samples of `shape`, resampled until every |value| >= min_abs."""
    noise = rng.normal(0.0, std, shape)
    small = np.abs(noise) < min_abs
    while small.any():
        noise[small] = rng.normal(0.0, std, int(small.sum()))
        small = np.abs(noise) < min_abs
    return noise.astype(np.float32)


def weights_of(trainer):
    from stargan_tf.networks import official_variable_map

    out = {}
    for prefix, nets in (("nets", trainer.nets), ("nets_ema", trainer.nets_ema)):
        for key, var in official_variable_map(nets).items():
            out[f"{prefix}/{key}"] = np.asarray(var.numpy())
    return out


def checksum(weights):
    """Sum, sum of |w| and an index-weighted sum, in float64, over every weight (sorted keys)."""
    flat = np.concatenate([weights[k].astype(np.float64).ravel() for k in sorted(weights)])
    index = (np.arange(flat.size) % 97 + 1).astype(np.float64)
    return [float(flat.sum()), float(np.abs(flat).sum()), float((flat * index).sum())]


def make_strategy(kind):
    import tensorflow as tf

    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy("/cpu:0")
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {kind!r}")


def check_split(strategy, dataset, batches, steps):
    """Whether the distributed dataset hands each replica its slice of each global batch.

    The Trainer distributes the same Dataset with `experimental_distribute_dataset`; with R
    replicas in all, the replica of global index g (worker w, local replica r: g = w * local + r)
    must get rows [g*B/R, (g+1)*B/R) of the global batch of the step.
    Returns (ok, [[local per-replica batch sizes] per step]).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    worker = resolver.task_id if resolver is not None and resolver.cluster_spec().as_dict() else 0
    per = GLOBAL_BATCH // strategy.num_replicas_in_sync
    it = iter(strategy.experimental_distribute_dataset(dataset))
    ok, sizes = True, []
    n = batches["x_real"].shape[0]
    for step in range(steps):
        element = next(it)
        for name in ("x_real", "y_org", "z_trg"):
            parts = strategy.experimental_local_results(element[name])
            if name == "x_real":
                sizes.append([int(p.shape[0]) for p in parts])
            for r, part in enumerate(parts):
                g = (worker or 0) * len(parts) + r
                want = batches[name][step % n][g * per : (g + 1) * per]
                if not np.array_equal(np.asarray(part), want):
                    ok = False
    return ok, sizes


def run_init(task):
    import keras

    from stargan_tf.model_dir import save_networks
    from stargan_tf.networks import build_networks, official_variable_map

    keras.utils.set_random_seed(task.get("seed", 0))
    nets = build_networks(model_config())
    rng = np.random.default_rng(task.get("seed", 0) + 1)
    min_abs = task.get("min_abs_noise", MIN_ABS_BIAS_NOISE)
    perturbed = 0
    for key, var in sorted(official_variable_map(nets).items()):
        if key.endswith(".bias"):
            var.assign(var.numpy() + bias_noise(rng, var.shape, min_abs))
            perturbed += 1
    save_networks(nets, task["dir"], ema=False)
    return {
        "perturbed_biases": perturbed,
        "num_weights": len(official_variable_map(nets)),
        "min_abs_bias": float(
            min(
                np.abs(v.numpy()).min()
                for k, v in official_variable_map(nets).items()
                if k.endswith(".bias")
            )
        ),
    }


def run_train(task):
    from stargan_tf.errors import UserError
    from stargan_tf.training.config import TrainConfig
    from stargan_tf.training.preemption import Preempted
    from stargan_tf.training.trainer import Trainer

    strategy = make_strategy(task["strategy"])
    batches = make_batches(task.get("data_seed", 0), task.get("num_batches", 4))
    dataset = make_dataset(batches)
    overrides = dict(task.get("config", {}))
    config = TrainConfig(
        model=model_config(),
        workdir=task["workdir"],
        batch_size=GLOBAL_BATCH,
        total_iters=task["total_iters"],
        init_from=task.get("init_dir", ""),
        **overrides,
    )
    result = {"num_replicas": int(strategy.num_replicas_in_sync)}
    if task.get("check_split"):
        result["split_ok"], result["split_sizes"] = check_split(
            strategy, dataset, batches, task["check_split"]
        )
    try:
        trainer = Trainer(
            config, strategy, dataset, sample_input=sample_input() if task.get("sample") else None
        )
        result["is_chief"] = bool(trainer.chief)
        # Count the iterations this process runs (a resumed run runs only the remaining ones).
        step_fn, steps_run, step_seconds = trainer._train_step, [], []

        sigterm_at = task.get("sigterm_self_at_step")

        def counting_step(iterator, stop):
            steps_run.append(int(trainer.step.numpy()))
            if sigterm_at is not None and steps_run[-1] == sigterm_at:
                os.kill(os.getpid(), signal.SIGTERM)  # as a cluster manager preempting this task
            begin = time.time()
            out = step_fn(iterator, stop)
            step_seconds.append(time.time() - begin)
            return out

        trainer._train_step = counting_step
        started = time.time()
        try:
            metrics = trainer.train()
        except Preempted as e:
            result["preempted_at"] = e.step
            metrics = {}
        result["steps_run"] = steps_run
        result["step_seconds"] = [round(t, 2) for t in step_seconds]
        result["train_seconds"] = time.time() - started
    except UserError as e:
        result["error"] = {"type": type(e).__name__, "message": str(e), "user_error": True}
        return result
    result["step"] = int(trainer.step.numpy())
    result["metrics"] = metrics
    weights = weights_of(trainer)
    result["checksum"] = checksum(weights)
    if task.get("weights_out"):
        np.savez(task["weights_out"], **weights)
    return result


def die_with_parent():
    """Linux: SIGKILL this process when the test process dies (no orphaned workers)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv):
    die_with_parent()
    spec = json.loads(argv[1])
    import tensorflow as tf
    from absl import logging

    logging.set_verbosity(logging.INFO)  # the Trainer's progress lines, in stderr

    if spec.get("devices"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(spec["devices"])]
        )
    if spec.get("deterministic"):
        tf.config.experimental.enable_op_determinism()
    results = []
    for task in spec["tasks"]:
        started = time.time()
        try:
            if task["kind"] == "init":
                result = run_init(task)
            elif task["kind"] == "train":
                result = run_train(task)
            else:
                raise ValueError(f"unknown task kind {task['kind']!r}")
        except Exception as e:  # reported to the test with its traceback, then exit 1
            results.append(
                {
                    "error": {
                        "type": type(e).__name__,
                        "message": str(e),
                        "user_error": False,
                        "traceback": traceback.format_exc(),
                    }
                }
            )
            print(RESULT_PREFIX + json.dumps({"results": results}), flush=True)
            return 1
        result["seconds"] = time.time() - started
        results.append(result)
    print(RESULT_PREFIX + json.dumps({"results": results}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
