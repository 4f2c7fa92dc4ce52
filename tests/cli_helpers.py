"""Running the command-line tools in fresh processes, and checking their usage errors.

Every test that starts a process goes through `run_command` (or `start` for one it watches while
it runs), so that every timeout says what it waited for and for how long.

Timeouts: a command-line run in these tests (TensorFlow start-up, tracing a tiny training step, a
few steps) takes 10-60 s on an idle 2-core machine; the default of 600 s is 10x the longest of
them, so that a machine shared with other work still finishes in time.
"""

import os
import subprocess
import sys

from support import REPO

DEFAULT_TIMEOUT = 600


def subprocess_env(**extra):
    """The environment of a tool run: this checkout first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _tail(text, chars=3000):
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-chars:]


def run_command(argv, timeout=DEFAULT_TIMEOUT, cwd=None, env=None, what=None):
    """Runs argv in a fresh process; returns (exit status, stdout, stderr).

    On a timeout the test fails naming `what` (default: the command line) and the seconds waited,
    with the tail of what the process printed.
    """
    argv = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env or subprocess_env(),
            timeout=timeout,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired as e:
        raise AssertionError(
            f"{what or ' '.join(argv)}: not finished after {timeout} s (killed). "
            f"stderr tail:\n{_tail(e.stderr)}"
        ) from None
    return proc.returncode, proc.stdout, proc.stderr


def run_module(module, *args, timeout=DEFAULT_TIMEOUT, cwd=None, env=None, what=None):
    """Runs `python -m module args` in a fresh process; returns (status, stdout, stderr)."""
    return run_command(
        [sys.executable, "-m", module, *args],
        timeout=timeout,
        cwd=cwd,
        env=env,
        what=what or f"python -m {module}",
    )


def wait_for_exit(proc, timeout, what):
    """Waits for a Popen process; fails naming `what` and the seconds waited on a timeout."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{what}: not finished after {timeout} s (killed).") from None


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
