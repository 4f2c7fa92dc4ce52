"""Shared test set-up: where the official-code fixtures live, and small helpers."""

import collections
import json
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The official-code fixtures (weights, inputs, outputs): STARGAN_FIXTURES, else ../shared/fixtures
# beside the repository. Missing fixtures fail the parity tests loudly rather than skipping them.
FIXTURES = pathlib.Path(os.environ.get("STARGAN_FIXTURES") or REPO.parent / "shared" / "fixtures")


def fixture_dir(name):
    path = FIXTURES / name
    if not path.is_dir():
        pytest.fail(f"Official fixture {path} is missing: put the fixtures in ../shared/fixtures "
                    "beside the repository, or set STARGAN_FIXTURES to their directory.")
    return path


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
            inside = ((yy - cy) ** 2 + (xx - cx) ** 2 < 36) if domain == "disc" else (
                (abs(yy - cy) < 6) & (abs(xx - cx) < 6))
            img[inside] = colour
            Image.fromarray(img).save(root / domain / f"{i}.png")
    out = tmp_path_factory.mktemp("tfr") / "train"
    tfrecords.write_split(str(root), tfrecords.find_images(str(root)), str(out), img_size=32,
                          workers=1)
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
