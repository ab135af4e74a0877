"""What the team told the bot: mutes (tables `mutes`) and button feedback (table `feedback`).

Contract: `Mutes(engine)`; every method is one short transaction, connection-level failures
surface as `DatabaseUnavailable` (transient), anything else from the driver is a bug.

* `mute(scope, target, until, by, now)`: scope "watchlist" (target: its id) or "story" (target:
  the story id as text); muting again moves `until` (an upsert on (scope, target)).
* `unmute(scope, target, now)` deletes the mute; True when one was in force at `now`.
* `active(now)` → `MuteSet` of the mutes in force (until > now); `listing(now)` the same as rows.
* `record_feedback(alert_id, action, user_id, chat_id, now)` stores a button press with the
  alert's story and watchlists; a second press of the same button by the same user is ignored
  (unique (alert_id, action, user_id)) and returns False.
* `alert_for_message(message_id, chat_id, destinations)`: the alert a pressed message carries.
* `recent(watchlist, limit, now)`: the last sent alerts, one per story, newest first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine, and_, delete, exists, or_, select

from monitor.core.commands import RecentAlert
from monitor.edges.db import insert_ignore, unavailable_as_transient, upsert
from monitor.edges.schema import (
    SENT,
    alerts,
    articles,
    destination_state,
    feedback,
    feeds,
    matches,
    mutes,
    stories,
)

__all__ = ["MuteEntry", "MuteSet", "Mutes", "Scope"]

Scope = Literal["watchlist", "story"]
SCOPES: tuple[Scope, ...] = ("watchlist", "story")


@dataclass(frozen=True, slots=True)
class MuteSet:
    """The mutes in force at one moment."""

    watchlists: frozenset[str] = frozenset()
    stories: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class MuteEntry:
    scope: Scope
    target: str
    until: datetime
    by: str | None


class Mutes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mute(
        self, scope: Scope, target: str, until: datetime, by: str | None, now: datetime
    ) -> None:
        _check_scope(scope)
        values = {"until": until, "by": by}
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(
                upsert(conn, mutes, ["scope", "target"], values).values(
                    scope=scope, target=target, created_at=now, **values
                )
            )

    def unmute(self, scope: Scope, target: str, now: datetime) -> bool:
        _check_scope(scope)
        where = and_(mutes.c.scope == scope, mutes.c.target == target)
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            until = conn.scalar(select(mutes.c.until).where(where))
            conn.execute(delete(mutes).where(where))
        return until is not None and until > now

    def listing(self, now: datetime) -> list[MuteEntry]:
        """The mutes in force at `now`, soonest to end first."""
        query = (
            select(mutes.c.scope, mutes.c.target, mutes.c.until, mutes.c.by)
            .where(mutes.c.until > now)
            .order_by(mutes.c.until, mutes.c.scope, mutes.c.target)
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return [MuteEntry(r.scope, r.target, r.until, r.by) for r in conn.execute(query)]

    def active(self, now: datetime) -> MuteSet:
        entries = self.listing(now)
        return MuteSet(
            watchlists=frozenset(e.target for e in entries if e.scope == "watchlist"),
            # A story target that is not a number was not written by this code: ignore it.
            stories=frozenset(
                int(e.target) for e in entries if e.scope == "story" and e.target.isdigit()
            ),
        )

    def record_feedback(
        self,
        alert_id: int | None,
        action: str,
        user_id: int | None,
        chat_id: int | str | None,
        now: datetime,
        *,
        story_id: int | None = None,
        watchlists: Sequence[str] = (),
    ) -> bool:
        """Store one button press; False when it repeats one already stored, or names nothing.

        The alert's own story and watchlists win over `story_id` and `watchlists`, which stand
        in when the alert is unknown (a press on a message the outbox no longer knows).
        """
        values: dict[str, Any] = {"action": action, "user_id": user_id, "created_at": now,
                                  "chat_id": None if chat_id is None else str(chat_id)}  # fmt: skip
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            alert = None
            if alert_id is not None:
                query = select(alerts.c.story_id, alerts.c.watchlists).where(
                    alerts.c.id == alert_id
                )
                alert = conn.execute(query).first()
            if alert is not None:
                story_id, watchlists = alert.story_id or story_id, list(alert.watchlists)
            elif story_id is None and not watchlists:
                return False
            if story_id is not None:
                # The foreign key would refuse a story that is gone; the press still counts.
                story_id = conn.scalar(select(stories.c.id).where(stories.c.id == story_id))
            row = values | {"alert_id": alert_id if alert is not None else None,
                            "story_id": story_id, "watchlists": list(watchlists)}  # fmt: skip
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT that returns its key.
            added = insert_ignore(conn, feedback).values(**row).returning(feedback.c.id)
            return conn.execute(added).first() is not None

    def alert_for_message(
        self, message_id: int, chat_id: int | None, destinations: Collection[str]
    ) -> int | None:
        """The alert sent as Telegram message `message_id` to this chat.

        Message ids count per chat, so the alert must belong to one of `destinations` (those
        the config points at this chat) or to a destination whose chat moved here.
        """
        moved = select(destination_state.c.name).where(destination_state.c.chat_id == str(chat_id))
        query = (
            select(alerts.c.id)
            # External ids read `<chat>:<id>[,<id>…]` (monitor.core.telegram_parts); the
            # buttons sit on the last part. Bare ids are from before parts existed.
            .where(
                or_(
                    alerts.c.external_id == str(message_id),
                    alerts.c.external_id.like(f"%:{message_id}"),
                    alerts.c.external_id.like(f"%,{message_id}"),
                )
            )
            .where(
                or_(alerts.c.destination.in_(list(destinations)), alerts.c.destination.in_(moved))
            )
            .order_by(alerts.c.id.desc())
            .limit(1)
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            found: int | None = conn.scalar(query)
        return found

    def recent(self, watchlist: str | None, limit: int, now: datetime) -> list[RecentAlert]:
        """The last `limit` sent alerts (about `watchlist` when given), one per story."""
        query = (
            select(
                alerts.c.article_id,
                alerts.c.story_id,
                alerts.c.watchlists,
                alerts.c.sent_at,
                articles.c.title,
                articles.c.url,
                feeds.c.name.label("feed_name"),
            )
            .join(articles, articles.c.id == alerts.c.article_id)
            .join(feeds, feeds.c.id == articles.c.feed_id)
            .where(alerts.c.status == SENT, alerts.c.sent_at <= now)
            .order_by(alerts.c.sent_at.desc(), alerts.c.id.desc())
        )
        if watchlist is not None:
            # A cheap necessary condition in SQL (JSON containment differs per dialect); the
            # alert's own list decides below.
            query = query.where(
                exists().where(
                    matches.c.article_id == alerts.c.article_id,
                    matches.c.watchlist_id == watchlist,
                )
            )
        found: dict[tuple[str, int], RecentAlert] = {}
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            # Streamed: one story sent to several destinations is several rows, so how many
            # rows make `limit` stories is not known up front.
            result = conn.execute(query.execution_options(yield_per=100))
            try:
                for row in result:
                    lists = tuple(row.watchlists)
                    if watchlist is not None and watchlist not in lists:
                        continue
                    key = ("s", row.story_id) if row.story_id else ("a", row.article_id)
                    seen = found.get(key)
                    if seen is not None:
                        merged = seen.watchlists + tuple(
                            w for w in lists if w not in seen.watchlists
                        )
                        found[key] = replace(seen, watchlists=merged)
                        continue
                    if len(found) >= limit:
                        break
                    found[key] = RecentAlert(row.title, row.url, row.feed_name, lists,
                                             row.sent_at, row.story_id)  # fmt: skip
            finally:
                result.close()
        return list(found.values())


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise ValueError(f"unknown mute scope {scope!r} (watchlist or story)")
