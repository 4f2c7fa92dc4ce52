"""A progress bar on stderr: count/total, images per second, time left."""

import sys
import time


class ProgressBar:
    """`bar.update(n)` after each batch; `bar.close()` at the end.

    On a terminal one line is redrawn in place; elsewhere (logs, pipes) a line is printed at most
    every `interval` seconds, and at the end.
    """

    def __init__(self, total, desc="", stream=None, width=30, interval=5.0):
        self.total = total
        self.desc = desc
        self.stream = stream or sys.stderr
        self.width = width
        self.interval = interval
        self.count = 0
        self.start = time.monotonic()
        self.last_print = None
        self.printed = -1  # The count of the last line printed (not on a terminal).
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def line(self):
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.count / elapsed
        done = int(self.width * self.count / max(self.total, 1))
        left = (self.total - self.count) / rate if rate > 0 else 0.0
        return (
            f"{self.desc}[{'#' * done}{'.' * (self.width - done)}] {self.count}/{self.total} "
            f"{rate:.1f} img/s, {left:.0f} s left"
        )

    def update(self, n=1):
        self.count += n
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
        elif self.last_print is None or now - self.last_print >= self.interval:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last_print, self.printed = now, self.count

    def close(self):
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
        elif self.printed != self.count:
            self.stream.write(self.line() + "\n")
        self.stream.flush()
