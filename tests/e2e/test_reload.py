"""Hot reload under a running `monitor run`: edits apply within 2 s, invalid edits never do.

The daemon runs as a subprocess on a config folder in a temp dir, polling a loopback feed every
second, with console alerts. The test reads its stdout (alerts) and stderr (logs) line by line
and waits on what it expects to see, with deadlines.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import environment, rss
from tests.fakes.feed_server import FeedServer

WATCHLIST = """\
name: Alpha desk
match:
  any: [alpha]
"""


class Running:
    """A `monitor run` subprocess whose output lines arrive on queues."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            env=env,
            cwd=config.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, lines), daemon=True).start()

    @staticmethod
    def _pump(stream: object, lines: queue.Queue[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)
        lines.put("")  # end of stream

    def wait_for(
        self, lines: queue.Queue[str], predicate: Callable[[str], bool], timeout: float
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"not seen within {timeout} s; seen:\n" + "".join(self.seen[-30:])
                )
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line == "":
                raise AssertionError("the daemon exited; seen:\n" + "".join(self.seen[-30:]))
            self.seen.append(line)
            if predicate(line):
                return line

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def daemon(tmp_path: Path, db_url: str, feed_server: FeedServer) -> Iterator[tuple[Running, Path]]:
    feed_server.add("/news.xml", rss([]))
    config = tmp_path / "config"
    (config / "watchlists").mkdir(parents=True)
    (config / "watchlists" / "desk.yaml").write_text(WATCHLIST, encoding="utf-8")
    (config / "feeds.yaml").write_text(
        f"feeds:\n  - {{id: news, url: '{feed_server.url('/news.xml')}', interval: 1s}}\n",
        encoding="utf-8",
    )
    (config / "monitor.yaml").write_text(
        # Served items are undated: without this, a new feed's first poll is all backlog.
        "destinations:\n  screen: {type: console}\ndefaults:\n  backlog_window: 'off'\n",
        encoding="utf-8",
    )
    running = Running(config, environment(db_url, PYTHONUNBUFFERED="1"))
    try:
        running.wait_for(running.err, lambda line: "daemon started" in line, timeout=30)
        yield running, config
    finally:
        if running.proc.poll() is None:
            assert running.stop() == 0
        for stream in (running.proc.stdout, running.proc.stderr):
            assert stream is not None
            stream.close()


def _replace(path: Path, text: str) -> None:
    """Write the way editors do: a temp file renamed over the old one."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def _item(n: int, title: str) -> dict[str, str]:
    return {"title": title, "link": f"https://news.example/{n}", "guid": f"n{n}"}


def test_an_edited_watchlist_applies_within_2_s_and_a_bad_edit_never_does(
    daemon: tuple[Running, Path], feed_server: FeedServer
) -> None:
    running, config = daemon
    items = [_item(1, "alpha news one")]
    feed_server.add("/news.xml", rss(items))
    running.wait_for(running.out, lambda line: "alpha news one" in line, timeout=10)

    # A new term: in force within 2 s, and the next article alerts through it.
    watchlist = config / "watchlists" / "desk.yaml"
    edited = time.monotonic()
    _replace(watchlist, WATCHLIST.replace("[alpha]", "[alpha, bravo]"))
    running.wait_for(running.err, lambda line: "config reloaded" in line, timeout=2.0)
    assert time.monotonic() - edited <= 2.0
    items.append(_item(2, "bravo arrives"))
    feed_server.add("/news.xml", rss(items))
    running.wait_for(running.out, lambda line: "bravo arrives" in line, timeout=10)

    # An invalid watchlist: reported with its location, the last good config stays.
    _replace(watchlist, "name: Alpha desk\nmatch:\n  any: [alpha, bravo]\n  colour: red\n")
    running.wait_for(running.err, lambda line: "config reload failed" in line, timeout=5)
    problem = running.wait_for(running.err, lambda line: "unknown key" in line, timeout=5)
    assert f"{watchlist}:4:3: unknown key 'colour'" in problem
    items.append(_item(3, "bravo again"))
    feed_server.add("/news.xml", rss(items))
    running.wait_for(running.out, lambda line: "bravo again" in line, timeout=10)

    status = subprocess.run(
        [sys.executable, "-m", "monitor", "status", "--config", str(config)],
        env=running.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "LAST RELOAD FAILED" in status.stdout
    assert f"{watchlist}:4:3: unknown key 'colour'" in status.stdout

    # A half-written file (cut mid-list) is invalid YAML: it never takes effect either.
    _replace(watchlist, "name: Alpha desk\nmatch:\n  any: [alpha, bravo, char")
    running.wait_for(running.err, lambda line: "config reload failed" in line, timeout=5)
    _replace(watchlist, WATCHLIST.replace("[alpha]", "[alpha, bravo, charlie]"))
    running.wait_for(running.err, lambda line: "config reloaded" in line, timeout=2.0)
    items.append(_item(4, "charlie too"))
    feed_server.add("/news.xml", rss(items))
    running.wait_for(running.out, lambda line: "charlie too" in line, timeout=10)
    assert running.stop() == 0


def test_new_feeds_start_and_removed_feeds_stop(
    daemon: tuple[Running, Path], feed_server: FeedServer
) -> None:
    running, config = daemon
    feed_server.add("/other.xml", rss([_item(10, "alpha from the other feed")]))
    feeds = config / "feeds.yaml"
    _replace(
        feeds,
        f"feeds:\n  - {{id: other, url: '{feed_server.url('/other.xml')}', interval: 1s}}\n",
    )
    running.wait_for(running.err, lambda line: "config reloaded: 1 feeds" in line, timeout=2.0)
    running.wait_for(running.out, lambda line: "alpha from the other feed" in line, timeout=10)
    polled = len(feed_server.requests_to("/news.xml"))
    feed_server.add("/news.xml", rss([_item(11, "alpha on the removed feed")]))
    feed_server.add(
        "/other.xml", rss([_item(10, "alpha from the other feed"), _item(12, "alpha later")])
    )
    running.wait_for(running.out, lambda line: "alpha later" in line, timeout=10)
    assert len(feed_server.requests_to("/news.xml")) <= polled + 1  # at most one poll in flight
    assert not any("removed feed" in line for line in running.seen)
