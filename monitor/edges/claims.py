"""Claiming feeds to poll, so that workers sharing one database poll each due feed once.

Contract: `claim_due_feeds(engine, owner, now, lease, limit)` leases up to `limit` due feeds
to `owner` until `now + lease` and returns their ids; a feed is due when it is enabled, in the
config, not disabled by the daemon, its `next_poll_at` has come and no live lease is on it
(`lease_until` passed or unset). Most overdue first, then by id. `claim_feeds(engine, owner,
ids, now, lease)` leases the given feeds whether due or not (`monitor run --once`), skipping
those another worker holds. `renew(engine, owner, ids, now, lease)` extends the owner's claims;
`async with holding(engine, owner, ids, lease, clock):` renews them every third of `lease`
while its block polls the feeds (a cycle can outlast a lease: per-host spacing, slow hosts),
then releases them. `release(engine, owner, ids)` clears the owner's leases on those
feeds, and only the owner's: a worker that overran its lease cannot free a feed that another
worker has since claimed. `release_owner` clears all of an owner's feed leases (on stop);
`release_all` clears every feed lease, for a process that knows it is alone (the SQLite lock).
`feed_lease(config)` is how long a claim lasts: 2 × fetch_timeout + 60 s.

On PostgreSQL a claim is one statement, `UPDATE feeds SET lease_owner, lease_until WHERE id IN
(SELECT … ORDER BY … LIMIT n FOR UPDATE SKIP LOCKED) RETURNING id`: concurrent claims lock
disjoint rows without waiting for each other, and a row another claim updated meanwhile is
re-checked against the WHERE clause, so two claims never return the same feed. SQLite has no
row locks; its single writer serialises the statement, and `db.single_process` keeps a
second process away altogether.

The caller releases after the poll has written its outcome (`next_poll_at`), so there is no
moment at which a polled feed is both unleased and still due. A worker that dies keeps its
claims until they lapse; while a worker lives it renews them every third of the lease, and the
lease outlasts one poll (fetch deadline plus parsing) so that a stalled renewal does not get a
slow poll taken over and fetched twice. Times are the workers' clocks: they must agree to well
within a lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Select, or_, select, update

from monitor.core.errors import DatabaseUnavailable
from monitor.edges.config import Config
from monitor.edges.db import unavailable_as_transient
from monitor.edges.schema import feeds

__all__ = [
    "claim_due_feeds",
    "claim_feeds",
    "feed_lease",
    "holding",
    "release",
    "release_all",
    "release_owner",
    "renew",
]

log = logging.getLogger("monitor.claims")


def feed_lease(config: Config, override: timedelta | None = None) -> timedelta:
    """How long a claimed feed stays claimed: longer than a poll can take (the fetch deadline,
    then parsing and storing), or a slow poll would be claimed again and fetched twice."""
    return override or 2 * config.defaults.fetch_timeout + timedelta(seconds=60)


def _free(now: datetime) -> Any:
    return or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now)


def _claim(engine: Engine, owner: str, candidates: Select[Any], until: datetime) -> list[str]:
    with unavailable_as_transient(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        stmt = (
            update(feeds)
            .where(feeds.c.id.in_(candidates))
            .values(lease_owner=owner, lease_until=until)
            .returning(feeds.c.id)
        )
        return sorted(conn.scalars(stmt))


def claim_due_feeds(
    engine: Engine, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[str]:
    """Lease up to `limit` due feeds to `owner`; their ids (none: nothing is due and free)."""
    if limit <= 0:
        return []
    due = (
        select(feeds.c.id)
        .where(feeds.c.enabled, feeds.c.in_config, feeds.c.disabled_at.is_(None))
        .where(or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= now))
        .where(_free(now))
        .order_by(feeds.c.next_poll_at.asc().nulls_first(), feeds.c.id)
        .limit(limit)
    )
    return _claim(engine, owner, due, now + lease)


def claim_feeds(
    engine: Engine, owner: str, feed_ids: Collection[str], now: datetime, lease: timedelta
) -> list[str]:
    """Lease the given feeds, due or not, except those another worker holds; their ids."""
    if not feed_ids:
        return []
    free = select(feeds.c.id).where(feeds.c.id.in_(list(feed_ids)), _free(now))
    return _claim(engine, owner, free, now + lease)


def _clear(engine: Engine, *where: Any) -> None:
    stmt = update(feeds).where(*where).values(lease_owner=None, lease_until=None)
    with unavailable_as_transient(engine), engine.begin() as conn:
        conn.execute(stmt)


def renew(
    engine: Engine, owner: str, feed_ids: Collection[str], now: datetime, lease: timedelta
) -> None:
    """Extend `owner`'s claims on these feeds to `now + lease` (a long cycle); others' stay."""
    if feed_ids:
        stmt = (
            update(feeds)
            .where(feeds.c.id.in_(list(feed_ids)), feeds.c.lease_owner == owner)
            .values(lease_until=now + lease)
        )
        with unavailable_as_transient(engine), engine.begin() as conn:
            conn.execute(stmt)


def release(engine: Engine, owner: str, feed_ids: Collection[str]) -> None:
    """Clear `owner`'s leases on these feeds; leases others hold stay."""
    if feed_ids:
        _clear(engine, feeds.c.id.in_(list(feed_ids)), feeds.c.lease_owner == owner)


def release_owner(engine: Engine, owner: str) -> None:
    """Clear every feed lease `owner` holds."""
    _clear(engine, feeds.c.lease_owner == owner)


def release_all(engine: Engine) -> None:
    """Clear every feed lease: only for a process that knows no other worker exists."""
    _clear(engine, feeds.c.lease_owner.is_not(None))


@contextlib.asynccontextmanager
async def holding(
    engine: Engine,
    owner: str,
    feed_ids: Collection[str],
    lease: timedelta,
    clock: Callable[[], datetime],
) -> AsyncIterator[None]:
    """Renew `owner`'s claims on `feed_ids` every third of `lease` while the block runs, then
    release them. Failures to renew or release are logged: at worst the claims lapse."""
    done = asyncio.Event()

    async def keep() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), lease.total_seconds() / 3)
            if done.is_set():
                return
            try:
                await asyncio.to_thread(renew, engine, owner, feed_ids, clock(), lease)
            except DatabaseUnavailable as exc:
                log.warning("could not renew the claims on %d feeds: %s", len(feed_ids), exc)

    keeper = asyncio.ensure_future(keep())
    try:
        yield
    finally:
        done.set()
        await keeper
        try:
            await asyncio.to_thread(release, engine, owner, feed_ids)
        except DatabaseUnavailable as exc:
            log.warning("could not release the claims on %d feeds: %s", len(feed_ids), exc)
