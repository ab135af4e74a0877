"""Stories in the database: which story a new article joins, and what that does to its alerts.

Contract: `assign_stories(conn, placed, now, window)` runs last inside the ingest transaction
(the caller's connection), for the new articles that matched, each with its fingerprint of
title and lead (`monitor.core.story`, computed before the transaction). For each it finds
the candidate stories created within `window`, the MAX_CANDIDATES sharing the most LSH band
keys with it (`story_keys`, indexed: one query, however many stories there are) and those an
earlier article of the batch opened, and joins the most similar one at or above the
threshold, else opens a new story. The article row gets the story id either way; a new
story's band keys are stored so that later copies find it.

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
import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from monitor.core.model import AlertPlan, Article
from monitor.core.story import THRESHOLD as STORY_THRESHOLD
from monitor.core.story import Fingerprint, band_keys, similarity, vetoed
from monitor.edges.db import insert_rows_ignore, int_array, unavailable_as_transient
from monitor.edges.schema import PENDING, SENT, SKIPPED, alerts, articles, stories, story_keys


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
    already inserted. Called last in the ingest transaction: the lock below is held to the
    commit, so the work under it is a handful of statements for the whole batch."""
    if not placed:
        return []
    fps = [fp for _, _, fp in placed if fp is not None]
    if conn.dialect.name == "postgresql":
        _lock(conn, fps)
    # A story is ranked (0, id) when it exists and (1, n) when this batch opens it as its
    # n-th: ties go to the lower rank, the older story, the one analysts already saw.
    chosen: list[_Rank] = []
    opened: list[tuple[Article, Fingerprint | None]] = []
    batch: dict[int, dict[_Rank, Fingerprint]] = {}  # band key -> stories this batch opened
    # What the database holds does not change while the batch is placed: one lookup for all.
    stored = iter(_stored(conn, fps, now - window))
    for _, article, fp in placed:
        rank = None
        if fp is not None:
            rank = _best(fp, next(stored), batch)
        if rank is None:
            rank = (1, len(opened))
            opened.append((article, fp))
            if fp is not None:
                for key in _keys(fp):
                    batch.setdefault(key, {})[rank] = fp
        chosen.append(rank)
    sizes = Counter(chosen)
    new_ids = _open(conn, opened, [sizes[(1, n)] for n in range(len(opened))], now)
    # Rows are locked in story id order here and below (alerts): two batches with no band key
    # in common may still join the same stories, and must not take their rows crosswise.
    grown = [
        {"s_id": rank[1], "n": n, "seen": now} for rank, n in sorted(sizes.items()) if rank[0] == 0
    ]
    if grown:
        conn.execute(_GROW, grown)
    story_ids = [new_ids[n] if new else n for new, n in chosen]
    conn.execute(
        _SET_STORY, [{"a_id": a, "s_id": s} for (a, _, _), s in zip(placed, story_ids, strict=True)]
    )
    return story_ids


#: (0, story id) for a story in the database, (1, n) for the n-th this batch opens.
_Rank = tuple[int, int]

#: Above this many band keys a batch locks story assignment whole, not key by key: each
#: advisory lock takes a slot of PostgreSQL's shared lock table (max_locks_per_transaction x
#: max_connections, 6,400 by default), and a first poll of large feeds could fill it.
MAX_KEY_LOCKS = 256
_KEYS_CLASS = 0x73746F72  # "stor": the class id of the band-key locks
_ALL_CLASS = 0x73746F61  # "stoa": the class id of the lock on story assignment as a whole
_LOCK_ALL = select(func.pg_advisory_xact_lock(_ALL_CLASS, 0))
_SHARE_ALL = select(func.pg_advisory_xact_lock_shared(_ALL_CLASS, 0))
# unnest keeps the array's order and count() makes every row evaluated, in that order.
_LOCK_KEYS = text(
    "SELECT count(pg_advisory_xact_lock(:cls, k)) FROM unnest(CAST(:keys AS integer[])) AS k"
).bindparams(bindparam("keys", type_=Text()))


def _lock(conn: Connection, fps: Sequence[Fingerprint]) -> None:
    """Serialise this batch's story assignment with any other that could touch its stories.

    Two copies ingested at the same moment by two polls (or two workers) would each find no
    story under READ COMMITTED and open two. A copy can only join a story it shares a band
    key with, so each batch locks its band keys (held to the end of the transaction, taken
    in one sorted order, so two batches cannot deadlock) after a shared lock on the whole:
    batches with no key in common go on side by side, and the few batches with too many keys
    take the whole lock exclusively instead. SQLite serialises writers anyway.
    """
    keys = sorted({_lock_id(key) for fp in fps for key in _keys(fp)})
    if not keys:
        return  # no fingerprint: such articles open stories of their own, joined by nothing
    if len(keys) > MAX_KEY_LOCKS:
        conn.execute(_LOCK_ALL)
        return
    conn.execute(_SHARE_ALL)
    conn.execute(_LOCK_KEYS, {"cls": _KEYS_CLASS, "keys": int_array(keys)})


def _lock_id(key: int) -> int:
    """A band key (63 bits) folded into the signed 32-bit object id of an advisory lock."""
    folded = (key ^ (key >> 32)) & 0xFFFFFFFF
    return folded - (1 << 32) if folded >= 1 << 31 else folded


_SET_STORY = (
    update(articles).where(articles.c.id == bindparam("a_id")).values(story_id=bindparam("s_id"))
)
_GROW = (
    update(stories)
    .where(stories.c.id == bindparam("s_id"))
    .values(articles=stories.c.articles + bindparam("n"), last_seen_at=bindparam("seen"))
)


#: Stories compared in full with an article: those sharing the most band keys with it. A copy
#: (estimated Jaccard >= 0.5) shares 8 of the 64 bands on average; a story on the same topic
#: but not the same report shares one or two. Without a bound, a topic with thousands of
#: stories in the window makes every new article on it cost thousands of comparisons.
MAX_CANDIDATES = 50


def _stored(
    conn: Connection, fps: Sequence[Fingerprint], since: datetime
) -> list[dict[_Rank, tuple[int, Fingerprint]]]:
    """For each fingerprint, the stories created since `since` that share the most of its
    band keys (at most MAX_CANDIDATES; ties: older first), each with how many it shares and
    its fingerprint. The database counts (indexed): a popular topic's keys may have
    thousands of stories, and none of those rows needs to leave it. On PostgreSQL the whole
    batch is one query; SQLite, which has no arrays, gets one per fingerprint."""
    if not fps:
        return []
    if conn.dialect.name != "postgresql":
        return [_stored_one(conn, _keys(fp), since) for fp in fps]
    owners: list[str] = []
    keys: list[str] = []
    for n, fp in enumerate(fps):
        distinct = set(_keys(fp))  # a key counts once, as in `story_keys.key = ANY(...)`
        owners.extend([str(n)] * len(distinct))
        keys.extend(map(str, distinct))
    found: list[dict[_Rank, tuple[int, Fingerprint]]] = [{} for _ in fps]
    params = {"owners": "{" + ",".join(owners) + "}", "keys": "{" + ",".join(keys) + "}"}
    for n, story_id, count, signature in conn.execute(
        _CANDIDATES, {**params, "since": since, "top": MAX_CANDIDATES}
    ):
        if signature is not None:
            found[n][(0, story_id)] = (count, _decode(signature))
    return found


# Per fingerprint n of the batch: the stories sharing its keys, counted and ranked in the
# database, the first MAX_CANDIDATES kept. The arrays travel as text literals (integers
# only), which PostgreSQL parses in C. Each key is looked up on its own in the primary key
# index (LATERAL, with OFFSET 0 so the planner cannot flatten it into a join): a band key
# names a handful of stories, but a young table has no statistics yet, and the plain join
# was planned as a scan of every story key for each batch (5 ms a batch in the bench, most
# of the database's time in a cold cycle). The stories' signatures likewise, by id.
_CANDIDATES = text("""
    SELECT t.n, t.story_id, t.shared, s.signature
    FROM (
        SELECT q.n, k.story_id, count(*) AS shared,
               row_number() OVER (PARTITION BY q.n ORDER BY count(*) DESC, k.story_id) AS r
        FROM unnest(CAST(:owners AS integer[]), CAST(:keys AS bigint[])) AS q(n, key)
        CROSS JOIN LATERAL (
            SELECT story_id FROM story_keys
            WHERE story_keys.key = q.key AND story_keys.created_at >= :since
            OFFSET 0
        ) AS k
        GROUP BY q.n, k.story_id
    ) AS t
    CROSS JOIN LATERAL (
        SELECT signature FROM stories WHERE stories.id = t.story_id OFFSET 0
    ) AS s
    WHERE t.r <= :top
""").bindparams(
    bindparam("owners", type_=Text()),
    bindparam("keys", type_=Text()),
    bindparam("since", type_=story_keys.c.created_at.type),
)


def _stored_one(
    conn: Connection, keys: Sequence[int], since: datetime
) -> dict[_Rank, tuple[int, Fingerprint]]:
    """`_stored` for one fingerprint's keys, on a database without arrays."""
    shared = func.count().label("shared")
    top = (
        select(story_keys.c.story_id, shared)
        .where(story_keys.c.key.in_(keys), story_keys.c.created_at >= since)
        .group_by(story_keys.c.story_id)
        .order_by(shared.desc(), story_keys.c.story_id)
        .limit(MAX_CANDIDATES)
        .subquery()
    )
    rows = conn.execute(
        select(top.c.story_id, top.c.shared, stories.c.signature).join(
            stories, stories.c.id == top.c.story_id
        )
    )
    return {
        (0, story_id): (count, _decode(signature))
        for story_id, count, signature in rows
        if signature is not None
    }


def _top(counts: Mapping[_Rank, int]) -> list[_Rank]:
    """The MAX_CANDIDATES stories sharing the most band keys (ties: older first)."""
    if len(counts) <= MAX_CANDIDATES:
        return list(counts)
    return heapq.nsmallest(MAX_CANDIDATES, counts, key=lambda rank: (-counts[rank], rank))


def _best(
    fp: Fingerprint,
    stored: Mapping[_Rank, tuple[int, Fingerprint]],
    batch: Mapping[int, Mapping[_Rank, Fingerprint]],
) -> _Rank | None:
    """The most similar story at or above the threshold, not vetoed, among the article's
    candidates (stored ones, and those its batch opened); None if there is none."""
    counts = {rank: count for rank, (count, _) in stored.items()}
    prints = {rank: other for rank, (_, other) in stored.items()}
    for key in _keys(fp):
        for rank, other in batch.get(key, {}).items():
            counts[rank] = counts.get(rank, 0) + 1
            prints[rank] = other
    best: tuple[float, _Rank] | None = None
    for rank in _top(counts):
        other = prints[rank]
        score = similarity(fp, other)
        if score < STORY_THRESHOLD or vetoed(fp, other):
            continue
        if best is None or score > best[0] or (score == best[0] and rank < best[1]):
            best = (score, rank)
    return best[1] if best is not None else None


def _open(
    conn: Connection,
    opened: Sequence[tuple[Article, Fingerprint | None]],
    sizes: Sequence[int],
    now: datetime,
) -> list[int]:
    """Insert the stories a batch opens (with how many of its articles each has); their ids,
    in order, and their band keys stored so that later copies find them."""
    if not opened:
        return []
    rows = [
        {"signature": fp.encode() if fp is not None else None, "title": article.title[:1000],
         "articles": size, "created_at": now, "last_seen_at": now}
        for (article, fp), size in zip(opened, sizes, strict=True)
    ]  # fmt: skip
    stmt = insert(stories).returning(stories.c.id, sort_by_parameter_order=True)
    ids = [int(i) for i in conn.scalars(stmt, rows)]
    keys = [
        {"key": key, "story_id": story_id, "created_at": now}
        for story_id, (_, fp) in zip(ids, opened, strict=True)
        if fp is not None
        for key in _keys(fp)
    ]
    insert_rows_ignore(conn, story_keys, keys, ())
    return ids


@functools.lru_cache(maxsize=256)
def _keys(fp: Fingerprint) -> tuple[int, ...]:
    # An article's band keys serve its locks, its lookup, its candidates and its story.
    return tuple(band_keys(fp))


@functools.lru_cache(maxsize=1024)
def _decode(signature: str) -> Fingerprint:
    # A popular story is a candidate for each of its copies: decode its signature once.
    return Fingerprint.decode(signature)


def queue_alerts(
    conn: Connection,
    placed: Sequence[tuple[int, int, Sequence[AlertPlan]]],
    now: datetime,
    edit_every: timedelta,
) -> list[int]:
    """Queue the alerts of new articles, each (article id, story id, plans); returns the
    article id of each new alert. A plan whose story already has an alert for its
    destination (from before, or from an earlier article of this batch) is folded into that
    alert instead. Alert rows are taken in story order (see `assign_stories`); within a story
    the first article wins."""
    placed = sorted(placed, key=lambda p: (p[1], p[0]))
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
        for article_id, story_id, plans in placed
        for p in plans
    ]
    if not rows:
        return []
    created = {
        (int(row[0]), row[1])
        for row in insert_rows_ignore(conn, alerts, rows, ("article_id", "destination"))
    }
    for article_id, story_id, plans in placed:
        for plan in plans:
            if (article_id, plan.destination) not in created:
                _join_alert(conn, story_id, plan, now, edit_every)
    return [article_id for article_id, _ in created]


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
