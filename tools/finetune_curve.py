"""The fine-tuning curve on the built-in demo data (issue 23's acceptance check).

    python tools/finetune_curve.py prepare OUT      the 3-domain demo data and a 2-domain copy
    python tools/finetune_curve.py train OUT NAME   one of the runs below (resumes when restarted)
    python tools/finetune_curve.py judge OUT NAME...  judge every checkpoint of the runs
    python tools/finetune_curve.py plot OUT [--png docs/finetune_curve.png]

The runs (every one configs/demo.cfg, --deterministic, a checkpoint every 100 iterations):

    base      circle and square only (OUT/data2), 1,600 iterations
    scratch   all three shapes (OUT/data3) from scratch, 1,600 iterations
    ft...     all three shapes from `base` with --init_from and --init_domain_map=triangle=square;
              the flags of the variant (FINETUNE_VARIANTS below) follow the config's

The 2-domain data is written the way a user's own folder of images is: PNG folders (domain =
sub-folder) turned into TFRecords by stargan-tf-make-tfrecords; its images are the 3-domain demo
data's circles and squares, pixel for pixel.

`judge` trains the demo classifier (tests/demo_classifier.py, op determinism, fixed seed) on
OUT/data3/train and, for every checkpoint of a run, writes the fraction of latent- and
reference-guided translations of validation images into each target shape that it sees as that
shape, to OUT/judged/NAME.json, also split by the source image's shape. `plot` draws the triangle
(new domain) curves of `scratch` and the fine-tuning runs, and two curves of the old domains for
each fine-tuning run: the worst accuracy of the translations into circle and square from circles
and squares (what the 2-domain model could already do, and must keep), and the same from every
source, triangles included (which the 2-domain model never saw). It prints the table and the
issue's criterion: fine-tuning reaches 70% on triangle (latent and reference) in at most half the
iterations scratch needs, and keeps >= 70% on circle and square (from circles and squares) at
every judged step.
"""

import argparse
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "demo.cfg")
DOMAINS3 = ("circle", "square", "triangle")
DOMAINS2 = ("circle", "square")
NEW_DOMAIN = "triangle"
THRESHOLD = 0.70
SAVE_EVERY = 100
SOURCES_PER_DOMAIN = 50  # of the 100 val images per shape; the other 50 are references
COMMON = [
    "--deterministic",
    f"--save_every={SAVE_EVERY}",
    "--keep_checkpoints=1000",
    "--print_every=100",
]
RUNS = {
    # 1,600 iterations (the demo config's length when the curves below were measured).
    "base": ("data2", ["--total_iters=1600"]),
    "scratch": ("data3", ["--total_iters=1600"]),
    # A base twice as long: the 1,600-iteration base draws circles badly (26% at its end).
    "base3200": ("data2", ["--total_iters=3200"]),
}
# Fine-tuning variants: (source, flags after the config's, --init_from and --init_domain_map).
# Sources: "base" (the workdir: trained networks, D, EMA) or "base_ema" (its EMA networks only,
# as the official releases hold them: D starts fresh).
FINETUNE_VARIANTS = {
    "ft": ("base", ["--total_iters=800"]),
    "ft_ema": ("base_ema", ["--total_iters=800"]),
    "ft_ema_warm100": ("base_ema", ["--total_iters=800", "--d_warmup_iters=100"]),
    "ft_opt": ("base", ["--total_iters=500", "--init_optimizer"]),
    "ft_lr1e-3": ("base", ["--total_iters=800", "--lr=1e-3", "--f_lr=1e-4"]),
    "ft3200": ("base3200", ["--total_iters=800"]),
    "ft3200_lr1e-3": ("base3200", ["--total_iters=800", "--lr=1e-3", "--f_lr=1e-4"]),
}


def ema_only(out):
    """OUT/runs/base_ema: the EMA networks of `base` alone, as an official *_nets_ema.ckpt holds."""
    sys.path.insert(0, REPO)
    import stargan_tf

    target = os.path.join(out, "runs", "base_ema")
    if not os.path.isdir(target):
        nets = stargan_tf.load_networks(os.path.join(out, "runs", "base"), ema=True)
        stargan_tf.save_networks(
            nets, target, step=1600, ema=True, source={"ema_of": os.path.join(out, "runs", "base")}
        )


def prepare(out):
    """OUT/data3: the demo data; OUT/data2: its circles and squares, via image folders."""
    sys.path.insert(0, REPO)
    from PIL import Image

    from stargan_tf.data import demo

    spec = demo.DemoSpec()
    demo.write_demo_dataset(os.path.join(out, "data3"), spec, log=print)
    if os.path.isfile(os.path.join(out, "data2", "val", "dataset.json")):
        print("data2 is there")
        return
    images = os.path.join(out, "images2")
    for split in demo.SPLITS:
        for d, name in enumerate(DOMAINS2):
            folder = os.path.join(images, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(spec.per_domain(split)):
                Image.fromarray(demo.render(spec.seed, split, d, i, spec.img_size)).save(
                    os.path.join(folder, f"{i:05d}.png")
                )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "stargan_tf.make_tfrecords",
            f"--train_dir={os.path.join(images, 'train')}",
            f"--val_dir={os.path.join(images, 'val')}",
            f"--output_dir={os.path.join(out, 'data2')}",
            f"--img_size={spec.img_size}",
            "--format=png",
            "--overwrite",
        ],
        check=True,
        env=_env(),
    )


def _env():
    return {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_flags(out, name):
    """The training command line of run `name`."""
    if name in RUNS:
        data, extra = RUNS[name]
    elif name in FINETUNE_VARIANTS:
        data = "data3"
        source, flags = FINETUNE_VARIANTS[name]
        extra = [
            f"--init_from={os.path.join(out, 'runs', source)}",
            f"--init_domain_map={NEW_DOMAIN}=square",
            *flags,
        ]
    else:
        raise SystemExit(f"unknown run {name!r}: one of {', '.join([*RUNS, *FINETUNE_VARIANTS])}")
    return [
        sys.executable,
        "-m",
        "stargan_tf.train",
        f"--flagfile={CONFIG}",
        f"--train_data={os.path.join(out, data, 'train')}",
        f"--val_data={os.path.join(out, data, 'val')}",
        f"--workdir={os.path.join(out, 'runs', name)}",
        *COMMON,
        *extra,
    ]


def train(out, name):
    if name in FINETUNE_VARIANTS and FINETUNE_VARIANTS[name][0] == "base_ema":
        ema_only(out)
    argv = run_flags(out, name)
    print(" ".join(argv), flush=True)
    subprocess.run(argv, check=True, env=_env())


def checkpoint_steps(workdir):
    steps = set()
    for f in os.listdir(os.path.join(workdir, "checkpoints")):
        if f.startswith("ckpt-") and f.endswith(".index"):
            steps.add(int(f[len("ckpt-") : -len(".index")]))
    return sorted(steps)


def judge(out, names):
    """Writes OUT/judged/NAME.json: {step: {guidance: {target shape: accuracy}}}."""
    import numpy as np
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    sys.path.insert(0, REPO)
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import demo_classifier

    import stargan_tf

    data = os.path.join(out, "data3")
    classifier = demo_classifier.train_classifier(
        *demo_classifier.read_split(os.path.join(data, "train"))
    )
    x_val, y_val = demo_classifier.read_split(os.path.join(data, "val"))
    print(
        f"classifier: {demo_classifier.accuracy(classifier, x_val, y_val):.1%} on val", flush=True
    )
    os.makedirs(os.path.join(out, "judged"), exist_ok=True)
    for name in names:
        workdir = os.path.join(out, "runs", name)
        path = os.path.join(out, "judged", f"{name}.json")
        judged = {}
        if os.path.isfile(path):
            with open(path) as f:
                judged = json.load(f)
        for step in checkpoint_steps(workdir):
            if "by_source" in judged.get(str(step), {}):
                continue
            nets = stargan_tf.load_networks(workdir, step=step)
            names_ = nets.config.domain_names
            # The model's ids are the data's (sorted names): its val images carry the same ids.
            keep = np.isin(y_val, range(len(names_)))
            row = {"by_source": {}}
            for guidance in ("latent", "reference"):
                fakes, targets, origins = demo_classifier.translations(
                    nets, x_val[keep], y_val[keep], guidance, SOURCES_PER_DOMAIN, with_sources=True
                )
                seen = demo_classifier.predict(classifier, fakes)
                row[guidance] = {
                    names_[d]: float(np.mean(seen[targets == d] == d)) for d in range(len(names_))
                }
                # {target: {source: accuracy}}: the old domains' translations from old sources
                # are what fine-tuning must keep; those from the new domain are new work.
                row["by_source"][guidance] = {
                    names_[d]: {
                        names_[o]: float(np.mean(seen[(targets == d) & (origins == o)] == d))
                        for o in range(len(names_))
                        if o != d
                    }
                    for d in range(len(names_))
                }
            judged[str(step)] = row
            print(name, step, json.dumps(row), flush=True)
            with open(path, "w") as f:
                json.dump(judged, f, indent=1, sort_keys=True)


def load_judged(out, name):
    path = os.path.join(out, "judged", f"{name}.json")
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return {int(k): v for k, v in json.load(f).items()}


def first_step(judged, domain, threshold=THRESHOLD):
    """The first judged step from which on both guidances stay >= threshold on `domain`."""
    steps = sorted(judged)
    for i, step in enumerate(steps):
        if all(
            min(judged[s][g][domain] for g in ("latent", "reference")) >= threshold
            for s in steps[i:]
        ):
            return step
    return None


def old_kept(row):
    """The worst accuracy over both guidances of the translations into the old domains whose
    sources are old-domain images: what the 2-domain model could already do, and fine-tuning
    must keep. None for rows judged before sources were recorded."""
    by_source = row.get("by_source")
    if by_source is None:
        return None
    return min(
        by_source[g][d][o]
        for g in ("latent", "reference")
        for d in DOMAINS2
        for o in DOMAINS2
        if o != d
    )


def old_all(row):
    """The same worst accuracy over every source, the new domain's images included (the
    2-domain model never saw one)."""
    return min(row[g][d] for g in ("latent", "reference") for d in DOMAINS2)


def report(out, names):
    scratch = load_judged(out, "scratch")
    need = first_step(scratch, NEW_DOMAIN) if scratch else None
    lines = [f"scratch: {NEW_DOMAIN} >= {THRESHOLD:.0%} (latent and reference) from step {need}"]
    for name in names:
        judged = load_judged(out, name)
        if not judged:
            continue
        reach = first_step(judged, NEW_DOMAIN)
        kept = [old_kept(judged[s]) for s in judged]
        kept_min = None if None in kept else min(kept)
        all_min = min(old_all(judged[s]) for s in judged)
        ok = (
            reach is not None
            and need is not None
            and reach <= need / 2
            and kept_min is not None
            and kept_min >= THRESHOLD
        )
        kept_text = "not judged by source" if kept_min is None else f"at least {kept_min:.0%}"
        lines.append(
            f"{name}: {NEW_DOMAIN} >= {THRESHOLD:.0%} from step {reach}; circle and square "
            f"from circle/square sources {kept_text}, from every source (triangles too) at "
            f"least {all_min:.0%}, at every judged step; criterion {'met' if ok else 'NOT met'}"
        )
    runs = ["scratch", *names]
    table = [
        "step | "
        + " | ".join(f"{n} tri lat/ref" for n in runs)
        + " | "
        + " | ".join(f"{n} old<-old, old<-all (worst)" for n in names)
    ]
    judged = {n: load_judged(out, n) for n in runs}
    for step in sorted(set().union(*judged.values())):
        cells = []
        for n in runs:
            j = judged[n].get(step)
            cells.append(
                "-"
                if j is None
                else f"{j['latent'][NEW_DOMAIN]:.0%}/{j['reference'][NEW_DOMAIN]:.0%}"
            )
        for n in names:
            j = judged[n].get(step)
            kept = None if j is None else old_kept(j)
            cells.append(
                "-" if j is None else f"{'-' if kept is None else f'{kept:.0%}'}, {old_all(j):.0%}"
            )
        table.append(f"{step} | " + " | ".join(cells))
    return "\n".join(lines + [""] + table)


def plot(out, names, png):
    """Draws the curves with PIL (no plotting library needed)."""
    from PIL import Image, ImageDraw

    series = curve_series(out, names)
    max_step = max([p[0] for s in series for p in s[3]] + [SAVE_EVERY])
    w, h, left, right, top, bottom = 1100, 560, 60, 420, 40, 50
    image = Image.new("RGB", (w, h), "white")
    pen = ImageDraw.Draw(image)
    pw, ph = w - left - right, h - top - bottom

    def xy(step, acc):
        return left + pw * step / max_step, top + ph * (1 - acc)

    draw_axes(pen, xy, max_step, (left, top, pw, ph, h))
    need = first_step(load_judged(out, "scratch"), NEW_DOMAIN)
    if need:  # the criterion: fine-tuning reaches 70% on the new domain by half of this
        for step, text in ((need, f"scratch: {need}"), (need / 2, f"half: {need // 2}")):
            x = xy(step, 0)[0]
            for y in range(top, top + ph, 8):
                pen.line([(x, y), (x, y + 4)], fill=(120, 120, 120))
            pen.text((x + 3, top + 3), text, fill=(90, 90, 90))
    for k, curve in enumerate(series):
        draw_curve(pen, xy, curve, (left + pw + 15, top + 10 + 18 * k))
    os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
    image.save(png)
    print(f"wrote {png}")


def curve_series(out, names):
    """[(label, colour, dashed, [(step, accuracy)], width)]: the new domain's curves of every
    run, and the old domains' worst of each fine-tuning run."""
    series = []
    palette = [(200, 40, 40), (30, 110, 200), (20, 150, 60), (150, 60, 180), (220, 130, 0)]
    for i, name in enumerate(["scratch", *names]):
        judged = load_judged(out, name)
        colour = palette[i % len(palette)]
        for guidance, dashed in (("latent", False), ("reference", True)):
            points = [(s, judged[s][guidance][NEW_DOMAIN]) for s in sorted(judged)]
            series.append((f"{name}: {NEW_DOMAIN}, {guidance}", colour, dashed, points, 2))
        if name != "scratch":
            points = [(s, old_kept(judged[s])) for s in sorted(judged)]
            if None not in (p[1] for p in points):
                label = f"{name}: circle/square from circle/square, worst"
                series.append((label, colour, False, points, 1))
            points = [(s, old_all(judged[s])) for s in sorted(judged)]
            label = f"{name}: circle/square from all (triangles too), worst"
            series.append((label, colour, True, points, 1))
    return series


def draw_axes(pen, xy, max_step, box):
    left, top, pw, ph, h = box
    pen.text(
        (left, 10),
        "Demo classifier: translations showing the target shape. ft3200: fine-tuned from "
        "the 3,200-iteration circle+square workdir; ft: from the 1,600-iteration one",
        fill="black",
    )
    for acc in (0, 0.25, 0.5, 0.7, 0.75, 1.0):
        y = xy(0, acc)[1]
        pen.line(
            [(left, y), (left + pw, y)],
            fill=(150, 150, 150) if acc == 0.7 else (225, 225, 225),
            width=1,
        )
        pen.text((10, y - 6), f"{acc:.0%}", fill="black")
    step_tick = 200 if max_step > 800 else 100
    for step in range(0, max_step + 1, step_tick):
        x = xy(step, 0)[0]
        pen.line([(x, top + ph), (x, top + ph + 4)], fill="black")
        pen.text((x - 10, top + ph + 8), str(step), fill="black")
    pen.text((left + pw / 2 - 60, h - 20), "iterations (fine-tuning or scratch)", fill="black")
    pen.rectangle([left, top, left + pw, top + ph], outline="black")


def draw_curve(pen, xy, curve, legend_at):
    label, colour, dashed, points, width = curve
    pts = [xy(s, a) for s, a in points]
    for a, b in zip(pts, pts[1:]):
        if dashed:
            for t in range(0, 10, 2):
                p0 = (a[0] + (b[0] - a[0]) * t / 10, a[1] + (b[1] - a[1]) * t / 10)
                p1 = (a[0] + (b[0] - a[0]) * (t + 1) / 10, a[1] + (b[1] - a[1]) * (t + 1) / 10)
                pen.line([p0, p1], fill=colour, width=width)
        else:
            pen.line([a, b], fill=colour, width=width + (1 if width > 1 else 0))
    for p in pts:
        pen.ellipse([p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2], fill=colour)
    lx, ly = legend_at
    if dashed:
        for t in range(0, 30, 6):
            pen.line([(lx + t, ly + 6), (lx + t + 3, ly + 6)], fill=colour, width=width)
    else:
        pen.line([(lx, ly + 6), (lx + 30, ly + 6)], fill=colour, width=width)
    pen.text((lx + 36, ly), label, fill="black")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["prepare", "train", "judge", "plot", "flags"])
    parser.add_argument("out")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--png", default=os.path.join(REPO, "docs", "finetune_curve.png"))
    args = parser.parse_args()
    if args.stage == "prepare":
        prepare(args.out)
    elif args.stage == "train":
        for name in args.names:
            train(args.out, name)
    elif args.stage == "flags":
        for name in args.names:
            print(" ".join(run_flags(args.out, name)))
    elif args.stage == "judge":
        judge(args.out, args.names)
    else:
        names = args.names or [n for n in FINETUNE_VARIANTS if load_judged(args.out, n)]
        print(report(args.out, names))
        plot(args.out, names, args.png)


if __name__ == "__main__":
    main()
