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
