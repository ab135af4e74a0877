"""The progress bar: throttled redraws, count/total, rate and time left, terminal or not."""

from __future__ import annotations

import io

from monitor.cli.progress import ProgressBar, duration_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_redraws_at_most_once_per_interval_on_a_terminal() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, "backtest", interactive=True, clock=clock)
    bar(0, 1000)
    for done in range(1, 9):
        clock.now += 1 / 16  # eight calls in half a second
        bar(done, 1000)
    clock.now = 102.0
    bar(500, 1000)
    drawings = stream.getvalue().split("\r")[1:]
    assert [d.split()[1] for d in drawings] == ["0/1,000", "4/1,000", "8/1,000", "500/1,000"]
    last = drawings[-1]
    assert last == "backtest 500/1,000  50% [############............] 250/s, 2s left\x1b[K"
    assert "\n" not in stream.getvalue()

    clock.now = 104.0
    bar(1000, 1000)
    bar.finish()  # the final state, then a newline so the shell prompt starts clean
    assert stream.getvalue().endswith("backtest 1,000/1,000 100% [########################] "
                                      "250/s, took 4.0s\x1b[K\n")  # fmt: skip


def test_elsewhere_each_drawing_is_a_line_once_a_second() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, "replay", interactive=False, clock=clock)
    for done in range(25):
        bar(done, 24)
        clock.now += 1 / 8
    bar.finish()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split()[1] for line in lines] == ["0/24", "8/24", "16/24", "24/24", "24/24"]
    assert lines[-1].endswith("took 3.1s")


def test_defaults_follow_the_stream() -> None:
    assert ProgressBar(io.StringIO(), "x").interactive is False
    assert ProgressBar(io.StringIO(), "x").interval == 1.0
    assert ProgressBar(io.StringIO(), "x", interactive=True).interval == 0.25


def test_nothing_to_do_is_done() -> None:
    stream, clock = io.StringIO(), Clock()
    bar = ProgressBar(stream, "backtest", interactive=False, clock=clock)
    bar(0, 0)
    assert stream.getvalue().startswith("backtest 0/0 100% [########################] 0/s")


def test_duration_text() -> None:
    assert [duration_text(s) for s in (0, 0.2, 42, 60, 185, 3599.5, 7620, -3)] == [
        "0s", "1s", "42s", "1m00s", "3m05s", "1h00m", "2h07m", "0s"
    ]  # fmt: skip
