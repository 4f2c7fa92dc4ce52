"""The mixed-precision and XLA paths of the training step run and give finite losses."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("mixed_precision,jit,dtype", [("mixed_bfloat16", "0", "bfloat16"),
                                                       ("mixed_float16", "0", "float16"),
                                                       ("", "1", "float32")])
def test_precision_and_xla(tmp_path, mixed_precision, jit, dtype):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "scripts" / "train_precision.py"),
                           mixed_precision, jit, str(tmp_path / "w")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["dtype"] == dtype
    assert result["finite"], result
    assert set(result["m"]) >= {"D/latent/real", "D/ref/reg", "G/latent/cyc", "G/ref/ds"}
    # R1 is computed in float32 whatever the policy: a real, non-zero penalty.
    assert result["m"]["D/latent/reg"] > 0
