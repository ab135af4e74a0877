"""Storage: feeds and their polling state, and the ingest of articles, matches and alerts.

The store is handed an `Engine` (built once, by the composition root, with `db.make_engine`);
nothing connects at import time. Every method is one short transaction. The important one is
`ingest` (`ingest_many` for several feeds at once; the work is `monitor.edges.ingest`'s): new
articles, their matches and their alerts are written together or not at all, and "new" is
decided by the database (`INSERT … ON CONFLICT DO NOTHING … RETURNING`), so a crash between
fetching and committing loses nothing and a rerun alerts nothing twice. Reading and
settling the queued alerts is the outbox's job (`outbox.Outbox`); it and the backtest's replay
read articles back with `article_from_row`, the inverse of the row `ingest` writes.

Connection-level failures surface as `DatabaseUnavailable` (transient); anything else from the
driver is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from monitor.core.model import Article
from monitor.core.prepare import Prepared
from monitor.edges.db import (
    insert_ignore,
    one_of,
    relaxed_commit,
    unavailable_as_transient,
)
from monitor.edges.ingest import Ingest, IngestResult, Plan, Reschedule, ingest
from monitor.edges.outcomes import PollRecord, record_outcomes
from monitor.edges.schema import feeds
from monitor.edges.stories import Clustering

__all__ = ["ARTICLE_COLUMNS", "FeedDef", "FeedRow", "Ingest", "IngestResult", "Plan",
           "Reschedule", "Store", "article_from_row"]  # fmt: skip

DEFAULT_CLUSTERING = Clustering()


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
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            if ids is not None:  # a cycle asks for most feeds: see one_of
                query = query.where(one_of(conn, feeds.c.id, ids, many=True))
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
        """Store one feed's genuinely new articles, their matches and alerts, and the poll
        outcome, in one transaction (see `monitor.edges.ingest`)."""
        return self.ingest_many([Ingest(feed_id, items, plan, record, now, reschedule)],
                                clustering)[0]  # fmt: skip

    def ingest_many(
        self, jobs: Sequence[Ingest], clustering: Clustering = DEFAULT_CLUSTERING
    ) -> list[IngestResult]:
        """`ingest` for several feeds (each once) in one transaction."""
        return ingest(self.engine, jobs, clustering)


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
