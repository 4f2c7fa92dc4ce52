"""The mixed-precision and XLA paths of the training step run and give finite losses."""

import json
import sys

import pytest

from cli_helpers import run_command
from support import REPO


@pytest.mark.parametrize(
    "mixed_precision,jit,dtype",
    [
        ("mixed_bfloat16", "0", "bfloat16"),
        ("mixed_float16", "0", "float16"),
        # XLA compiles the whole training step for minutes: make test-slow.
        pytest.param("", "1", "float32", marks=pytest.mark.slow),
    ],
)
def test_precision_and_xla(tmp_path, mixed_precision, jit, dtype):
    status, stdout, stderr = run_command(
        [
            sys.executable,
            REPO / "tests" / "scripts" / "train_precision.py",
            mixed_precision,
            jit,
            tmp_path / "w",
        ],
        what=f"2 training iterations ({mixed_precision or 'float32'}, jit {jit})",
    )
    assert status == 0, stderr[-3000:]
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["dtype"] == dtype
    assert result["finite"], result
    assert set(result["m"]) >= {"D/latent/real", "D/ref/reg", "G/latent/cyc", "G/ref/ds"}
    # R1 is computed in float32 whatever the policy: a real, non-zero penalty.
    assert result["m"]["D/latent/reg"] > 0
