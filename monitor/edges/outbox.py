"""The alert outbox: pending alerts read back for delivery, and their outcome written down.

Contract: `Outbox(engine)` over the same database the store writes alerts into (`Store.ingest`).
`due_alerts(now, limit, destinations)` lists the pending alerts whose time has come as
`DueAlert`s, with everything needed to render them: the article, its feed's name, the story's
other sources and the matches of every watchlist the alert reports (taken from whichever of the
story's articles matched it). `due_updates` lists sent alerts whose story grew since (an edit in
place is due). The `mark_*` methods settle alerts, and only pending ones, so a second deliverer
can never resurrect a sent alert; `messages_since` counts what a destination was sent lately
(flood control); `alert_counts` counts alerts by destination and status.

Every method is one short transaction; connection-level failures surface as
`DatabaseUnavailable` (transient), anything else from the driver is a bug and propagates.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, Select, and_, distinct, func, select, true, update

from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.edges.db import unavailable_as_transient
from monitor.edges.schema import FAILED, PENDING, SENT, SKIPPED, alerts, articles, feeds, matches
from monitor.edges.store import ARTICLE_COLUMNS, article_from_row

__all__ = ["DueAlert", "Outbox"]


@dataclass(frozen=True, slots=True)
class DueAlert:
    """An alert with everything needed to render it. Match names are watchlist ids."""

    id: int
    destination: str
    attempts: int
    article: Article
    source: str
    matches: tuple[WatchlistMatch, ...]
    story_id: int | None = None
    also: tuple[str, ...] = ()  # the story's other sources, in the order they came
    uncertain: int = 0  # ambiguous timeouts so far
    parts: tuple[str, ...] = ()  # parts an interrupted send already delivered
    external_id: str | None = None  # set for sent alerts (updates)
    update_due_at: datetime | None = None  # set for sent alerts whose story grew


_ALERT_COLUMNS = (
    alerts.c.id.label("alert_id"),
    alerts.c.destination,
    alerts.c.attempts,
    alerts.c.watchlists,
    alerts.c.article_id,
    alerts.c.story_id,
    alerts.c.uncertain,
    alerts.c.parts,
    alerts.c.external_id,
    alerts.c.update_due_at,
    feeds.c.name.label("feed_name"),
    *(articles.c[name] for name in ARTICLE_COLUMNS),
)


def _joined() -> Select[Any]:
    """Alerts with their article and feed: what `_with_context` reads."""
    return (
        select(*_ALERT_COLUMNS)
        .join(articles, articles.c.id == alerts.c.article_id)
        .join(feeds, feeds.c.id == articles.c.feed_id)
    )


def _only(destinations: Collection[str] | None) -> Any:
    return alerts.c.destination.in_(list(destinations)) if destinations is not None else true()


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
            _joined()
            .where(alerts.c.status == PENDING, alerts.c.next_attempt_at <= now)
            .where(alerts.c.destination.not_in(backing_off), _only(destinations))
            .order_by(alerts.c.priority.desc(), alerts.c.id)
            .limit(limit)
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return _with_context(conn, conn.execute(query).all())

    def due_updates(
        self, now: datetime, limit: int = 100, destinations: Collection[str] | None = None
    ) -> list[DueAlert]:
        """Alerts sent as their own message whose story gained sources: edit them now."""
        query = (
            _joined()
            .where(alerts.c.status == SENT, alerts.c.update_due_at <= now)
            .where(alerts.c.delivered_as == "message")  # digests and summaries stay as sent
            .where(alerts.c.external_id.is_not(None), _only(destinations))
            .order_by(alerts.c.update_due_at, alerts.c.id)
            .limit(limit)
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return _with_context(conn, conn.execute(query).all())

    # -- settling ------------------------------------------------------------------------------

    def mark_sent(
        self,
        alert_id: int,
        now: datetime,
        external_id: str | None,
        *,
        delivered_as: str = "message",
        refused: Mapping[str, str] | None = None,
        note: str | None = None,
    ) -> None:
        self._set_alert([alert_id], status=SENT, sent_at=now, external_id=external_id,
                        delivered_as=delivered_as, refused=dict(refused) if refused else None,
                        attempts=alerts.c.attempts + 1, last_error=note, parts=None,
                        updated_at=now)  # fmt: skip

    def mark_many_sent(
        self, ids: Sequence[int], now: datetime, external_id: str | None, delivered_as: str
    ) -> None:
        """Alerts that went out together, as one digest or one flood-control summary."""
        self._set_alert(ids, status=SENT, sent_at=now, external_id=external_id,
                        delivered_as=delivered_as, attempts=alerts.c.attempts + 1,
                        last_error=None, parts=None, updated_at=now)  # fmt: skip

    def mark_retry(
        self,
        alert_id: int,
        error: str,
        at: datetime,
        *,
        parts: Sequence[str] = (),
        uncertain: bool = False,
    ) -> None:
        values: dict[str, Any] = {"next_attempt_at": at, "last_error": error[:2000],
                                  "attempts": alerts.c.attempts + 1}  # fmt: skip
        if parts:
            values["parts"] = list(parts)
        if uncertain:
            values["uncertain"] = alerts.c.uncertain + 1
        self._set_alert([alert_id], **values)

    def mark_failed(self, alert_id: int, error: str) -> None:
        self._set_alert([alert_id], status=FAILED, last_error=error[:2000],
                        attempts=alerts.c.attempts + 1)  # fmt: skip

    def mark_skipped(self, alert_id: int, reason: str, delivered_as: str) -> None:
        """Not sent on purpose (its watchlists or story were muted)."""
        self._set_alert([alert_id], status=SKIPPED, last_error=reason[:2000],
                        delivered_as=delivered_as)  # fmt: skip

    def _set_alert(self, ids: Sequence[int], **values: Any) -> None:
        # Only a pending alert changes: a second deliverer can never resurrect a sent one.
        query = update(alerts).where(and_(alerts.c.id.in_(list(ids)), alerts.c.status == PENDING))
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(query.values(**values))

    def mark_updated(self, alert_id: int, now: datetime, due_seen: datetime | None) -> None:
        """The edit that was due at `due_seen` is done. A copy that arrived meanwhile moved
        `update_due_at` on: then it stays, and that copy gets its own edit."""
        query = update(alerts).where(alerts.c.id == alert_id, alerts.c.status == SENT)
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(query.values(updated_at=now))
            conn.execute(query.where(alerts.c.update_due_at == due_seen).values(update_due_at=None))

    def defer_update(self, alert_id: int, at: datetime | None, error: str | None = None) -> None:
        """Try the edit again at `at`; None gives it up (the message is gone, say)."""
        self._set_update(alert_id, update_due_at=at, last_error=error)

    def _set_update(self, alert_id: int, **values: Any) -> None:
        query = update(alerts).where(and_(alerts.c.id == alert_id, alerts.c.status == SENT))
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(query.values(**values))

    # -- counting ------------------------------------------------------------------------------

    def messages_since(self, destination: str, since: datetime) -> int:
        """Messages a destination was sent since `since`: alerts sent alone, plus summaries
        (many alerts, one message). Edits and digests do not count: flood control is about
        new messages arriving unasked."""
        sent = and_(alerts.c.destination == destination, alerts.c.status == SENT,
                    alerts.c.sent_at > since)  # fmt: skip
        alone = select(func.count()).where(sent, alerts.c.delivered_as == "message")
        summaries = select(func.count(distinct(alerts.c.external_id))).where(
            sent, alerts.c.delivered_as == "summary"
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return int(conn.scalar(alone) or 0) + int(conn.scalar(summaries) or 0)

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


def _with_context(conn: Connection, rows: Sequence[Any]) -> list[DueAlert]:
    """DueAlerts for `rows`, each with its story's other sources and matches."""
    story_ids = list({r.story_id for r in rows if r.story_id is not None})
    # Each story's articles in arrival order: (article id, feed name).
    members: dict[int, list[tuple[int, str]]] = {}
    if story_ids:
        query = (
            select(articles.c.id, articles.c.story_id, feeds.c.name)
            .join(feeds, feeds.c.id == articles.c.feed_id)
            .where(articles.c.story_id.in_(story_ids))
            .order_by(articles.c.id)
        )
        for article_id, story_id, name in conn.execute(query):
            members.setdefault(story_id, []).append((article_id, name))
    article_ids = {r.article_id for r in rows} | {a for m in members.values() for a, _ in m}
    found: dict[int, dict[str, WatchlistMatch]] = {}
    if article_ids:
        query = select(matches).where(matches.c.article_id.in_(list(article_ids)))
        for m in conn.execute(query):
            found.setdefault(m.article_id, {})[m.watchlist_id] = _match_from_row(m)
    out = []
    for r in rows:
        story = members.get(r.story_id, [(r.article_id, r.feed_name)])
        # The alert's own article first: its matches are the ones its text shows.
        order = [r.article_id] + [a for a, _ in story if a != r.article_id]
        chosen = []
        for watchlist in r.watchlists:
            source = next((a for a in order if watchlist in found.get(a, {})), None)
            if source is None:
                continue
            match = found[source][watchlist]
            # A copy's hits point into the copy's text, not the text this alert shows.
            chosen.append(match if source == r.article_id else replace(match, hits=()))
        also: list[str] = []
        for _, name in story:
            if name != r.feed_name and name not in also:
                also.append(name)
        out.append(
            DueAlert(
                id=r.alert_id,
                destination=r.destination,
                attempts=r.attempts,
                article=article_from_row(r),
                source=r.feed_name,
                matches=tuple(chosen),
                story_id=r.story_id,
                also=tuple(also),
                uncertain=r.uncertain or 0,
                parts=tuple(r.parts or ()),
                external_id=r.external_id,
                update_due_at=r.update_due_at,
            )
        )
    return out


def _match_from_row(row: Any) -> WatchlistMatch:
    return WatchlistMatch(
        watchlist_id=row.watchlist_id,
        name=row.watchlist_id,
        priority=Priority(row.priority),
        terms=tuple(row.terms),
        hits=tuple(Hit(**h) for h in row.hits),
    )
