"""Delivery policy in-process, on SQLite and PostgreSQL, with a controllable clock.

Stories (a copy edits the first alert instead of sending another), digests, quiet hours, flood
control, a new feed's backlog, mutes, and how each kind of failure ends. Feeds come from a real
HTTP server on 127.0.0.1; the notifier is the hand-written fake in tests/fakes/runtime.py (the
real notifiers have their own tests against the fake Bot API and aiosmtpd).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from sqlalchemy import Engine, select

from monitor.core.errors import Ambiguous, Refused, TransientError
from monitor.edges.schema import alerts, articles, stories
from monitor.pipeline.deliver import deliver_due
from monitor.pipeline.poll import poll_feeds
from monitor.pipeline.runtime import Runtime
from monitor.pipeline.updates import deliver_updates
from tests.e2e.harness import rss, word
from tests.fakes.feed_server import FeedServer
from tests.fakes.runtime import Build, Clock, notifier_of

STORY = {
    "title": "China stages large drills around Taiwan after Lai speech",
    "link": "https://wire.example/drills",
    "description": (
        "Chinese warships and aircraft encircled Taiwan on Monday in exercises Beijing called "
        "a stern warning to separatists, a day after President Lai Ching-te gave his inaugural "
        "address, the defence ministry in Taipei said."
    ),
}
COPY = {
    "title": "Beijing launches big military drills encircling Taiwan",
    "link": "https://paper.example/world/drills-taiwan",
    "description": (
        "TAIPEI (Wire) - Chinese warships and aircraft encircled Taiwan on Monday in exercises "
        "Beijing called a stern warning to separatists, a day after President Lai Ching-te gave "
        "his inaugural address, Taiwan's defence ministry said."
    ),
}
OTHER = {
    "title": "Taiwan opposition wins mayoral race in Taichung",
    "link": "https://paper.example/taichung",
    "description": (
        "The Kuomintang candidate took the Taichung mayoralty by a wide margin on Saturday, "
        "a result analysts read as a verdict on housing costs rather than on cross-strait ties."
    ),
}


def distinct(i: int) -> dict[str, str]:
    """An item about Taiwan sharing no other word with its siblings: a story of its own."""
    words = " ".join(word(i * 8 + k) for k in range(8))
    return {"title": f"Taiwan {words}", "link": f"https://n.example/{i}",
            "description": f"Report {words} {words[::-1]}"}  # fmt: skip


def _story_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(stories.c.id)).all())


async def test_a_syndicated_copy_with_an_edited_headline_edits_the_first_alert(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.add("/wire.xml", rss([STORY, OTHER]))
    feed_server.add("/paper.xml", rss([COPY]))
    clock = Clock()
    rt = build({"wire": feed_server.url("/wire.xml"), "paper": feed_server.url("/paper.xml")},
               destinations=("desk", "mail"), clock=clock)  # fmt: skip
    desk, mail = notifier_of(rt, "desk"), notifier_of(rt, "mail")
    mail.can_edit = False
    await poll_feeds(rt, ["wire"])
    assert (await deliver_due(rt)).sent == 4
    clock.advance(120)

    reports = await poll_feeds(rt, ["paper"])

    assert reports[0].new == 1 and reports[0].alerts == 0  # a copy: no alert of its own
    assert (await deliver_due(rt)).sent == 0
    assert await deliver_updates(rt) == 1  # the desk's message edited; mail declines
    [(external_id, view)] = desk.updates
    assert external_id == "desk:1"
    assert view.article.title == STORY["title"] and view.also == ("paper",)
    assert [v.article.title for v in desk.sent] == [STORY["title"], OTHER["title"]]
    assert len(mail.sent) == 2 and mail.updates == []
    assert _story_count(engine) == 2
    assert await deliver_updates(rt) == 0  # done: nothing due any more


async def test_edits_are_rate_limited_per_alert(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.add("/wire.xml", rss([STORY]))
    copies = {f"p{i}": rss([{**COPY, "link": f"https://p{i}.example/x"}]) for i in range(3)}
    for name, body in copies.items():
        feed_server.add(f"/{name}.xml", body)
    clock = Clock()
    feeds = {"wire": feed_server.url("/wire.xml")} | {
        n: feed_server.url(f"/{n}.xml") for n in copies
    }
    rt = build(feeds, clock=clock, defaults={"update_interval": "5m"})
    desk = notifier_of(rt)
    await poll_feeds(rt, ["wire"])
    await deliver_due(rt)

    await poll_feeds(rt, ["p0"])
    assert await deliver_updates(rt) == 0  # not within 5 minutes of the send itself
    clock.advance(5 * 60)
    assert await deliver_updates(rt) == 1
    await poll_feeds(rt, ["p1"])
    await poll_feeds(rt, ["p2"])
    assert await deliver_updates(rt) == 0  # too soon after the last edit
    clock.advance(5 * 60)
    assert await deliver_updates(rt) == 1  # one edit carries both new sources
    assert desk.updates[-1][1].also == ("p0", "p1", "p2")
    assert len(desk.sent) == 1


async def test_a_digest_destination_gets_one_grouped_message_at_its_time(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", rss([STORY, OTHER, distinct(1)]))
    clock = Clock(datetime(2026, 2, 4, 12, 0, tzinfo=UTC))  # 13:00 in Paris
    spec = "{type: console, mode: digest, digest_at: ['08:00', '18:00'], timezone: Europe/Paris}"
    rt = build({"f": feed_server.url("/f.xml")}, destinations={"brief": spec}, clock=clock)
    brief = notifier_of(rt, "brief")
    await poll_feeds(rt, ["f"])
    assert (await deliver_due(rt)).sent == 0

    clock.now = datetime(2026, 2, 4, 16, 59, tzinfo=UTC)
    assert (await deliver_due(rt)).sent == 0
    clock.now = datetime(2026, 2, 4, 17, 0, tzinfo=UTC)  # 18:00 in Paris
    report = await deliver_due(rt)

    assert report.sent == 3 and brief.sent == []
    [digest] = brief.digests
    assert digest.kind == "digest"
    assert {v.article.title for v in digest.items} == {STORY["title"], OTHER["title"],
                                                       distinct(1)["title"]}  # fmt: skip
    assert rt.outbox.alert_counts() == {"brief": {"sent": 3}}


async def test_quiet_hours_hold_alerts_until_they_end(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", rss([OTHER]))
    clock = Clock(datetime(2026, 2, 4, 23, 0, tzinfo=UTC))
    spec = "{type: console, quiet_hours: '22:00-07:00', timezone: UTC}"
    rt = build({"f": feed_server.url("/f.xml")}, destinations={"desk": spec}, clock=clock)
    await poll_feeds(rt, ["f"])
    assert (await deliver_due(rt)).sent == 0
    clock.now = datetime(2026, 2, 5, 6, 59, tzinfo=UTC)
    assert (await deliver_due(rt)).sent == 0
    clock.now = datetime(2026, 2, 5, 7, 0, tzinfo=UTC)
    assert (await deliver_due(rt)).sent == 1


async def test_flood_control_collapses_a_burst_into_one_summary(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", rss([distinct(i) for i in range(12)]))
    clock = Clock()
    rt = build({"f": feed_server.url("/f.xml")}, clock=clock,
               defaults={"burst_limit": "5", "burst_window": "10m"})  # fmt: skip
    desk = notifier_of(rt)
    await poll_feeds(rt, ["f"])

    report = await deliver_due(rt)

    assert report.sent == 12
    assert len(desk.sent) == 4 and len(desk.digests) == 1  # 5 messages in all
    assert desk.digests[0].kind == "summary" and len(desk.digests[0].items) == 8

    feed_server.add("/f.xml", rss([distinct(i) for i in range(15)]))
    clock.advance(60)
    await poll_feeds(rt, ["f"])
    held = await deliver_due(rt)
    assert (held.sent, held.held) == (0, 3)  # the budget is spent: they wait
    clock.advance(9 * 60)
    assert (await deliver_due(rt)).sent == 3
    # A fresh window: the three fit its budget and go alone.
    assert len(desk.messages) == 8 and len(desk.digests) == 1


async def test_flood_control_off_sends_every_alert_alone(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", rss([distinct(i) for i in range(30)]))
    rt = build({"f": feed_server.url("/f.xml")}, defaults={"burst_limit": "0"})
    await poll_feeds(rt, ["f"])
    assert (await deliver_due(rt)).sent == 30
    assert len(notifier_of(rt).sent) == 30 and notifier_of(rt).digests == []


async def test_a_new_feeds_backlog_is_stored_but_not_alerted(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    clock = Clock()
    fresh = {**distinct(1), "pubDate": format_datetime(clock.now - timedelta(hours=2))}
    old = {**distinct(2), "pubDate": format_datetime(clock.now - timedelta(days=3))}
    undated = distinct(3)
    feed_server.add("/f.xml", rss([fresh, old, undated]))
    rt = build({"f": feed_server.url("/f.xml")}, clock=clock, defaults={"backlog_window": "24h"})

    [report] = await poll_feeds(rt, ["f"])

    assert (report.new, report.matched, report.alerts) == (3, 3, 1)
    assert [v.article.title for v in notifier_of(rt).sent] == []
    await deliver_due(rt)
    assert [v.article.title for v in notifier_of(rt).sent] == [fresh["title"]]
    # After the first poll, a new item alerts whatever date it claims (or lacks).
    feed_server.add("/f.xml", rss([fresh, old, undated, distinct(4), {**distinct(5),
        "pubDate": format_datetime(clock.now - timedelta(days=9))}]))  # fmt: skip
    clock.advance(600)
    [report] = await poll_feeds(rt, ["f"])
    assert (report.new, report.alerts) == (2, 2)
    with engine.connect() as conn:
        assert len(conn.execute(select(articles.c.id)).all()) == 5


@dataclass
class FakeMutes:
    watchlists: frozenset[str] = frozenset()
    stories: frozenset[int] = frozenset()

    def active(self, now: datetime) -> FakeMutes:
        return self


async def test_muted_watchlists_and_stories_are_skipped_and_recorded(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    founding = {**STORY, "title": STORY["title"] + " as Greenland and Ukraine talks stall"}
    feed_server.add("/f.xml", rss([founding, OTHER]))
    base = build({"f": feed_server.url("/f.xml")})
    await poll_feeds(base, ["f"])
    with engine.connect() as conn:
        story_of = dict(conn.execute(select(alerts.c.article_id, alerts.c.story_id)).all())
    other_story = max(story_of.values())
    mutes = FakeMutes(watchlists=frozenset({"greenland"}), stories=frozenset({other_story}))
    rt: Runtime = replace(base, mutes=mutes)

    report = await deliver_due(rt)

    assert (report.sent, report.skipped) == (1, 1)
    [view] = notifier_of(base).sent
    assert {m.watchlist_id for m in view.matches} == {"taiwan", "ukraine"}  # greenland muted
    assert rt.outbox.alert_counts() == {"desk": {"sent": 1, "skipped": 1}}


async def test_an_ambiguous_timeout_is_retried_once_then_counted_as_sent(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.add("/f.xml", rss([OTHER]))
    clock = Clock()
    rt = build({"f": feed_server.url("/f.xml")}, clock=clock)
    desk = notifier_of(rt)
    desk.failures = [Ambiguous("read timeout"), Ambiguous("read timeout")]
    await poll_feeds(rt, ["f"])

    assert (await deliver_due(rt)).retried == 1
    clock.advance(30)
    assert (await deliver_due(rt)).sent == 1  # second ambiguous try: no third copy

    with engine.connect() as conn:
        row = conn.execute(select(alerts.c.status, alerts.c.last_error, alerts.c.uncertain)).one()
    assert row.status == "sent" and row.uncertain == 1
    assert row.last_error.startswith("unconfirmed")


async def test_a_refusing_destination_is_marked_failing_and_the_operator_told_once(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", rss([OTHER]))
    clock = Clock()
    told: list[str] = []

    async def notice(text: str) -> None:
        told.append(text)

    rt = replace(build({"f": feed_server.url("/f.xml")}, clock=clock), notice=notice)
    desk = notifier_of(rt)
    desk.failures = [Refused("telegram desk: Forbidden: bot was blocked by the user")] * 5
    await poll_feeds(rt, ["f"])
    assert rt.destinations is not None
    for _ in range(5):
        assert (await deliver_due(rt)).retried == 1
        clock.advance(3600)

    assert len(told) == 1 and "desk" in told[0] and "blocked" in told[0]
    state = rt.destinations.all()["desk"]
    assert state.failures == 5 and state.operator_told_at is not None
    assert (await deliver_due(rt)).sent == 1  # let back in: the alert was kept
    assert rt.destinations.all()["desk"].failures == 0


async def test_a_multi_part_send_resumes_after_the_parts_that_arrived(
    build: Build, feed_server: FeedServer
) -> None:
    feed_server.add("/f.xml", rss([OTHER]))
    clock = Clock()
    rt = build({"f": feed_server.url("/f.xml")}, clock=clock)
    desk = notifier_of(rt)
    desk.failures = [TransientError("502 on part 2", sent=("-100:7",))]
    await poll_feeds(rt, ["f"])
    await deliver_due(rt)
    clock.advance(30)
    await deliver_due(rt)
    assert desk.dones == [(), ("-100:7",)]


async def test_recipients_refused_by_the_server_are_recorded_per_alert(
    build: Build, feed_server: FeedServer, engine: Engine
) -> None:
    feed_server.add("/f.xml", rss([OTHER]))
    rt = build({"f": feed_server.url("/f.xml")})
    notifier_of(rt).refused = {"b@x.example": "550 no such user"}
    await poll_feeds(rt, ["f"])
    assert (await deliver_due(rt)).sent == 1
    with engine.connect() as conn:
        refused = conn.execute(select(alerts.c.refused)).scalar_one()
    assert refused == {"b@x.example": "550 no such user"}
