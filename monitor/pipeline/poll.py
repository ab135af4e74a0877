"""Polling feeds: fetch → parse → dedupe, match and queue alerts in one transaction → schedule.

Every outcome, good or bad, is written on the feed row (status, error count, failing since,
last error, interval in force, next poll), so a failing feed shows up in `monitor status` while
the others go on. The next poll always comes from `monitor.core.schedule`: adaptive after a
success (never sooner than Cache-Control / Expires or the feed's `<ttl>`), backoff with jitter
after an error (never sooner than Retry-After). Errors are classified here as a
`schedule.Outcome`: `network` (no answer at all: `TransientError.network`), `http` (an error
status), `feed` (no usable feed) or `internal` (a bug). Nothing a feed does stops the daemon.

A cycle (`poll_feeds`):

* skips the feeds the daemon disabled (410 Gone; failing for `defaults.disable_after`); the
  operator is told once when it happens (`rt.notice`, the log, `operator_told_at`), and only a
  new URL in feeds.yaml gives the feed a new chance (`Store.sync_feeds`).
* is polite (`Politeness.run`): `defaults.concurrency` polls at once, `per_host_concurrency`
  per host, `per_host_spacing` seconds between request starts to one host; local files exempt.
* holds connection-level failures back until the cycle ends (every other outcome is recorded
  as it finishes). If `schedule.network_down` then says our own network was down, they are
  recorded without counting against their feeds (error count, failing since and backoff
  unchanged) and retried in a minute; otherwise as the feeds' own errors. Deciding before
  recording writes each row once, with no earlier state to restore; a crash mid-cycle just
  leaves those feeds due.
* stores what the polls bring through one `Ingester` (group commit): polls that finish while
  the database is busy are stored together, in one transaction;
* follows permanent redirects: after a 301/308 chain the polled URL (`feeds.url`) is the new
  one, and the move is logged; `config_url` stays what feeds.yaml says.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypedDict

from monitor.core import schedule
from monitor.core.errors import DatabaseUnavailable, MonitorError, TransientError
from monitor.core.model import AlertPlan
from monitor.core.prepare import Prepared, complete
from monitor.core.route import route
from monitor.core.schedule import FeedState, Hints, Next, Outcome, Policy
from monitor.core.timing import is_backlog
from monitor.edges.config import FeedSpec
from monitor.edges.fetch import fetch
from monitor.edges.ingest import Ingest, Plan
from monitor.edges.outcomes import PollRecord
from monitor.edges.store import FeedRow, Store
from monitor.edges.stories import Clustering
from monitor.pipeline.ingester import Ingester
from monitor.pipeline.polite import Politeness, host_of
from monitor.pipeline.runtime import Runtime

log = logging.getLogger("monitor.poll")


@dataclass(frozen=True, slots=True)
class PollReport:
    feed_id: str
    status: str
    new: int = 0
    matched: int = 0
    alerts: int = 0
    error: str | None = None
    outcome: Outcome = "ok"


@dataclass(frozen=True, slots=True)
class _Held:
    """A connection-level failure, recorded once the cycle tells whether the network was up."""

    spec: FeedSpec
    row: FeedRow | None
    now: datetime
    error: TransientError


def polled_url(spec: FeedSpec, row: FeedRow | None) -> str:
    """Where to fetch: the row's URL (moved by permanent redirects) while the config still
    names the URL the row started from; the config's URL for a feed not synced yet."""
    if row is not None and (row.config_url or row.url) == spec.url:
        return row.url
    return spec.url


def _policy(rt: Runtime, spec: FeedSpec) -> Policy:
    d = rt.config.defaults
    return Policy(base=spec.interval, min_interval=d.min_interval, max_interval=d.max_interval,
                  adapt=d.adapt_intervals, max_backoff=d.max_backoff)  # fmt: skip


def _state(row: FeedRow | None) -> FeedState:
    if row is None:
        return FeedState()
    return FeedState(
        interval=None if row.interval_s is None else timedelta(seconds=row.interval_s),
        items_per_day=row.items_per_day,
        last_success_at=row.last_success_at,
        error_count=row.error_count,
        failing_since=row.failing_since,
    )


class _Schedule(TypedDict):
    next_poll_at: datetime
    interval_s: int | None
    items_per_day: float | None


def _schedule(nxt: Next) -> _Schedule:
    interval = nxt.state.interval
    seconds = None if interval is None else round(interval.total_seconds())
    return {"next_poll_at": nxt.at, "interval_s": seconds, "items_per_day": nxt.state.items_per_day}


def _jitter() -> float:
    # Spreads retries of feeds that failed together; not a secret, so no CSPRNG is needed.
    return random.uniform(-schedule.JITTER, schedule.JITTER)  # noqa: S311


def _plan(rt: Runtime, spec: FeedSpec, now: datetime, first_poll: bool) -> Plan:
    """Match (unless the parse worker did) and route one new article; a new feed's backlog is
    matched but not alerted."""

    def plan(item: Prepared) -> tuple[Prepared, list[AlertPlan]]:
        item = complete(item, rt.matcher, spec.tags)
        if not item.matches:
            return item, []
        if is_backlog(item.article.published_at, now, spec.backlog_window, first_poll):
            return item, []
        return item, route(item.matches, rt.notify, rt.routes, now)

    return plan


def clustering(rt: Runtime) -> Clustering:
    defaults = rt.config.defaults
    return Clustering(window=defaults.story_window, edit_every=defaults.update_interval)


class PollLog:
    """Poll outcomes on their way to the feed rows, written `size` at a time in one
    transaction (`Store.record_polls`): a cycle of 304s would otherwise cost a commit per feed.
    `poll_feeds` flushes before it returns, so the claims on its feeds are released only once
    their outcomes are written; a crash before a flush leaves those feeds due, polled again.
    """

    def __init__(self, store: Store, size: int = 256) -> None:
        self.store = store
        self.size = size
        self.pending: list[tuple[str, PollRecord, datetime]] = []

    async def add(self, feed_id: str, record: PollRecord, now: datetime) -> None:
        self.pending.append((feed_id, record, now))
        if len(self.pending) >= self.size:
            await self.flush()

    async def flush(self) -> None:
        batch, self.pending = self.pending, []
        if batch:
            await asyncio.to_thread(self.store.record_polls, batch)


async def _attempt(
    rt: Runtime, spec: FeedSpec, row: FeedRow | None, url: str, polls: PollLog, store: Ingester
) -> PollReport | _Held:
    """Poll one feed and record the outcome; raises only DatabaseUnavailable.

    Anything else that goes wrong, down to a bug, is this feed's error: recorded on its row
    with the next poll time, so a feed can never loop or stop the others. Connection-level
    failures come back as `_Held`, for `poll_feeds` to record once it knows whether the
    network was down.
    """
    now = rt.clock()
    try:
        return await _poll(rt, spec, row, url, now, polls, store)
    except DatabaseUnavailable:
        raise
    except TransientError as exc:
        if exc.network:
            return _Held(spec, row, now, exc)
        return await _failed(rt, spec, row, now, exc, polls)
    except MonitorError as exc:
        return await _failed(rt, spec, row, now, exc, polls)
    except Exception as exc:  # a bug must cost one poll of one feed, nothing more
        log.exception("feed %s: unexpected error", spec.id)
        return await _failed(rt, spec, row, now, exc, polls)


async def _poll(
    rt: Runtime,
    spec: FeedSpec,
    row: FeedRow | None,
    url: str,
    now: datetime,
    polls: PollLog,
    store: Ingester,
) -> PollReport:
    result = await fetch(
        rt.client,
        url,
        etag=row.etag if row else None,
        last_modified=row.last_modified if row else None,
        deadline=rt.config.defaults.fetch_timeout.total_seconds(),
    )
    moved = result.permanent_url if result.permanent_url not in (None, url) else None
    if moved is not None:
        log.warning("feed %s: moved permanently (301/308) from %s to %s; polling the new "
                    "URL from now on", spec.id, url, moved)  # fmt: skip
    policy, state = _policy(rt, spec), _state(row)
    # RFC 9111 §4.3.4: a 304 carries the Cache-Control / Expires a 200 would have carried.
    hints = Hints(freshness=schedule.freshness(result.headers, now))
    if result.not_modified:
        nxt = schedule.after_success(policy, state, now, new_items=0, hints=hints)
        record = PollRecord(status="304 not modified", url=moved, **_schedule(nxt))
        await polls.add(spec.id, record, now)
        return PollReport(spec.id, record.status)
    body_hash = hashlib.sha256(result.body).hexdigest()
    etag, modified = result.etag, result.last_modified
    if row is not None and row.body_hash == body_hash:
        # Servers without validators resend the same bytes: the same bytes need no parse.
        nxt = schedule.after_success(policy, state, now, new_items=0, hints=hints)
        record = PollRecord(
            status="unchanged", url=moved, etag=etag, last_modified=modified, **_schedule(nxt)
        )
        await polls.add(spec.id, record, now)
        return PollReport(spec.id, record.status)
    # Parsing and matching are CPU-bound: off the event loop, in a worker process when there
    # are cores.
    parsed = await rt.parser.parse(
        result.body, feed_id=spec.id, url=result.final_url, content_type=result.content_type,
        lang_hint=spec.lang, matcher=rt.matcher, feed_tags=spec.tags,
    )  # fmt: skip
    hints = replace(hints, ttl=parsed.ttl_seconds)
    # How many items are new is known only inside the ingest transaction, which writes the
    # record: schedule as if none were, and let the ingest reschedule when some were.
    provisional = schedule.after_success(policy, state, now, new_items=0, hints=hints)
    record = PollRecord(
        status=f"{result.status} ok",
        body_hash=body_hash,
        title=parsed.title or None,
        url=moved,
        etag=etag,
        last_modified=modified,
        **_schedule(provisional),
    )
    first_poll = row is None or row.last_success_at is None
    plan = _plan(rt, spec, now, first_poll)

    def reschedule(new: int) -> _Schedule:
        return _schedule(schedule.after_success(policy, state, now, new_items=new, hints=hints))

    # Stored with the other polls' that wait for the database at the same moment (ingester).
    ingested = await store.ingest(Ingest(spec.id, parsed.prepared, plan, record, now, reschedule))
    if parsed.warning:
        log.info("feed %s: parsed with a warning: %s", spec.id, parsed.warning)
    log.info(
        "feed %s: %d items, %d new, %d matched, %d alerts queued",
        spec.id, ingested.seen, ingested.new, ingested.matched, ingested.alerts,
    )  # fmt: skip
    return PollReport(spec.id, record.status, ingested.new, ingested.matched, ingested.alerts)


def _classify(exc: Exception) -> tuple[Outcome, str, str]:
    """The outcome, the short status for the row, and the message of a failed poll."""
    if not isinstance(exc, MonitorError):
        return "internal", "error (internal)", f"internal error ({type(exc).__name__}: {exc})"
    message = str(exc) or type(exc).__name__
    if isinstance(exc, TransientError) and exc.network:
        return "network", "error (network)", message
    status: int | None = getattr(exc, "status", None)
    if status is not None:
        return "http", f"error (HTTP {status})", message
    kind = "temporary" if isinstance(exc, TransientError) else "permanent"
    return "feed", f"error ({kind})", message


async def _failed(
    rt: Runtime,
    spec: FeedSpec,
    row: FeedRow | None,
    now: datetime,
    exc: Exception,
    polls: PollLog,
    *,
    network_was_down: bool = False,
) -> PollReport:
    outcome, status, message = _classify(exc)
    if network_was_down:
        nxt = schedule.after_network_down(_state(row), now)
        log.warning("feed %s: %s (not counted: the network was down)", spec.id, message)
        record = PollRecord(
            status="error (network down)", error=message, counted=False, **_schedule(nxt)
        )
        await polls.add(spec.id, record, now)
        return PollReport(spec.id, record.status, error=message, outcome=outcome)
    if outcome != "internal":
        log.warning("feed %s: %s: %s", spec.id, status, message)
    retry_after = exc.retry_after if isinstance(exc, TransientError) else None
    nxt = schedule.after_failure(
        _policy(rt, spec), _state(row), now, jitter=_jitter(), retry_after=retry_after
    )
    reason = schedule.should_disable(
        getattr(exc, "status", None),
        nxt.state.failing_since,
        now,
        rt.config.defaults.disable_after,
    )
    told = reason is not None and await _tell_disabled(rt, spec, row, reason, message)
    record = PollRecord(
        status=status, error=message, disabled_reason=reason, operator_told=told, **_schedule(nxt)
    )
    await polls.add(spec.id, record, now)
    return PollReport(spec.id, record.status, error=message, outcome=outcome)


async def _tell_disabled(
    rt: Runtime, spec: FeedSpec, row: FeedRow | None, reason: str, error: str
) -> bool:
    """Tell the operator, once, that a feed was taken out of the rotation."""
    if row is not None and row.operator_told_at is not None:
        return False
    text = (f"Feed {spec.id} is disabled and no longer polled: {reason} (last error: {error}). "
            "Fix or remove it in feeds.yaml; a new URL there gives it a new chance.")  # fmt: skip
    log.error("%s", text)
    if rt.notice is not None:
        await rt.notice(text)
    return True


async def poll_feeds(
    rt: Runtime, feed_ids: Sequence[str], *, concurrency: int | None = None
) -> list[PollReport]:
    """Poll the given feeds as one cycle (see the module doc) and record every outcome.

    Unknown feeds, feeds the config disables and feeds the daemon disabled are skipped.
    `concurrency` overrides `defaults.concurrency`.
    """
    specs = [rt.feeds[f] for f in feed_ids if f in rt.feeds and rt.feeds[f].enabled]
    if not specs:
        return []
    rows = {r.id: r for r in await asyncio.to_thread(rt.store.feeds, [s.id for s in specs])}
    specs = [s for s in specs if s.id not in rows or rows[s.id].disabled_at is None]
    defaults = rt.config.defaults
    polite = Politeness(
        concurrency or defaults.concurrency,
        defaults.per_host_concurrency,
        defaults.per_host_spacing,
    )

    polls = PollLog(rt.store)
    ingester = Ingester(rt.store, clustering(rt))

    def url_of(spec: FeedSpec) -> str:
        return polled_url(spec, rows.get(spec.id))

    async def one(spec: FeedSpec) -> tuple[bool, PollReport | _Held]:
        url, row = url_of(spec), rows.get(spec.id)
        return host_of(url) is not None, await _attempt(rt, spec, row, url, polls, ingester)

    # Every poll runs to its end even when one fails on the database, and what was recorded
    # so far is written before the error goes up: the caller releases these claims next.
    results = await polite.run(specs, url_of, one)
    failures = [r for r in results if isinstance(r, Exception)]
    if failures:
        unwritten = len(polls.pending)
        try:
            await polls.flush()
        except DatabaseUnavailable:
            log.warning("%d poll outcomes could not be written; those feeds stay due",
                        unwritten)  # fmt: skip
        raise failures[0]
    done = [r for r in results if not isinstance(r, Exception)]
    outcomes: list[Outcome] = [
        "network" if isinstance(got, _Held) else got.outcome for remote, got in done if remote
    ]
    down = schedule.network_down(outcomes)
    if down:
        log.warning("%d of %d feeds got no answer at all: the network looks down; their "
                    "errors are not counted and they are retried in a minute",
                    outcomes.count("network"), len(outcomes))  # fmt: skip
    reports = []
    for _, got in done:
        if isinstance(got, _Held):
            got = await _failed(
                rt, got.spec, got.row, got.now, got.error, polls, network_was_down=down
            )
        reports.append(got)
    await polls.flush()
    return reports
