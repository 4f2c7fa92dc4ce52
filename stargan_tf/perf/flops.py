"""Counts the floating-point operations of a traced TensorFlow graph from its ops' static shapes.

Counted: convolutions (forward, and their input and filter gradients) and matrix products, at
2 FLOPs per multiply-add — the operations that hold practically all of a StarGAN v2 iteration's
arithmetic. Element-wise ops (normalisation, activations, optimizer updates) are left out: they
are memory-bound and a few percent of the FLOPs. Only ops that run are counted: an op none of
whose results reach the function's outputs or a stateful op (a variable update) is pruned by
TensorFlow before it runs (e.g. the filter gradients a nested tape builds for the R1 penalty's
input gradient), and is not counted. Nested functions (tf.function calls, XLA
clusters, gradient functions) are walked as often as they are called.
"""

import collections

import numpy as np

CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


class UnknownShapeError(ValueError):
    """An op that FLOPs are counted for has a shape unknown at trace time."""


def _static(shape, op):
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        raise UnknownShapeError(
            f"{op.type} op {op.name} has shape {shape}: trace with fully static shapes "
            "(fixed batch and image sizes) to count its FLOPs."
        )
    return dims


def _conv_flops(op):
    # Every conv op does, per output (or output-gradient) element, one multiply-add per filter
    # tap and input channel: 2 * |out| * kh * kw * c_in, for the forward and both gradients.
    if op.type == "Conv2D":
        out = _static(op.outputs[0].shape, op)
        kh, kw, c_in, _ = _static(op.inputs[1].shape, op)
    elif op.type == "Conv2DBackpropInput":  # inputs: input_sizes, filter, out_backprop
        out = _static(op.inputs[2].shape, op)
        kh, kw, c_in, _ = _static(op.inputs[1].shape, op)
    else:  # Conv2DBackpropFilter: input, filter_sizes, out_backprop
        out = _static(op.inputs[2].shape, op)
        data_format = op.get_attr("data_format").decode()
        x = _static(op.inputs[0].shape, op)
        c_in = x[-1] if data_format == "NHWC" else x[1]
        kh, kw = _static(op.outputs[0].shape, op)[:2]
    return 2 * int(np.prod(out, dtype=np.int64)) * kh * kw * c_in


def _matmul_flops(op):
    a = _static(op.inputs[0].shape, op)
    b = _static(op.inputs[1].shape, op)
    if op.type == "MatMul":
        transpose_a, transpose_b = op.get_attr("transpose_a"), op.get_attr("transpose_b")
    else:
        transpose_a, transpose_b = op.get_attr("adj_x"), op.get_attr("adj_y")
    m, k = (a[-1], a[-2]) if transpose_a else (a[-2], a[-1])
    n = b[-2] if transpose_b else b[-1]
    out = _static(op.outputs[0].shape, op)
    batch = int(np.prod(out[:-2], dtype=np.int64)) if len(out) > 2 else 1
    return 2 * batch * m * n * k


def _function_names(op):
    """Names of the functions an op calls (PartitionedCall, If/While bodies, XLA launches)."""
    names = []
    for attr in op.node_def.attr.values():
        if attr.HasField("func"):
            names.append(attr.func.name)
        elif attr.HasField("list"):
            names.extend(f.name for f in attr.list.func)
    return names


def _library(graph):
    """name -> FunctionDef of every function the graph (and its outer graphs) defines."""
    library = {}
    for fdef in graph.as_graph_def().library.function:
        library[fdef.signature.name] = fdef
    return library


def _traced_graphs(graph):
    """name -> the FuncGraph each function called from `graph` was traced into, where TensorFlow
    keeps it (with every static shape; a FunctionDef imported back loses some: a variable read
    inside a nested tf.function, as an XLA-compiled step has, comes back with unknown shape)."""
    found, stack = {}, [graph]
    while stack:
        # FuncGraph._functions: the functions a graph calls, by name (private; where it is not
        # there, tally_graph imports the FunctionDefs instead).
        for name, function in getattr(stack.pop(), "_functions", {}).items():
            traced = getattr(function, "graph", None)
            if name not in found and traced is not None:
                found[name] = traced
                stack.append(traced)
    return found


def live_operations(graph):
    """The ops of `graph` that run: those its outputs or its stateful ops depend on."""
    roots = [t.op for t in getattr(graph, "outputs", []) if t is not None]
    roots += list(getattr(graph, "control_outputs", []))
    roots += [
        op for op in graph.get_operations() if op.op_def is not None and op.op_def.is_stateful
    ]
    live, stack = set(), roots
    while stack:
        op = stack.pop()
        if op in live:
            continue
        live.add(op)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op in live]


def tally_graph(graph, tally_op):
    """`tally_op(op)` ({key: count}) summed over the ops of one run of `graph` (a Counter).

    Only live ops count (`live_operations`); the functions an op calls (tf.function calls, XLA
    clusters, gradient functions) are walked as often as they are called.
    """
    library = _library(graph)
    # Functions are tallied from their graphs: the traced ones where TensorFlow kept them, else
    # each FunctionDef imported once, with the shapes it records.
    graphs = _traced_graphs(graph)

    def function_graph(name):
        if name not in graphs:
            from tensorflow.python.framework import function_def_to_graph

            graphs[name] = function_def_to_graph.function_def_to_graph(library[name])
        return graphs[name]

    memo = {}

    def tally(g, key):
        if key in memo:
            return memo[key]
        totals = collections.Counter()
        for op in live_operations(g):
            totals.update(tally_op(op))
            # While/If bodies run a data-dependent number of times; a training step has none
            # with arithmetic in them, and they are counted once.
            for name in _function_names(op):
                if name in library:
                    totals.update(tally(function_graph(name), name))
        memo[key] = totals
        return totals

    return tally(graph, None)


def count_graph_flops(graph):
    """Returns {"conv": flops, "matmul": flops, "total": flops} of one run of `graph`.

    Args:
      graph: a tf.Graph or FuncGraph (e.g. `tf.function(...).get_concrete_function(...).graph`)
        traced with static shapes.

    Raises:
      UnknownShapeError: a counted op has a dynamic shape.
    """

    def op_flops(op):
        if op.type in CONV_OPS:
            return {"conv": _conv_flops(op)}
        if op.type in MATMUL_OPS:
            return {"matmul": _matmul_flops(op)}
        return {}

    counted = tally_graph(graph, op_flops)
    totals = {"conv": counted["conv"], "matmul": counted["matmul"]}
    totals["total"] = totals["conv"] + totals["matmul"]
    return totals


def count_function_flops(fn, *args):
    """FLOPs of one call of the tf.function `fn` on `args` (traced, not run)."""
    concrete = fn.get_concrete_function(*args)
    return count_graph_flops(concrete.graph)


__all__ = ["count_graph_flops", "count_function_flops", "tally_graph", "UnknownShapeError"]
