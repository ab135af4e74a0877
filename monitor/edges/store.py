"""Storage: feeds and their polling state, and the ingest of articles, matches and alerts.

The store is handed an `Engine` (built once, by the composition root, with `db.make_engine`);
nothing connects at import time. Every method is one short transaction. The important one is
`ingest`: new articles, their matches and their alerts are written together or not at all, and
"new" is decided by the database (`INSERT … ON CONFLICT DO NOTHING … RETURNING`), so a crash
between fetching and committing loses nothing and a rerun alerts nothing twice. Reading and
settling the queued alerts is the outbox's job (`outbox.Outbox`); it and the backtest's replay
read articles back with `article_from_row`, the inverse of the row `ingest` writes.

Connection-level failures surface as `DatabaseUnavailable` (transient); anything else from the
driver is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, literal, select, union_all, update

from monitor.core.model import AlertPlan, Article, Hit, WatchlistMatch
from monitor.core.prepare import Prepared
from monitor.edges.db import (
    insert_ignore,
    insert_rows_ignore,
    one_of,
    relaxed_commit,
    unavailable_as_transient,
)
from monitor.edges.outcomes import PollRecord, record_outcomes
from monitor.edges.schema import articles, feeds, matches
from monitor.edges.stories import Clustering, assign_stories, queue_alerts

DEFAULT_CLUSTERING = Clustering()
_BATCH = 500  # rows per INSERT: well under SQLite's 32,766 bound parameters at 14 columns


@dataclass(frozen=True, slots=True)
class FeedDef:
    """What the config says about a feed; `sync_feeds` makes the rows agree with it."""

    id: str
    url: str
    name: str
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class FeedRow:
    id: str
    url: str  # where it is polled: config_url, or where permanent redirects led
    config_url: str | None
    name: str
    title: str | None
    enabled: bool
    in_config: bool
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    last_polled_at: datetime | None
    last_success_at: datetime | None
    next_poll_at: datetime | None
    last_status: str | None
    last_error: str | None
    error_count: int
    articles_seen: int
    # The schedule (monitor.core.schedule): the interval in force and the publishing rate.
    interval_s: int | None
    items_per_day: float | None
    failing_since: datetime | None
    # Taken out of the rotation by the daemon (410 Gone, failing for too long).
    disabled_at: datetime | None
    disabled_reason: str | None
    operator_told_at: datetime | None


#: Given a genuinely new article: the article matched (`core.prepare.complete`: `matches` set,
#: and the fingerprint when it matched), and the alerts to queue for it.
Plan = Callable[[Prepared], tuple[Prepared, list[AlertPlan]]]


#: Given how many articles were new: the schedule fields (next_poll_at, interval_s,
#: items_per_day) to write instead of the record's.
Reschedule = Callable[[int], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    seen: int
    new: int
    matched: int
    alerts: int


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def ping(self) -> None:
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            conn.execute(select(1))

    # -- feeds -------------------------------------------------------------------------------

    def sync_feeds(self, defs: Iterable[FeedDef], now: datetime) -> None:
        """Insert new feeds (due at once), update changed ones, flag those gone from config.

        The config's URL is kept apart from the polled one (`config_url`, `url`): a permanent
        redirect moves the polled URL, and only an edit of feeds.yaml moves it back.
        """
        wanted = {d.id: d for d in defs}
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            existing = {
                r.id: r for r in conn.execute(select(feeds.c.id, feeds.c.url, feeds.c.config_url))
            }
            for d in wanted.values():
                row = existing.get(d.id)
                if row is None:
                    conn.execute(
                        insert_ignore(conn, feeds).values(
                            id=d.id, url=d.url, config_url=d.url, name=d.name, enabled=d.enabled,
                            in_config=True, created_at=now, next_poll_at=now, error_count=0,
                            articles_seen=0,
                        )
                    )  # fmt: skip
                    continue
                values: dict[str, Any] = {"name": d.name, "enabled": d.enabled, "in_config": True}
                if (row.config_url or row.url) != d.url:
                    # A new address is a new conversation: old validators and state mean
                    # nothing there, and a feed disabled at the old address gets a new chance.
                    values |= {"url": d.url, "config_url": d.url, "etag": None,
                               "last_modified": None, "body_hash": None, "next_poll_at": now,
                               "disabled_at": None, "disabled_reason": None,
                               "operator_told_at": None, "failing_since": None,
                               "error_count": 0, "interval_s": None}  # fmt: skip
                conn.execute(update(feeds).where(feeds.c.id == d.id).values(**values))
            gone = [fid for fid in existing if fid not in wanted]
            if gone:
                conn.execute(update(feeds).where(feeds.c.id.in_(gone)).values(in_config=False))

    def feeds(self, ids: Sequence[str] | None = None) -> list[FeedRow]:
        query = select(*(feeds.c[name] for name in FeedRow.__slots__)).order_by(feeds.c.id)
        if ids is not None:
            query = query.where(feeds.c.id.in_(ids))
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return [FeedRow(*row) for row in conn.execute(query)]

    def due_feed_ids(self, now: datetime) -> list[str]:
        """Feeds to poll now: enabled in the config, and not disabled by the daemon."""
        query = (
            select(feeds.c.id)
            .where(feeds.c.enabled, feeds.c.in_config, feeds.c.disabled_at.is_(None))
            .where((feeds.c.next_poll_at.is_(None)) | (feeds.c.next_poll_at <= now))
            .order_by(feeds.c.next_poll_at, feeds.c.id)
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return list(conn.scalars(query))

    def record_poll(self, feed_id: str, record: PollRecord, now: datetime) -> None:
        """Leave the outcome of a poll that brought no articles (304, unchanged, error)."""
        self.record_polls([(feed_id, record, now)])

    def record_polls(self, polls: Sequence[tuple[str, PollRecord, datetime]]) -> None:
        """`record_poll` for many polls (each with its own `now`) in one transaction: a cycle
        of 304s costs one commit and one statement per kind of outcome, not one per feed."""
        if not polls:
            return
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            relaxed_commit(conn)
            record_outcomes(conn, polls)

    # -- articles, matches, alerts: one transaction ------------------------------------------

    def ingest(
        self,
        feed_id: str,
        items: Sequence[Prepared],
        plan: Plan,
        record: PollRecord,
        now: datetime,
        clustering: Clustering = DEFAULT_CLUSTERING,
        reschedule: Reschedule | None = None,
    ) -> IngestResult:
        """Store the genuinely new articles, their matches and alerts, and the poll outcome.

        A matched article joins (or opens) a story, and its alerts are queued per story: a
        copy of a story already alerted updates that alert instead of adding one. Unmatched
        articles get no story: they can never alert. `reschedule(new)`, when given and some
        articles were new, replaces the record's schedule (it was made before "new" was known).

        `items` come with their dedupe keys (`core.prepare`); what is plainly known already is
        dropped in a read first; `plan` matches the rest, where the parse worker has not,
        before any write; then the inserts (which have the last word on "new"), and the story
        lock is taken last, for the story statements and the commit only.
        """
        keyed: dict[str, Prepared] = {}
        for item in items:
            keyed.setdefault(item.guid_key, item)
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            fresh = self._unseen(conn, feed_id, keyed)
            if conn.dialect.name == "sqlite":
                # A SQLite transaction that has read cannot wait for the write lock (a writer
                # in between makes its first write fail at once, SQLITE_BUSY_SNAPSHOT): the
                # read ends here, and the first insert below waits its turn. On PostgreSQL the
                # read stays in the write transaction (each statement has its own snapshot
                # under READ COMMITTED, so nothing is held back while planning): a round trip
                # less per feed.
                conn.rollback()
            planned = {item.guid_key: plan(item) for item in fresh}
            rows = [_article_row(feed_id, item, now) for item in fresh]
            inserted: list[tuple[int, str]] = []
            for start in range(0, len(rows), _BATCH):
                batch = rows[start : start + _BATCH]
                done = insert_rows_ignore(conn, articles, batch, ("id", "guid_key"))
                inserted.extend((int(row[0]), str(row[1])) for row in done)
            hits = [(i, planned[g]) for i, g in sorted(inserted) if planned[g][0].matches]
            match_rows = [
                _match_row(i, m, now) for i, (item, _) in hits for m in item.matches or ()
            ]
            insert_rows_ignore(conn, matches, match_rows, ())
            new = len(inserted)
            if new and reschedule is not None:
                record = replace(record, **reschedule(new))
            record_outcomes(conn, [(feed_id, record, now)], seen=new)
            # Last, under the story lock until the commit: stories, then their alerts.
            placed = [(i, item.article, item.fingerprint) for i, (item, _) in hits]
            story_ids = assign_stories(conn, placed, now, clustering.window)
            stories = zip(hits, story_ids, strict=True)
            alerting = [(i, story, plans) for (i, (_, plans)), story in stories]
            queued = queue_alerts(conn, alerting, now, clustering.edit_every)
            if not hits:
                # Nothing here can be delivered: no need to wait for the disk (see db).
                relaxed_commit(conn)
            conn.commit()
        return IngestResult(seen=len(keyed), new=new, matched=len(hits), alerts=queued)

    @staticmethod
    def _unseen(conn: Connection, feed_id: str, keyed: dict[str, Prepared]) -> list[Prepared]:
        """Drop what is plainly known before matching; the insert still has the last word."""
        if not keyed:
            return []
        gkeys = list(keyed)
        ukeys = [item.url_key for item in keyed.values() if item.url_key is not None]
        known_g, known_u = _known(conn, feed_id, gkeys, ukeys)
        seen_urls: set[str] = set()
        fresh = []
        for gkey, item in keyed.items():
            ukey = item.url_key
            if gkey in known_g or (ukey is not None and (ukey in known_u or ukey in seen_urls)):
                continue
            if ukey is not None:
                seen_urls.add(ukey)
            fresh.append(item)
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
        "url": a.url,
        "title": a.title, "summary": a.summary, "content": a.content, "tags": list(a.tags),
        "lang": a.lang, "author": a.author, "published_at": a.published_at, "fetched_at": now,
    }  # fmt: skip


#: The columns of `articles` that `article_from_row` reads.
ARTICLE_COLUMNS = ("feed_id", "guid", "url", "title", "summary", "content", "tags", "lang",
                   "author", "published_at")  # fmt: skip


def article_from_row(row: Any) -> Article:
    """The Article a row holds: a result row that selected (at least) ARTICLE_COLUMNS."""
    return Article(
        feed_id=row.feed_id, guid=row.guid, url=row.url, title=row.title, summary=row.summary,
        content=row.content, tags=tuple(row.tags or ()), lang=row.lang, author=row.author,
        published_at=row.published_at,
    )  # fmt: skip


def _hit_json(hit: Hit) -> dict[str, Any]:
    return {"term": hit.term, "field": hit.field, "start": hit.start, "end": hit.end}
