"""The store on SQLite and PostgreSQL: dedupe by unique keys, the outbox, feed state."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError

from monitor.core.model import AlertPlan, Article, Hit, Priority, WatchlistMatch
from monitor.core.prepare import Prepared, prepare
from monitor.core.story import Fingerprint, band_keys, fingerprint
from monitor.edges import stories as stories_module
from monitor.edges.outbox import Outbox
from monitor.edges.outcomes import PollRecord
from monitor.edges.schema import alerts, articles, matches, metadata, stories, story_keys
from monitor.edges.store import FeedDef, IngestResult, Plan, Store
from monitor.edges.stories import MAX_KEY_LOCKS, assign_stories

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)


def _article(guid: str, url: str | None, title: str = "Taiwan news", feed: str = "a") -> Article:
    return Article(feed_id=feed, guid=guid, url=url, title=title, summary="s")


def _match_all(item: Prepared) -> tuple[Prepared, list[AlertPlan]]:
    """A plan under which every article matches, as `core.prepare.complete` records it."""
    hit = Hit(term="Taiwan", field="title", start=0, end=6)
    found = (WatchlistMatch("taiwan", "Taiwan", Priority.normal, ("Taiwan",), (hit,)),)
    plans = [
        AlertPlan("desk", ("taiwan",), Priority.normal, NOW),
        AlertPlan("mail", ("taiwan",), Priority.normal, NOW + timedelta(hours=1)),
    ]
    fp = fingerprint(item.article.title, item.article.summary)
    return replace(item, matches=found, fingerprint=fp), plans


def _ingest(store: Store, feed: str, items: list[Article], plan: Plan) -> IngestResult:
    """Ingest as the daemon does when it parses in a thread: keys known, matching to come."""
    return store.ingest(feed, [prepare(a) for a in items], plan, _ok(), NOW)


def _ok() -> PollRecord:
    return PollRecord(status="200 ok", next_poll_at=LATER, etag='"v1"', body_hash="h1")


@pytest.fixture
def fed(store: Store) -> Store:
    store.sync_feeds([FeedDef("a", "http://x/a", "Feed A"), FeedDef("b", "http://x/b", "B")], NOW)
    return store


def test_migrations_create_exactly_the_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_new_articles_are_stored_once_with_matches_and_alerts(fed: Store) -> None:
    items = [_article("g1", "https://x.org/1"), _article("g2", "https://x.org/2")]
    first = _ingest(fed, "a", items, _match_all)
    assert (first.seen, first.new, first.matched, first.alerts) == (2, 2, 2, 4)
    again = _ingest(fed, "a", items, _match_all)
    assert (again.new, again.alerts) == (0, 0)


def test_tracking_copy_in_another_feed_is_not_new(fed: Store, engine: Engine) -> None:
    _ingest(fed, "a", [_article("g1", "https://x.org/1")], _match_all)
    copy = _article("other-guid", "https://X.org/1?utm_source=rss#top", feed="b")
    result = _ingest(fed, "b", [copy], _match_all)
    assert result.new == 0
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(articles)) == 1


def test_same_guid_new_link_in_same_feed_is_not_new(fed: Store) -> None:
    _ingest(fed, "a", [_article("g1", "https://x.org/1")], _match_all)
    result = _ingest(fed, "a", [_article("g1", "https://x.org/1-edited")], _match_all)
    assert result.new == 0


def test_same_guid_in_two_feeds_are_two_articles(fed: Store) -> None:
    _ingest(fed, "a", [_article("1", None)], _match_all)
    assert _ingest(fed, "b", [_article("1", None, feed="b")], _match_all).new == 1


def test_duplicates_inside_one_batch_collapse(fed: Store) -> None:
    items = [_article("g1", "https://x.org/1"), _article("g2", "https://x.org/1?fbclid=z"),
             _article("g1", "https://x.org/other")]  # fmt: skip
    assert _ingest(fed, "a", items, _match_all).new == 1


def test_a_failing_plan_leaves_nothing_behind(fed: Store, engine: Engine) -> None:
    def boom(item: Prepared) -> tuple[Prepared, list[AlertPlan]]:
        raise RuntimeError("matcher bug")

    with pytest.raises(RuntimeError):
        _ingest(fed, "a", [_article("g1", "https://x.org/1")], boom)
    with engine.connect() as conn:
        for table in (articles, matches, alerts):
            assert conn.scalar(select(func.count()).select_from(table)) == 0
    (feed,) = fed.feeds(["a"])
    assert feed.etag is None and feed.last_polled_at is None
    assert _ingest(fed, "a", [_article("g1", "https://x.org/1")], _match_all).new == 1


def test_outbox_due_order_and_state_changes(fed: Store, outbox: Outbox) -> None:
    _ingest(fed, "a", [_article("g1", "https://x.org/1")], _match_all)
    due = outbox.due_alerts(NOW)
    assert [d.destination for d in due] == ["desk"]  # mail waits an hour
    (alert,) = due
    assert alert.source == "Feed A"
    assert alert.article.title == "Taiwan news"
    assert [m.terms for m in alert.matches] == [("Taiwan",)]
    assert alert.matches[0].hits[0] == Hit(term="Taiwan", field="title", start=0, end=6)

    outbox.mark_retry(alert.id, "telegram down", NOW + timedelta(seconds=30))
    assert outbox.due_alerts(NOW) == []
    # The whole destination waits for the retry, so later alerts cannot overtake it.
    _ingest(fed, "a", [_article("g2", "https://x.org/2")], _match_all)
    assert outbox.due_alerts(NOW + timedelta(seconds=29)) == []
    retry, later = outbox.due_alerts(NOW + timedelta(seconds=30))
    assert (retry.attempts, retry.article.guid, later.article.guid) == (1, "g1", "g2")

    outbox.mark_sent(retry.id, NOW, "42")
    outbox.mark_retry(retry.id, "late failure report", NOW)  # a sent alert never goes back
    outbox.mark_sent(later.id, NOW, "43")
    assert [d.destination for d in outbox.due_alerts(NOW + timedelta(hours=2))] == ["mail", "mail"]
    counts = outbox.alert_counts()
    assert counts == {"desk": {"sent": 2}, "mail": {"pending": 2}}


def test_failed_alert_is_recorded(fed: Store, outbox: Outbox) -> None:
    _ingest(fed, "a", [_article("g1", "https://x.org/1")], _match_all)
    (alert,) = outbox.due_alerts(NOW)
    outbox.mark_failed(alert.id, "400 Bad Request: chat not found")
    assert outbox.alert_counts()["desk"] == {"failed": 1}


def test_feed_state_errors_count_and_reset(fed: Store) -> None:
    for _ in range(3):
        fed.record_poll("a", PollRecord("error (temporary)", LATER, error="timeout"), NOW)
    (feed,) = fed.feeds(["a"])
    assert (feed.error_count, feed.last_error, feed.last_status) == (
        3,
        "timeout",
        "error (temporary)",
    )
    assert feed.last_success_at is None
    _ingest(fed, "a", [_article("g1", "https://x.org/1")], _match_all)
    (feed,) = fed.feeds(["a"])
    assert (feed.error_count, feed.last_error, feed.etag, feed.body_hash) == (0, None, '"v1"', "h1")
    assert feed.last_success_at == NOW and feed.next_poll_at == LATER
    assert feed.articles_seen == 1


def test_due_feeds_and_config_sync(fed: Store) -> None:
    assert fed.due_feed_ids(NOW) == ["a", "b"]
    fed.record_poll("a", PollRecord("304 not modified", LATER), NOW)
    assert fed.due_feed_ids(NOW) == ["b"]
    _ingest(fed, "a", [], _match_all)
    fed.sync_feeds(
        [FeedDef("a", "http://x/a2", "A"), FeedDef("c", "http://x/c", "C", enabled=False)], NOW
    )
    rows = {r.id: r for r in fed.feeds()}
    assert rows["a"].url == "http://x/a2" and rows["a"].etag is None and rows["a"].body_hash is None
    assert rows["b"].in_config is False
    assert rows["c"].enabled is False
    assert fed.due_feed_ids(NOW) == ["a"]


def test_copies_ingested_at_the_same_moment_join_one_story(fed: Store, engine: Engine) -> None:
    # Two polls committing copies of one wire story at once: on PostgreSQL (READ COMMITTED)
    # each would find no story and open one, were story assignment not serialised.
    lead = (
        "Chinese warships and aircraft encircled Taiwan on Monday in exercises Beijing "
        "called a stern warning, a day after the inaugural address, officials said."
    )
    copies = {
        "a": Article(feed_id="a", guid="w1", url="https://wire.example/1",
                     title="China stages large drills around Taiwan", summary=lead),
        "b": Article(feed_id="b", guid="p1", url="https://paper.example/1",
                     title="Beijing launches big drills encircling Taiwan", summary=lead),
    }  # fmt: skip
    start = threading.Barrier(2)

    def ingest(feed: str) -> None:
        start.wait()
        _ingest(fed, feed, [copies[feed]], _match_all)

    threads = [threading.Thread(target=ingest, args=(f,)) for f in copies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(stories)) == 1
        assert conn.scalar(select(func.count()).select_from(alerts)) == 2  # desk and mail
        assert conn.scalar(select(func.count(func.distinct(articles.c.story_id)))) == 1


def test_many_outcomes_are_recorded_at_once(fed: Store) -> None:
    more = [FeedDef(f"f{i}", f"http://x/f{i}", f"F{i}") for i in range(6)]
    fed.sync_feeds([FeedDef("a", "http://x/a", "Feed A"), *more], NOW)
    for _ in range(2):  # a streak of errors, then the batch below
        fed.record_poll("f2", PollRecord("error (temporary)", LATER, error="boom"), NOW)
    later = NOW + timedelta(minutes=1)
    fed.record_polls(
        [
            ("f0", PollRecord("304 not modified", LATER, etag='"e0"', interval_s=600), later),
            ("f1", PollRecord("304 not modified", LATER, etag='"e1"', interval_s=900), later),
            ("f2", PollRecord("error (HTTP 503)", LATER, error="503"), later),
            ("f3", PollRecord("error (HTTP 500)", LATER, error="500"), later),
            ("f4", PollRecord("error (network down)", LATER, error="down", counted=False), later),
            ("f5", PollRecord("error (HTTP 410)", LATER, error="gone",
                              disabled_reason="410 Gone", operator_told=True), later),
        ]
    )  # fmt: skip
    rows = {r.id: r for r in fed.feeds()}
    assert (rows["f0"].etag, rows["f0"].interval_s, rows["f0"].last_success_at) == (
        '"e0"',
        600,
        later,
    )
    assert (rows["f1"].etag, rows["f1"].last_status) == ('"e1"', "304 not modified")
    assert (rows["f2"].error_count, rows["f2"].failing_since, rows["f2"].last_error) == (
        3,
        NOW,
        "503",
    )
    assert (rows["f3"].error_count, rows["f3"].failing_since) == (1, later)
    assert (rows["f4"].error_count, rows["f4"].failing_since, rows["f4"].last_error) == (
        0,
        None,
        "down",
    )
    assert (rows["f5"].disabled_at, rows["f5"].disabled_reason) == (later, "410 Gone")
    assert rows["f5"].operator_told_at == later
    assert all(rows[f"f{i}"].last_polled_at == later for i in range(6))
    assert rows["a"].last_polled_at is None


def _story_article(n: int, words: str) -> tuple[int, Article, Fingerprint | None]:
    article = Article(feed_id="a", guid=f"s{n}", url=None, title=words, summary=words)
    return n, article, fingerprint(article.title, article.summary)


_WIRE = "Chinese warships and aircraft encircled Taiwan on Monday in exercises Beijing called"
_OTHER = "Greenland's parliament debated fishing quotas and a new airport runway in Nuuk today"


def test_story_locks_hold_back_only_batches_that_share_band_keys(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's advisory locks; SQLite has one writer at a time")
    window = timedelta(hours=72)
    with engine.connect() as holder, engine.connect() as other:
        holder.begin()
        assign_stories(holder, [_story_article(1, _WIRE)], NOW, window)
        with other.begin():  # nothing in common: goes through while the holder holds its keys
            other.execute(text("SET LOCAL lock_timeout = '5s'"))
            assign_stories(other, [_story_article(2, _OTHER)], NOW, window)
        with pytest.raises(OperationalError, match="lock timeout"), other.begin():
            other.execute(text("SET LOCAL lock_timeout = '100ms'"))
            assign_stories(other, [_story_article(3, _WIRE + " officials said")], NOW, window)
        holder.rollback()


def test_a_batch_with_too_many_band_keys_locks_story_assignment_whole(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's advisory locks; SQLite has one writer at a time")
    window = timedelta(hours=72)
    rng = random.Random(5)
    texts = [" ".join(f"w{rng.randrange(10**6)}" for _ in range(30)) for _ in range(12)]
    many = [_story_article(n, words) for n, words in enumerate(texts)]
    assert len({k for _, _, fp in many if fp for k in band_keys(fp)}) > MAX_KEY_LOCKS
    with engine.connect() as holder, engine.connect() as other:
        holder.begin()
        assign_stories(holder, many, NOW, window)
        with pytest.raises(OperationalError, match="lock timeout"), other.begin():
            other.execute(text("SET LOCAL lock_timeout = '100ms'"))
            assign_stories(other, [_story_article(99, _WIRE)], NOW, window)
        holder.rollback()


def test_candidates_are_the_stories_sharing_the_most_band_keys() -> None:
    # Story 7 shares ten keys (a copy), 200 and 201 two each, 100.. one each; (1, 0) was
    # opened by the batch itself and shares two.
    counts = {(0, 7): 10, (0, 201): 2, (0, 200): 2, (1, 0): 2}
    counts |= {(0, 100 + n): 1 for n in range(60)}
    top = stories_module._top(counts)
    assert len(top) == stories_module.MAX_CANDIDATES
    assert top[:4] == [(0, 7), (0, 200), (0, 201), (1, 0)]
    assert top[4:] == [(0, 100 + n) for n in range(stories_module.MAX_CANDIDATES - 4)]


def test_the_database_counts_shared_band_keys(engine: Engine) -> None:
    # 60 stories share one band key with the article, one shares all of them: that one is a
    # candidate however many others there are. A second article of the same batch, on
    # another subject, gets its own answer from the same query: no candidate at all.
    fp = fingerprint(_WIRE, _WIRE)
    other = fingerprint(
        "Harvest festival opens in a small mountain town",
        "Farmers sell apples, cheese and bread in the square until late on Sunday evening",
    )
    assert fp is not None and other is not None
    keys = band_keys(fp)
    with engine.begin() as conn:
        ids = [
            conn.scalar(
                stories.insert().returning(stories.c.id),
                {"signature": fp.encode(), "title": f"t{n}", "articles": 1,
                 "created_at": NOW, "last_seen_at": NOW},
            )
            for n in range(61)
        ]  # fmt: skip
        rows = [{"key": keys[n % 64], "story_id": i, "created_at": NOW} for n, i in enumerate(ids)]
        rows += [{"key": k, "story_id": ids[-1], "created_at": NOW} for k in keys]
        conn.execute(
            story_keys.insert(),
            [dict(r) for r in {(r["key"], r["story_id"]): r for r in rows}.values()],
        )
        found, unrelated = stories_module._stored(conn, [fp, other], NOW - timedelta(hours=1))
        assert len(found) == stories_module.MAX_CANDIDATES
        assert found[(0, ids[-1])] == (64, fp)
        # Ties (one key each) go to the older stories.
        assert sorted(found) == [(0, i) for i in ids[: stories_module.MAX_CANDIDATES - 1]] + [
            (0, ids[-1])
        ]
        assert unrelated == {}
        assert stories_module._stored(conn, [fp], NOW + timedelta(hours=1)) == [{}]
