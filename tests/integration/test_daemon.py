"""The daemon's own guarantees, in-process on SQLite and PostgreSQL: one deliverer at a time,
and a stop that lets a send in flight finish instead of cancelling it."""

from __future__ import annotations

import asyncio

from monitor.pipeline.poll import poll_feeds
from monitor.scheduler import Daemon
from tests.e2e.harness import rss
from tests.fakes.feed_server import FeedServer
from tests.fakes.runtime import Build, notifier_of

ITEMS = [{"title": f"Taiwan report {n}", "link": f"https://t.example/{n}"} for n in range(3)]


async def test_two_delivery_rounds_at_once_send_each_alert_once(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/news.xml", rss(ITEMS))
    rt = build({"news": feed_server.url("/news.xml")})
    await poll_feeds(rt, ["news"])
    daemon = Daemon(rt)
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
    daemon = Daemon(rt, tick=0.05)
    desk = notifier_of(rt)
    desk.gate = asyncio.Event()
    running = asyncio.create_task(daemon.run())
    await desk.started.wait()  # polled, queued, and now sending
    daemon.stop()
    desk.gate.set()
    await running
    assert [view.article.title for view in desk.sent] == ["Taiwan report 0"]
    assert rt.outbox.alert_counts() == {"desk": {"sent": 1}}
