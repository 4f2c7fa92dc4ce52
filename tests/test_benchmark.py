"""tools/benchmark.py and the FLOP counter it reports with (stargan_tf/perf)."""

import collections
import json
import re

import numpy as np
import pytest
import tensorflow as tf

from stargan_tf.perf import flops
import sys

from cli_helpers import assert_usage_error, run_command
from support import REPO

BENCHMARK = REPO / "tools" / "benchmark.py"


def test_flops_of_conv_its_gradients_and_matmul():
    x = tf.random.normal((2, 8, 8, 3))
    k = tf.Variable(tf.random.normal((3, 3, 3, 5)))
    w = tf.Variable(tf.random.normal((5, 7)))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, k, 1, "SAME")  # 2*(2*8*8*5)*9*3 = 34560
            z = tf.matmul(tf.reduce_mean(y, [1, 2]), w)  # 2*2*5*7 = 140
            loss = tf.reduce_sum(z)
        # Gradients: filter 34560, input 34560; matmul d/dA 2*2*7*5 = 140, d/dB 140.
        g_x, g_k, g_w = tape.gradient(loss, [x, k, w])
        k.assign_sub(0.1 * g_k)
        w.assign_sub(0.1 * g_w)
        # A conv nothing uses: TensorFlow prunes it, the count leaves it out.
        tf.nn.conv2d(x, k, 2, "SAME")
        return g_x, loss

    counted = flops.count_function_flops(step, x)
    assert counted["conv"] == 3 * 34560
    assert counted["matmul"] == 3 * 140
    assert counted["total"] == 3 * 34560 + 3 * 140


def test_conv_floor_finds_each_convolution_of_a_step_and_times_it_alone():
    from stargan_tf.perf import conv_floor

    x = tf.random.normal((2, 8, 8, 3))
    k = tf.Variable(tf.random.normal((3, 3, 3, 5)))
    k2 = tf.Variable(tf.random.normal((4, 4, 5, 5)))

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.nn.conv2d(x, k, 1, "SAME")  # [2, 8, 8, 5]
            y = tf.nn.conv2d(y, k2, 2, "SAME")  # [2, 4, 4, 5]
            loss = tf.reduce_sum(tf.nn.conv2d(y, k2, 2, "SAME"))  # the same op, other shapes
        g_x, g_k, g_k2 = tape.gradient(loss, [x, k, k2])
        k.assign_sub(0.1 * g_k)
        k2.assign_sub(0.1 * g_k2)
        return g_x, loss  # (without loss, its convolution would be pruned: nothing reads it)

    graph = step.get_concrete_function(x).graph
    counts, per_run = conv_floor.conv_signatures(graph)
    # 3 forward convolutions, 3 filter gradients, 3 input gradients; none is the same as another.
    assert sorted(collections.Counter(sig.op for sig in counts).items()) == [
        ("Conv2D", 3), ("Conv2DBackpropFilter", 3), ("Conv2DBackpropInput", 3)
    ]  # fmt: skip
    assert set(counts.values()) == {1}
    assert sum(per_run[s] * n for s, n in counts.items()) == flops.count_graph_flops(graph)["conv"]
    first = next(s for s in counts if s.op == "Conv2D" and s.shapes[1] == (3, 3, 3, 5))
    assert first.shapes[0] == (2, 8, 8, 3) and first.strides == (1, 1, 1, 1)
    grad_in = next(
        s for s in counts if s.op == "Conv2DBackpropInput" and s.shapes[0] == (2, 8, 8, 5)
    )
    assert grad_in.shapes == ((2, 8, 8, 5), (4, 4, 5, 5), (2, 4, 4, 5))  # sizes, filter, dy
    assert first.dtype == grad_in.dtype == "float32"
    # Each runs alone on operands of those shapes (a crash or a shape error fails here).
    floor = conv_floor.conv_floor(graph, seconds_each=0.01)
    assert floor["flops"] == flops.count_graph_flops(graph)["conv"]
    assert len(floor["rows"]) == 9 and floor["seconds"] > 0
    assert floor["seconds"] == pytest.approx(sum(r["seconds"] for r in floor["rows"]))
    # The op alone gives the graph's values (its operands built from the signature's shapes).
    alone = conv_floor._conv_fn(grad_in)()
    assert alone.shape == (2, 8, 8, 5)


def test_a_function_called_twice_is_counted_twice():
    from stargan_tf.perf import conv_floor

    k = tf.random.normal((3, 3, 4, 4))
    conv = tf.function(lambda x: tf.nn.conv2d(x, k, 1, "SAME"))  # 2*(1*8*8*4)*9*4 = 18432

    @tf.function
    def twice(x):
        return conv(conv(x))

    graph = twice.get_concrete_function(tf.zeros((1, 8, 8, 4))).graph
    assert flops.count_graph_flops(graph)["conv"] == 2 * 18432
    counts, per_run = conv_floor.conv_signatures(graph)
    assert list(counts.values()) == [2] and list(per_run.values()) == [18432]


def test_a_variable_read_inside_an_xla_function_is_counted():
    """As in an XLA step (--jit_compile): the nested function reads the kernel from a variable
    it captures; its FunctionDef imported back would not know the kernel's shape."""
    k = tf.Variable(tf.random.normal((3, 3, 2, 5)))
    inner = tf.function(lambda x: tf.nn.conv2d(x, k, 1, "SAME"), jit_compile=True)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(inner(x))
        g_x, g_k = tape.gradient(loss, [x, k])  # the input and filter gradients
        k.assign_sub(0.1 * g_k)
        return g_x

    counted = flops.count_function_flops(step, tf.zeros((1, 4, 4, 2)))
    assert counted["conv"] == 3 * (2 * 1 * 4 * 4 * 5 * 9 * 2)


def test_matmuls_are_timed_alone_too():
    # Convolutions on small, wide maps run as matmuls over patches (layers/patch_conv.py).
    from stargan_tf.perf import conv_floor

    b = tf.random.normal((6, 4))
    fn = tf.function(lambda a: tf.matmul(a, b, transpose_a=True))  # [6, 5]^T x [6, 4]
    graph = fn.get_concrete_function(tf.zeros((6, 5))).graph
    counts, per_run = conv_floor.conv_signatures(graph)
    [(sig, runs)] = counts.items()
    assert (sig.op, sig.shapes, sig.transposes, runs) == (
        "MatMul",
        ((6, 5), (6, 4)),
        (True, False),
        1,
    )
    assert per_run[sig] == 2 * 5 * 4 * 6 == flops.count_graph_flops(graph)["matmul"]
    assert conv_floor._conv_fn(sig)().shape == (5, 4)


def test_flops_need_static_shapes():
    k = tf.random.normal((3, 3, 3, 4))
    fn = tf.function(lambda x: tf.nn.conv2d(x, k, 1, "SAME"))
    try:
        flops.count_function_flops(fn, tf.TensorSpec([None, 8, 8, 3]))
    except flops.UnknownShapeError as e:
        assert "static" in str(e)
    else:
        raise AssertionError("a dynamic batch must not be counted silently")


@pytest.mark.slow  # traces and times a training step: make test-slow
def test_benchmark_tool_json_on_a_tiny_model():
    status, out, err = run_command(
        [
            sys.executable,
            BENCHMARK,
            "--preset=official64",
            "--img_size=32",
            "--dim_in=8",
            "--max_conv_dim=16",
            "--style_dim=8",
            "--latent_dim=4",
            "--batch_size=2",
            "--iters=2",
            "--warmup=1",
            "--peak_seconds=0.3",
            "--inference_iters=2",
            "--profile",
            "--conv_floor",
            "--json",
        ]
    )
    assert status == 0, err[-3000:]
    r = json.loads(out)
    for key in (
        "seconds_per_iteration",
        "images_per_second",
        "gflops_per_iteration",
        "achieved_gflops",
        "peak_gflops",
        "peak_rss_mb",
        "inference_images_per_second",
    ):
        assert r[key] > 0, key
    assert r["img_size"] == 32 and r["batch_size"] == 2 and r["num_domains"] == 3
    assert np.isclose(r["images_per_second"], 2 / r["seconds_per_iteration"])
    assert np.isclose(r["achieved_gflops"], r["gflops_per_iteration"] / r["seconds_per_iteration"])
    # Model FLOPs (the official order of ops): more than executed, the encoders' and decoder's
    # resampling convolutions being folded in ours.
    assert r["model_gflops_per_iteration"] > r["gflops_per_iteration"]
    assert np.isclose(
        r["model_fraction_of_peak"],
        r["model_gflops_per_iteration"] / r["seconds_per_iteration"] / r["peak_gflops"],
    )
    assert r["seconds_min"] <= r["seconds_per_iteration"] <= r["seconds_max"]
    assert "iteration 2/2" in err
    # The profile of one more iteration: its op time, most of it in the convolutions' kernels.
    profile = r["profile"]
    assert profile["op_seconds_total"] > 0 and 0 < profile["conv_fraction"] <= 1
    assert any("Conv2D" in row["op"] for row in profile["top_ops"])
    # The convolutions timed alone (their speed is measured, not judged: no bound asserted).
    floor = r["conv_floor"]
    assert 0 < floor["seconds"] and 0 < floor["of_iteration"]
    assert floor["top"] and all(row["runs"] >= 1 for row in floor["top"])


def test_benchmark_tool_usage_errors():
    assert_usage_error(run_command([sys.executable, BENCHMARK, "--preset=nope"]), "preset")
    assert_usage_error(run_command([sys.executable, BENCHMARK, "--iters=0"]), "--iters")


def test_input_benchmark_reports_each_pipeline():
    # tools/benchmark_input.py on tiny images: every row is measured and compared with raw
    # decoding (the numbers themselves are for the README, not for a test).
    status, out, err = run_command(
        [
            sys.executable,
            REPO / "tools" / "benchmark_input.py",
            "--sizes=48",
            "--num_images=12",
            "--batch_size=2",
            "--seconds=0.2",
            "--rounds=1",
        ]
    )
    assert status == 0, err[-3000:]
    assert "48 px" in out and "raw decode_jpeg" in out
    for name in ("pipeline", "host-aug", "+device", "device alone"):
        (line,) = [ln for ln in out.splitlines() if ln.strip().startswith(name + " ")]
        rate, ratio = re.search(r" (\d+) images/s .*: ([\d.]+)x raw images/s", line).groups()
        assert float(rate) > 0 and float(ratio) > 0, line


@pytest.mark.slow  # a tiny training command and a benchmark process: make test-slow
def test_sweep_rows_and_the_end_to_end_run_on_a_tiny_config(tmp_path):
    from stargan_tf.perf import sweep

    tiny_row = dict(img_size=32, batch_size=2, num_domains=2, max_conv_dim=16, dim_in=8)
    e2e = sweep.end_to_end(tiny_row, iters=12, print_every=3, timeout=900)
    assert e2e["seconds_per_iteration"] > 0 and e2e["user_seconds"] > 0
    assert e2e["system_seconds"] >= 0 and e2e["wall_seconds"] > 0
    # The timed windows' CPU time, read from /proc at the first and last progress lines.
    assert 0 < e2e["window_user_seconds"] < e2e["user_seconds"]
    assert 0 <= e2e["window_system_seconds"] <= e2e["system_seconds"]
    step = sweep.ours(str(BENCHMARK), tiny_row, iters=2, warmup=1, timeout=900)
    assert step["seconds_per_iteration"] > 0 and step["img_size"] == 32
    # No official counterpart of the modconv decoder: that cell stays empty.
    assert sweep.official("python", "bench.py", sweep.SWEEP["afhq512-modconv"], 1, 1, 10) is None
    table = sweep.format_table(
        {"tiny": {"ours": step, "official": 2 * step["seconds_per_iteration"], "end_to_end": e2e}}
    )
    assert "| tiny |" in table and "0.50x" in table
    share = e2e["window_system_seconds"] / e2e["window_user_seconds"]
    assert f"{share:.1%} (" in table


def test_a_logging_child_is_read_as_it_runs_with_its_cpu_time_at_each_mark():
    from stargan_tf.perf import sweep

    # A child that computes between the lines it prints: each mark holds more CPU time (user
    # and system: how the kernel splits it is not this test's business).
    code = (
        "for i in range(3):\n"
        "    sum(j * j for j in range(3_000_000))\n"
        "    print(f'mark {i}', flush=True)\n"
    )
    out, marks, user, system, wall = sweep.run_logging_child(
        [sys.executable, "-c", code], timeout=600, pattern=re.compile(r"^mark \d")
    )
    assert out.splitlines() == ["mark 0", "mark 1", "mark 2"]
    cpu = [u + s for u, s in marks]
    assert len(cpu) == 3 and 0 < cpu[0] < cpu[1] < cpu[2] <= user + system and wall > 0
    with pytest.raises(RuntimeError, match="exited with 3"):
        sweep.run_logging_child([sys.executable, "-c", "exit(3)"], 600, re.compile("x"))


def test_sweep_usage_errors():
    assert_usage_error(run_command([sys.executable, BENCHMARK, "--sweep=size999"]), "size999")
