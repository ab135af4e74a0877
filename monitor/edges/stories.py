"""Stories in the database: which story a new article joins, and what that does to its alerts.

Contract: `assign_stories(conn, placed, now, window)` runs last inside the ingest transaction
(the caller's connection), for the new articles that matched, each with its fingerprint of
title and lead (`monitor.core.story`, computed before the transaction). For each it finds
candidate stories created within `window` through their LSH band
keys (`story_keys`, indexed: one query, however many stories there are), and joins the most
similar one at or above the threshold, else opens a new story. The article row gets the story
id either way; the new story's band keys are stored so that later copies find it.

`queue_alerts(...)` then writes the article's alerts: one per story and destination. A
destination that already has an alert for the story gets no second one; instead the alert
takes in any new watchlist, and when it was already sent as its own message, `update_due_at`
is set so the deliverer edits the message in place ("also reported by …"), no sooner than
`edit_every` after the last edit: a story syndicated to forty sites makes a few edits, not
forty.

`prune_story_keys(engine, before)` drops the band keys of stories older than the window: they
can no longer be joined, and the index stays the size of three days of stories.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from monitor.core.model import AlertPlan, Article
from monitor.core.story import THRESHOLD as STORY_THRESHOLD
from monitor.core.story import Fingerprint, band_keys, similarity, vetoed
from monitor.edges.db import insert_rows_ignore, one_of, unavailable_as_transient
from monitor.edges.schema import PENDING, SENT, SKIPPED, alerts, articles, stories, story_keys

#: The advisory lock key that serialises story assignment on PostgreSQL ("stories" in ASCII).
_STORY_LOCK = 0x73746F72696573


@dataclass(frozen=True, slots=True)
class Clustering:
    """How stories form: the window a story stays open, and the pace of in-place edits."""

    window: timedelta = timedelta(hours=72)
    edit_every: timedelta = timedelta(minutes=1)


def assign_stories(
    conn: Connection,
    placed: Sequence[tuple[int, Article, Fingerprint | None]],
    now: datetime,
    window: timedelta,
) -> list[int]:
    """The story of each (article id, article, fingerprint), in order; the articles are
    already inserted. Called last in the ingest transaction, so the lock below is held for
    the story statements and the commit only."""
    if not placed:
        return []
    if conn.dialect.name == "postgresql":
        # Two copies ingested at the same moment by two polls (or two workers) would each
        # find no story under READ COMMITTED and open two. One story assignment at a time:
        # held to the end of this ingest's transaction. SQLite serialises writers anyway.
        conn.execute(_LOCK)
    story_ids = [_assign(conn, article, fp, now, window) for _, article, fp in placed]
    conn.execute(
        _SET_STORY, [{"a_id": a, "s_id": s} for (a, _, _), s in zip(placed, story_ids, strict=True)]
    )
    return story_ids


_LOCK = select(func.pg_advisory_xact_lock(_STORY_LOCK))
_SET_STORY = (
    update(articles).where(articles.c.id == bindparam("a_id")).values(story_id=bindparam("s_id"))
)
_GROW = (
    update(stories)
    .where(stories.c.id == bindparam("s_id"))
    .values(articles=stories.c.articles + 1, last_seen_at=bindparam("seen"))
)


def _assign(
    conn: Connection, article: Article, fp: Fingerprint | None, now: datetime, window: timedelta
) -> int:
    story_id = _best_candidate(conn, fp, now - window) if fp is not None else None
    if story_id is not None:
        conn.execute(_GROW, {"s_id": story_id, "seen": now})
        return story_id
    story_id = conn.execute(
        insert(stories).returning(stories.c.id),
        {"signature": fp.encode() if fp is not None else None, "title": article.title[:1000],
         "articles": 1, "created_at": now, "last_seen_at": now},
    ).scalar_one()  # fmt: skip
    if fp is not None:
        rows = [{"key": k, "story_id": story_id, "created_at": now} for k in band_keys(fp)]
        insert_rows_ignore(conn, story_keys, rows, ())
    return int(story_id)


def _best_candidate(conn: Connection, fp: Fingerprint, since: datetime) -> int | None:
    query = (
        select(stories.c.id, stories.c.signature)
        .join(story_keys, story_keys.c.story_id == stories.c.id)
        .where(one_of(conn, story_keys.c.key, band_keys(fp)), stories.c.created_at >= since)
        .distinct()
    )
    best: tuple[float, int] | None = None
    for story_id, signature in conn.execute(query):
        if signature is None:
            continue
        other = _decode(signature)
        score = similarity(fp, other)
        if score < STORY_THRESHOLD or vetoed(fp, other):
            continue
        # Ties go to the older story: the one analysts already saw.
        if best is None or (score, -story_id) > (best[0], -best[1]):
            best = (score, story_id)
    return best[1] if best is not None else None


@functools.lru_cache(maxsize=4096)
def _decode(signature: str) -> Fingerprint:
    # A popular story is a candidate for each of its copies: decode its signature once.
    return Fingerprint.decode(signature)


def queue_alerts(
    conn: Connection,
    article_id: int,
    story_id: int,
    plans: Sequence[AlertPlan],
    now: datetime,
    edit_every: timedelta,
) -> int:
    """Queue the alerts of a new article of `story_id`; returns how many new alerts."""
    if not plans:
        return 0
    rows = [
        {
            "article_id": article_id,
            "story_id": story_id,
            "destination": p.destination,
            "watchlists": list(p.watchlists),
            "priority": int(p.priority),
            "status": PENDING,
            "attempts": 0,
            "uncertain": 0,
            "next_attempt_at": p.next_attempt_at,
            "created_at": now,
        }
        for p in plans
    ]
    created = {row[0] for row in insert_rows_ignore(conn, alerts, rows, ("destination",))}
    for plan in plans:
        if plan.destination not in created:
            _join_alert(conn, story_id, plan, now, edit_every)
    return len(created)


def _join_alert(
    conn: Connection, story_id: int, plan: AlertPlan, now: datetime, edit_every: timedelta
) -> None:
    """The story already has an alert for this destination: fold the copy into it."""
    row = conn.execute(
        select(alerts).where(
            alerts.c.story_id == story_id, alerts.c.destination == plan.destination
        )
    ).first()
    if row is None:
        return
    values: dict[str, Any] = {}
    merged = list(row.watchlists) + [w for w in plan.watchlists if w not in row.watchlists]
    grew = merged != list(row.watchlists)
    if grew:
        values["watchlists"] = merged
        values["priority"] = max(row.priority, int(plan.priority))
    if row.status == PENDING and row.attempts == 0 and plan.next_attempt_at < row.next_attempt_at:
        # The copy raised the stakes (a critical watchlist, say): it goes out when the copy
        # would have, not at the quiet-hours end or digest time the first article got.
        values["next_attempt_at"] = plan.next_attempt_at
    if row.status == SKIPPED and grew:
        # Skipped because its watchlists were muted: a watchlist that is not muted now has
        # something to say, so the alert is due again (delivery drops what is still muted).
        values |= {"status": PENDING, "next_attempt_at": plan.next_attempt_at}
    if row.status == PENDING or (row.status == SENT and row.delivered_as == "message"):
        # Pending: it may be in flight, rendered before this copy; the edit after the send
        # adds the copy (an unchanged message makes no edit). Sent: edit no sooner than
        # edit_every after the last edit. A due time in the past (an edit perhaps in flight)
        # moves to now, so the deliverer's compare-and-set (Outbox.mark_updated) sees the
        # change and edits once more.
        if row.update_due_at is None:
            last = row.updated_at or row.sent_at or now
            values["update_due_at"] = max(now, last + edit_every)
        elif row.update_due_at < now:
            values["update_due_at"] = now
    if values:
        conn.execute(update(alerts).where(alerts.c.id == row.id).values(**values))


def prune_story_keys(engine: Engine, before: datetime) -> int:
    """Drop band keys of stories created before `before`; returns how many rows went."""
    old = select(stories.c.id).where(stories.c.created_at < before)
    with unavailable_as_transient(engine), engine.begin() as conn:
        return conn.execute(delete(story_keys).where(story_keys.c.story_id.in_(old))).rowcount
