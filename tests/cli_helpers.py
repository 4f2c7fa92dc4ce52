"""Running the command-line tools in fresh processes, and checking their usage errors."""

import os
import subprocess
import sys

from conftest import REPO


def subprocess_env():
    """The environment of a tool run: this checkout first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


def run_command(argv, timeout=600, cwd=None):
    """Runs argv in a fresh process; returns (exit status, stdout, stderr)."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          env=subprocess_env(), timeout=timeout, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def run_module(module, *args, timeout=600, cwd=None):
    """Runs `python -m module args` in a fresh process; returns (status, stdout, stderr)."""
    return run_command([sys.executable, "-m", module, *args], timeout=timeout, cwd=cwd)


def error_lines(stderr):
    return [line for line in stderr.splitlines() if ": error: " in line]


def assert_usage_error(result, *fragments):
    """Exit status 2, no traceback, one `<tool>: error: ...` line holding every fragment."""
    status, _, stderr = result
    assert status == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
