"""The daemon's own guarantees, in-process on SQLite and PostgreSQL: one deliverer at a time,
a stop that lets a send in flight finish instead of cancelling it, and workers sharing a
database: each due feed polled by one of them, each destination served by its lease holder."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import func, select

from monitor.edges.leases import LEASE_TTL, Leases
from monitor.edges.schema import articles, feeds, leases
from monitor.pipeline.poll import poll_feeds
from monitor.pipeline.runtime import Runtime
from monitor.scheduler import Daemon
from tests.e2e.harness import rss
from tests.fakes.feed_server import FeedServer
from tests.fakes.runtime import Build, notifier_of

ITEMS = [{"title": f"Taiwan report {n}", "link": f"https://t.example/{n}"} for n in range(3)]


def _worker(rt: Runtime, owner: str = "test-worker", tick: float = 1.0) -> Daemon:
    return Daemon(rt, leases=Leases(rt.store.engine, owner), tick=tick)


async def test_two_delivery_rounds_at_once_send_each_alert_once(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/news.xml", rss(ITEMS))
    rt = build({"news": feed_server.url("/news.xml")})
    await poll_feeds(rt, ["news"])
    daemon = _worker(rt)
    desk = notifier_of(rt)
    desk.gate = asyncio.Event()
    rounds = asyncio.gather(daemon.deliver(), daemon.deliver())
    await desk.started.wait()  # the first round is inside a send; the second is queued
    desk.gate.set()
    await rounds
    titles = [view.article.title for view in desk.sent]
    assert sorted(titles) == [f"Taiwan report {n}" for n in range(3)]


async def test_stop_lets_a_send_in_flight_finish_and_records_it(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/news.xml", rss(ITEMS[:1]))
    rt = build({"news": feed_server.url("/news.xml")})
    daemon = _worker(rt, tick=0.05)
    desk = notifier_of(rt)
    desk.gate = asyncio.Event()
    running = asyncio.create_task(daemon.run())
    await desk.started.wait()  # polled, queued, and now sending
    daemon.stop()
    desk.gate.set()
    await running
    assert [view.article.title for view in desk.sent] == ["Taiwan report 0"]
    assert rt.outbox.alert_counts() == {"desk": {"sent": 1}}
    with rt.store.engine.connect() as conn:  # stopped: nothing left held
        assert conn.scalar(select(func.count()).select_from(leases)) == 0
        assert conn.scalar(select(func.count()).where(feeds.c.lease_owner.is_not(None))) == 0


async def test_workers_polling_at_once_poll_each_due_feed_once(
    build: Build, feed_server: FeedServer
) -> None:
    urls = {}
    for n in range(40):
        feed_server.add(f"/f{n}.xml", rss([{"title": f"Item {n}", "link": f"https://i/{n}"}]))
        urls[f"f{n:02d}"] = feed_server.url(f"/f{n}.xml")
    rt = build(urls, defaults={"concurrency": "4", "per_host_concurrency": "4",
                               "per_host_spacing": "0"})  # fmt: skip
    workers = [_worker(rt, f"w{i}") for i in range(3)]
    await asyncio.gather(*(w.poll_due() for w in workers))
    fetched = Counter(r.path for r in feed_server.requests)
    assert fetched == {f"/f{n}.xml": 1 for n in range(40)}
    with rt.store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(articles)) == 40


async def test_a_worker_delivers_only_where_it_holds_the_lease(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/news.xml", rss(ITEMS))
    rt = build({"news": feed_server.url("/news.xml")}, destinations=("desk", "wall"))
    await poll_feeds(rt, ["news"])
    other = Leases(rt.store.engine, "other-worker")
    assert other.acquire("destination:desk", rt.clock(), LEASE_TTL)
    daemon = _worker(rt)
    await daemon.deliver()
    assert notifier_of(rt, "desk").sent == []
    assert len(notifier_of(rt, "wall").sent) == 3
    assert rt.outbox.alert_counts()["desk"] == {"pending": 3}
    other.release_mine()  # the other worker stopped
    await daemon.delivery.renew(rt.config, rt.clock())
    await daemon.deliver()
    assert len(notifier_of(rt, "desk").sent) == 3
