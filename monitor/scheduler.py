"""The daemon's clock: APScheduler 3's AsyncIOScheduler drives polling and delivery.

Two interval jobs run on one event loop: `poll` claims the feeds whose `next_poll_at` has come
(each feed's own interval lives on its row, so a restart resumes where it left off) and
`deliver` sends the alerts whose time has come (new ones, retries, quiet hours ended), then
edits the sent alerts whose story gained sources. Both start at once, so the first alerts
appear seconds after start. `max_instances=1` and `coalesce` keep a slow cycle from piling up
copies of itself. Digest destinations get a cron job per `digest_at` time in their time zone;
an hourly job prunes the story index. Companions (the Telegram bot's long polling) run beside
the jobs until stop.

Several workers (`monitor run` processes) may share one PostgreSQL database. Polling claims
due feeds (`claims`) one cycle's worth at a time, renews the claims while the cycle runs and
releases them once its polls are recorded, so each due feed is polled by one worker; delivery
goes only to the destinations whose lease the worker holds (`leases.DeliveryLeases`), renewed
by a task that outlives the last job. Digest cron jobs
just run a delivery round, so they need no lease of their own; the prune job takes `job:prune`
for its period, so one worker prunes per hour. `stop()` releases what the worker holds; a dead
worker's leases lapse: feed claims after `feed_lease(config)`, named ones after LEASE_TTL,
both overridden by the `lease` argument (MONITOR_LEASE_SECONDS).

A failing database is reported and retried on the next tick; nothing here exits on an error.
`stop()` (wired to SIGTERM/SIGINT by the CLI) lets the jobs in flight finish, then returns.

Config reload: a watcher notices edits under the config folder (within about 200 ms); the new
config is validated in full and built into a new `Runtime` off the event loop; only if that
succeeds, and the files did not change again meanwhile, is it swapped in, feeds synced (new
feeds poll at once, removed ones stop) and the old notifiers closed once the jobs that use them
finish. An invalid config is logged problem by problem and recorded for `monitor status`, and
the last good config stays in force.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.core.errors import ConfigError, DatabaseUnavailable
from monitor.edges.claims import claim_due_feeds, claim_feeds, feed_lease, holding, release_owner
from monitor.edges.leases import LEASE_TTL, PRUNE, DeliveryLeases, Leases
from monitor.edges.state import State
from monitor.edges.stories import prune_story_keys
from monitor.edges.watch import config_changes, fingerprint
from monitor.pipeline.deliver import DeliveryReport, deliver_due
from monitor.pipeline.poll import PollReport, poll_feeds
from monitor.pipeline.runtime import Runtime, close_notifiers
from monitor.pipeline.updates import deliver_updates

log = logging.getLogger("monitor.scheduler")
PRUNE_EVERY = timedelta(hours=1)

#: Builds a Runtime for the config as it is on disk now, around the given one's store, outbox
#: and HTTP client; raises ConfigError when the config is invalid.
Rebuild = Callable[[Runtime], Runtime]
#: A task that runs beside the jobs until the event is set (the Telegram bot's long polling);
#: it reads the Runtime in force through the callable, since reloads swap it.
Companion = Callable[[Callable[[], Runtime], asyncio.Event], Awaitable[None]]
STATE_KEY = "config"


class Daemon:
    def __init__(
        self,
        runtime: Runtime,
        *,
        leases: Leases,
        lease: timedelta | None = None,
        rebuild: Rebuild | None = None,
        state: State | None = None,
        tick: float = 1.0,
        concurrency: int | None = None,
        companions: Iterable[Companion] = (),
    ) -> None:
        self.runtime = runtime
        self.leases = leases
        self.lease = lease  # overrides both lease lengths (MONITOR_LEASE_SECONDS)
        self.delivery = DeliveryLeases(leases, lease or LEASE_TTL)
        self.companions = tuple(companions)
        self._scheduler: AsyncIOScheduler | None = None
        self.rebuild = rebuild
        self.state = state
        self.tick = tick
        self.concurrency = concurrency  # None: the config's defaults.concurrency
        self._stop = asyncio.Event()
        self._leases_done = asyncio.Event()  # set once no job runs: stop renewing
        self._inflight: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        # Polling delivers what it queued at once, and the deliver job runs every tick: two
        # rounds must never read the same pending alert, or both would send it.
        self._delivering = asyncio.Lock()
        self._reloading = asyncio.Lock()
        self._reload_pending = False

    def _record(self, value: dict[str, object]) -> None:
        if self.state is None:
            return
        try:
            self.state.put(STATE_KEY, value, self.runtime.clock())
        except DatabaseUnavailable as exc:  # the log line above it says the same thing
            log.warning("could not record the config state: %s", exc)

    def _loaded(self) -> dict[str, object]:
        config = self.runtime.config
        return {"ok": True, "feeds": len(config.feeds), "watchlists": len(config.watchlists),
                "destinations": len(config.destinations)}  # fmt: skip

    async def reload(self, changed: Iterable[str] = ()) -> bool:
        """Validate the config on disk and swap it in; keep the current one if it is invalid."""
        async with self._reloading:
            return await self._reload(changed)

    async def _reload(self, changed: Iterable[str]) -> bool:
        assert self.rebuild is not None
        folder = self.runtime.config.dir
        for _ in range(5):
            before = await asyncio.to_thread(fingerprint, folder)
            try:
                fresh = await asyncio.to_thread(self.rebuild, self.runtime)
            except ConfigError as exc:
                if await asyncio.to_thread(fingerprint, folder) != before:
                    continue  # still being written: read it again
                log.error("config reload failed; the last good config stays in force:")
                for problem in exc.problems:
                    log.error("  %s", problem)
                problems = [str(p) for p in exc.problems]
                await asyncio.to_thread(self._record, {"ok": False, "problems": problems,
                                                       "files": sorted(changed)})  # fmt: skip
                return False
            if await asyncio.to_thread(fingerprint, folder) != before:
                await close_notifiers(fresh)
                continue
            try:
                await asyncio.to_thread(fresh.store.sync_feeds, fresh.feed_defs(), fresh.clock())
            except DatabaseUnavailable:
                # A valid edit waits for the database: the poll job tries again each tick.
                await close_notifiers(fresh)
                self._reload_pending = True
                raise
            self._reload_pending = False
            old, self.runtime = self.runtime, fresh
            self._schedule_digests()
            self._retire(old)
            await asyncio.to_thread(self._record, self._loaded())
            log.info("config reloaded: %s", _summary(fresh))
            return True
        log.error("config reload gave up: the files kept changing while being read")
        return False

    def _retire(self, old: Runtime) -> None:
        """Close the old notifiers once the jobs that may still use them have finished."""
        running = set(self._inflight)

        async def retire() -> None:
            if running:
                await asyncio.wait(running)
            await close_notifiers(old)

        self._spawn(retire())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _watch_config(self) -> None:
        try:
            async for changed in config_changes(self.runtime.config.dir, self._stop):
                try:
                    await self.reload(changed)
                except DatabaseUnavailable as exc:
                    log.warning("config reload: database unavailable, will retry: %s", exc)
                except Exception:
                    log.exception("config reload: unexpected error; the current config stays")
        except Exception:
            log.exception("watching the config folder failed; edits need a restart now")

    def stop(self) -> None:
        self._stop.set()

    async def _companion(self, companion: Companion) -> None:
        try:
            await companion(lambda: self.runtime, self._stop)
        except Exception:
            log.exception("a background task failed; the daemon goes on without it")

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
        if self._reload_pending and self.rebuild is not None:
            await self.reload()
        if await self._poll_claimed():
            await self.deliver()

    async def _poll_claimed(self) -> int:
        """Claim due feeds a batch at a time and poll each batch as one cycle, until none is
        due and free; returns how many feeds were polled.

        A batch is as many feeds as a cycle polls at once (`defaults.concurrency`): claiming
        every due feed at once would leave the other workers idle while this one polls them.
        """
        engine, owner = self.leases.engine, self.leases.owner
        polled = 0
        while not self._stop.is_set():
            rt = self.runtime
            limit = self.concurrency or rt.config.defaults.concurrency
            lease = feed_lease(rt.config, self.lease)
            claimed = await asyncio.to_thread(
                claim_due_feeds, engine, owner, rt.clock(), lease, limit
            )
            if not claimed:
                break
            reports = await self._poll_batch(rt, claimed, lease)
            polled += len(reports)
            if len(reports) < len(claimed):
                # Feeds the runtime does not poll (a reload is being swapped in) stay due:
                # wait for the next tick rather than claim them over and over.
                break
        return polled

    async def _poll_batch(
        self, rt: Runtime, claimed: list[str], lease: timedelta
    ) -> list[PollReport]:
        """Poll claimed feeds as one cycle, the claims renewed while it lasts, then released."""
        async with holding(self.leases.engine, self.leases.owner, claimed, lease, rt.clock):
            return await poll_feeds(rt, claimed, concurrency=self.concurrency)

    async def _keep_leases(self) -> None:
        # Through lambdas: reloads swap the runtime, and with it the destinations.
        config, clock = (lambda: self.runtime.config), (lambda: self.runtime.clock())
        await self.delivery.keep(config, clock, self._leases_done)

    async def deliver(self) -> None:
        async with self._delivering:
            rt = self.runtime
            mine = await self.delivery.destinations(rt.config, rt.clock())
            if mine:
                await self._deliver_to(rt, mine)

    @staticmethod
    async def _deliver_to(rt: Runtime, mine: Collection[str]) -> DeliveryReport:
        report = await deliver_due(rt, destinations=mine)
        if set(mine) >= set(rt.notifiers):
            await deliver_updates(rt)
        else:
            # Edits go through the notifiers; a runtime with only ours keeps them to ours.
            notifiers = {n: v for n, v in rt.notifiers.items() if n in mine}
            await deliver_updates(replace(rt, notifiers=notifiers))
        return report

    async def prune(self) -> None:
        rt = self.runtime
        now = rt.clock()
        # Kept, not released, for (nearly) the period: the other workers skip this hour.
        ttl = PRUNE_EVERY - timedelta(minutes=5)
        if not await asyncio.to_thread(self.leases.acquire, PRUNE, now, ttl):
            return
        before = now - rt.config.defaults.story_window
        await asyncio.to_thread(prune_story_keys, rt.store.engine, before)

    async def once(self) -> tuple[list[PollReport], DeliveryReport]:
        """`monitor run --once`: poll every enabled feed (bar those another worker is polling),
        deliver to the destinations whose lease is free, release everything."""
        rt, leases = self.runtime, self.leases
        engine, owner = leases.engine, leases.owner
        wanted = [f.id for f in rt.config.feeds if f.enabled]
        lease = feed_lease(rt.config, self.lease)
        claimed = await asyncio.to_thread(claim_feeds, engine, owner, wanted, rt.clock(), lease)
        if skipped := len(wanted) - len(claimed):
            log.warning("%d feed(s) skipped: another worker is polling them", skipped)
        keeper = asyncio.ensure_future(self._keep_leases())
        try:
            reports = await self._poll_batch(rt, claimed, lease) if claimed else []
            async with self._delivering:
                mine = await self.delivery.destinations(rt.config, rt.clock())
                delivered = await self._deliver_to(rt, mine)
        finally:
            self._leases_done.set()
            await keeper
            await asyncio.to_thread(self._release_everything)
        return reports, delivered

    def _release_everything(self) -> None:
        try:
            self.leases.release_mine()
            release_owner(self.leases.engine, self.leases.owner)
        except DatabaseUnavailable as exc:
            log.warning("could not release this worker's leases; they lapse: %s", exc)

    def _schedule_digests(self) -> None:
        """One cron job per digest destination and time, in the destination's time zone.

        Digest alerts are queued to be due at these times, so the 1 s deliver job would send
        them anyway; the cron job sends at the exact minute and keeps the schedule visible in
        APScheduler. A daemon that was down at digest time sends it on start (the alerts are
        overdue), which a cron trigger alone would miss.
        """
        scheduler = self._scheduler
        if scheduler is None:
            return
        for job in scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        for name, dest in self.runtime.config.destinations.items():
            if dest.mode != "digest":
                continue
            for at in dest.digest_at:
                hour, minute = at.split(":")
                scheduler.add_job(
                    self._guarded,
                    CronTrigger(hour=int(hour), minute=int(minute), timezone=dest.tz),
                    args=(f"digest {name} {at}", self.deliver),
                    id=f"digest:{name}:{at}",
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=None,
                )

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
        scheduler.add_job(
            self._guarded,
            IntervalTrigger(seconds=PRUNE_EVERY.total_seconds(), timezone=UTC),
            args=("prune", self.prune),
            id="prune",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        self._scheduler = scheduler
        self._schedule_digests()
        keeper = asyncio.ensure_future(self._keep_leases())
        scheduler.start()
        if self.rebuild is not None:
            self._spawn(self._watch_config())
        for companion in self.companions:
            self._spawn(self._companion(companion))
        await asyncio.to_thread(self._record, self._loaded())
        log.info("daemon started: %s", _summary(self.runtime))
        try:
            await self._stop.wait()
        finally:
            # Pause first and let running jobs finish: APScheduler's shutdown cancels the
            # tasks of running jobs, and a send cancelled after Telegram accepted it would be
            # sent again after a restart.
            scheduler.pause()
            if self._inflight:
                log.info("stopping: waiting for %d running job(s)", len(self._inflight))
                await asyncio.wait(set(self._inflight), timeout=30)
            scheduler.shutdown(wait=False)
            if self._background:
                await asyncio.wait(set(self._background), timeout=10)
            # Only now, and only if no job is left: a lease given up while a round is still
            # sending would let another worker send the same alerts.
            self._leases_done.set()
            await keeper
            if not self._inflight:
                await asyncio.to_thread(self._release_everything)
            log.info("daemon stopped")


def _summary(rt: Runtime) -> str:
    config = rt.config
    return (
        f"{len(config.feeds)} feeds, {len(config.watchlists)} watchlists,"
        f" {len(config.destinations)} destinations"
    )
