"""Several `monitor run` workers (subprocesses) on one PostgreSQL database, and SQLite's one.

500 feeds on the loopback feed server, each a small RSS of three items of which one matches the
Taiwan watchlist, polled hourly with a fixed interval, so that each feed is due exactly once
during a test; alerts go to a console destination, read from every worker's stdout. Two or
three workers started together must fetch every feed exactly once (the feed server's request
log), store no article twice and print every alert exactly once across them. A worker killed
with SIGKILL while it holds claims (the feed server stalls its feeds) and the console's
delivery lease loses nothing: once its leases lapse (MONITOR_LEASE_SECONDS=8 here, instead of
2 × fetch_timeout + 60 s and 60 s) the others poll its feeds and deliver its destination.

On SQLite a second `monitor run` (or `run --once`) refuses to start, exit code 2, with a message
naming the database file, while `monitor status` still works.

Nothing waits on a timer: the tests block on the workers' output (a condition variable fed by
reader threads) and on the feed server's open connections.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from sqlalchemy import func, select

from monitor.edges.db import make_engine
from monitor.edges.schema import SENT, alerts, articles, feeds, leases
from tests.e2e.harness import Monitor, environment, make_config, rss, word
from tests.fakes.databases import truncate_all
from tests.fakes.feed_server import FeedServer

FEEDS = 500
ITEMS = 3  # per feed; the first one matches
BATCH = 8  # feeds a worker claims and polls at once (defaults.concurrency)
MONITOR_YAML = f"""
destinations:
  screen: {{type: console}}
defaults:
  poll_interval: 1h
  adapt_intervals: false
  burst_limit: 0
  concurrency: {BATCH}
  per_host_concurrency: {BATCH}
  per_host_spacing: 0
"""


def _feed(n: int) -> bytes:
    items = []
    for k in range(ITEMS):
        words = " ".join(word((n * ITEMS + k) * 8 + j) for j in range(8))
        title = f"Taiwan {words}" if k == 0 else words.capitalize()
        items.append({"title": title, "link": f"https://n.example/{n}/{k}",
                      "guid": f"item-{n}-{k}", "description": f"{title} report"})  # fmt: skip
    return rss(items, title=f"Outlet {n}")


def _path(n: int) -> str:
    return f"/f{n:03d}.xml"


EXPECTED_LINKS = {f"https://n.example/{n}/0" for n in range(FEEDS)}


@dataclass
class Workers:
    """`monitor run` processes sharing one config; their output, read by a thread per stream."""

    config: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    out: list[list[str]] = field(default_factory=list)
    err: list[list[str]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    readers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
            env=self.env, cwd=self.config.parent, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        for stream, lines in ((proc.stdout, []), (proc.stderr, [])):
            (self.out if stream is proc.stdout else self.err).append(lines)
            reader = threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
            reader.start()
            self.readers.append(reader)
        return proc

    def _pump(self, stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self.changed:
                lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:  # the process ended: wake waiters so they can see it
            self.changed.notify_all()

    def links(self) -> Counter[str]:
        """Every alert printed, by link, across the workers."""
        return Counter(
            line.removeprefix("Link: ") for out in self.out for line in out
            if line.startswith("Link: ")
        )  # fmt: skip

    def wait_for(self, what: Callable[[], bool], timeout: float) -> None:
        def done_or_dead() -> bool:
            return what() or any(p.poll() is not None for p in self.procs if p.returncode is None)

        with self.changed:
            self.changed.wait_for(done_or_dead, timeout)
            ok = what()
        assert ok, self.report()

    def started(self, proc: subprocess.Popen[str]) -> Callable[[], bool]:
        lines = self.err[self.procs.index(proc)]
        return lambda: any("daemon started" in line for line in lines)

    def kill(self, proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM the live ones; each must exit 0 (a killed one is left as it died)."""
        live = [p for p in self.procs if p.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        for proc in live:
            proc.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=30)
        assert all(p.returncode == 0 for p in live), self.report()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for reader in self.readers:  # at end of stream now
            reader.join(timeout=30)
        for proc in self.procs:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()

    def report(self) -> str:
        tails = []
        for i, proc in enumerate(self.procs):
            tail = "\n".join(self.err[i][-15:])
            tails.append(f"--- worker {i} (exit {proc.returncode}), stderr tail:\n{tail}")
        return f"{len(self.links())} distinct alerts printed\n" + "\n".join(tails)


@pytest.fixture
def pg(pg_url: str) -> str:
    engine = make_engine(pg_url)
    truncate_all(engine)
    engine.dispose()
    return pg_url


@pytest.fixture
def workers(tmp_path: Path, pg: str, feed_server: FeedServer) -> Iterator[Workers]:
    for n in range(FEEDS):
        feed_server.add(_path(n), _feed(n))
    config = make_config(
        tmp_path,
        feeds={f"f{n:03d}": feed_server.url(_path(n)) for n in range(FEEDS)},
        destinations=MONITOR_YAML,
    )
    group = Workers(config, environment(pg, MONITOR_LEASE_SECONDS="8"))
    try:
        yield group
    finally:
        group.close()


def _fetches(feed_server: FeedServer) -> Counter[str]:
    return Counter(r.path for r in feed_server.requests)


def _lease_owners(db_url: str, *, named: bool = False) -> Any:
    """feed id → the worker that claims it; or (`named`) the owners of named leases."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            if named:
                return set(conn.scalars(select(leases.c.owner)))
            query = select(feeds.c.id, feeds.c.lease_owner).where(feeds.c.lease_owner.is_not(None))
            return {row.id: row.lease_owner for row in conn.execute(query)}
    finally:
        engine.dispose()


def _assert_stored_once_and_all_sent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            stored = conn.scalar(select(func.count()).select_from(articles))
            distinct = conn.scalar(select(func.count(func.distinct(articles.c.guid))))
            statuses = dict(conn.execute(select(alerts.c.status, func.count()).group_by(
                alerts.c.status)).all())  # fmt: skip
            leased = conn.scalar(select(func.count()).where(feeds.c.lease_owner.is_not(None)))
    finally:
        engine.dispose()
    assert stored == distinct == FEEDS * ITEMS
    assert statuses == {SENT: FEEDS}
    assert leased == 0  # every claim released (or taken over, then released)


@pytest.mark.postgres
@pytest.mark.timeout(240)
@pytest.mark.parametrize("count", [2, 3])
def test_workers_share_500_feeds_fetching_each_once_and_alerting_once(
    count: int, workers: Workers, feed_server: FeedServer, pg: str
) -> None:
    # Default leases here: only a dead worker's would ever lapse.
    del workers.env["MONITOR_LEASE_SECONDS"]
    for _ in range(count):
        workers.start()
    workers.wait_for(lambda: set(workers.links()) >= EXPECTED_LINKS, timeout=180)
    workers.stop()

    assert _fetches(feed_server) == {_path(n): 1 for n in range(FEEDS)}
    printed = workers.links()
    assert set(printed) == EXPECTED_LINKS
    assert max(printed.values()) == 1, [link for link, n in printed.items() if n > 1][:10]
    _assert_stored_once_and_all_sent(pg)


@pytest.mark.postgres
@pytest.mark.timeout(240)
def test_a_worker_killed_holding_claims_and_the_delivery_lease_loses_nothing(
    workers: Workers, feed_server: FeedServer, pg: str
) -> None:
    # The first batch by id hangs: the first worker claims it, and sits on it.
    stalled = [_path(n) for n in range(BATCH)]
    for path in stalled:
        feed_server.add(path, b"", hang=True)
    doomed = workers.start()
    workers.wait_for(workers.started(doomed), timeout=60)
    assert feed_server.wait_for_connections(BATCH, timeout=60), workers.report()
    owners = _lease_owners(pg)  # claimed before fetched: these are its claims
    assert owners.keys() == {f"f{n:03d}" for n in range(BATCH)}
    assert len(set(owners.values()) | _lease_owners(pg, named=True)) == 1, owners
    workers.kill(doomed)  # mid-cycle, holding 8 claims and the console's lease
    for n in range(BATCH):
        feed_server.add(_path(n), _feed(n))
    workers.start()
    workers.start()
    workers.wait_for(lambda: set(workers.links()) >= EXPECTED_LINKS, timeout=180)
    workers.stop()

    fetched = _fetches(feed_server)
    assert {p: n for p, n in fetched.items() if p not in stalled} == {
        _path(n): 1 for n in range(BATCH, FEEDS)
    }
    # Polled again after the kill (their articles and alerts are checked below) and only once
    # more; whether the dead worker's own request reached the log depends on whether it was
    # sent before the kill (its connection was open).
    assert all(fetched[p] in (1, 2) for p in stalled), {p: fetched[p] for p in stalled}
    printed = workers.links()
    assert set(printed) == EXPECTED_LINKS
    assert max(printed.values()) == 1, [link for link, n in printed.items() if n > 1][:10]
    _assert_stored_once_and_all_sent(pg)


def test_a_second_run_on_one_sqlite_file_refuses_to_start(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", _feed(0))
    config = make_config(tmp_path, feeds={"f": feed_server.url("/f.xml")},
                         destinations=MONITOR_YAML)  # fmt: skip
    database = tmp_path / "data" / "monitor.db"
    env = environment(f"sqlite:///{database}")
    group = Workers(config, env)
    other = Monitor(config=config, env=env)
    try:
        first = group.start()
        group.wait_for(group.started(first), timeout=60)
        for args in (("run",), ("run", "--once")):
            refused = other.run(*args, timeout=60)
            assert refused.returncode == 2, refused.stderr
            assert f"monitor: {database} is in use by another monitor process" in refused.stderr
            assert f"(pid {first.pid}; lock {database}.lock)" in refused.stderr
        assert other.run("status", timeout=60).returncode == 0
        group.stop()
    finally:
        group.close()
    assert other.run("run", "--once", timeout=60).returncode == 0  # released with its holder
