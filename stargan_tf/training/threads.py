"""TensorFlow's intra-op thread pool for a training run on the CPU.

TensorFlow runs each op on its intra-op pool (an op's own parallel loops: oneDNN's convolutions,
Eigen's element-wise kernels) and schedules independent ops on its inter-op pool; both default to
a thread per core. A StarGAN v2 iteration has many independent ops at any time (D on real and fake
images, each weight's gradient beside the input's), so on a CPU the inter-op pool alone keeps the
cores busy. When the ops are small (small images, small batch) splitting each one across cores
costs more than it gains: every split wakes the other threads and waits for them. On 2 cores
(tools/benchmark.py, 2026-12-05, AMD EPYC, idle): the 32 px small config (batch 8, dim_in 32)
0.195 s per iteration with 2 intra-op threads, 0.134 with 1, and 669k voluntary context switches
per 100 iterations fell to ~3k; at 64 px, batch 4 (official64) one thread was 1-5 % slower (three
runs each), at 256 and 512 px, batch 1, the same within 3 %. So only small workloads get a
smaller pool, and only on a host without a GPU or TPU (their ops run on the accelerator; the host
pools stay TensorFlow's).
"""

import os

import tensorflow as tf

from stargan_tf.data import pipeline

ENV = "TF_NUM_INTRAOP_THREADS"  # the user's own choice, which TensorFlow reads and we keep
SMALL_PIXELS = 8192  # global batch x image pixels: 32 px at batch 8, 64 px at batch 2


def intra_op_threads(batch_size, img_size, cpu_count, accelerators=False, env=None):
    """The intra-op threads a run should set, or None for TensorFlow's default.

    Half the cores, at least one, for a small workload (batch_size * img_size**2 <= SMALL_PIXELS)
    on a host without accelerators, when the user has not set TF_NUM_INTRAOP_THREADS (`env`:
    os.environ by default).
    """
    env = os.environ if env is None else env
    if accelerators or env.get(ENV) or batch_size * img_size**2 > SMALL_PIXELS:
        return None
    return max(1, cpu_count // 2)


def configure(config):
    """Sets the intra-op threads `intra_op_threads` chooses for the TrainConfig `config`.

    Must run before TensorFlow's runtime starts (before a strategy or the first op); where it
    has started already (a notebook, a test process) the pool stays as it is. Returns the
    threads set, or None.
    """
    threads = intra_op_threads(
        config.batch_size, config.model.img_size, os.cpu_count() or 1,
        accelerators=bool(pipeline.accelerators()),
    )  # fmt: skip
    if threads is None:
        return None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # "cannot be modified after initialization"
        return None
    return threads
