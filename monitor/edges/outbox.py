"""The alert outbox: pending alerts read back for delivery, and their outcome written down.

Contract: `Outbox(engine)` over the same database the store writes alerts into (`Store.ingest`).
`due_alerts(now, limit)` lists the pending alerts whose time has come as `DueAlert`s, with the
article, its feed's name and the matches needed to render them; `mark_sent`, `mark_retry` and
`mark_failed` settle one alert, and only a pending one; `alert_counts` counts alerts by destination
and status. Every method is one short transaction; connection-level failures surface as
`DatabaseUnavailable` (transient), anything else from the driver is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, select, true, update

from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.edges.db import unavailable_as_transient
from monitor.edges.schema import FAILED, PENDING, SENT, alerts, articles, feeds, matches
from monitor.edges.store import ARTICLE_COLUMNS, article_from_row

__all__ = ["DueAlert", "Outbox"]


@dataclass(frozen=True, slots=True)
class DueAlert:
    """A pending alert with everything needed to render it. Match names are watchlist ids."""

    id: int
    destination: str
    attempts: int
    article: Article
    source: str
    matches: tuple[WatchlistMatch, ...]


class Outbox:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def due_alerts(
        self, now: datetime, limit: int = 100, destinations: Collection[str] | None = None
    ) -> list[DueAlert]:
        """Pending alerts whose time has come, most urgent first, oldest first within that.

        A destination with an alert waiting for its retry time is skipped as a whole until
        then: an outage is the destination's, not the alert's, and alerts keep their order.
        Only `destinations` are considered when given: alerts for a destination that the config
        no longer names wait, pending, in case it comes back.
        """
        backing_off = select(alerts.c.destination).where(
            alerts.c.status == PENDING, alerts.c.attempts > 0, alerts.c.next_attempt_at > now
        )
        query = (
            select(
                alerts.c.id.label("alert_id"),
                alerts.c.destination,
                alerts.c.attempts,
                alerts.c.watchlists,
                alerts.c.article_id,
                feeds.c.name.label("feed_name"),
                *(articles.c[name] for name in ARTICLE_COLUMNS),
            )
            .join(articles, articles.c.id == alerts.c.article_id)
            .join(feeds, feeds.c.id == articles.c.feed_id)
            .where(alerts.c.status == PENDING, alerts.c.next_attempt_at <= now)
            .where(alerts.c.destination.not_in(backing_off))
            .where(
                alerts.c.destination.in_(list(destinations)) if destinations is not None else true()
            )
            .order_by(alerts.c.priority.desc(), alerts.c.id)
            .limit(limit)
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            rows = conn.execute(query).all()
            ids = list({r.article_id for r in rows})
            found: dict[int, dict[str, WatchlistMatch]] = {}
            if ids:
                for m in conn.execute(select(matches).where(matches.c.article_id.in_(ids))):
                    found.setdefault(m.article_id, {})[m.watchlist_id] = _match_from_row(m)
        out = []
        for r in rows:
            by_id = found.get(r.article_id, {})
            chosen = tuple(by_id[w] for w in r.watchlists if w in by_id)
            out.append(
                DueAlert(
                    id=r.alert_id,
                    destination=r.destination,
                    attempts=r.attempts,
                    article=article_from_row(r),
                    source=r.feed_name,
                    matches=chosen,
                )
            )
        return out

    def mark_sent(self, alert_id: int, now: datetime, external_id: str | None) -> None:
        self._set_alert(alert_id, status=SENT, sent_at=now, external_id=external_id,
                        attempts=alerts.c.attempts + 1, last_error=None)  # fmt: skip

    def mark_retry(self, alert_id: int, error: str, at: datetime) -> None:
        self._set_alert(alert_id, next_attempt_at=at, last_error=error[:2000],
                        attempts=alerts.c.attempts + 1)  # fmt: skip

    def mark_failed(self, alert_id: int, error: str) -> None:
        self._set_alert(alert_id, status=FAILED, last_error=error[:2000],
                        attempts=alerts.c.attempts + 1)  # fmt: skip

    def _set_alert(self, alert_id: int, **values: Any) -> None:
        # Only a pending alert changes: a second deliverer can never resurrect a sent one.
        query = update(alerts).where(and_(alerts.c.id == alert_id, alerts.c.status == PENDING))
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(query.values(**values))

    def alert_counts(self) -> dict[str, dict[str, int]]:
        """{destination: {status: count}} over the whole outbox."""
        query = select(alerts.c.destination, alerts.c.status, func.count()).group_by(
            alerts.c.destination, alerts.c.status
        )
        out: dict[str, dict[str, int]] = {}
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            for destination, status, count in conn.execute(query):
                out.setdefault(destination, {})[status] = count
        return out


def _match_from_row(row: Any) -> WatchlistMatch:
    return WatchlistMatch(
        watchlist_id=row.watchlist_id,
        name=row.watchlist_id,
        priority=Priority(row.priority),
        terms=tuple(row.terms),
        hits=tuple(Hit(**h) for h in row.hits),
    )
