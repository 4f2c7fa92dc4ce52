"""Shared test set-up: where the official-code fixtures live, and small helpers."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The official-code fixtures (weights, inputs, outputs) live beside the repository, in
# ../shared/fixtures (a clone elsewhere on this machine finds /work/shared/fixtures);
# STARGAN_FIXTURES points elsewhere. Missing fixtures fail the parity tests
# loudly rather than skipping them.
_CANDIDATES = [REPO.parent / "shared" / "fixtures", pathlib.Path("/work/shared/fixtures")]
FIXTURES = pathlib.Path(
    os.environ.get("STARGAN_FIXTURES")
    or next((str(p) for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])
)


def fixture_dir(name):
    path = FIXTURES / name
    if not path.is_dir():
        pytest.fail(f"Official fixture {path} is missing; set STARGAN_FIXTURES to ../shared/fixtures.")
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


# The longest test files first: with `make test`'s two workers taking a file at a time
# (pytest-xdist --dist loadfile, in collection order), a long file left for last would run alone
# at the end. The demo training run (~5 minutes) goes first; the rest keep their order.
LONGEST_FIRST = ("test_demo.py", "test_faults.py", "test_distributed.py", "test_train_cli.py",
                 "test_train_step.py", "test_train_precision.py", "test_faces.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a file and among the rest is kept
