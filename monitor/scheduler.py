"""The daemon's clock: APScheduler 3's AsyncIOScheduler drives polling and delivery.

Two interval jobs run on one event loop: `poll` claims the feeds whose `next_poll_at` has come
(each feed's own interval lives on its row, so a restart resumes where it left off) and
`deliver` sends the alerts whose time has come (new ones, retries, quiet hours ended). Both
start at once, so the first alerts appear seconds after start. `max_instances=1` and
`coalesce` keep a slow cycle from piling up copies of itself.

A failing database is reported and retried on the next tick; nothing here exits on an error.
`stop()` (wired to SIGTERM/SIGINT by the CLI) lets the jobs in flight finish, then returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.core.errors import DatabaseUnavailable
from monitor.pipeline.deliver import deliver_due
from monitor.pipeline.poll import poll_feeds
from monitor.pipeline.runtime import Runtime

log = logging.getLogger("monitor.scheduler")


class Daemon:
    def __init__(self, runtime: Runtime, *, tick: float = 2.0, concurrency: int = 8) -> None:
        self.runtime = runtime
        self.tick = tick
        self.concurrency = concurrency
        self._stop = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()

    def replace_runtime(self, runtime: Runtime) -> None:
        """Swap in a new config; jobs already running finish on the old one."""
        self.runtime = runtime

    def stop(self) -> None:
        self._stop.set()

    async def _guarded(self, name: str, job: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            await job()
        except DatabaseUnavailable as exc:
            log.warning("%s: database unavailable, will retry: %s", name, exc)
        except Exception:
            log.exception("%s: unexpected error; the daemon goes on", name)
        finally:
            self._inflight.discard(task)

    async def poll_due(self) -> None:
        rt = self.runtime
        due = await asyncio.to_thread(rt.store.due_feed_ids, rt.clock())
        if due:
            await poll_feeds(rt, due, concurrency=self.concurrency)
            await deliver_due(rt)

    async def deliver(self) -> None:
        await deliver_due(self.runtime)

    async def run(self) -> None:
        """Run until `stop()`; the caller has synced feeds and migrated the schema."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        for name, job in (("poll", self.poll_due), ("deliver", self.deliver)):
            scheduler.add_job(
                self._guarded,
                IntervalTrigger(seconds=self.tick, timezone=UTC),
                args=(name, job),
                id=name,
                next_run_time=now,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        scheduler.start()
        log.info("daemon started: %d feeds, %d watchlists, %d destinations",
                 len(self.runtime.config.feeds), len(self.runtime.config.watchlists),
                 len(self.runtime.config.destinations))  # fmt: skip
        try:
            await self._stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            if self._inflight:
                log.info("stopping: waiting for %d running job(s)", len(self._inflight))
                await asyncio.wait(set(self._inflight), timeout=30)
            log.info("daemon stopped")
