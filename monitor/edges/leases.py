"""Named leases: which worker, of those sharing one database, does a job that must be done once.

Contract: `Leases(engine, owner)` acts for one worker (`owner`: its identity, `host:pid:random`,
made once by the composition root). `acquire(name, now, ttl)` takes the lease when it is free
or expired, or renews it when `owner` holds it, until `now + ttl`, and says whether `owner`
holds it now; `acquire_many(names, now, ttl)` does the same for several names in one
statement and returns those held. `held(names, now)` reads, without writing, which of `names`
`owner` holds. `release(names)` gives up `owner`'s leases (and never another's);
`release_mine()` gives up all of them (on stop). `release_all(engine)` clears every lease, for a
process that knows it is alone (the SQLite lock). A lease whose owner died lapses at its
`until`; the owner renews it well before then.

A take-over is one upsert, `INSERT … ON CONFLICT (name) DO UPDATE … WHERE leases.until < :now
OR leases.owner = :me RETURNING name`, the same on PostgreSQL and SQLite: the row is the lock,
and a name comes back only if this statement inserted or updated it, that is, if `owner` holds
it. `acquired_at` keeps the start of the current holder's tenure across renewals.

`DeliveryLeases(leases, ttl)` keeps a worker's delivery leases: `renew(config, now)` acquires
or renews those of the config's destinations and gives up the rest; `destinations(config, now)`
names the destinations the worker may deliver to now (renewing first when two thirds of the
lease may have passed since the last renewal that succeeded, so a worker whose renewals fail
starts no round on a lease that may have lapsed); `keep(...)` renews every third of the TTL
until told to stop. `while_held(leases, name, ttl, stop, run)` runs a long-lived task only while
a lease is held: the Telegram bot's long polling, of which Telegram allows one per token.

What is leased (`destination_leases`): delivery, per destination, except that every Telegram
destination shares one lease per bot token, `telegram:<sha256(token)[:12]>`: Telegram's rate
limits are the bot's, and the pacing that keeps under them (one `TelegramGate` per token) lives
in one process. Periodic jobs take a lease named after the job (`job:prune`) and keep it for
their period, so that one worker runs them; and the Telegram bot's long polling, which Telegram
allows one client per token at a time, runs where `bot:<sha256(token)[:12]>` is held. Table
leases rather than PostgreSQL advisory locks: they work on both databases, show in the table
who holds what, and do not tie a lock to one pooled connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Engine, case, delete, or_, select

from monitor.core.errors import DatabaseUnavailable
from monitor.edges.config import Config
from monitor.edges.db import dialect_insert, unavailable_as_transient
from monitor.edges.schema import leases

__all__ = [
    "LEASE_TTL",
    "PRUNE",
    "DeliveryLeases",
    "Leases",
    "bot_lease",
    "destination_leases",
    "release_all",
    "while_held",
]

log = logging.getLogger("monitor.leases")

#: The lease of the hourly story-index pruning.
PRUNE = "job:prune"
#: How long a named lease lasts unless renewed (its holder renews it every third of that).
LEASE_TTL = timedelta(seconds=60)


class Leases:
    def __init__(self, engine: Engine, owner: str) -> None:
        self.engine = engine
        self.owner = owner

    def acquire(self, name: str, now: datetime, ttl: timedelta) -> bool:
        return name in self.acquire_many([name], now, ttl)

    def acquire_many(self, names: Iterable[str], now: datetime, ttl: timedelta) -> set[str]:
        # Sorted and unique: two workers upserting overlapping names lock the rows in the same
        # order (no deadlock), and one statement may not update a row twice.
        wanted = sorted(set(names))
        if not wanted:
            return set()
        until = now + ttl
        rows = [{"name": n, "owner": self.owner, "until": until, "acquired_at": now}
                for n in wanted]  # fmt: skip
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            insert = dialect_insert(conn, leases).values(rows)
            new = insert.excluded
            stmt = insert.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "owner": new.owner,
                    "until": new.until,
                    "acquired_at": case(
                        (leases.c.owner == new.owner, leases.c.acquired_at),
                        else_=new.acquired_at,
                    ),
                },
                where=or_(leases.c.until < now, leases.c.owner == self.owner),
            ).returning(leases.c.name)
            return set(conn.scalars(stmt))

    def held(self, names: Collection[str], now: datetime) -> set[str]:
        query = select(leases.c.name).where(
            leases.c.name.in_(list(names)), leases.c.owner == self.owner, leases.c.until > now
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return set(conn.scalars(query))

    def release(self, names: Collection[str]) -> None:
        if names:
            self._delete(leases.c.name.in_(list(names)))

    def release_mine(self) -> None:
        self._delete()

    def _delete(self, *where: ColumnElement[bool]) -> None:
        stmt = delete(leases).where(leases.c.owner == self.owner, *where)
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(stmt)


def release_all(engine: Engine) -> None:
    """Clear every lease: only for a process that knows no other worker exists."""
    with unavailable_as_transient(engine), engine.begin() as conn:
        conn.execute(delete(leases))


def _token_key(prefix: str, token: str) -> str:
    return f"{prefix}:{hashlib.sha256(token.encode()).hexdigest()[:12]}"


def destination_leases(config: Config) -> dict[str, str]:
    """destination → the lease that lets a worker deliver to it (see the module docstring)."""
    token = config.settings.telegram_token
    keys = {}
    for name, spec in config.destinations.items():
        if spec.type == "telegram" and token is not None:
            keys[name] = _token_key("telegram", token.get_secret_value())
        else:
            keys[name] = f"destination:{name}"
    return keys


def bot_lease(token: str) -> str:
    """The lease under which the Telegram bot of `token` long-polls for updates."""
    return _token_key("bot", token)


class DeliveryLeases:
    """The delivery leases one worker holds (see the module docstring)."""

    def __init__(self, leases: Leases, ttl: timedelta) -> None:
        self.leases = leases
        self.ttl = ttl
        self._held: frozenset[str] = frozenset()
        self._fresh_until = float("-inf")  # time.monotonic(): when a renewal is overdue

    async def renew(self, config: Config, now: datetime) -> None:
        wanted = set(destination_leases(config).values())
        started = time.monotonic()
        got = await asyncio.to_thread(self.leases.acquire_many, wanted, now, self.ttl)
        self._fresh_until = started + self.ttl.total_seconds() * 2 / 3
        gone, self._held = self._held - wanted, frozenset(got)
        if gone:  # destinations the config no longer names
            await asyncio.to_thread(self.leases.release, gone)

    async def destinations(self, config: Config, now: datetime) -> list[str]:
        if time.monotonic() >= self._fresh_until:
            await self.renew(config, now)
        return [name for name, key in destination_leases(config).items() if key in self._held]

    async def keep(
        self, config: Callable[[], Config], clock: Callable[[], datetime], done: asyncio.Event
    ) -> None:
        """Renew every third of the TTL until `done` is set; failures are logged and retried."""
        every = self.ttl.total_seconds() / 3
        while not done.is_set():
            try:
                await self.renew(config(), clock())
            except DatabaseUnavailable as exc:
                log.warning("delivery leases: database unavailable, will retry: %s", exc)
            except Exception:
                log.exception("delivery leases: unexpected error; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), every)


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _hold(leases: Leases, name: str, ttl: timedelta, clock: Callable[[], datetime]) -> bool:
    try:
        return await asyncio.to_thread(leases.acquire, name, clock(), ttl)
    except DatabaseUnavailable as exc:
        # Unrenewed, the lease lapses and another worker may start: stop here first.
        log.warning("lease %s: database unavailable: %s", name, exc)
        return False


async def while_held(
    leases: Leases,
    name: str,
    ttl: timedelta,
    stop: asyncio.Event,
    run: Callable[[asyncio.Event], Awaitable[None]],
    clock: Callable[[], datetime] = _utc_now,
) -> None:
    """Run `run(halt)` only while `leases.owner` holds lease `name`, until `stop` is set.

    The lease is tried every third of `ttl` and renewed as often while `run` runs; `halt` is set
    (and `run` awaited) when `stop` is set or the lease is lost, and then the lease is released.
    Returns when `stop` is set, or when `run` returned or raised of its own accord (it gave up:
    a revoked token, say), passing on what it raised rather than starting it again.
    """
    every = ttl.total_seconds() / 3
    while not stop.is_set():
        if not await _hold(leases, name, ttl, clock):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            continue
        halt = asyncio.Event()
        task = asyncio.ensure_future(run(halt))
        stopping = asyncio.ensure_future(stop.wait())
        gave_up = False
        try:
            while not stop.is_set():
                await asyncio.wait(
                    {task, stopping}, timeout=every, return_when=asyncio.FIRST_COMPLETED
                )
                gave_up = task.done()
                if gave_up or stop.is_set():
                    break
                if not await _hold(leases, name, ttl, clock):
                    log.warning("lease %s: lost; stopping here for the worker that holds it", name)
                    break
        finally:
            stopping.cancel()
            halt.set()
            await asyncio.wait({task})
            with contextlib.suppress(DatabaseUnavailable):
                await asyncio.to_thread(leases.release, [name])
        if not gave_up and not task.cancelled() and task.exception() is not None:
            log.error("lease %s: the task failed while stopping", name, exc_info=task.exception())
        if gave_up:
            task.result()
            return
