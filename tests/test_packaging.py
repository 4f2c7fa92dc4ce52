"""The product a `pip install` gives: a wheel built from this checkout, installed into a fresh
virtual environment (not editable, no site packages, run from a directory outside the checkout),
whose console scripts convert the official fixture, write a TFRecord split, train from a packaged
recipe, export and translate; plus the wheel's contents and metadata.

Slow (a fresh environment with TensorFlow, torch and a real run of every step: minutes), so it
is marked `packaging`: `make test-packaging` runs it. Quick checks of the same points on the
checkout itself live in tests/test_startup.py.
"""

import email.parser
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from support import REPO, fixture_dir

pytestmark = pytest.mark.packaging


# Each console script, and a flag of its own that its --help must document.
HELP_FLAGS = {
    "stargan-tf-train": "--recipe",
    "stargan-tf-convert": "--checkpoint",
    "stargan-tf-make-tfrecords": "--train_dir",
    "stargan-tf-sample": "--src_dir",
    "stargan-tf-translate": "--target_domain",
    "stargan-tf-export": "--export_dir",
    "stargan-tf-evaluate": "--inception_weights",
    "stargan-tf-align": "--lm_path",
    "stargan-tf-demo": "--train_per_domain",
    "stargan-tf-app": "--examples",
}
SCRIPTS = list(HELP_FLAGS)
RECIPES = ["afhq256", "afhq512", "celeba_hq256", "demo"]
# What TensorFlow prints on a CPU machine when nothing keeps it quiet.
NOISE = ["cuInit", "cudart_stub", "AVX", "oneDNN", "absl::InitializeLog"]
# torch from this machine's local CPU wheel (never a CUDA build from the index).
TORCH = os.environ.get("STARGAN_PACKAGING_TORCH", "torch==2.13.0")
# A pip constraints file for the fresh venv: tests/min_deps.txt (make test-min-deps) installs the
# oldest TensorFlow, Keras and NumPy the metadata allows; unset: the newest.
CONSTRAINTS = os.environ.get("STARGAN_PACKAGING_CONSTRAINTS", "")


def copy_sources(dest):
    """The files a wheel is built from, copied so that the build writes nothing in the checkout."""
    dest.mkdir()
    for name in ["pyproject.toml", "setup.py", "README.md", "LICENSE"]:
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(
        REPO / "stargan_tf",
        dest / "stargan_tf",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return dest


def run(argv, cwd, env, timeout=1800):
    start = time.time()
    proc = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    print(f"[{time.time() - start:6.1f} s] {' '.join(str(a) for a in argv)[:160]}")
    return proc


def check(proc, name):
    assert proc.returncode == 0, f"{name}: exit {proc.returncode}\n{proc.stderr[-4000:]}"
    noisy = [line for line in proc.stderr.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, f"{name} printed TensorFlow start-up noise: {noisy}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    root = tmp_path_factory.mktemp("build")
    src = copy_sources(root / "src")
    proc = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            root / "dist",
            src,
        ],
        cwd=root,
        env=os.environ,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [path] = list((root / "dist").glob("stargan_tf-*.whl"))
    print(f"wheel: {path.name}, {path.stat().st_size / 1024:.0f} KiB")
    return path


def test_wheel_contents_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        [meta_name] = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
        [ep_name] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry_points = z.read(ep_name).decode()
    for recipe in RECIPES:
        assert f"stargan_tf/configs/{recipe}.cfg" in names, names
    assert "stargan_tf/convert.py" in names and "stargan_tf/make_tfrecords.py" in names
    assert not [n for n in names if n.startswith(("tests/", "tools/"))]
    for script in SCRIPTS:
        assert f"{script} = stargan_tf." in entry_points, entry_points

    requires = meta.get_all("Requires-Dist")
    base = [r for r in requires if "extra ==" not in r]

    def names_of(rs):
        return {r.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip() for r in rs}

    assert {"tensorflow", "keras", "numpy"} <= names_of(base), base
    # The floors of tests/min_deps.txt, which make test-min-deps installs and tests.
    for pin in (REPO / "tests" / "min_deps.txt").read_text().splitlines():
        if pin and not pin.startswith("#"):
            name, version = pin.strip().split("==")
            assert f"{name}>={version.removesuffix('.0')}" in [r.replace(" ", "") for r in base]
    assert "tensorflow-datasets" not in names_of(base), base
    tfds = [r for r in requires if r.startswith("tensorflow-datasets")]
    assert tfds and all('extra == "tfds"' in r for r in tfds), tfds
    torch = [r for r in requires if r.startswith("torch")]
    assert torch and all("extra ==" in r for r in torch), torch
    assert any(r.replace(" ", "").startswith("torch>=2.3") for r in torch), torch
    assert set(meta.get_all("Provides-Extra")) >= {"torch", "tfds", "gpu"}


def make_images(root, domains=("disc", "square"), per_domain=6, size=40):
    """An image folder of two domains: discs and squares on random backgrounds."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for domain in domains:
        (root / domain).mkdir(parents=True)
        for i in range(per_domain):
            img = np.full([size, size, 3], rng.integers(0, 120), np.uint8)
            cy, cx = rng.integers(12, size - 12, 2)
            inside = (
                ((yy - cy) ** 2 + (xx - cx) ** 2 < 60)
                if domain == "disc"
                else ((abs(yy - cy) < 8) & (abs(xx - cx) < 8))
            )
            img[inside] = (40, 60, 220) if domain == "disc" else (220, 50, 40)
            Image.fromarray(img).save(root / domain / f"{i}.png")
    return root


def test_installed_wheel_runs_every_command(wheel, tmp_path):
    started = time.time()
    base_python = getattr(sys, "_base_executable", sys.executable)
    venv = tmp_path / "venv"
    proc = run([base_python, "-m", "venv", venv], cwd=tmp_path, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    constraints = ["-c", str(REPO / CONSTRAINTS)] if CONSTRAINTS else []
    proc = run(
        [python, "-m", "pip", "install", "--quiet", *constraints, TORCH, f"{wheel}[torch]"],
        cwd=tmp_path,
        env=os.environ,
        timeout=3600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    installed = time.time()
    versions = run(
        [
            python,
            "-c",
            "import importlib.metadata as m, sys; print(sys.version.split()"
            "[0], *[f'{p}=={m.version(p)}' for p in ('tensorflow', 'keras', 'numpy', "
            "'torch', 'stargan_tf')])",
        ],
        cwd=tmp_path,
        env=os.environ,
    )
    print("installed:", versions.stdout.strip())
    for line in (REPO / CONSTRAINTS).read_text().splitlines() if CONSTRAINTS else []:
        if line and not line.startswith("#"):  # the pins are what got installed
            assert line.strip() in versions.stdout.split(), (line, versions.stdout)

    # A user's shell: the venv's scripts on PATH, no checkout on PYTHONPATH, no log settings.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "VIRTUAL_ENV")
    }
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "user"
    work.mkdir()
    assert REPO not in work.parents

    def tool(*argv, timeout=1800):
        return run([bin_dir / argv[0], *argv[1:]], cwd=work, env=env, timeout=timeout)

    # The package comes from the venv, not from the checkout.
    where = run([python, "-c", "import stargan_tf; print(stargan_tf.__file__)"], cwd=work, env=env)
    assert str(venv) in where.stdout and str(REPO) not in where.stdout, where.stdout

    for script, flag in HELP_FLAGS.items():
        proc = check(tool(script, "--help"), script)
        assert f"  {flag}" in proc.stdout + proc.stderr, (script, proc.stdout[-2000:])

    proc = tool("stargan-tf-train", "--recipe=afhq1024", "--train_data=x", "--workdir=w")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "stargan-tf-train: error: --recipe=afhq1024: no such recipe; the recipes are: "
        f"{', '.join(RECIPES)}."
    ], proc.stderr

    # Convert the official fixture's checkpoint.
    check(
        tool(
            "stargan-tf-convert",
            "--checkpoint",
            fixture_dir("official_small64") / "nets.ckpt",
            "--out",
            "converted",
            "--domain_names",
            "cat,dog,wild",
        ),
        "convert",
    )
    meta = json.loads((work / "converted" / "config.json").read_text())
    assert meta["model"]["domain_names"] == ["cat", "dog", "wild"]
    assert (work / "converted" / "MODEL_CARD.md").is_file()
    # The web demo without its extra (this venv has no Gradio): one line naming the extra.
    app = tool("stargan-tf-app", "--checkpoint", "converted")
    assert app.returncode == 2 and "stargan_tf[app]" in app.stderr, app.stderr[-2000:]

    # Write a TFRecord split from an image folder.
    make_images(work / "images")
    check(
        tool(
            "stargan-tf-make-tfrecords",
            "--train_dir",
            "images",
            "--output_dir",
            "tfr",
            "--img_size",
            "32",
            "--workers",
            "1",
        ),
        "make-tfrecords",
    )
    assert json.loads((work / "tfr" / "train" / "dataset.json").read_text())["domains"] == [
        "disc",
        "square",
    ]

    # 3 steps of the packaged demo recipe with overrides after it.
    proc = check(
        tool(
            "stargan-tf-train",
            "--recipe=demo",
            "--train_data=tfr/train",
            "--workdir=run",
            "--total_iters=3",
            "--save_every=3",
            "--sample_every=3",
            "--print_every=1",
            "--val_batch_size=8",
            "--batch_size=2",
            "--dim_in=8",
            "--max_conv_dim=16",
        ),
        "train",
    )
    assert "No GPU found: running on the CPU." in proc.stderr
    assert proc.stderr.count("No GPU found") == 1
    run_meta = json.loads((work / "run" / "config.json").read_text())
    assert run_meta["train"]["total_iters"] == 3 and run_meta["train"]["lr"] == 2e-3  # the recipe
    assert run_meta["model"]["dim_in"] == 8  # overridden after it
    assert (work / "run" / "samples" / "000003.png").is_file()
    assert (work / "run" / "MODEL_CARD.md").is_file()

    # Export it, and translate one image with it.
    check(tool("stargan-tf-export", "--checkpoint", "run", "--export_dir", "exported"), "export")
    assert (work / "exported" / "1" / "saved_model.pb").is_file()
    assert (work / "exported" / "1" / "MODEL_CARD.md").is_file()
    check(
        tool(
            "stargan-tf-translate",
            "--checkpoint",
            "run",
            "--input",
            "images/disc/0.png",
            "--output",
            "square.png",
            "--target_domain",
            "square",
            "--seed",
            "3",
        ),
        "translate",
    )
    out = Image.open(work / "square.png")
    assert out.size == (32, 32) and out.mode == "RGB"
    print(
        f"packaging: install {installed - started:.0f} s, commands {time.time() - installed:.0f} s"
    )


def test_the_installed_names_are_what_the_readme_teaches():
    readme = (REPO / "README.md").read_text()
    for script in SCRIPTS:
        assert f"`{script}`" in readme, script
    pyproject = (REPO / "pyproject.toml").read_text()
    for script in SCRIPTS:
        assert f"\n{script} = " in pyproject, script
    assert pathlib.Path(REPO / "configs").resolve() == (REPO / "stargan_tf" / "configs").resolve()
