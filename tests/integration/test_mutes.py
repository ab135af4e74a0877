"""Mutes and feedback on SQLite and PostgreSQL: upserts, expiry at an explicit `now`, dedupe."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert, select

from monitor.core.errors import DatabaseUnavailable
from monitor.edges.db import make_engine
from monitor.edges.mutes import MuteEntry, Mutes, MuteSet
from monitor.edges.schema import (
    PENDING,
    SENT,
    alerts,
    articles,
    destination_state,
    feedback,
    matches,
    stories,
)
from monitor.edges.store import FeedDef, Store

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
_serial = itertools.count(1)


def seed_alert(
    engine: Engine,
    *,
    title: str = "Taiwan news",
    feed: str = "a",
    watchlists: Sequence[str] = ("taiwan",),
    matched: Sequence[str] | None = None,
    destination: str = "desk",
    status: str = SENT,
    sent_at: datetime | None = NOW,
    external_id: str | None = None,
    article_id: int | None = None,
    story_id: int | None = None,
) -> tuple[int, int, int]:
    """(alert id, story id, article id): a story, its article and matches, and one alert.

    Given `article_id` and `story_id`, only the alert is added (another destination).
    The feed must exist (`Store.sync_feeds`).
    """
    n = next(_serial)
    with engine.begin() as conn:
        if story_id is None:
            story_id = conn.execute(
                insert(stories).values(title=title, articles=1, created_at=NOW, last_seen_at=NOW)
            ).inserted_primary_key[0]
        if article_id is None:
            article_id = conn.execute(
                insert(articles).values(
                    feed_id=feed, guid_key=f"g{n}", url_key=f"u{n}", guid=f"g{n}",
                    url=f"https://news.example/{n}", title=title, summary="", content="",
                    tags=[], fetched_at=NOW, story_id=story_id,
                )
            ).inserted_primary_key[0]  # fmt: skip
            for watchlist in watchlists if matched is None else matched:
                conn.execute(
                    insert(matches).values(article_id=article_id, watchlist_id=watchlist,
                                           priority=1, terms=[], hits=[], created_at=NOW)
                )  # fmt: skip
        alert_id = conn.execute(
            insert(alerts).values(
                article_id=article_id, destination=destination, watchlists=list(watchlists),
                priority=1, status=status, attempts=1, next_attempt_at=NOW, created_at=NOW,
                sent_at=sent_at if status == SENT else None, story_id=story_id,
                external_id=external_id,
            )
        ).inserted_primary_key[0]  # fmt: skip
    return int(alert_id), int(story_id), int(article_id)


@pytest.fixture
def mutes(engine: Engine, store: Store) -> Mutes:
    store.sync_feeds([FeedDef("a", "http://x/a", "Feed A"), FeedDef("b", "http://x/b", "B")], NOW)
    return Mutes(engine)


def test_mute_is_active_until_it_ends(mutes: Mutes) -> None:
    mutes.mute("watchlist", "taiwan", NOW + 6 * HOUR, "telegram:7 (@ann)", NOW)
    mutes.mute("story", "17", NOW + HOUR, None, NOW)
    assert mutes.active(NOW) == MuteSet(frozenset({"taiwan"}), frozenset({17}))
    assert mutes.listing(NOW) == [
        MuteEntry("story", "17", NOW + HOUR, None),
        MuteEntry("watchlist", "taiwan", NOW + 6 * HOUR, "telegram:7 (@ann)"),
    ]
    assert mutes.active(NOW + HOUR) == MuteSet(frozenset({"taiwan"}), frozenset())
    assert mutes.active(NOW + 6 * HOUR) == MuteSet()
    assert mutes.listing(NOW + 7 * HOUR) == []


def test_muting_again_moves_until(mutes: Mutes) -> None:
    mutes.mute("watchlist", "taiwan", NOW + 6 * HOUR, "first", NOW)
    mutes.mute("watchlist", "taiwan", NOW + 2 * HOUR, "second", NOW + HOUR)
    assert mutes.listing(NOW) == [MuteEntry("watchlist", "taiwan", NOW + 2 * HOUR, "second")]
    assert mutes.active(NOW + 3 * HOUR) == MuteSet()
    # An expired mute comes back to life when muted again.
    mutes.mute("watchlist", "taiwan", NOW + 9 * HOUR, "third", NOW + 8 * HOUR)
    assert mutes.active(NOW + 8 * HOUR).watchlists == {"taiwan"}


def test_scopes_are_separate(mutes: Mutes) -> None:
    mutes.mute("watchlist", "5", NOW + HOUR, None, NOW)
    mutes.mute("story", "5", NOW + 2 * HOUR, None, NOW)
    assert mutes.active(NOW) == MuteSet(frozenset({"5"}), frozenset({5}))
    assert mutes.unmute("story", "5", NOW)
    assert mutes.active(NOW) == MuteSet(frozenset({"5"}), frozenset())


def test_unmute_says_whether_a_mute_was_in_force(mutes: Mutes) -> None:
    mutes.mute("watchlist", "taiwan", NOW + HOUR, None, NOW)
    mutes.mute("watchlist", "ukraine", NOW + HOUR, None, NOW)
    assert mutes.unmute("watchlist", "taiwan", NOW) is True
    assert mutes.unmute("watchlist", "taiwan", NOW) is False
    assert mutes.unmute("watchlist", "ukraine", NOW + 2 * HOUR) is False  # it had ended
    assert mutes.listing(NOW) == []


def test_unknown_scope_is_refused(mutes: Mutes) -> None:
    with pytest.raises(ValueError, match="scope"):
        mutes.mute("feed", "a", NOW + HOUR, None, NOW)  # type: ignore[arg-type]


def _feedback_rows(engine: Engine) -> list[tuple[object, ...]]:
    query = select(feedback.c.alert_id, feedback.c.story_id, feedback.c.watchlists,
                   feedback.c.action, feedback.c.user_id, feedback.c.chat_id,
                   feedback.c.created_at).order_by(feedback.c.id)  # fmt: skip
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]


def test_feedback_is_recorded_once_per_user_and_action(mutes: Mutes, engine: Engine) -> None:
    alert, story, _ = seed_alert(engine, watchlists=("taiwan", "ukraine"))
    assert mutes.record_feedback(alert, "not_relevant", 7, -100123, NOW) is True
    assert mutes.record_feedback(alert, "not_relevant", 7, -100123, NOW + HOUR) is False
    assert mutes.record_feedback(alert, "not_relevant", 8, -100123, NOW) is True
    assert mutes.record_feedback(alert, "mute_story", 7, -100123, NOW) is True
    assert _feedback_rows(engine) == [
        (alert, story, ["taiwan", "ukraine"], "not_relevant", 7, "-100123", NOW),
        (alert, story, ["taiwan", "ukraine"], "not_relevant", 8, "-100123", NOW),
        (alert, story, ["taiwan", "ukraine"], "mute_story", 7, "-100123", NOW),
    ]


def test_feedback_without_a_known_alert(mutes: Mutes, engine: Engine) -> None:
    _, story, _ = seed_alert(engine)
    # The alert is unknown: what the button said stands in for it.
    assert mutes.record_feedback(None, "mute_story", 7, -1, NOW, story_id=story) is True
    assert mutes.record_feedback(999, "snooze_watchlist", 7, -1, NOW, watchlists=["x"]) is True
    # A story that is gone is not referenced; the press still counts.
    assert mutes.record_feedback(None, "mute_story", 7, -1, NOW, story_id=9999) is True
    # Nothing to learn from: nothing stored.
    assert mutes.record_feedback(999, "not_relevant", 7, -1, NOW) is False
    assert [(r[0], r[1], r[2], r[3]) for r in _feedback_rows(engine)] == [
        (None, story, [], "mute_story"),
        (None, None, ["x"], "snooze_watchlist"),
        (None, None, [], "mute_story"),
    ]


def test_alert_for_message_looks_in_this_chat_only(mutes: Mutes, engine: Engine) -> None:
    # `<chat>:<part ids>`, the buttons on the last part (monitor.core.telegram_parts).
    desk, _, _ = seed_alert(engine, destination="desk", external_id="-100123:54,55")
    seed_alert(engine, destination="other", external_id="-100123:56")
    seed_alert(engine, destination="moved", external_id="-100555:57")
    with engine.begin() as conn:
        conn.execute(insert(destination_state).values(name="moved", chat_id="-100777",
                                                      failures=0, updated_at=NOW))  # fmt: skip
    assert mutes.alert_for_message(55, -100123, ["desk"]) == desk
    assert mutes.alert_for_message(55, -100123, ["other"]) is None
    assert mutes.alert_for_message(56, -100123, ["desk"]) is None
    assert mutes.alert_for_message(57, -100777, []) is not None  # the chat moved there
    assert mutes.alert_for_message(57, -100123, ["desk"]) is None
    assert mutes.alert_for_message(55, None, ["desk"]) == desk
    assert mutes.alert_for_message(5, -100123, ["desk"]) is None  # ids match whole
    assert mutes.alert_for_message(54, -100123, ["desk"]) is None  # not the buttons' part


def test_recent_lists_sent_alerts_one_per_story_newest_first(mutes: Mutes, engine: Engine) -> None:
    _, story, article = seed_alert(engine, title="Old", watchlists=("taiwan",),
                                   sent_at=NOW - 3 * HOUR)  # fmt: skip
    # The same story went to a second destination with another watchlist: shown once.
    seed_alert(engine, watchlists=("ukraine",), destination="mail", sent_at=NOW - 2 * HOUR,
               article_id=article, story_id=story)  # fmt: skip
    seed_alert(engine, title="Newest", feed="b", watchlists=("ukraine",), sent_at=NOW)
    seed_alert(engine, title="Waiting", status=PENDING, sent_at=None)
    seed_alert(engine, title="Future", sent_at=NOW + HOUR)
    # The article matched taiwan, but this destination's alert reported only ukraine.
    seed_alert(engine, title="Routed", watchlists=("ukraine",), matched=("taiwan", "ukraine"),
               sent_at=NOW - HOUR)  # fmt: skip

    every = mutes.recent(None, 10, NOW)
    assert [(r.title, r.source, r.watchlists) for r in every] == [
        ("Newest", "B", ("ukraine",)),
        ("Routed", "Feed A", ("ukraine",)),
        ("Old", "Feed A", ("ukraine", "taiwan")),
    ]
    assert every[2].sent_at == NOW - 2 * HOUR and every[2].story_id == story
    assert every[0].url is not None and every[0].url.startswith("https://news.example/")

    assert [r.title for r in mutes.recent("taiwan", 10, NOW)] == ["Old"]
    assert [r.title for r in mutes.recent("ukraine", 2, NOW)] == ["Newest", "Routed"]
    assert mutes.recent("greenland", 10, NOW) == []
    assert [r.title for r in mutes.recent(None, 10, NOW + 2 * HOUR)][:2] == ["Future", "Newest"]


def test_database_down_is_transient() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/monitor")
    try:
        with pytest.raises(DatabaseUnavailable):
            Mutes(engine).active(NOW)
        with pytest.raises(DatabaseUnavailable):
            Mutes(engine).mute("watchlist", "taiwan", NOW + HOUR, None, NOW)
    finally:
        engine.dispose()
