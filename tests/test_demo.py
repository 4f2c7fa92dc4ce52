"""The built-in demo dataset (stargan_tf.data.demo) and the demo training run (configs/demo.cfg).

The generator tests are fast. Once per test session the whole config is trained with the real CLI,
as `make demo` runs it (`python -m stargan_tf.train --flagfile=configs/demo.cfg`, ~5 minutes on a
2-core CPU), then a small CNN trained on the demo's own labels (tests/demo_classifier.py) checks
that translated validation images show the *target* shape, latent-guided and reference-guided, in
at least 70% of them. `make test` does this with the paper's AdaIN decoder; the same run with
--decoder=modconv is marked `demo_accuracy` and left to `make test-demo`, which runs both.
"""

import collections
import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import demo_classifier
from cli_helpers import subprocess_env
from conftest import REPO
from stargan_tf.data import demo
from stargan_tf.errors import UserError

CONFIG = REPO / "configs" / "demo.cfg"
# The training run of the session tests: the flagfile as `make demo` runs it, at most this long.
TRAIN_TIMEOUT = 30 * 60
# Translations judged per guidance: sources per domain x (num_domains - 1) targets each.
SOURCES_PER_DOMAIN = 32
MIN_TARGET_ACCURACY = 0.70
MIN_CLASSIFIER_ACCURACY = 0.95


# The generator.


def test_render_is_a_function_of_its_arguments():
    a = demo.render(3, "train", 1, 7, 32)
    assert a.dtype == np.uint8 and a.shape == (32, 32, 3)
    np.testing.assert_array_equal(a, demo.render(3, "train", 1, 7, 32))
    for other in [(4, "train", 1, 7), (3, "val", 1, 7), (3, "train", 2, 7), (3, "train", 1, 8)]:
        assert not np.array_equal(a, demo.render(*other, 32)), other


def test_generate_is_deterministic_balanced_and_sized():
    spec = demo.DemoSpec(seed=5, img_size=64, train_per_domain=6, val_per_domain=4)
    images, labels = demo.generate(spec, "val")
    assert images.shape == (12, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(np.bincount(labels), [4, 4, 4])
    again, _ = demo.generate(spec, "val")
    np.testing.assert_array_equal(images, again)
    train, _ = demo.generate(spec, "train")
    assert train.shape == (18, 64, 64, 3)
    assert not any(np.array_equal(t, v) for t in train for v in images)  # no val image in train


def _fill_ratio(image, params):
    """Fraction of the shape's pixel bounding box that the shape covers."""
    fg, bg = (np.array(params[k], np.float32) for k in ("shape_rgb", "background_rgb"))
    x = image.astype(np.float32)
    mask = np.linalg.norm(x - fg, axis=-1) < np.linalg.norm(x - bg, axis=-1)  # [S, S]
    rows, cols = np.where(mask)
    box = mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    return box.mean(), mask.mean()


@pytest.mark.parametrize("seed", range(4))
def test_each_domain_draws_its_shape(seed):
    # The label is right: a circle fills pi/4 of its box, a square all of it, a triangle half.
    rng = np.random.default_rng(seed)
    params = demo.sample_params(rng, 64)
    expected = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5}
    areas = []
    for d, name in enumerate(demo.DOMAINS):
        box_fill, area = _fill_ratio(demo.draw(d, params, 64), params)
        assert box_fill == pytest.approx(expected[name], abs=0.08), name
        areas.append(area)
    # Same content, same box: a triangle covers half its box, a circle pi/4 of it.
    assert max(areas) / min(areas) < 1.75


def test_styles_vary_and_shapes_contrast_with_background():
    spec = demo.DemoSpec(train_per_domain=50, val_per_domain=1)
    images, labels = demo.generate(spec, "train")
    corners = images[:, 0, 0].astype(np.float32)  # [N, 3] background colours
    centres = []
    for d in range(len(demo.DOMAINS)):
        for i in range(50):
            params = demo.sample_params(np.random.default_rng([0, 0, d, i]), spec.img_size)
            centres.append(params["shape_rgb"])
    centres = np.array(centres, np.float32)  # [N, 3] shape colours
    assert corners.std(axis=0).min() > 10 and centres.std(axis=0).min() > 30
    # Value (max channel): bright shapes on dark backgrounds.
    assert (centres.max(axis=1) - corners.max(axis=1)).min() > 80
    # Style is independent of the domain: mean colours per domain are alike.
    means = np.stack([centres[labels == d].mean(0) for d in range(3)])
    assert np.abs(means - means.mean(0)).max() < 40


def test_spec_rejects_bad_values():
    with pytest.raises(UserError, match="img_size=8"):
        demo.DemoSpec(img_size=8)
    with pytest.raises(UserError, match="val_per_domain=0"):
        demo.DemoSpec(val_per_domain=0)


def test_split_constants_match_the_format():
    from stargan_tf.data import format as data_format

    assert demo.SPLIT_FORMAT == data_format.FORMAT
    assert demo.SPLIT_METADATA_FILE == data_format.METADATA_FILE


def test_write_reads_back_and_is_idempotent(tmp_path):
    from stargan_tf.data import format as data_format
    from stargan_tf.data.pipeline import eval_dataset

    spec = demo.DemoSpec(seed=2, img_size=32, train_per_domain=5, val_per_domain=3)
    out = tmp_path / "data"
    assert demo.write_demo_dataset(str(out), spec)
    for split in demo.SPLITS:
        meta = data_format.read_metadata(str(out / split))
        assert meta["domains"] == list(demo.DOMAINS) and meta["img_size"] == 32
        assert meta["counts"] == [spec.per_domain(split)] * 3
        images, labels = demo.generate(spec, split)
        got = {}
        for x, y, names in eval_dataset(str(out / split), 32, 64):
            for xi, yi, name in zip(x.numpy(), y.numpy(), names.numpy()):
                got[name.decode()] = (xi, yi)
        assert len(got) == len(images)
        n = spec.per_domain(split)
        for k, (image, label) in enumerate(zip(images, labels)):
            x, y = got[f"{demo.DOMAINS[label]}/{k % n:05d}.png"]
            assert y == label
            # PNGs are stored byte for byte: the pipeline decodes the generated pixels exactly.
            np.testing.assert_array_equal(np.round((x + 1) * 127.5).astype(np.uint8), image)
    assert json.loads((out / demo.MARKER_FILE).read_text()) == spec.to_dict()

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    messages = []
    assert not demo.write_demo_dataset(str(out), spec, log=messages.append)
    assert "already holds this demo dataset" in messages[0]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    # Another spec replaces the earlier demo dataset without --overwrite.
    bigger = demo.DemoSpec(seed=2, img_size=32, train_per_domain=6, val_per_domain=3)
    assert demo.write_demo_dataset(str(out), bigger)
    assert data_format.read_metadata(str(out / "train"))["counts"] == [6, 6, 6]
    assert demo.is_complete(str(out), bigger) and not demo.is_complete(str(out), spec)


def test_write_refuses_foreign_files_unless_overwrite(tmp_path):
    spec = demo.DemoSpec(train_per_domain=2, val_per_domain=1)
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "mine.txt").write_text("keep")
    with pytest.raises(UserError, match="not a demo dataset"):
        demo.write_demo_dataset(str(tmp_path), spec)
    assert demo.write_demo_dataset(str(tmp_path), spec, overwrite=True)
    assert (tmp_path / "train" / "mine.txt").read_text() == "keep"  # only the writer's own files go
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="is a file"):
        demo.write_demo_dataset(str(tmp_path / "file"), spec)


def test_cli_writes_then_finds_the_dataset(tmp_path):
    out = tmp_path / "data"
    cmd = [sys.executable, "-m", "stargan_tf.data.demo", "--output_dir", str(out),
           "--train_per_domain=4", "--val_per_domain=2"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert first.returncode == 0, first.stderr
    assert "train: 12 images (4 per domain" in first.stderr
    # The second run finds the dataset without importing TensorFlow (seconds, not a TF start-up):
    # the module runs as __main__, then the interpreter reports what it imported.
    probe = ("import runpy, sys\n"
             "sys.argv = ['demo'] + sys.argv[1:]\n"
             "try:\n"
             "    runpy.run_module('stargan_tf.data.demo', run_name='__main__')\n"
             "except SystemExit as e:\n"
             "    print('exit', e.code)\n"
             "print('tensorflow imported:', 'tensorflow' in sys.modules)\n")
    second = subprocess.run([sys.executable, "-c", probe, *cmd[3:]], capture_output=True,
                            text=True, env=subprocess_env(), timeout=300)
    assert second.returncode == 0, second.stderr
    assert "already holds this demo dataset" in second.stderr
    assert second.stdout.split("\n")[-2:] == ["tensorflow imported: False", ""], second.stdout
    tool = subprocess.run([sys.executable, str(REPO / "tools" / "make_demo_dataset.py"),
                           "--output_dir", str(out), "--train_per_domain=4", "--val_per_domain=2"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert tool.returncode == 0 and "already holds" in tool.stderr, tool.stderr
    bad = subprocess.run(cmd[:3], capture_output=True, text=True, env=subprocess_env(),
                         timeout=300)
    assert bad.returncode == 2 and "--output_dir is required" in bad.stderr


def _config_lines():
    """The flag lines of configs/demo.cfg (comment and blank lines dropped), stripped."""
    lines = (line.strip() for line in CONFIG.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _config_flags():
    """configs/demo.cfg as {flag name: value string}."""
    return dict(line[2:].partition("=")[::2] for line in _config_lines())


def test_config_is_a_valid_flagfile():
    for line in _config_lines():
        # absl would read a trailing "# ..." as part of the value.
        assert line.startswith("--") and "#" not in line, line
    flags = _config_flags()
    assert flags["w_hpf"] == "0"
    for name in ("img_size", "dim_in", "max_conv_dim", "style_dim", "latent_dim", "batch_size",
                 "total_iters", "sample_every", "save_every", "print_every", "lambda_ds",
                 "ds_iter"):
        assert name in flags, name
    assert int(flags["total_iters"]) % int(flags["sample_every"]) == 0  # a grid at the end


# The demo training run, once per session and decoder.

# What a demo run leaves: its workdir, and what the CLI logged (stderr).
DemoRun = collections.namedtuple("DemoRun", ["workdir", "log"])


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "data"
    demo.write_demo_dataset(str(out), demo.DemoSpec())
    return out


@pytest.fixture(scope="session",
                params=["adain", pytest.param("modconv", marks=pytest.mark.demo_accuracy)])
def demo_run(request, demo_data, tmp_path_factory):
    """Trains configs/demo.cfg with the CLI, as `make demo` does, with the paper's AdaIN decoder
    and with the modulated-convolution one (--decoder=modconv)."""
    workdir = tmp_path_factory.mktemp(f"demo_{request.param}") / "run"
    cmd = [sys.executable, "-m", "stargan_tf.train", f"--flagfile={CONFIG}",
           f"--train_data={demo_data / 'train'}", f"--val_data={demo_data / 'val'}",
           f"--workdir={workdir}", f"--decoder={request.param}"]
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(),
                            timeout=TRAIN_TIMEOUT)
    assert result.returncode == 0, result.stderr[-5000:]
    print(f"\ndemo training ({request.param}): {time.monotonic() - start:.0f} s")
    return DemoRun(workdir, result.stderr)


@pytest.fixture(scope="session")
def classifier(demo_data):
    x, y = demo_classifier.read_split(str(demo_data / "train"))
    return demo_classifier.train_classifier(x, y)


@pytest.fixture(scope="session")
def val_split(demo_data):
    return demo_classifier.read_split(str(demo_data / "val"))


def test_classifier_knows_the_shapes(classifier, val_split):
    accuracy = demo_classifier.accuracy(classifier, *val_split)
    print(f"\ndemo classifier: {accuracy:.1%} on the val split")
    assert accuracy > MIN_CLASSIFIER_ACCURACY


def test_run_logs_progress_and_leaves_a_grid_and_the_model(demo_run):
    flags = _config_flags()
    total = int(flags["total_iters"])
    # Progress lines every --print_every steps: step, speed, ETA and losses.
    steps = [int(m) for m in re.findall(r"step (\d+)/%d \| [\d.]+ img/s \| [\d.]+ s/step \| ETA "
                                        r"[\d:]+ \| D/latent/real=" % total, demo_run.log)]
    assert steps == list(range(int(flags["print_every"]), total + 1, int(flags["print_every"])))
    final = demo_run.workdir / "samples" / f"{total:06d}.png"
    assert final.is_file()
    from PIL import Image

    with Image.open(final) as grid:
        # 1 + 2 sources per domain columns; sources, one row per domain, one per reference.
        side = 32 + 2
        assert grid.size == (7 * side - 2, 7 * side - 2)
    import stargan_tf

    nets = stargan_tf.load_networks(str(demo_run.workdir))
    assert nets.config.domain_names == demo.DOMAINS and nets.config.img_size == 32


def _translations(nets, x_val, y_val, guidance, seed=0):
    """Every source translated into every other domain: (fakes, targets)."""
    rng = np.random.default_rng(seed)
    num_domains = nets.config.num_domains
    sources = np.concatenate([np.flatnonzero(y_val == d)[:SOURCES_PER_DOMAIN]
                              for d in range(num_domains)])  # [K]
    fakes, targets = [], []
    for trg in range(num_domains):
        src = sources[y_val[sources] != trg]
        x_src = x_val[src]  # [n, S, S, 3]
        y_trg = np.full([len(src)], trg, np.int32)
        if guidance == "latent":
            z = rng.standard_normal([len(src), nets.config.latent_dim]).astype(np.float32)
            s = nets.mapping_network(z, y_trg)
        else:  # references: val images of the target domain, none of them a source
            pool = np.setdiff1d(np.flatnonzero(y_val == trg), sources)
            s = nets.style_encoder(x_val[rng.choice(pool, len(src))], y_trg)
        fakes.append(nets.generator(x_src, s).numpy())
        targets.append(y_trg)
    return np.concatenate(fakes), np.concatenate(targets)


@pytest.mark.parametrize("guidance", ["latent", "reference"])
def test_translations_show_the_target_shape(demo_run, classifier, val_split, guidance):
    import stargan_tf

    nets = stargan_tf.load_networks(str(demo_run.workdir))  # the EMA networks
    fakes, targets = _translations(nets, *val_split, guidance)
    assert len(fakes) >= 32
    accuracy = demo_classifier.accuracy(classifier, fakes, targets)
    print(f"\n{nets.config.decoder}, {guidance}-guided: the classifier sees the target shape in {accuracy:.1%} of "
          f"{len(fakes)} translations")
    assert accuracy >= MIN_TARGET_ACCURACY
