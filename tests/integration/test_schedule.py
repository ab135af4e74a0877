"""Scheduling in the pipeline, on SQLite and PostgreSQL, with a controllable clock.

Feeds come from the loopback feed server: busy and quiet feeds, caching headers and `<ttl>`,
429/503 with Retry-After, failing feeds, 410 Gone, a port nobody listens on, permanent
redirects, and a server that counts the requests it serves at once. Time moves only when a
test moves the clock: "the next poll" is always read from the feed row.
"""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from monitor.cli.status import print_status
from monitor.edges.state import State
from monitor.edges.store import FeedRow
from monitor.pipeline.poll import poll_feeds
from monitor.pipeline.runtime import Runtime
from tests.e2e.harness import rss
from tests.fakes.feed_server import FeedServer
from tests.fakes.runtime import Build, Clock

#: No spacing between requests to the feed server, unless a test is about it.
FAST = {"per_host_spacing": "0", "per_host_concurrency": "8"}


def _items(start: int, count: int) -> list[dict[str, str]]:
    return [{"title": f"Report {n}", "guid": f"item-{n}", "link": f"https://news.example/{n}"}
            for n in range(start, start + count)]  # fmt: skip


def _row(rt: Runtime, feed_id: str) -> FeedRow:
    (row,) = rt.store.feeds([feed_id])
    return row


def _wait(rt: Runtime, feed_id: str) -> float:
    """Seconds from now to the feed's next poll."""
    row = _row(rt, feed_id)
    assert row.next_poll_at is not None
    return (row.next_poll_at - rt.clock()).total_seconds()


async def _poll_when_due(rt: Runtime, clock: Clock, feed_id: str) -> FeedRow:
    """Move the clock to the feed's next poll, poll it, and return its row."""
    next_poll = _row(rt, feed_id).next_poll_at
    assert next_poll is not None
    clock.now = max(clock.now, next_poll)
    assert feed_id in rt.store.due_feed_ids(clock.now)
    await poll_feeds(rt, [feed_id])
    return _row(rt, feed_id)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port nobody listens on: connecting to it is refused. The socket stays bound
    (never listening) for the test, so no other process can take the port meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _with_notices(rt: Runtime) -> tuple[Runtime, list[str]]:
    told: list[str] = []

    async def notice(text: str) -> None:
        told.append(text)

    return replace(rt, notice=notice), told


# -- adaptive intervals ----------------------------------------------------------------------------


async def test_a_busy_feed_is_polled_more_often(build: Build, feed_server: FeedServer) -> None:
    clock = Clock()
    rt = build({"busy": feed_server.url("/busy.xml")}, clock=clock, defaults=FAST)
    feed_server.add("/busy.xml", rss(_items(0, 3)))
    await poll_feeds(rt, ["busy"])
    assert _row(rt, "busy").interval_s == 600  # a first poll is a backlog: no rate yet
    for poll in range(1, 4):
        feed_server.add("/busy.xml", rss(_items(3 * poll, 3)))
        row = await _poll_when_due(rt, clock, "busy")
    # Three items every poll: half the gap between items is below the lower bound, 2 min.
    assert row.interval_s == 120 and _wait(rt, "busy") == 120
    assert row.items_per_day is not None and row.items_per_day > 200


async def test_a_feed_that_never_changes_drifts_to_the_upper_bound(
    build: Build, feed_server: FeedServer
) -> None:
    clock = Clock()
    rt = build({"quiet": feed_server.url("/quiet.xml")}, clock=clock, defaults=FAST)
    feed_server.add("/quiet.xml", rss(_items(0, 2)), etag='"v1"')
    await poll_feeds(rt, ["quiet"])
    intervals = []
    for _ in range(9):
        row = await _poll_when_due(rt, clock, "quiet")
        assert row.last_status == "304 not modified"
        intervals.append(row.interval_s)
    # ×1.5 per empty poll from the 10 min base (stored in whole seconds), up to max_interval
    # (2 h), never past it.
    assert intervals == [900, 1350, 2025, 3038, 4557, 6836, 7200, 7200, 7200]
    assert row.items_per_day == 0


async def test_a_fixed_interval_when_adaptation_is_off(
    build: Build, feed_server: FeedServer
) -> None:
    clock = Clock()
    defaults = FAST | {"adapt_intervals": "false"}
    rt = build({"quiet": feed_server.url("/quiet.xml")}, clock=clock, defaults=defaults)
    feed_server.add("/quiet.xml", rss(_items(0, 2)), etag='"v1"')
    await poll_feeds(rt, ["quiet"])
    for _ in range(3):
        assert (await _poll_when_due(rt, clock, "quiet")).interval_s == 600


# -- server hints ----------------------------------------------------------------------------------


async def test_cache_control_and_expires_defer_the_next_poll(
    build: Build, feed_server: FeedServer
) -> None:
    def body(n: int) -> bytes:  # items of their own: each first poll has new items
        return rss(_items(10 * n, 2))

    feed_server.add("/hour.xml", body(1), headers={"Cache-Control": "public, max-age=3600"})
    feed_server.add("/aged.xml", body(2), headers={"Cache-Control": "max-age=3600", "Age": "600"})
    two_hours = {
        "Date": "Wed, 04 Feb 2026 12:00:00 GMT",
        "Expires": "Wed, 04 Feb 2026 14:00:00 GMT",
    }
    feed_server.add("/expires.xml", body(3), headers=two_hours)
    feed_server.add("/no-cache.xml", body(4), headers={"Cache-Control": "no-cache, max-age=3600"})
    feed_server.add("/silly.xml", body(5), headers={"Cache-Control": "max-age=31536000"})
    names = ["hour", "aged", "expires", "no-cache", "silly"]
    rt = build({n: feed_server.url(f"/{n}.xml") for n in names}, defaults=FAST)

    await poll_feeds(rt, names)

    waits = {n: _wait(rt, n) for n in names}
    assert waits == {"hour": 3600, "aged": 3000, "expires": 7200, "no-cache": 600,
                     "silly": 86_400}  # fmt: skip


async def test_a_304_carries_its_own_freshness(build: Build, feed_server: FeedServer) -> None:
    clock = Clock()
    rt = build({"f": feed_server.url("/f.xml")}, clock=clock, defaults=FAST)
    # Three hours: past the upper bound (2 h) that an empty poll's interval stays within.
    feed_server.add("/f.xml", rss(_items(0, 2)), etag='"v1"',
                    headers={"Cache-Control": "max-age=10800"})  # fmt: skip
    await poll_feeds(rt, ["f"])
    row = await _poll_when_due(rt, clock, "f")
    assert row.last_status == "304 not modified" and _wait(rt, "f") == 10800


async def test_rss_ttl_is_honoured(build: Build, feed_server: FeedServer) -> None:
    clock = Clock()
    rt = build({"ttl": feed_server.url("/ttl.xml")}, clock=clock, defaults=FAST)
    body = rss(_items(0, 2)).replace(b"<channel>", b"<channel><ttl>60</ttl>")
    feed_server.add("/ttl.xml", body)
    await poll_feeds(rt, ["ttl"])
    assert _wait(rt, "ttl") == 3600
    # The same bytes again are not parsed, but the interval in force keeps the ttl's floor.
    row = await _poll_when_due(rt, clock, "ttl")
    assert row.last_status == "unchanged" and _wait(rt, "ttl") >= 3600


# -- errors and backoff ----------------------------------------------------------------------------


async def test_retry_after_on_429_and_503_is_honoured(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/429.xml", b"slow down", status=429, content_type="text/plain",
                    headers={"Retry-After": "120"})  # fmt: skip
    feed_server.add("/503.xml", b"maintenance", status=503, content_type="text/plain",
                    headers={"Retry-After": "300"})  # fmt: skip
    # A 30 s interval backs off 24-36 s after one error: the server's wait is the longer one.
    defaults = FAST | {"poll_interval": "30s"}
    rt = build({"a": feed_server.url("/429.xml"), "b": feed_server.url("/503.xml")},
               defaults=defaults)  # fmt: skip

    await poll_feeds(rt, ["a", "b"])

    assert (_wait(rt, "a"), _wait(rt, "b")) == (120, 300)
    a, b = _row(rt, "a"), _row(rt, "b")
    assert (a.last_status, a.error_count) == ("error (HTTP 429)", 1)
    assert (b.last_status, b.error_count) == ("error (HTTP 503)", 1)


async def test_errors_back_off_exponentially_and_reset_after_a_success(
    build: Build, feed_server: FeedServer
) -> None:
    clock = Clock()
    defaults = FAST | {"poll_interval": "60s", "max_backoff": "10m"}
    rt = build({"f": feed_server.url("/f.xml")}, clock=clock, defaults=defaults)
    feed_server.add("/f.xml", b"oops", status=500, content_type="text/plain")
    start = clock.now
    await poll_feeds(rt, ["f"])
    for errors in range(1, 8):
        if errors > 1:
            await _poll_when_due(rt, clock, "f")
        row = _row(rt, "f")
        nominal = min(60 * 2 ** (errors - 1), 600)
        assert 0.8 * nominal <= _wait(rt, "f") <= min(1.2 * nominal, 600)
        assert (row.error_count, row.failing_since) == (errors, start)

    feed_server.add("/f.xml", rss(_items(0, 2)))
    row = await _poll_when_due(rt, clock, "f")
    assert (row.error_count, row.failing_since, row.last_error) == (0, None, None)

    feed_server.add("/f.xml", b"oops", status=500, content_type="text/plain")
    row = await _poll_when_due(rt, clock, "f")
    assert row.error_count == 1 and row.failing_since == clock.now
    assert 48 <= _wait(rt, "f") <= 72  # from the start again


# -- disabling -------------------------------------------------------------------------------------


async def test_410_disables_at_once_shows_in_status_and_tells_the_operator_once(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.add("/gone.xml", b"gone", status=410, content_type="text/plain")
    feed_server.add("/ok.xml", rss(_items(0, 1)))
    clock = Clock()
    feeds = {"gone": feed_server.url("/gone.xml"), "ok": feed_server.url("/ok.xml")}
    rt, told = _with_notices(build(feeds, clock=clock, defaults=FAST))

    await poll_feeds(rt, ["gone", "ok"])

    row = _row(rt, "gone")
    assert row.disabled_at == clock.now and row.operator_told_at == clock.now
    assert row.disabled_reason is not None and "410" in row.disabled_reason
    assert len(told) == 1 and "gone" in told[0] and "410" in told[0]

    out = io.StringIO()
    print_status(rt.store, rt.outbox, State(engine), rt.config, clock.now, out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("gone "))
    assert "DISABLED" in line and "410" in line and "operator told" in line
    ok_line = next(x for x in out.getvalue().splitlines() if x.startswith("ok "))
    assert " on " in ok_line and " 10m " in ok_line  # the interval in force

    clock.advance(86_400)
    assert rt.store.due_feed_ids(clock.now) == ["ok"]
    reports = await poll_feeds(rt, ["gone", "ok"])  # as `monitor run --once` asks
    assert [r.feed_id for r in reports] == ["ok"]
    assert len(feed_server.requests_to("/gone.xml")) == 1 and len(told) == 1

    # A new URL in feeds.yaml is a new chance.
    feed_server.add("/moved.xml", rss(_items(0, 1)))
    build({"gone": feed_server.url("/moved.xml"), "ok": feed_server.url("/ok.xml")}, clock=clock)
    assert rt.store.due_feed_ids(clock.now) == ["gone"]


async def test_a_feed_failing_for_disable_after_is_disabled(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.add("/broken.xml", b"oops", status=500, content_type="text/plain")
    clock = Clock()
    defaults = FAST | {"disable_after": "1h", "max_backoff": "10m"}
    rt, told = _with_notices(
        build({"broken": feed_server.url("/broken.xml")}, clock=clock, defaults=defaults)
    )
    start = clock.now
    await poll_feeds(rt, ["broken"])
    while clock.now - start < timedelta(hours=1):
        assert _row(rt, "broken").disabled_at is None and told == []
        await _poll_when_due(rt, clock, "broken")
    row = _row(rt, "broken")
    assert row.disabled_at == clock.now and row.failing_since == start
    assert row.disabled_reason is not None and "failing without a break" in row.disabled_reason
    assert len(told) == 1 and rt.store.due_feed_ids(clock.now + timedelta(days=1)) == []

    out = io.StringIO()
    print_status(rt.store, rt.outbox, State(engine), rt.config, clock.now, out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("broken "))
    assert "DISABLED" in line and "failing without a break" in line


# -- a dead network --------------------------------------------------------------------------------


async def test_a_dead_network_counts_against_no_feed(build: Build, closed_port: int) -> None:
    port = closed_port
    names = [f"f{n}" for n in range(5)]
    clock = Clock()
    rt = build({n: f"http://127.0.0.1:{port}/{n}.xml" for n in names}, clock=clock,
               defaults=FAST)  # fmt: skip
    for _ in range(2):
        reports = await poll_feeds(rt, rt.store.due_feed_ids(clock.now))
        assert sorted(r.feed_id for r in reports) == names
        assert {r.status for r in reports} == {"error (network down)"}
        for name in names:
            row = _row(rt, name)
            assert (row.error_count, row.failing_since) == (0, None)
            assert row.last_error and "ConnectError" in row.last_error
            assert _wait(rt, name) == 60  # back in a minute, all together
        clock.advance(60)


async def test_one_refused_feed_among_healthy_ones_counts(
    build: Build, feed_server: FeedServer, closed_port: int
) -> None:
    feed_server.add("/ok.xml", rss(_items(0, 1)))
    feeds = {f"ok{n}": feed_server.url(f"/ok.xml?n={n}") for n in range(5)}
    feeds["dead"] = f"http://127.0.0.1:{closed_port}/dead.xml"
    clock = Clock()
    rt = build(feeds, clock=clock, defaults=FAST)

    await poll_feeds(rt, list(feeds))

    row = _row(rt, "dead")
    assert (row.last_status, row.error_count, row.failing_since) == (
        "error (network)", 1, clock.now
    )  # fmt: skip
    assert 480 <= _wait(rt, "dead") <= 720


# -- permanent redirects ---------------------------------------------------------------------------


async def test_a_permanent_redirect_moves_the_polled_url(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.redirect("/old.xml", "/new.xml", status=301)
    feed_server.redirect("/temp.xml", "/new.xml", status=302)
    feed_server.add("/new.xml", rss(_items(0, 2)))
    clock = Clock()
    old, temp = feed_server.url("/old.xml"), feed_server.url("/temp.xml")
    rt = build({"moved": old, "temp": temp}, clock=clock, defaults=FAST)

    await poll_feeds(rt, ["moved", "temp"])
    moved = _row(rt, "moved")
    assert (moved.url, moved.config_url) == (feed_server.url("/new.xml"), old)
    assert _row(rt, "temp").url == temp  # a temporary redirect moves nothing

    clock.advance(3600)
    await poll_feeds(rt, ["moved", "temp"])
    assert len(feed_server.requests_to("/old.xml")) == 1
    assert len(feed_server.requests_to("/temp.xml")) == 2
    assert len(feed_server.requests_to("/new.xml")) == 4
    assert _row(rt, "moved").last_status == "unchanged"


# -- politeness ------------------------------------------------------------------------------------


async def test_per_host_concurrency_holds_and_hosts_proceed_in_parallel(
    build: Build, feed_server: FeedServer
) -> None:
    # The server holds every answer until released: a client allowed two requests to one
    # host at once would have them both in at that point.
    for path in ("/a1.xml", "/a2.xml", "/b1.xml", "/b2.xml"):
        feed_server.add(path, rss(_items(int(path[2]) * 10, 1)), held=True)
    port = feed_server.root_url.rsplit(":", 1)[1]
    hosts = {"a": f"http://127.0.0.1:{port}", "b": f"http://localhost:{port}"}
    feeds = {f"{h}{n}": f"{hosts[h]}/{h}{n}.xml" for h in "ab" for n in (1, 2)}
    rt = build(feeds, defaults={"per_host_concurrency": "1", "per_host_spacing": "0"})

    cycle = asyncio.create_task(poll_feeds(rt, list(feeds)))
    both_hosts_at_once = await asyncio.to_thread(feed_server.wait_serving, 2, 10.0)
    feed_server.release()
    reports = await cycle

    assert both_hosts_at_once
    assert all(r.error is None for r in reports), reports
    assert feed_server.peak_by_host == {f"127.0.0.1:{port}": 1, f"localhost:{port}": 1}
    assert feed_server.peak == 2
    assert len(feed_server.requests) == 4
