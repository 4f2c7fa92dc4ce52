#!/usr/bin/env python3
"""Times the full StarGAN v2 training iteration and SavedModel inference on this machine.

  python tools/benchmark.py --preset=official64 --iters=3
  python tools/benchmark.py --preset=official256 --json
  python tools/benchmark.py --preset=afhq512 --decoder=adain --iters=2 --inference=false

An iteration is the official one: D (latent), D (reference), G (latent), G (reference), EMA, on
synthetic uint8 batches of fixed shape (no input pipeline: tools/benchmark_input.py measures that).
Printed: median and spread of seconds per iteration, images/s, the iteration's FLOPs (counted from
the traced graph: convolutions, their gradients and matmuls, at 2 FLOPs per multiply-add, ops
TensorFlow prunes left out), achieved GFLOP/s, the machine's conv and matmul peak measured in the
same run and the ratio, the same for the model FLOPs (the iteration in the official code's order
of ops, before our folded convolutions cut its arithmetic: stargan_tf/layers/op_order.py), peak
resident memory; then reference-guided translation through the
exported SavedModel (images/s). --json prints one JSON object instead of the report.
--profile adds the op types that take an iteration's time; --conv_floor each distinct convolution
and matmul of the iteration timed alone, and their sum: the iteration's floor if every other op
were free.

Presets (style_dim 64, latent_dim 16, fp32, w_hpf 0 unless a flag overrides):
  official64   64 px, batch 4, 3 domains, max_conv_dim 512, AdaIN decoder
  official256  256 px, batch 1, 2 domains, max_conv_dim 512, AdaIN decoder
  afhq512      512 px, batch 1, 3 domains, max_conv_dim 512, --decoder either
Compare with the official code side by side, in one run (../shared/reference/README.md): machines
of one kind differ by a third.
"""

import json
import os
import sys
import tempfile

from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stargan_tf import cli  # noqa: E402
from stargan_tf.errors import UserError  # noqa: E402

PRESETS = {
    "official64": dict(img_size=64, batch_size=4, num_domains=3, max_conv_dim=512),
    "official256": dict(img_size=256, batch_size=1, num_domains=2, max_conv_dim=512),
    "afhq512": dict(img_size=512, batch_size=1, num_domains=3, max_conv_dim=512),
}

FLAGS = flags.FLAGS
flags.DEFINE_enum("preset", "official64", list(PRESETS), "Named configuration (see above).")
flags.DEFINE_integer("img_size", None, "Override the preset's image side in pixels.")
flags.DEFINE_integer("batch_size", None, "Override the preset's global batch size.")
flags.DEFINE_integer("num_domains", None, "Override the preset's number of domains.")
flags.DEFINE_integer("max_conv_dim", None, "Override the preset's widest channel count.")
flags.DEFINE_integer("dim_in", 0, "First conv's channels; 0 = the official 2**14 // img_size.")
flags.DEFINE_integer("style_dim", 64, "Style code length.")
flags.DEFINE_integer("latent_dim", 16, "Latent code length.")
flags.DEFINE_float("w_hpf", 0.0, "High-pass path weight (> 0 needs FAN weights: --wing_path).")
flags.DEFINE_string("wing_path", "", "FAN weights (wing.ckpt) when --w_hpf > 0.")
flags.DEFINE_string("decoder", "adain", "Generator decoder: adain or modconv.")
flags.DEFINE_enum(
    "mixed_precision",
    "",
    ["", "mixed_float16", "mixed_bfloat16"],
    "Keras mixed-precision policy; empty = fp32.",
)
flags.DEFINE_bool("jit_compile", False, "Compile the per-replica step with XLA.")
flags.DEFINE_integer("iters", 5, "Timed iterations.")
flags.DEFINE_integer("warmup", 1, "Untimed iterations after tracing (the first runs are slow).")
flags.DEFINE_integer(
    "threads",
    0,
    "Intra- and inter-op threads; 0 = the training command's choice (TensorFlow's default, "
    "but fewer intra-op threads for small workloads on a CPU: stargan_tf/training/threads.py).",
)
flags.DEFINE_float("peak_seconds", 3.0, "Time spent measuring each of the conv and matmul peaks.")
flags.DEFINE_bool("inference", True, "Also time translation through an exported SavedModel.")
flags.DEFINE_integer("inference_batch", 0, "Images per inference call; 0 = the training batch.")
flags.DEFINE_integer("inference_iters", 5, "Timed inference calls.")
flags.DEFINE_bool(
    "profile",
    False,
    "After the timed iterations, trace one more with the TF "
    "profiler and print the op types that take the time.",
)
flags.DEFINE_bool(
    "conv_floor",
    False,
    "After the timed iterations, time each distinct convolution and matmul of the "
    "iteration alone: what the iteration would take if every other op were free "
    "(stargan_tf/perf/conv_floor.py).",
)
flags.DEFINE_bool("json", False, "Print one JSON object (progress goes to stderr).")
flags.DEFINE_list(
    "sweep",
    [],
    "Instead of one config: these sweep rows one after the other, each "
    "in its own process (all: every row; see stargan_tf/perf/sweep.py): "
    "small32, official64, size128, official256, afhq512, afhq512-modconv.",
)
flags.DEFINE_bool(
    "end_to_end",
    False,
    "With --sweep: also time the training command on a "
    "TFRecord split it writes, at 32, 64 and 256 px.",
)
flags.DEFINE_integer(
    "end_to_end_iters",
    60,
    "Iterations of each end-to-end run (the first "
    "--print_every window, which holds tracing, is left out).",
)
flags.DEFINE_string(
    "official_python",
    os.environ.get("STARGAN_OFFICIAL_PYTHON", ""),
    "With --sweep: a Python with torch that runs the official iteration "
    "(../shared/reference/bench_official_step.py, which needs STARGAN_OFFICIAL); "
    "default $STARGAN_OFFICIAL_PYTHON; empty: ours only.",
)


def build_config():
    from stargan_tf.config import ModelConfig
    from stargan_tf.training.config import TrainConfig

    p = dict(PRESETS[FLAGS.preset])
    for key in ("img_size", "batch_size", "num_domains", "max_conv_dim"):
        if getattr(FLAGS, key) is not None:
            p[key] = getattr(FLAGS, key)
    names = tuple(f"domain{i}" for i in range(p["num_domains"]))
    try:
        model = ModelConfig(
            img_size=p["img_size"],
            num_domains=p["num_domains"],
            domain_names=names,
            max_conv_dim=p["max_conv_dim"],
            dim_in=FLAGS.dim_in or None,
            style_dim=FLAGS.style_dim,
            latent_dim=FLAGS.latent_dim,
            w_hpf=FLAGS.w_hpf,
            decoder=FLAGS.decoder,
        )
        config = TrainConfig(
            model=model,
            workdir=tempfile.mkdtemp(prefix="stargan-bench-"),
            batch_size=p["batch_size"],
            jit_compile=FLAGS.jit_compile,
            mixed_precision=FLAGS.mixed_precision,
            wing_path=FLAGS.wing_path,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    return config


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])}; all options are --flags.")
    if FLAGS.iters < 1 or FLAGS.warmup < 0:
        raise UserError("--iters must be >= 1 and --warmup >= 0.")
    if FLAGS.sweep:
        return run_sweep()
    import tensorflow as tf

    from stargan_tf.training.trainer import configure_process

    if FLAGS.threads:
        # Set as a user would: the training command's automatic choice then steps aside.
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(FLAGS.threads)
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    out = sys.stderr if FLAGS.json else sys.stdout
    log = lambda msg: print(msg, file=out, flush=True)  # noqa: E731
    config = build_config()
    # As the training command does, before any op runs: the same threads.
    configure_process(config)
    peaks = measure_peaks(log)
    result, trainer = time_training(config, peaks, log)
    if FLAGS.profile:
        result["profile"] = profile_iteration(trainer)
    if FLAGS.conv_floor:
        result["conv_floor"] = time_conv_floor(trainer, result, log)
    if FLAGS.inference:
        result.update(time_inference(trainer, config, log))
    if FLAGS.json:
        print(json.dumps(result, indent=1))
    else:
        print_report(result)


def run_sweep():
    """--sweep: the rows one after the other, ours and (given a torch Python) the official."""
    from stargan_tf.perf import sweep

    names = list(sweep.SWEEP) if FLAGS.sweep == ["all"] else FLAGS.sweep
    unknown = [n for n in names if n not in sweep.SWEEP]
    if unknown:
        raise UserError(
            f"--sweep: unknown rows {', '.join(unknown)}; the rows: "
            f"{', '.join(sweep.SWEEP)} (or all)."
        )
    reference = os.environ.get("STARGAN_REFERENCE") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "reference"
    )
    bench_py = os.path.join(reference, "bench_official_step.py")
    if FLAGS.official_python and not os.path.isfile(bench_py):
        raise UserError(
            f"{bench_py} is missing: set STARGAN_REFERENCE to the folder of bench_official_step.py."
        )
    rows = {}
    for name in names:
        row, timeout = sweep.SWEEP[name], 4 * 3600
        print(f"{name}: ours ...", file=sys.stderr, flush=True)
        rows[name] = {
            "ours": sweep.ours(os.path.abspath(__file__), row, FLAGS.iters, FLAGS.warmup, timeout)
        }
        if FLAGS.official_python:
            print(f"{name}: official ...", file=sys.stderr, flush=True)
            rows[name]["official"] = sweep.official(
                FLAGS.official_python, bench_py, row, FLAGS.iters, FLAGS.warmup, timeout
            )
        if FLAGS.end_to_end and name in sweep.END_TO_END:
            print(f"{name}: end to end ...", file=sys.stderr, flush=True)
            rows[name]["end_to_end"] = sweep.end_to_end(
                row, FLAGS.end_to_end_iters, max(1, FLAGS.end_to_end_iters // 6), timeout
            )
    if FLAGS.json:
        print(json.dumps(rows, indent=1))
    else:
        print(sweep.format_table(rows))


def measure_peaks(log):
    """The machine's conv and matmul peaks (GFLOP/s), measured now in a fresh process (with
    TensorFlow's default threads, whatever this one uses); bf16 conv when it is used."""
    from stargan_tf.perf import peak

    log("measuring the machine's peak (3x3 conv, batch 4, 64x64, 256->256; 2048^3 matmul)...")
    return peak.measure_in_fresh_process(
        FLAGS.peak_seconds, bf16=FLAGS.mixed_precision == "mixed_bfloat16"
    )


def time_training(config, peaks, log):
    """Times the training iteration on a synthetic batch: (result dict, the trainer)."""
    import tensorflow as tf

    from stargan_tf.perf import runs
    from stargan_tf.training.trainer import Trainer

    batch = runs.synthetic_batch(config)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    trainer = Trainer(config, tf.distribute.get_strategy(), dataset)
    m = config.model
    log(
        f"training: {m.img_size} px, batch {config.batch_size}, {m.num_domains} domains, "
        f"max_conv_dim {m.max_conv_dim}, decoder {m.decoder}, w_hpf {m.w_hpf:g}, "
        f"{config.mixed_precision or 'fp32'}{', XLA' if config.jit_compile else ''}"
    )
    t = runs.time_training(trainer, FLAGS.warmup, FLAGS.iters, log)
    spread = runs.summarize(t["seconds"])
    s_per_iter = spread["median"]
    gflops = t["flops"]["total"] / 1e9
    model_gflops = t["official_order_flops"]["total"] / 1e9
    result = {
        "preset": FLAGS.preset,
        "img_size": m.img_size, "batch_size": config.batch_size, "num_domains": m.num_domains,
        "max_conv_dim": m.max_conv_dim, "decoder": m.decoder, "w_hpf": m.w_hpf,
        "precision": config.mixed_precision or "float32", "jit_compile": config.jit_compile,
        "iters": FLAGS.iters,
        "seconds_per_iteration": s_per_iter,
        "seconds_min": spread["min"], "seconds_max": spread["max"],
        "images_per_second": config.batch_size / s_per_iter,
        "gflops_per_iteration": gflops,
        "flops_counted_from": "traced graph (conv + gradients + matmul)",
        "achieved_gflops": gflops / s_per_iter,
        **peaks,
        "fraction_of_peak": gflops / s_per_iter / peaks["peak_gflops"],
        "model_gflops_per_iteration": model_gflops,
        "model_fraction_of_peak": model_gflops / s_per_iter / peaks["peak_gflops"],
        "trace_seconds": t["trace_seconds"],
        "peak_rss_mb": runs.peak_rss_mb(),
    }  # fmt: skip
    return result, trainer


def profile_iteration(trainer):
    """One more iteration under the TF profiler: the op types that take the time."""
    from stargan_tf.perf.profile import op_time_by_type

    iterator = trainer.make_iterator(0)
    ops = op_time_by_type(lambda: trainer.run_iteration(iterator))
    total = sum(s for _, s, _ in ops)
    conv = sum(s for op, s, _ in ops if "Conv2D" in op)
    return {
        "op_seconds_total": total, "conv_fraction": conv / total if total else 0.0,
        "top_ops": [{"op": op, "seconds": s, "count": n} for op, s, n in ops[:15]],
    }  # fmt: skip


def time_conv_floor(trainer, result, log):
    """The iteration's convolutions and matmuls, each timed alone (perf/conv_floor.py)."""
    from stargan_tf.perf.conv_floor import conv_floor

    log("timing each distinct convolution and matmul of the iteration alone...")
    floor = conv_floor(trainer.train_step_graph(trainer.make_iterator(0)), log=log)
    gflops = floor["flops"] / 1e9 / floor["seconds"]
    # bf16 convolutions against the bf16 peak (float16 has none measured: the fp32 one).
    bf16 = result["precision"] == "mixed_bfloat16"
    peak = result["bf16_conv_peak_gflops" if bf16 else "conv_peak_gflops"]
    return {
        "seconds": floor["seconds"],
        "of_iteration": floor["seconds"] / result["seconds_per_iteration"],
        "gflops_per_second": gflops,
        "fraction_of_conv_peak": gflops / peak,
        "top": floor["rows"][:8],
    }  # fmt: skip


def time_inference(trainer, config, log):
    """Reference-guided translation through the exported SavedModel of the EMA networks."""
    from stargan_tf.perf import runs

    log("exporting the EMA networks as a SavedModel and timing translate_reference...")
    n = FLAGS.inference_batch or config.batch_size
    inf = runs.time_inference(trainer.nets_ema, n, FLAGS.inference_iters)
    return {
        "inference_batch": n,
        "inference_images_per_second": inf["images_per_second"],
        "export_seconds": inf["export_seconds"],
        "peak_rss_mb_after_inference": runs.peak_rss_mb(),
    }  # fmt: skip


def print_report(r):
    bf16 = r.get("bf16_conv_peak_gflops")
    print(
        f"\nseconds/iteration   {r['seconds_per_iteration']:.3f} median "
        f"(min {r['seconds_min']:.3f}, max {r['seconds_max']:.3f}, {r['iters']} iterations)"
    )
    print(f"images/s            {r['images_per_second']:.3f}")
    print(f"GFLOP/iteration     {r['gflops_per_iteration']:.1f} ({r['flops_counted_from']})")
    print(f"achieved GFLOP/s    {r['achieved_gflops']:.1f}")
    print(
        f"peak GFLOP/s        {r['peak_gflops']:.1f} (conv {r['conv_peak_gflops']:.1f}, matmul "
        f"{r['matmul_peak_gflops']:.1f}, measured now)"
        + (f"; bf16 conv {bf16:.1f}" if bf16 else "")
    )
    print(f"fraction of peak    {r['fraction_of_peak']:.1%}")
    print(
        f"model FLOPs         {r['model_gflops_per_iteration']:.1f} GFLOP/iteration in the "
        f"official order of ops: {r['model_fraction_of_peak']:.1%} of the peak"
    )
    print(f"peak RSS            {r['peak_rss_mb']:.0f} MiB")
    if "profile" in r:
        p = r["profile"]
        print(
            f"profile             {p['op_seconds_total']:.2f} s of op time (summed over threads); "
            f"convolutions {p['conv_fraction']:.0%}"
        )
        for row in p["top_ops"]:
            print(f"  {row['op']:36s} {row['seconds']:8.3f} s  x{row['count']}")
    if "conv_floor" in r:
        f = r["conv_floor"]
        print(
            f"convolutions and matmuls alone {f['seconds']:.3f} s per iteration "
            f"({f['of_iteration']:.0%} of it), {f['gflops_per_second']:.1f} GFLOP/s = "
            f"{f['fraction_of_conv_peak']:.1%} of the conv peak: the best the iteration could "
            "do with every other op free"
        )
        for row in f["top"]:
            what = f"{row['op']} {row['shapes']}"
            if row["op"] != "MatMul":
                what += f" strides {row['strides'][1:3]}"
            print(
                f"  {row['seconds']:7.3f} s  x{row['runs']:<4d} {row['gflops_per_second']:6.1f} "
                f"GFLOP/s  {what}"
            )
    if "inference_images_per_second" in r:
        print(
            f"inference           {r['inference_images_per_second']:.2f} images/s "
            f"(SavedModel translate_reference, batch {r['inference_batch']}; "
            f"export {r['export_seconds']:.1f} s)"
        )


if __name__ == "__main__":
    cli.run(main)
