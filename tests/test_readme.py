"""The README's conversion command and Python snippet, run as a new user would run them."""

import ast
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from support import REPO


def readme_block(language, containing):
    blocks = re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    matches = [b for b in blocks if containing in b]
    assert len(matches) == 1, f"expected one {language} block with {containing!r} in README.md"
    return matches[0]


def test_readme_setup_commands_come_first():
    head = (REPO / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in head.strip().splitlines()] == [
        ["make", "demo"],
        ["make", "test"],
    ]


def test_readme_conversion_and_translation(small64_dir, tmp_path):
    # An official *_nets_ema.ckpt as the README's command expects it: the fixture's weights (64 px,
    # 3 domains, like AFHQ's cat/dog/wild) without the discriminator.
    state = torch.load(small64_dir / "nets.ckpt", map_location="cpu", weights_only=True)
    del state["discriminator"]
    ckpt_dir = tmp_path / "expr" / "checkpoints" / "afhq"
    ckpt_dir.mkdir(parents=True)
    torch.save(state, ckpt_dir / "100000_nets_ema.ckpt")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, [90, 120, 3], np.uint8)).save(
        tmp_path / "cat.jpg"
    )

    command = shlex.split(readme_block("bash", "stargan-tf-convert").strip())
    assert command[0] == "stargan-tf-convert"
    # The README's rule: a console script `stargan-tf-X` is `python -m stargan_tf.X` (the
    # installed scripts themselves are run by tests/test_packaging.py).
    command = [sys.executable, "-m", "stargan_tf.convert"] + command[1:]
    proc = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "converted" / "afhq" / "config.json").exists()

    snippet = readme_block("python", "load_networks")
    proc = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    out = Image.open(tmp_path / "cat2dog.png")
    assert out.size == (64, 64) and out.mode == "RGB"
    assert np.asarray(out).std() > 1  # an image, not a constant


def test_bad_inputs_table_names_real_tests():
    """Every row of the README's "When something goes wrong" table names a test that exists, and
    quotes a message that the code (or that test) really holds, so that the table cannot drift.

    A row passes when one backquoted fragment of its `What you get` cell (its longest piece
    between `…`s, at least 6 characters, exception class names aside) appears in the test
    function's source or in the source of stargan_tf/ and tools/ (string literals included as
    Python joins them: implicit concatenation). Messages written by absl are quoted beside the
    flag the test passes, which is what this check finds."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## When something goes wrong\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]

    def cells(line):  # A Markdown table row; `\|` is a pipe inside a cell.
        return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]

    assert cells(lines[0]) == ["Input", "Tool", "What you get", "Test"], lines[0]
    rows = [cells(line) for line in lines[2:]]
    assert len(rows) >= 30, len(rows)

    def strings(tree):
        return [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
        ]

    package = []
    for path in sorted((REPO / "stargan_tf").rglob("*.py")) + sorted((REPO / "tools").glob("*.py")):
        source = path.read_text()
        package += [source] + strings(ast.parse(source))
    package = "\n".join(package)

    functions = {}  # test file -> {function name: its source and string literals}
    for row in rows:
        assert len(row) == 4 and all(row), row
        _, _, answer, test = row
        m = re.fullmatch(r"`(tests/\w+\.py)::(\w+)`", test)
        assert m, f"Test cell {test!r} is not `tests/<file>.py::<test_name>`"
        path = REPO / m.group(1)
        assert path.exists(), f"{m.group(1)} does not exist ({row[0]})"
        if path not in functions:
            source = path.read_text()
            functions[path] = {
                node.name: "\n".join([ast.get_source_segment(source, node)] + strings(node))
                for node in ast.walk(ast.parse(source))
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            }
        assert m.group(2) in functions[path], f"{test} names no function of {m.group(1)}"
        answer = re.sub(r"^exit \d+: ", "", answer)
        fragments = [max(q.split("…"), key=len).strip() for q in re.findall(r"`([^`]+)`", answer)]
        fragments = [f for f in fragments if len(f) >= 6 and not re.fullmatch(r"\w*Error", f)]
        assert fragments, f"{row[0]!r}: no quoted message in {answer!r}"
        where = functions[path][m.group(2)] + "\n" + package
        assert any(f in where for f in fragments), (
            f"{row[0]!r}: none of {fragments} is in {test} or in stargan_tf/, tools/"
        )
