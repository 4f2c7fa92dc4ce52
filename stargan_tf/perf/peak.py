"""The machine's measured arithmetic peak: a large fp32 3×3 convolution and a large matmul.

`measure_in_fresh_process` measures them in a process of their own, with TensorFlow's default
thread pools: the process being benchmarked may have fewer intra-op threads
(stargan_tf/training/threads.py), and the peak is the machine's, not that process's.
"""

import json
import sys
import time

import tensorflow as tf

# The convolution the peak is quoted for: batch 4, 64×64, 256 -> 256 channels, 3×3.
CONV_SHAPE = (4, 64, 64, 256)
MATMUL_N = 2048


def _best_rate(fn, flops, seconds):
    """GFLOP/s of the fastest call of `fn` over about `seconds` (after one warm-up call)."""
    fn().numpy()
    best, deadline = float("inf"), time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        fn().numpy()
        best = min(best, time.perf_counter() - start)
        if time.perf_counter() > deadline:
            return flops / best / 1e9


def conv_peak(seconds=3.0, dtype=tf.float32):
    """GFLOP/s of a 3×3 SAME convolution of CONV_SHAPE (the bulk of a StarGAN v2 iteration)."""
    n, h, w, c = CONV_SHAPE
    x = tf.random.normal(CONV_SHAPE, dtype=tf.float32)
    k = tf.random.normal((3, 3, c, c), dtype=tf.float32) * 0.02
    x, k = tf.cast(x, dtype), tf.cast(k, dtype)
    # A scalar out, so fetching the result costs nothing.
    fn = tf.function(lambda: tf.reduce_sum(tf.nn.conv2d(x, k, 1, "SAME")[0, 0, 0]))
    return _best_rate(fn, 2.0 * n * h * w * c * c * 9, seconds)


def matmul_peak(seconds=2.0, dtype=tf.float32):
    """GFLOP/s of a MATMUL_N-cubed matrix product."""
    a = tf.cast(tf.random.normal((MATMUL_N, MATMUL_N)), dtype)
    b = tf.cast(tf.random.normal((MATMUL_N, MATMUL_N)), dtype)
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)[0, :1]))
    return _best_rate(fn, 2.0 * MATMUL_N**3, seconds)


def measure(seconds, bf16=False):
    """{conv_peak_gflops, matmul_peak_gflops, peak_gflops (the larger)[, bf16_conv_peak_gflops]}
    in this process."""
    peaks = {"conv_peak_gflops": conv_peak(seconds), "matmul_peak_gflops": matmul_peak(seconds)}
    peaks["peak_gflops"] = max(peaks.values())
    if bf16:
        peaks["bf16_conv_peak_gflops"] = conv_peak(seconds, tf.bfloat16)
    return peaks


def measure_in_fresh_process(seconds, bf16=False, timeout=1800):
    """`measure` run by `python -m stargan_tf.perf.peak` (TensorFlow's default threads).

    Raises:
      RuntimeError: that process failed (its stderr's tail in the message) or timed out.
    """
    from stargan_tf.perf.sweep import run_child

    argv = [sys.executable, "-m", "stargan_tf.perf.peak", str(seconds)] + (["bf16"] if bf16 else [])
    stdout = run_child(argv, timeout)[0]
    return json.loads(stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # python -m stargan_tf.perf.peak SECONDS [bf16]: one JSON line
    print(json.dumps(measure(float(sys.argv[1]), bf16="bf16" in sys.argv[2:])))
