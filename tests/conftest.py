"""Shared test set-up: the test files' order (longest first) and the official fixtures' splits.

Where the tests of a module are (tests/test_layout.py checks that every module is listed):

  module (stargan_tf/...)                     tests (tests/test_...)
  layers/blocks, folded_conv, patch_conv,     layers, parity (official numbers)
    placement, op_order, highpass, initializers,
    normalization, torch_layout
  layers/modulated_conv, gen_resblk           modulated_conv, modconv_generator
  networks/__init__, common, encoders,        networks, parity
    generator, mapping_network
  networks/fan, face_masks                    fan, faces
  losses                                      losses, train_step
  config, cli                                 networks, train_cli
  data/format, source, pipeline, folders,     data_pipeline, data_resume
    augment, tfds_source
  data/tfrecords, make_tfrecords              make_tfrecords, data_pipeline
  data/demo, demo                             demo
  data/face_align, align                      align, fan
  model_dir, model_card, files, errors        model_card, convert, modconv_generator
  official/checkpoint, torch_files, convert   convert, parity
  official/fan                                fan
  inference/models, translation, images,      translate, faces
    batch, progress, translate
  inference/sampling, grids, video, sample    sample
  inference/mean_style (ψ truncation)         psi
  inference/app_logic, app (the web demo)     app (in a real browser)
  inference/serving, export                   export, serving_rest
  inference/portable (ONNX, LiteRT)           portable_export
  metrics/*, evaluate                         metrics, evaluate
  training/trainer, optimizer, samples,       train_step, train_cli, train_precision, faces
    config, train
  training/recovery, preemption               faults, train_cli
  training/init_from, networks/heads          fine_tune
  training (distributed)                      distributed (tests/train_worker.py runs workers)
  perf/*, tools/benchmark.py                  benchmark
  startup, recipes, training/threads          startup
  the package's layers, function lengths      layout
  the README's commands, the installed wheel  readme, packaging

Helpers: tests/support.py (the repository, the fixtures, the tiny model config),
tests/cli_helpers.py (every subprocess: run_module, run_command, wait_for_exit),
tests/data_helpers.py (image folders and splits), tests/inference_helpers.py (saved tiny models),
tests/demo_classifier.py (judging the demo's translations).
"""

import collections
import json
import pathlib

import pytest

from support import REPO, fixture_dir


@pytest.fixture(scope="session")
def small64_dir():
    return fixture_dir("official_small64")


@pytest.fixture(scope="session")
def hpf256_dir():
    return fixture_dir("official_hpf256")


@pytest.fixture(scope="session")
def split(tmp_path_factory):
    """A 2-domain TFRecord split of 32 px images (12 per domain): red squares and blue discs at
    random places, written by the real writer; for training runs of the CLI tests."""
    import numpy as np
    from PIL import Image

    from stargan_tf.data import tfrecords

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for domain, colour in (("disc", (40, 60, 220)), ("square", (220, 50, 40))):
        (root / domain).mkdir()
        for i in range(12):
            img = np.full([32, 32, 3], rng.integers(0, 100), np.uint8)
            cy, cx = rng.integers(8, 24, 2)
            yy, xx = np.mgrid[:32, :32]
            inside = (
                ((yy - cy) ** 2 + (xx - cx) ** 2 < 36)
                if domain == "disc"
                else ((abs(yy - cy) < 6) & (abs(xx - cx) < 6))
            )
            img[inside] = colour
            Image.fromarray(img).save(root / domain / f"{i}.png")
    out = tmp_path_factory.mktemp("tfr") / "train"
    tfrecords.write_split(
        str(root), tfrecords.find_images(str(root)), str(out), img_size=32, workers=1
    )
    return out


# Scheduling. `make test` runs two pytest-xdist workers that take a whole file at a time in
# collection order (--dist loadfile --no-loadscope-reorder): a long file left for last would run
# alone at the end. So the files are collected longest first, by the seconds each took in the
# last run on this machine (recorded in pytest's cache when a run ends), else by
# tests/durations.json (the same numbers from a full run, for a fresh clone: `make durations`
# rewrites it). A file in neither goes last, in alphabetical order.
DURATIONS_FILE = pathlib.Path(__file__).with_name("durations.json")
_CACHE_KEY = "stargan_tf/file_seconds"
_seconds_this_run = collections.defaultdict(float)


def recorded_file_seconds(config=None):
    """{test file name: seconds of its tests (setup, call, teardown)} as last recorded."""
    seconds = json.loads(DURATIONS_FILE.read_text()) if DURATIONS_FILE.is_file() else {}
    cache = getattr(config, "cache", None)
    if cache is not None:
        seconds.update(cache.get(_CACHE_KEY, {}))
    return seconds


def pytest_collection_modifyitems(config, items):
    seconds = recorded_file_seconds(config)
    # Stable: the order within a file is kept.
    items.sort(key=lambda item: -seconds.get(item.path.name, 0.0))


def pytest_runtest_logreport(report):
    # On the xdist controller too: it receives every worker's reports.
    _seconds_this_run[pathlib.PurePath(report.nodeid.split("::")[0]).name] += report.duration


def pytest_sessionfinish(session):
    cache = getattr(session.config, "cache", None)
    if cache is None or not _seconds_this_run or hasattr(session.config, "workerinput"):
        return  # an xdist worker: the controller records
    seconds = cache.get(_CACHE_KEY, {})
    seconds.update({name: round(s, 1) for name, s in _seconds_this_run.items()})
    cache.set(_CACHE_KEY, seconds)


def write_durations():
    """Writes tests/durations.json from the durations the last run recorded in pytest's cache
    (`make durations`)."""
    cached = REPO / ".pytest_cache" / "v" / _CACHE_KEY
    if not cached.is_file():
        raise SystemExit(f"{cached} is missing: run `make test` first.")
    seconds = json.loads(cached.read_text())
    ordered = dict(sorted(seconds.items(), key=lambda kv: (-kv[1], kv[0])))
    DURATIONS_FILE.write_text(json.dumps(ordered, indent=1) + "\n")
    print(f"{DURATIONS_FILE}: {len(ordered)} files, {sum(ordered.values()):.0f} s in all")
