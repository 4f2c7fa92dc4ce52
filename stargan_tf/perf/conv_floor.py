"""The convolutions (and matmuls) of one traced iteration, each timed alone: the iteration's floor.

If every other op were free and the convolutions ran one after the other, an iteration would
take the sum, over the iteration's distinct convolutions (op, shapes, strides, padding), of how
often it runs times how long it takes alone. The iteration's 2-D matmuls are counted the same way:
small, wide convolutions run as matmuls over patches (stargan_tf/layers/patch_conv.py), and the
dense layers are matmuls too. That sum, against the FLOPs, says how close to the
machine's conv peak the iteration could get at best with these kernels: what the rest of the ops
cost is the difference to the measured iteration, what the kernels cost on these shapes is the
difference to the peak (e.g. small maps at batch 1, where a 3x3 512-channel kernel is read for
few pixels).
"""

import collections
import statistics
import time

import numpy as np
import tensorflow as tf

from stargan_tf.perf import flops

# One distinct convolution: the op type, its operands' shapes (as `conv_signatures` lists them),
# the dtype it computes in, strides, padding, explicit paddings, dilations; for a MatMul its
# operands' shapes, dtype and (transpose_a, transpose_b), the conv attributes empty.
ConvSignature = collections.namedtuple(
    "ConvSignature",
    ["op", "shapes", "dtype", "strides", "padding", "explicit_paddings", "dilations", "transposes"],
    defaults=[()],
)


def _size_operand(op, i):
    """The shape a size operand (input_sizes, filter_sizes) gives, static or constant."""
    from tensorflow.python.framework import tensor_util

    value = tensor_util.constant_value(op.inputs[i])
    if value is None:
        return tuple(flops._static(op.outputs[0].shape, op))
    return tuple(int(d) for d in value)


def conv_signatures(graph):
    """{ConvSignature: runs per run of `graph`} and {ConvSignature: FLOPs of one run of it}."""
    per_run = {}

    def tally(op):
        shape = lambda i: tuple(flops._static(op.inputs[i].shape, op))  # noqa: E731
        if op.type == "MatMul":
            a, b = shape(0), shape(1)
            transposes = (op.get_attr("transpose_a"), op.get_attr("transpose_b"))
            sig = ConvSignature("MatMul", (a, b), op.get_attr("T").name, (), "", (), (), transposes)
            per_run[sig] = flops._matmul_flops(op)
            return {sig: 1}
        if op.type not in flops.CONV_OPS:
            return {}
        if op.get_attr("data_format").decode() != "NHWC":
            raise ValueError(f"{op.name}: only NHWC convolutions are timed alone")
        # The operands as the op takes them, the sizes' values in place of the size tensors.
        if op.type == "Conv2D":
            shapes = (shape(0), shape(1))  # input, filter
        elif op.type == "Conv2DBackpropInput":
            shapes = (_size_operand(op, 0), shape(1), shape(2))  # input size, filter, dy
        else:
            shapes = (shape(0), _size_operand(op, 1), shape(2))  # input, filter size, dy
        sig = ConvSignature(
            op.type,
            shapes,
            op.get_attr("T").name,
            tuple(op.get_attr("strides")),
            op.get_attr("padding").decode(),
            tuple(op.get_attr("explicit_paddings")),
            tuple(op.get_attr("dilations")),
        )
        per_run[sig] = flops._conv_flops(op)
        return {sig: 1}

    counts = flops.tally_graph(graph, tally)
    return dict(counts), per_run


def _conv_fn(sig, seed=0):
    """A tf.function running the convolution `sig` on fixed random operands."""
    rng = np.random.default_rng(seed)

    def operand(shape):
        return tf.cast(rng.standard_normal(shape).astype(np.float32), sig.dtype)

    attrs = dict(
        strides=list(sig.strides),
        padding=sig.padding,
        explicit_paddings=list(sig.explicit_paddings),
        dilations=list(sig.dilations),
    )
    a, b, c = (list(sig.shapes) + [None])[:3]
    if sig.op == "MatMul":
        x, y = operand(a), operand(b)
        transpose_a, transpose_b = sig.transposes
        return tf.function(
            lambda: tf.linalg.matmul(x, y, transpose_a=transpose_a, transpose_b=transpose_b)
        )
    if sig.op == "Conv2D":
        x, k = operand(a), operand(b)
        return tf.function(lambda: tf.raw_ops.Conv2D(input=x, filter=k, **attrs))
    if sig.op == "Conv2DBackpropInput":
        k, dy = operand(b), operand(c)
        return tf.function(
            lambda: tf.raw_ops.Conv2DBackpropInput(
                input_sizes=list(a), filter=k, out_backprop=dy, **attrs
            )
        )
    x, dy = operand(a), operand(c)
    return tf.function(
        lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=x, filter_sizes=list(b), out_backprop=dy, **attrs
        )
    )


def time_alone(sig, seconds=0.5, max_runs=25):
    """Median seconds of one run of the convolution (or matmul) `sig`, alone (after one untimed
    run)."""
    fn = _conv_fn(sig)
    fn().numpy()
    times, start = [], time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < seconds and len(times) < max_runs):
        t = time.perf_counter()
        fn().numpy()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def conv_floor(graph, seconds_each=0.5, log=None):
    """Times each distinct convolution and matmul of one run of `graph` alone.

    Returns dict: seconds (the sum of runs x seconds alone), flops (of those ops) and rows, one
    per distinct op and operand shapes, largest total first: {op, shapes, strides, runs,
    seconds_each, seconds, gflops_per_second}.
    """
    counts, per_run = conv_signatures(graph)
    rows = []
    for i, (sig, runs) in enumerate(counts.items()):
        t = time_alone(sig, seconds_each)
        rows.append(
            {
                "op": sig.op,
                "shapes": [list(s) for s in sig.shapes],
                "strides": list(sig.strides),
                "runs": runs,
                "seconds_each": t,
                "seconds": runs * t,
                "gflops_per_second": per_run[sig] / t / 1e9,
            }
        )
        if log:
            log(f"op {i + 1}/{len(counts)} alone: {sig.op} {sig.shapes} {t * 1e3:.2f} ms")
    rows.sort(key=lambda r: -r["seconds"])
    return {
        "seconds": sum(r["seconds"] for r in rows),
        "flops": sum(runs * per_run[sig] for sig, runs in counts.items()),
        "rows": rows,
    }


__all__ = ["ConvSignature", "conv_signatures", "conv_floor", "time_alone"]
