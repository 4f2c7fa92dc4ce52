"""What many tests share: the repository, the official-code fixtures, the tiny model config."""

import dataclasses
import os
import pathlib

import pytest

from stargan_tf.config import ModelConfig

REPO = pathlib.Path(__file__).resolve().parents[1]
# The official-code fixtures (weights, inputs, outputs): STARGAN_FIXTURES, else ../shared/fixtures
# beside the repository. Missing fixtures fail the parity tests loudly rather than skipping them.
FIXTURES = pathlib.Path(os.environ.get("STARGAN_FIXTURES") or REPO.parent / "shared" / "fixtures")

# The tiny model of the tests: every network, seconds to build and trace on a CPU.
TINY = ModelConfig(
    img_size=32,
    style_dim=8,
    latent_dim=4,
    num_domains=2,
    max_conv_dim=16,
    dim_in=8,
    w_hpf=0.0,
    domain_names=("cat", "dog"),
)


# The command-line flags of TINY (the domains come from the data) and a small batch.
TINY_FLAGS = [
    f"--img_size={TINY.img_size}",
    f"--dim_in={TINY.dim_in}",
    f"--max_conv_dim={TINY.max_conv_dim}",
    f"--style_dim={TINY.style_dim}",
    f"--latent_dim={TINY.latent_dim}",
    f"--w_hpf={TINY.w_hpf:g}",
    "--batch_size=2",
    "--val_batch_size=8",
]


def tiny(**changes):
    """TINY with some fields changed; another num_domains gets default names unless given."""
    if "num_domains" in changes and "domain_names" not in changes:
        changes["domain_names"] = ()
    return dataclasses.replace(TINY, **changes)


def fixture_dir(name):
    """The directory of one official fixture; fails the test (never skips it) when missing."""
    path = FIXTURES / name
    if not path.is_dir():
        pytest.fail(
            f"Official fixture {path} is missing: put the fixtures in ../shared/fixtures "
            "beside the repository, or set STARGAN_FIXTURES to their directory."
        )
    return path


def flagfile_lines(path):
    """The flag lines of a flagfile (comment and blank lines dropped), stripped."""
    lines = (line.strip() for line in pathlib.Path(path).read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def flagfile_values(path):
    """A flagfile as {flag name: value string}."""
    return dict(line[2:].partition("=")[::2] for line in flagfile_lines(path))
