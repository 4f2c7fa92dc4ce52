"""The README's conversion command and Python snippet, run as a new user would run them."""

import re
import shlex
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from conftest import REPO


def readme_block(language, containing):
    blocks = re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    matches = [b for b in blocks if containing in b]
    assert len(matches) == 1, f"expected one {language} block with {containing!r} in README.md"
    return matches[0]


def test_readme_setup_commands_come_first():
    head = (REPO / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in head.strip().splitlines()] == [["make", "demo"],
                                                                        ["make", "test"]]


def test_readme_conversion_and_translation(small64_dir, tmp_path):
    # An official *_nets_ema.ckpt as the README's command expects it: the fixture's weights (64 px,
    # 3 domains, like AFHQ's cat/dog/wild) without the discriminator.
    state = torch.load(small64_dir / "nets.ckpt", map_location="cpu", weights_only=True)
    del state["discriminator"]
    ckpt_dir = tmp_path / "expr" / "checkpoints" / "afhq"
    ckpt_dir.mkdir(parents=True)
    torch.save(state, ckpt_dir / "100000_nets_ema.ckpt")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, [90, 120, 3], np.uint8)).save(
        tmp_path / "cat.jpg")

    command = shlex.split(readme_block("bash", "convert_pytorch_checkpoint.py").strip())
    assert command[:2] == ["python", "tools/convert_pytorch_checkpoint.py"]
    command = [sys.executable, str(REPO / command[1])] + command[2:]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "converted" / "afhq" / "config.json").exists()

    snippet = readme_block("python", "load_networks")
    proc = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = Image.open(tmp_path / "cat2dog.png")
    assert out.size == (64, 64) and out.mode == "RGB"
    assert np.asarray(out).std() > 1  # an image, not a constant
