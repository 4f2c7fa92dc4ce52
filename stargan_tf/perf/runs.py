"""Timed runs of the training iteration and of SavedModel inference, on synthetic inputs."""

import os
import resource
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from stargan_tf.perf import flops


def synthetic_batch(config, seed=0):
    """One global batch as the pipeline yields it: uint8 images, int32 domains, float32 codes."""
    rng = np.random.default_rng(seed)
    n, size, m = config.batch_size, config.model.img_size, config.model
    image = lambda: rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)  # noqa: E731
    return {
        "x_real": image(), "y_org": rng.integers(0, m.num_domains, n).astype(np.int32),
        "x_ref": image(), "x_ref2": image(),
        "y_trg": rng.integers(0, m.num_domains, n).astype(np.int32),
        "z_trg": rng.standard_normal((n, m.latent_dim)).astype(np.float32),
        "z_trg2": rng.standard_normal((n, m.latent_dim)).astype(np.float32),
    }  # fmt: skip


def peak_rss_mb():
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def summarize(seconds):
    """Median and spread (min, max) of a list of timings."""
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def time_training(trainer, warmup, iters, log=print):
    """Runs `warmup` untimed then `iters` timed training iterations of `trainer`.

    The trainer's input must be a Dataset of fixed-shape batches (synthetic_batch, repeated).
    Returns dict: seconds (list, one per timed iteration), flops (count_graph_flops of the
    iteration's graph: the FLOPs executed), official_order_flops (of the iteration traced in the
    official order of ops, stargan_tf/layers/op_order.py: the model FLOPs), trace_seconds.
    """
    iterator = trainer.make_iterator(0)
    start = time.perf_counter()
    graph = trainer.train_step_graph(iterator)
    trace_seconds = time.perf_counter() - start
    counted = flops.count_graph_flops(graph)
    # Model FLOPs: the same iteration traced in the official code's order of ops.
    official = flops.count_graph_flops(trainer.train_step_graph(iterator, official_order=True))
    for i in range(warmup):
        start = time.perf_counter()
        trainer.run_iteration(iterator)
        log(f"warm-up iteration {i + 1}/{warmup}: {time.perf_counter() - start:.2f} s")
    seconds = []
    for i in range(iters):
        start = time.perf_counter()
        trainer.run_iteration(iterator)
        seconds.append(time.perf_counter() - start)
        log(f"iteration {i + 1}/{iters}: {seconds[-1]:.2f} s")
    return {
        "seconds": seconds,
        "flops": counted,
        "official_order_flops": official,
        "trace_seconds": trace_seconds,
    }


def time_inference(networks, batch_size, iters, warmup=1, seed=0):
    """Reference-guided translation through an exported SavedModel: images per second.

    Exports `networks` (the EMA networks) with the serving signatures, loads the SavedModel back
    and times its `translate_reference` signature on a batch of `batch_size` source images and
    references. Returns dict: images_per_second, seconds (per batch, list), export_seconds.
    """
    from stargan_tf.inference.serving import write_saved_model

    size = networks.config.img_size
    rng = np.random.default_rng(seed)
    images = tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32))
    refs = tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)).astype(np.float32))
    domains = tf.constant(rng.integers(0, networks.config.num_domains, batch_size), tf.int64)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "1")
        start = time.perf_counter()
        write_saved_model(networks, path)
        export_seconds = time.perf_counter() - start
        loaded = tf.saved_model.load(path)
        translate = loaded.signatures["translate_reference"]
        call = lambda: translate(images=images, reference_images=refs, target_domain=domains)  # noqa: E731
        for _ in range(warmup):
            next(iter(call().values())).numpy()
        seconds = []
        for _ in range(iters):
            start = time.perf_counter()
            next(iter(call().values())).numpy()
            seconds.append(time.perf_counter() - start)
    return {
        "images_per_second": batch_size / statistics.median(seconds),
        "seconds": seconds,
        "export_seconds": export_seconds,
    }
