"""A progress bar for long commands, on stderr, drawn a few times a second at most.

Contract: `ProgressBar(stream, label)` is called as `bar(done, total)` as often as the work
likes; it redraws only when `interval` seconds have passed since the last drawing (so a tight
loop costs a clock read per call), and `finish()` draws the final state once. On a terminal the
bar redraws one line in place (`\\r`, then erase to the end of the line); anywhere else
(a log file, a pipe) each drawing is a line of its own, once a second by default.
A drawing shows count/total, the percentage, a bar, the rate and the time left.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "duration_text"]

_WIDTH = 24


def duration_text(seconds: float) -> str:
    """`"42s"`, `"3m05s"`, `"2h07m"`: short enough for a status line."""
    total = max(0, math.ceil(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    return f"{total // 3600}h{total % 3600 // 60:02d}m"


class ProgressBar:
    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        interactive: bool | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.label = label
        self.interactive = stream.isatty() if interactive is None else interactive
        self.interval = interval if interval is not None else (0.25 if self.interactive else 1.0)
        self.clock = clock
        self.started = clock()
        self._drawn_at: float | None = None
        self._done = 0
        self._total = 0

    def __call__(self, done: int, total: int) -> None:
        self._done, self._total = done, total
        now = self.clock()
        if self._drawn_at is not None and now - self._drawn_at < self.interval:
            return
        self._draw(now)

    def finish(self) -> None:
        self._draw(self.clock())
        if self.interactive:
            self.stream.write("\n")
        self.stream.flush()

    def render(self, done: int, total: int, elapsed: float) -> str:
        share = done / total if total else 1.0
        filled = round(share * _WIDTH)
        bar = "#" * filled + "." * (_WIDTH - filled)
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label} {done:,}/{total:,} {share:4.0%} [{bar}] {rate:,.0f}/s"
        if 0 < done < total and rate > 0:
            text += f", {duration_text((total - done) / rate)} left"
        elif done >= total:
            took = f"{elapsed:.1f}s" if elapsed < 10 else duration_text(elapsed)
            text += f", took {took}"
        return text

    def _draw(self, now: float) -> None:
        self._drawn_at = now
        text = self.render(self._done, self._total, now - self.started)
        if self.interactive:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
