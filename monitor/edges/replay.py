"""The read side of a backtest: stored articles in batches, with what they matched and alerted.

Contract: `Replay(engine)` over the database the store writes. `scope(since)` counts the
articles fetched at or after `since` (every article when None) and fixes the id range a replay
covers, so that articles the daemon stores meanwhile neither enter the replay nor skew its
count. `batches(scope, watchlist_ids)` yields them in id order as `ReplayBatch`es of at most
`batch_size` articles, each with the watchlists (among `watchlist_ids`) each article matched at
ingest and the watchlists any of its alerts reported, whatever the destination.

Memory stays flat however many articles there are: batches come by keyset pagination on the
primary key, one short read per batch (so a replay never holds a transaction open against the
running daemon), and only one batch is alive at a time. Connection-level failures surface as
`DatabaseUnavailable` (transient); anything else from the driver is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, select

from monitor.core.model import Article
from monitor.edges.db import unavailable_as_transient
from monitor.edges.schema import alerts, articles, feeds, matches
from monitor.edges.store import ARTICLE_COLUMNS, article_from_row

__all__ = ["Replay", "ReplayBatch", "ReplayScope", "StoredArticle"]


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An article as stored: its row id, the article, its feed's display name, when it came."""

    id: int
    article: Article
    source: str
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class ReplayBatch:
    """Consecutive stored articles and what happened to them at ingest.

    `matched`: article id -> watchlist id -> the terms that hit then, as written then.
    `alerted`: article id -> the watchlist ids that at least one of its alerts reported.
    Articles that matched (or alerted) nothing have no key.
    """

    articles: tuple[StoredArticle, ...]
    matched: Mapping[int, Mapping[str, tuple[str, ...]]]
    alerted: Mapping[int, frozenset[str]]


@dataclass(frozen=True, slots=True)
class ReplayScope:
    """What one replay covers: `total` articles with ids in [first_id, last_id]."""

    since: datetime | None
    total: int
    first_id: int | None
    last_id: int | None


class Replay:
    def __init__(self, engine: Engine, *, batch_size: int = 500) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.engine = engine
        self.batch_size = batch_size

    def scope(self, since: datetime | None) -> ReplayScope:
        query = select(func.count(), func.min(articles.c.id), func.max(articles.c.id))
        if since is not None:
            query = query.where(articles.c.fetched_at >= since)
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            total, first_id, last_id = conn.execute(query).one()
        return ReplayScope(since=since, total=total, first_id=first_id, last_id=last_id)

    def batches(self, scope: ReplayScope, watchlist_ids: Collection[str]) -> Iterator[ReplayBatch]:
        if scope.first_id is None or scope.last_id is None:
            return
        wanted = sorted(set(watchlist_ids))
        after = scope.first_id - 1
        while after < scope.last_id:
            with unavailable_as_transient(self.engine), self.engine.connect() as conn:
                rows = conn.execute(self._page(scope, after)).all()
                if not rows:
                    return
                low, high = rows[0].id, rows[-1].id
                matched = self._matched(conn, low, high, wanted)
                alerted = self._alerted(conn, low, high, set(wanted))
            stored = tuple(_stored(row) for row in rows)
            ids = {s.id for s in stored}
            # The id range can hold articles outside `since` (fetch times interleave across
            # feeds); their matches and alerts are not part of this replay.
            yield ReplayBatch(
                articles=stored,
                matched={k: v for k, v in matched.items() if k in ids},
                alerted={k: v for k, v in alerted.items() if k in ids},
            )
            after = high

    def _page(self, scope: ReplayScope, after: int) -> Select[Any]:
        query = (
            select(
                articles.c.id,
                feeds.c.name.label("source"),
                *(articles.c[name] for name in ARTICLE_COLUMNS),
                articles.c.fetched_at,
            )
            .join(feeds, feeds.c.id == articles.c.feed_id)
            .where(articles.c.id > after, articles.c.id <= scope.last_id)
            .order_by(articles.c.id)
            .limit(self.batch_size)
        )
        if scope.since is not None:
            query = query.where(articles.c.fetched_at >= scope.since)
        return query

    @staticmethod
    def _matched(
        conn: Connection, low: int, high: int, wanted: list[str]
    ) -> dict[int, dict[str, tuple[str, ...]]]:
        out: dict[int, dict[str, tuple[str, ...]]] = {}
        if not wanted:
            return out
        # A range rather than IN (ids): one index range scan on (article_id, watchlist_id),
        # and no bound-parameter limit to mind on SQLite.
        query = select(matches.c.article_id, matches.c.watchlist_id, matches.c.terms).where(
            matches.c.article_id.between(low, high), matches.c.watchlist_id.in_(wanted)
        )
        for article_id, watchlist_id, terms in conn.execute(query):
            out.setdefault(article_id, {})[watchlist_id] = tuple(terms or ())
        return out

    @staticmethod
    def _alerted(
        conn: Connection, low: int, high: int, wanted: set[str]
    ) -> dict[int, frozenset[str]]:
        # `watchlists` is a JSON list; filtering inside it is dialect-specific, and an article
        # has one alert per destination at most, so the filter runs here.
        query = select(alerts.c.article_id, alerts.c.watchlists).where(
            alerts.c.article_id.between(low, high)
        )
        found: dict[int, set[str]] = {}
        for article_id, reported in conn.execute(query):
            hit = wanted.intersection(reported or ())
            if hit:
                found.setdefault(article_id, set()).update(hit)
        return {k: frozenset(v) for k, v in found.items()}


def _stored(row: Any) -> StoredArticle:
    article = article_from_row(row)
    return StoredArticle(id=row.id, article=article, source=row.source, fetched_at=row.fetched_at)
