"""The pipeline in-process, on SQLite and PostgreSQL, with a controllable clock.

Feeds come from a real HTTP server on 127.0.0.1; the notifier is a hand-written fake that
records what it is given and fails on request (the real notifiers have their own tests
against the fake Bot API and aiosmtpd).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, select

from monitor.core.errors import PermanentError, TransientError
from monitor.core.timing import MAX_ATTEMPTS
from monitor.edges.schema import articles
from monitor.pipeline.deliver import DeliveryReport, deliver_due
from monitor.pipeline.poll import poll_feeds
from tests.corpus import corpus_files, needs_corpus
from tests.e2e.harness import DEMO_FEED, rss
from tests.fakes.feed_server import FeedServer
from tests.fakes.runtime import Build, Clock, notifier_of


async def test_every_feed_outcome_is_recorded_and_others_go_on(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/ok.xml", DEMO_FEED.read_bytes())
    feed_server.add("/404.xml", b"no", status=404, content_type="text/plain")
    feed_server.add("/500.xml", b"oops", status=500, content_type="text/plain")
    feed_server.add("/page.html", b"<!doctype html><title>x</title><p>hi", content_type="text/html")
    feed_server.add("/broken.xml", b"<rss><channel><item><title>half", content_type="text/xml")
    feed_server.add("/hang.xml", b"", hang=True)
    feed_server.add("/garbage.xml", bytes(range(256)) * 4, content_type="application/rss+xml")
    names = ["ok", "404", "500", "page", "broken", "hang", "garbage"]
    paths = {"ok": "/ok.xml", "404": "/404.xml", "500": "/500.xml", "page": "/page.html",
             "broken": "/broken.xml", "hang": "/hang.xml", "garbage": "/garbage.xml"}  # fmt: skip
    rt = build({f"f-{n}": feed_server.url(paths[n]) for n in names}, fetch_timeout="1s")

    reports = {r.feed_id: r for r in await poll_feeds(rt, [f"f-{n}" for n in names])}

    assert reports["f-ok"].error is None and reports["f-ok"].new == 5
    assert "404" in (reports["f-404"].error or "")
    assert "500" in (reports["f-500"].error or "")
    assert "not a feed" in (reports["f-page"].error or "")
    assert reports["f-hang"].error is not None
    assert reports["f-garbage"].error is not None
    rows = {r.id: r for r in rt.store.feeds()}
    assert rows["f-ok"].error_count == 0 and rows["f-ok"].articles_seen == 5
    for name in ("404", "500", "page", "hang", "garbage"):
        row = rows[f"f-{name}"]
        assert row.error_count == 1 and row.last_error and row.last_status.startswith("error")
        # Backoff after a first error: the 10 min interval, give or take the 20 % jitter.
        wait = row.next_poll_at - rt.clock() if row.next_poll_at else None
        assert wait is not None and timedelta(minutes=8) <= wait <= timedelta(minutes=12)
    # A truncated document yields what it can or is an error, and is recorded either way.
    assert rows["f-broken"].last_polled_at == rt.clock()
    assert rt.store.due_feed_ids(rt.clock()) == []


async def test_validators_sent_back_and_unchanged_bodies_skipped(
    build: Build, feed_server: FeedServer
) -> None:
    body = DEMO_FEED.read_bytes()
    feed_server.add("/etag.xml", body, etag='"v1"', last_modified="Wed, 04 Feb 2026 10:00:00 GMT")
    feed_server.add("/plain.xml", body)  # no validators: the same bytes come back each time
    clock = Clock()
    rt = build(
        {"etag": feed_server.url("/etag.xml"), "plain": feed_server.url("/plain.xml")}, clock=clock
    )

    await poll_feeds(rt, ["etag", "plain"])
    clock.advance(600)
    reports = {r.feed_id: r for r in await poll_feeds(rt, ["etag", "plain"])}

    assert reports["etag"].status == "304 not modified"
    assert reports["plain"].status == "unchanged"
    second = feed_server.requests_to("/etag.xml")[-1]
    assert second.headers.get("if-none-match") == '"v1"'
    assert second.headers.get("if-modified-since") == "Wed, 04 Feb 2026 10:00:00 GMT"
    rows = {r.id: r for r in rt.store.feeds()}
    assert rows["etag"].etag == '"v1"' and rows["etag"].last_success_at == clock.now


async def test_delivery_retries_transient_fails_permanent_and_keeps_order(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/ok.xml", DEMO_FEED.read_bytes())
    clock = Clock()
    rt = build({"demo": feed_server.url("/ok.xml")}, destinations=("desk", "mail"), clock=clock)
    desk, mail = notifier_of(rt, "desk"), notifier_of(rt, "mail")
    desk.failures = [TransientError("502 Bad Gateway", retry_after=120)]
    mail.failures = [PermanentError("550 mailbox unavailable")]

    await poll_feeds(rt, ["demo"])
    report = await deliver_due(rt)

    assert desk.sent == [] and len(mail.sent) == 3  # mail: first refused for good, rest sent
    assert (report.sent, report.retried, report.failed) == (3, 1, 1)
    clock.advance(119)
    assert (await deliver_due(rt)).sent == 0  # the whole destination waits for retry_after
    clock.advance(1)
    assert (await deliver_due(rt)).sent == 4
    titles = [v.article.title for v in desk.sent]
    assert titles[0].startswith("Xi et Poutine")  # the high-priority alert kept its place
    assert {m.watchlist_id for m in desk.sent[0].matches} == {
        "new-start", "taiwan", "greenland", "ukraine"
    }  # fmt: skip
    assert (await deliver_due(rt)).sent == 0
    assert rt.outbox.alert_counts() == {"desk": {"sent": 4}, "mail": {"sent": 3, "failed": 1}}


async def test_a_notifier_bug_does_not_lose_the_alert(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add(
        "/ok.xml", rss([{"title": "Taiwan holds drills", "link": "https://t.example/1"}])
    )
    clock = Clock()
    rt = build({"f": feed_server.url("/ok.xml")}, clock=clock)
    notifier_of(rt).failures = [RuntimeError("bug")]
    await poll_feeds(rt, ["f"])
    assert (await deliver_due(rt)).retried == 1
    clock.advance(30)
    assert (await deliver_due(rt)).sent == 1


async def test_alerts_for_a_removed_destination_wait_in_case_it_comes_back(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add(
        "/ok.xml", rss([{"title": "Taiwan holds drills", "link": "https://t.example/1"}])
    )
    rt = build({"f": feed_server.url("/ok.xml")}, destinations=("old",))
    await poll_feeds(rt, ["f"])
    renamed = build({"f": feed_server.url("/ok.xml")}, destinations=("new",))
    assert await deliver_due(renamed) == DeliveryReport()
    assert renamed.outbox.alert_counts() == {"old": {"pending": 1}}
    back = build({"f": feed_server.url("/ok.xml")}, destinations=("old",))
    assert (await deliver_due(back)).sent == 1


async def test_an_alert_that_never_goes_through_is_failed_after_max_attempts(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add(
        "/ok.xml",
        rss([{"title": "Taiwan holds drills", "link": "https://t.example/1"},
             {"title": "Taiwan, day two", "link": "https://t.example/2"}]),
    )  # fmt: skip
    clock = Clock()
    rt = build({"f": feed_server.url("/ok.xml")}, clock=clock)
    desk = notifier_of(rt)
    desk.failures = [TransientError("452 mailbox full")] * MAX_ATTEMPTS
    await poll_feeds(rt, ["f"])
    for _ in range(MAX_ATTEMPTS - 1):
        assert (await deliver_due(rt)).retried == 1
        clock.advance(3600)
    last = await deliver_due(rt)  # the last attempt fails the alert; the next one goes out
    assert (last.failed, last.sent) == (1, 1)
    assert rt.outbox.alert_counts() == {"desk": {"failed": 1, "sent": 1}}


@needs_corpus
async def test_real_corpus_goes_through_the_pipeline_twice_without_duplicates(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    files = corpus_files("real")
    feeds = {}
    for index, path in enumerate(files):
        feed_server.add(f"/{index}", path.read_bytes(), content_type=None)
        feeds[f"real-{index}"] = feed_server.url(f"/{index}")
    clock = Clock()
    # One host serves them all: no spacing between requests, or the cycle would take 20 s.
    rt = build(feeds, clock=clock, defaults={"per_host_spacing": "0", "per_host_concurrency": "8"})

    first = await poll_feeds(rt, list(feeds))
    failed = {files[int(r.feed_id.split("-")[1])].name: r.error for r in first if r.error}
    # Only the JSON files that are not JSON Feeds are refused, each as "not a feed".
    assert all(name.endswith(".json") for name in failed), failed
    assert all("not a feed" in (error or "") for error in failed.values()), failed
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(articles))
    assert stored and stored > 1500
    assert sum(r.new for r in first) == stored

    # Serve everything again as new bytes (no validators, different body): nothing is new.
    for index, path in enumerate(files):
        feed_server.add(f"/{index}", path.read_bytes() + b"\n", content_type=None)
    clock.advance(3600)
    second = await poll_feeds(rt, list(feeds))
    assert sum(r.new for r in second) == 0
    due = rt.outbox.due_alerts(clock.now, limit=10_000)
    assert len(due) == sum(r.alerts for r in first)
    assert all(a.matches for a in due)
