"""The size sweep of `tools/benchmark.py --sweep`: our training iteration beside the official one
at every size, in one run, and the training command itself end to end.

Each measurement runs in a process of its own (a fresh TensorFlow, its own thread pools and
memory), one after the other; the CPU time of each child (user and system) is read from
`resource.getrusage(RUSAGE_CHILDREN)` around it.
"""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# name -> the config; 32 px is the small config of issue 22, 128 px the official dim_in at batch 4.
SWEEP = {
    "small32": dict(img_size=32, batch_size=8, num_domains=3, max_conv_dim=128, dim_in=32),
    "official64": dict(img_size=64, batch_size=4, num_domains=3, max_conv_dim=512, dim_in=0),
    "size128": dict(img_size=128, batch_size=4, num_domains=2, max_conv_dim=512, dim_in=0),
    "official256": dict(img_size=256, batch_size=1, num_domains=2, max_conv_dim=512, dim_in=0),
    "afhq512": dict(img_size=512, batch_size=1, num_domains=3, max_conv_dim=512, dim_in=0),
    "afhq512-modconv": dict(
        img_size=512, batch_size=1, num_domains=3, max_conv_dim=512, dim_in=0, decoder="modconv"
    ),
}
END_TO_END = ("small32", "official64", "official256")  # the sizes the check names


def _child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime, usage.ru_stime


def _timed_out(argv, timeout):
    return RuntimeError(f"{' '.join(argv[:3])} ... did not finish in {timeout} s")


def _failed(argv, returncode, output):
    tail = "\n".join(output.strip().splitlines()[-5:])
    return RuntimeError(f"{' '.join(argv[:3])} ... exited with {returncode}:\n{tail}")


def run_child(argv, timeout, env=None):
    """Runs argv; returns (stdout, stderr, user seconds, system seconds, wall seconds).

    Raises:
      RuntimeError: the child failed (its stderr's tail in the message) or timed out.
    """
    user0, sys0 = _child_cpu()
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise _timed_out(argv, timeout) from None
    wall = time.monotonic() - start
    user1, sys1 = _child_cpu()
    if proc.returncode != 0:
        raise _failed(argv, proc.returncode, proc.stderr)
    return proc.stdout, proc.stderr, user1 - user0, sys1 - sys0, wall


def process_cpu_seconds(pid):
    """(user, system) CPU seconds a running process has used so far, all its threads (Linux's
    /proc/<pid>/stat), or None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "pid (name)": state is field 3
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks  # utime, stime: fields 14 and 15


def run_logging_child(argv, timeout, pattern):
    """Runs argv, reading its output (stdout and stderr, merged) as it comes; at every line that
    matches `pattern` notes the child's CPU time so far (`process_cpu_seconds`).

    Returns (output, [CPU time at each matching line], user seconds, system seconds, wall).
    Raises RuntimeError as `run_child` does.
    """
    user0, sys0 = _child_cpu()
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    lines, marks = [], []
    try:
        for line in proc.stdout:
            lines.append(line)
            if pattern.search(line):
                marks.append(process_cpu_seconds(proc.pid))
        proc.wait()
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
    wall = time.monotonic() - start
    user1, sys1 = _child_cpu()
    output = "".join(lines)
    if timed_out:
        raise _timed_out(argv, timeout)
    if proc.returncode != 0:
        raise _failed(argv, proc.returncode, output)
    return output, marks, user1 - user0, sys1 - sys0, wall


def ours(benchmark_py, row, iters, warmup, timeout):
    """tools/benchmark.py --json for one sweep row (training iteration only)."""
    argv = [
        sys.executable,
        benchmark_py,
        "--json",
        "--inference=false",
        f"--iters={iters}",
        f"--warmup={warmup}",
        "--peak_seconds=2",
    ] + [f"--{k}={v}" for k, v in row.items()]
    out, _, user, system, _ = run_child(argv, timeout)
    result = json.loads(out[out.index("{") :])
    result.update(user_seconds=user, system_seconds=system)
    return result


def official(python, bench_py, row, iters, warmup, timeout):
    """The official iteration (../shared/reference/bench_official_step.py): seconds per iteration,
    or None for a config it cannot run (the modconv decoder has no official counterpart)."""
    if row.get("decoder", "adain") != "adain":
        return None
    argv = [
        python,
        bench_py,
        f"--img-size={row['img_size']}",
        f"--batch={row['batch_size']}",
        f"--num-domains={row['num_domains']}",
        f"--max-conv-dim={row['max_conv_dim']}",
        f"--dim-in={row['dim_in']}",
        f"--iters={iters}",
        f"--warmup={warmup}",
        f"--threads={os.cpu_count() or 1}",
    ]
    out, _, _, _, _ = run_child(argv, timeout)
    return float(re.findall(r"official_step_s=([0-9.]+)", out)[-1])


def write_split(directory, img_size, num_domains, per_domain=24, seed=0):
    """A TFRecord split of random-noise JPEG images (the decoding cost of real ones)."""
    import numpy as np
    from PIL import Image

    from stargan_tf.data import tfrecords

    rng = np.random.default_rng(seed)
    folder = os.path.join(directory, "images")
    for d in range(num_domains):
        os.makedirs(os.path.join(folder, f"domain{d}"))
        for i in range(per_domain):
            pixels = rng.integers(0, 256, (img_size, img_size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"domain{d}", f"{i}.jpg"), quality=90)
    split = os.path.join(directory, "train")
    tfrecords.write_split(folder, tfrecords.find_images(folder), split, img_size, workers=1)
    return split


STEP_LINE = re.compile(r"step (\d+)/\d+ \| [0-9.]+ img/s \| ([0-9.]+) s/step")


def end_to_end(row, iters, print_every, timeout):
    """`python -m stargan_tf.train` on a TFRecord split it writes: the median seconds per
    iteration over the logged windows after the first (which holds tracing), and CPU time."""
    with tempfile.TemporaryDirectory(prefix="stargan-e2e-") as tmp:
        split = write_split(tmp, row["img_size"], row["num_domains"])
        argv = [
            sys.executable,
            "-m",
            "stargan_tf.train",
            f"--train_data={split}",
            f"--workdir={os.path.join(tmp, 'run')}",
            f"--total_iters={iters}",
            f"--print_every={print_every}",
            f"--save_every={iters}",
            f"--sample_every={iters}",
            "--w_hpf=0",
        ]
        argv += [f"--{k}={v}" for k, v in row.items() if k != "num_domains"]
        err, marks, user, system, wall = run_logging_child(argv, timeout, STEP_LINE)
    windows = [float(s) for _, s in STEP_LINE.findall(err)][1:]
    if not windows:
        raise RuntimeError(f"no progress lines after the first in the training log:\n{err[-500:]}")
    result = {
        "seconds_per_iteration": statistics.median(windows),
        "user_seconds": user,
        "system_seconds": system,
        "wall_seconds": wall,
    }
    # The CPU time of the timed windows alone (from the first progress line to the last): the
    # training loop's, without start-up, tracing and the final save, which dominate short runs.
    if None not in marks[:1] + marks[-1:]:
        (user0, sys0), (user1, sys1) = marks[0], marks[-1]
        result.update(window_user_seconds=user1 - user0, window_system_seconds=sys1 - sys0)
    return result


def _system_share(e2e):
    """System over user CPU time of the timed windows, and of the whole run in brackets."""
    whole = f"{e2e['system_seconds'] / max(e2e['user_seconds'], 1e-9):.1%}"
    if "window_user_seconds" not in e2e:
        return whole
    window = e2e["window_system_seconds"] / max(e2e["window_user_seconds"], 1e-9)
    return f"{window:.1%} ({whole})"


def format_table(rows):
    """The sweep as a Markdown table (the README's performance table)."""
    lines = [
        "| config | ours s/iter | official s/iter | ours / official | peak used (executed) | "
        "peak used (model FLOPs) | "
        "end to end s/iter | end to end / step | system / user time (whole run) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        step = r["ours"]["seconds_per_iteration"]
        off = r.get("official")
        e2e = r.get("end_to_end")
        cells = [
            name,
            f"{step:.3f}",
            f"{off:.3f}" if off else "-",
            f"{step / off:.2f}x" if off else "-",
            f"{r['ours']['fraction_of_peak']:.0%}",
            f"{r['ours']['model_fraction_of_peak']:.0%}",
            f"{e2e['seconds_per_iteration']:.3f}" if e2e else "-",
            f"{e2e['seconds_per_iteration'] / step:.2f}x" if e2e else "-",
            _system_share(e2e) if e2e else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
