#!/usr/bin/env python3
"""Which weight storage of the modulated convolutions learns at the official optimiser settings.

  python tools/modconv_storage_study.py

A student GenResBlk fits a randomly initialised teacher GenResBlk (same shapes; random inputs and
styles) with the official optimiser (Adam lr 1e-4, beta1 0, beta2 0.99, L2 weight decay 1e-4,
stargan_tf.training.optimizer.AdamL2), once with He-scaled stored kernels (the default) and once
with StyleGAN2's equalised-lr storage (N(0, 1) kernels scaled at run time). With demodulation
the output ignores the kernels' scale, so Adam's relative step is lr / |w|: the equalised form
is expected to learn sqrt(fan_in / 2) times more slowly. Both students start from the same
function (the same normal draws, stored at different scales). Prints the held-out loss relative
to its start. Measured (2-core CPU, ~15 s at 64 channels):

  64 channels, 16x16:  He-scaled 0.915 / 0.818 / 0.605 at steps 100 / 300 / 1000,
                       equalised 0.978 / 0.940 / 0.833;
  256 channels, 8x8:   He-scaled 0.864 / 0.758 / 0.540, equalised 0.970 / 0.930 / 0.840.

(The 1x1 shortcut, the affine layers and ToRGB learn alike in both: only the demodulated 3x3
kernels differ, so the gap is smaller than sqrt(fan_in / 2).)
"""

import time

import numpy as np
import tensorflow as tf
from absl import flags

from stargan_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_integer("channels", 64, "Channels of the blocks.")
flags.DEFINE_integer("size", 16, "Feature map side in pixels.")
flags.DEFINE_integer("steps", 1000, "Optimiser steps per storage.")
flags.DEFINE_float("lr", 1e-4, "Learning rate (official: 1e-4).")
flags.DEFINE_list("report_at", ["100", "300", "1000"], "Steps at which to print the loss.")


def batches(rng, count, channels, size):
    """`count` batches (x [4, size, size, channels], s [4, 16]) of unit normal values."""
    return [
        (
            tf.constant(rng.normal(size=[4, size, size, channels]), tf.float32),
            tf.constant(rng.normal(size=[4, 16]), tf.float32),
        )
        for _ in range(count)
    ]


def fit(equalized_lr, teacher, held_out_data, steps, lr, report_at):
    """Fits a fresh student to `teacher`, each step on new random inputs (no overfitting)."""
    import keras

    from stargan_tf.layers.gen_resblk import GenResBlk
    from stargan_tf.training.optimizer import AdamL2

    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    x0, s0 = held_out_data[0]
    student = GenResBlk(teacher.dim_in, teacher.dim_out, equalized_lr=equalized_lr)
    student(x0, s0)
    opt = AdamL2(lr, 0.0, 0.99, 1e-8, 1e-4)
    opt.build(student.trainable_variables)

    def loss_fn(x, s):
        h_t, rgb_t = teacher(x, s)
        h, rgb = student(x, s)
        return tf.reduce_mean(tf.square(h - h_t)) + tf.reduce_mean(tf.square(rgb - rgb_t))

    @tf.function
    def step(x, s):
        with tf.GradientTape() as tape:
            loss = loss_fn(x, s)
        grads = tape.gradient(loss, student.trainable_variables)
        opt.apply_gradients(zip(grads, student.trainable_variables))
        return loss

    def held_out():
        return float(np.mean([loss_fn(x, s) for x, s in held_out_data]))

    start = held_out()
    out = {}
    for i in range(1, steps + 1):
        step(*batches(rng, 1, x0.shape[-1], x0.shape[1])[0])
        if i in report_at:
            out[i] = held_out() / start
    return start, out


def main(argv):
    del argv  # Unused.
    import keras

    from stargan_tf.layers.gen_resblk import GenResBlk

    held_out_data = batches(np.random.default_rng(0), 4, FLAGS.channels, FLAGS.size)
    keras.utils.set_random_seed(0)
    c = FLAGS.channels
    teacher = GenResBlk(c, c)
    teacher(*held_out_data[0])
    report_at = sorted(int(r) for r in FLAGS.report_at)
    for equalized_lr in (False, True):
        t0 = time.monotonic()
        start, out = fit(equalized_lr, teacher, held_out_data, FLAGS.steps, FLAGS.lr, report_at)
        name = "equalised-lr (N(0,1) stored)" if equalized_lr else "He-scaled stored"
        ratios = ", ".join(f"step {k}: {v:.3f}" for k, v in out.items())
        print(
            f"{name:30s} start loss {start:.4f}; loss / start at {ratios} "
            f"({time.monotonic() - t0:.0f} s)"
        )


if __name__ == "__main__":
    cli.run(main)
