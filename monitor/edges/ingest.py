"""Storing what polls brought: the new articles of a batch of feeds, their matches, stories and
alerts, and each feed's poll outcome, in one transaction.

Contract: `ingest(engine, jobs, clustering)` takes `Job`s (a feed's prepared items, the `Plan`
that matches and routes a new one, its `PollRecord`, `now`, and optionally a `Reschedule`)
and returns one `IngestResult` per job, in order. Everything is written together or not at
all, and "new" is decided by the database (`INSERT … ON CONFLICT DO NOTHING … RETURNING`), so
a crash between fetching and committing loses nothing and a rerun alerts nothing twice. A
matched article joins (or opens) a story, and its alerts are queued per story: a copy of a
story already alerted updates that alert instead of adding one (`stories`). Unmatched articles
get no story: they can never alert. `reschedule(new)`, when given and some of the job's
articles were new, replaces its record's schedule (made before "new" was known).

What is plainly known already is dropped in a read first; `plan` matches the rest, where the
parse worker has not, before any write; then the inserts, and the story lock is taken last,
for the story statements and the commit only. Within a batch the jobs count in order: of two
feeds carrying one link, the first stores the article. The stories and alerts of a batch are
stamped with its latest `now` (polls of one batch finish milliseconds apart).

Why batches: a feed's ingest is a dozen short statements, each a round trip and a few hundred
µs of driver work in the daemon's one interpreter. When polls finish faster than they can be
stored, the pipeline hands over those waiting together (group commit), and the statements
are paid per batch. Connection-level failures surface as `DatabaseUnavailable` (transient);
anything else from the driver propagates, and the pipeline retries the jobs one by one, so a
feed that the database refuses fails alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, literal, select, union_all

from monitor.core.model import AlertPlan, Hit, WatchlistMatch
from monitor.core.prepare import Prepared
from monitor.edges.db import insert_rows_ignore, one_of, relaxed_commit, unavailable_as_transient
from monitor.edges.outcomes import PollRecord, record_outcomes
from monitor.edges.schema import articles, matches
from monitor.edges.stories import Clustering, assign_stories, queue_alerts

__all__ = ["Ingest", "IngestResult", "Plan", "Reschedule", "ingest"]

_BATCH = 500  # rows per INSERT: well under SQLite's 32,766 bound parameters at 14 columns

#: Given a genuinely new article: the article matched (`core.prepare.complete`: `matches` set,
#: and the fingerprint when it matched), and the alerts to queue for it.
Plan = Callable[[Prepared], tuple[Prepared, list[AlertPlan]]]

#: Given how many articles were new: the schedule fields (next_poll_at, interval_s,
#: items_per_day) to write instead of the record's.
Reschedule = Callable[[int], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Ingest:
    feed_id: str
    items: Sequence[Prepared]
    plan: Plan
    record: PollRecord
    now: datetime
    reschedule: Reschedule | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    seen: int
    new: int
    matched: int
    alerts: int


def ingest(engine: Engine, jobs: Sequence[Ingest], clustering: Clustering) -> list[IngestResult]:
    """Store the jobs' genuinely new articles, matches and alerts, and their poll outcomes."""
    keyed: list[dict[str, Prepared]] = []
    for job in jobs:
        by_key: dict[str, Prepared] = {}
        for item in job.items:
            by_key.setdefault(item.guid_key, item)
        keyed.append(by_key)
    with unavailable_as_transient(engine), engine.connect() as conn:
        fresh = _unseen(conn, jobs, keyed)
        if conn.dialect.name == "sqlite":
            # A SQLite transaction that has read cannot wait for the write lock (a writer in
            # between makes its first write fail at once, SQLITE_BUSY_SNAPSHOT): the read
            # ends here, and the first insert below waits its turn. On PostgreSQL the read
            # stays in the write transaction (each statement has its own snapshot under READ
            # COMMITTED, so nothing is held back while planning): a round trip less.
            conn.rollback()
        planned: dict[tuple[str, str], tuple[Prepared, list[AlertPlan]]] = {}
        rows = []
        for job, items in zip(jobs, fresh, strict=True):
            for item in items:
                planned[job.feed_id, item.guid_key] = job.plan(item)
                rows.append(_article_row(job.feed_id, item, job.now))
        inserted: list[tuple[int, str, str]] = []
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            done = insert_rows_ignore(conn, articles, batch, ("id", "feed_id", "guid_key"))
            inserted.extend((int(i), str(f), str(g)) for i, f, g in done)
        new = Counter(feed for _, feed, _ in inserted)
        hits = [(i, feed, planned[feed, g]) for i, feed, g in sorted(inserted)]
        hits = [hit for hit in hits if hit[2][0].matches]
        stamps = {job.feed_id: job.now for job in jobs}
        match_rows = [
            _match_row(i, m, stamps[feed])
            for i, feed, (item, _) in hits
            for m in item.matches or ()
        ]
        insert_rows_ignore(conn, matches, match_rows, ())
        records = []
        for job in jobs:
            record = job.record
            if new[job.feed_id] and job.reschedule is not None:
                record = replace(record, **job.reschedule(new[job.feed_id]))
            records.append((job.feed_id, record, job.now))
        record_outcomes(conn, records, seen=[new[job.feed_id] for job in jobs])
        # Last, under the story lock until the commit: stories, then their alerts.
        latest = max(job.now for job in jobs)
        placed = [(i, item.article, item.fingerprint) for i, _, (item, _) in hits]
        story_ids = assign_stories(conn, placed, latest, clustering.window)
        stories = zip(hits, story_ids, strict=True)
        alerting = [(i, story, plans) for (i, _, (_, plans)), story in stories]
        created = queue_alerts(conn, alerting, latest, clustering.edit_every)
        if not hits:
            # Nothing here can be delivered: no need to wait for the disk (see db).
            relaxed_commit(conn)
        conn.commit()
    feed_of = {i: feed for i, feed, _ in hits}
    alerts = Counter(feed_of[i] for i in created)
    matched = Counter(feed for _, feed, _ in hits)
    return [
        IngestResult(seen=len(k), new=new[job.feed_id], matched=matched[job.feed_id],
                     alerts=alerts[job.feed_id])
        for job, k in zip(jobs, keyed, strict=True)
    ]  # fmt: skip


def _unseen(
    conn: Connection, jobs: Sequence[Ingest], keyed: Sequence[dict[str, Prepared]]
) -> list[list[Prepared]]:
    """Per job, its items minus what is plainly known (the insert still has the last word):
    GUID keys the feed has stored, URL keys any feed has, or an earlier item of the batch."""
    seen_urls: set[str] = set()
    fresh: list[list[Prepared]] = []
    for job, by_key in zip(jobs, keyed, strict=True):
        if not by_key:
            fresh.append([])
            continue
        ukeys = [item.url_key for item in by_key.values() if item.url_key is not None]
        known_g, known_u = _known(conn, job.feed_id, list(by_key), ukeys)
        items = []
        for gkey, item in by_key.items():
            ukey = item.url_key
            if gkey in known_g or (ukey is not None and (ukey in known_u or ukey in seen_urls)):
                continue
            if ukey is not None:
                seen_urls.add(ukey)
            items.append(item)
        fresh.append(items)
    return fresh


def _known(
    conn: Connection, feed_id: str, gkeys: list[str], ukeys: list[str]
) -> tuple[set[str], set[str]]:
    """Which of the GUID keys the feed has stored, and which of the URL keys any feed has."""
    if conn.dialect.name == "postgresql":
        # One round trip: the keys travel as arrays, whatever their number.
        guid_known = select(literal("g"), articles.c.guid_key).where(
            articles.c.feed_id == feed_id, one_of(conn, articles.c.guid_key, gkeys)
        )
        url_known = select(literal("u"), articles.c.url_key).where(
            one_of(conn, articles.c.url_key, ukeys)
        )
        known: dict[str, set[str]] = {"g": set(), "u": set()}
        for kind, key in conn.execute(union_all(guid_known, url_known)):
            known[kind].add(key)
        return known["g"], known["u"]
    known_g: set[str] = set()
    known_u: set[str] = set()
    for start in range(0, len(gkeys), _BATCH):
        chunk = gkeys[start : start + _BATCH]
        query = select(articles.c.guid_key).where(
            articles.c.feed_id == feed_id, articles.c.guid_key.in_(chunk)
        )
        known_g.update(conn.scalars(query))
    for start in range(0, len(ukeys), _BATCH):
        chunk = ukeys[start : start + _BATCH]
        known_u.update(
            conn.scalars(select(articles.c.url_key).where(articles.c.url_key.in_(chunk)))
        )
    return known_g, known_u


def _match_row(article_id: int, m: WatchlistMatch, now: datetime) -> dict[str, Any]:
    return {
        "article_id": article_id, "watchlist_id": m.watchlist_id, "priority": int(m.priority),
        "terms": list(m.terms), "hits": [_hit_json(h) for h in m.hits], "created_at": now,
    }  # fmt: skip


def _article_row(feed_id: str, item: Prepared, now: datetime) -> dict[str, Any]:
    a = item.article
    return {
        "feed_id": feed_id, "guid_key": item.guid_key, "url_key": item.url_key, "guid": a.guid,
        "url": a.url, "title": a.title, "summary": a.summary, "content": a.content,
        "tags": list(a.tags), "lang": a.lang, "author": a.author, "published_at": a.published_at,
        "fetched_at": now,
    }  # fmt: skip


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {"term": hit.term, "field": hit.field, "start": hit.start, "end": hit.end}
