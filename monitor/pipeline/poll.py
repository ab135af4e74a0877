"""Polling one feed: fetch → parse → dedupe, match and queue alerts in one transaction.

Every outcome, good or bad, is written on the feed row (status, error count, last error, next
poll), so a feed that times out, answers 404/500 or serves HTML shows up in `monitor status`
while the other feeds go on. Errors raised by the edges are classified here: nothing a feed
does can stop the daemon.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from monitor.core.errors import DatabaseUnavailable, MonitorError, TransientError
from monitor.core.model import AlertPlan, Article, WatchlistMatch
from monitor.core.route import route
from monitor.core.timing import is_backlog
from monitor.edges.config import FeedSpec
from monitor.edges.fetch import fetch
from monitor.edges.language import detect_language
from monitor.edges.parse import ParsedFeed, parse_feed
from monitor.edges.store import FeedRow, Plan, PollRecord
from monitor.edges.stories import Clustering
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


def _parse(
    body: bytes, *, feed_id: str, url: str, content_type: str | None, lang_hint: str | None
) -> ParsedFeed:
    """Parse, then guess the language of entries that neither the config nor the feed gave."""
    parsed = parse_feed(
        body, feed_id=feed_id, url=url, content_type=content_type, lang_hint=lang_hint
    )
    if all(a.lang for a in parsed.articles):
        return parsed
    articles = tuple(
        a if a.lang else replace(a, lang=detect_language(f"{a.title}. {a.summary}"))
        for a in parsed.articles
    )
    return replace(parsed, articles=articles)


def _plan(rt: Runtime, spec: FeedSpec, now: datetime, first_poll: bool) -> Plan:
    """Match and route one new article; a new feed's backlog is matched but not alerted."""

    def plan(article: Article) -> tuple[list[WatchlistMatch], list[AlertPlan]]:
        found = rt.matcher.match(article, feed_tags=spec.tags)
        if not found:
            return [], []
        if is_backlog(article.published_at, now, spec.backlog_window, first_poll):
            return found, []
        return found, route(found, rt.notify, rt.routes, now)

    return plan


def clustering(rt: Runtime) -> Clustering:
    defaults = rt.config.defaults
    return Clustering(window=defaults.story_window, edit_every=defaults.update_interval)


async def poll_feed(rt: Runtime, spec: FeedSpec, row: FeedRow | None) -> PollReport:
    """Poll one feed and record the outcome; raises only DatabaseUnavailable.

    Anything else that goes wrong, down to a bug, is this feed's error: recorded on its row
    with the next poll time, so a feed can never loop or stop the others.
    """
    now = rt.clock()
    next_poll = now + spec.interval
    try:
        return await _poll(rt, spec, row, now, next_poll)
    except DatabaseUnavailable:
        raise
    except MonitorError as exc:
        return await _failed(rt, spec, now, next_poll, exc)
    except Exception as exc:  # a bug must cost one poll of one feed, nothing more
        log.exception("feed %s: unexpected error", spec.id)
        return await _failed(rt, spec, now, next_poll, exc)


async def _poll(
    rt: Runtime, spec: FeedSpec, row: FeedRow | None, now: datetime, next_poll: datetime
) -> PollReport:
    store = rt.store
    result = await fetch(
        rt.client,
        spec.url,
        etag=row.etag if row else None,
        last_modified=row.last_modified if row else None,
        deadline=rt.config.defaults.fetch_timeout.total_seconds(),
    )
    if result.not_modified:
        record = PollRecord(status="304 not modified", next_poll_at=next_poll)
        await asyncio.to_thread(store.record_poll, spec.id, record, now)
        return PollReport(spec.id, record.status)
    body_hash = hashlib.sha256(result.body).hexdigest()
    validators = {"etag": result.etag, "last_modified": result.last_modified}
    if row is not None and row.body_hash == body_hash:
        # Servers without validators resend the same bytes: the same bytes need no parse.
        record = PollRecord(status="unchanged", next_poll_at=next_poll, **validators)
        await asyncio.to_thread(store.record_poll, spec.id, record, now)
        return PollReport(spec.id, record.status)
    # Parsing is CPU-bound (feedparser costs ~12 µs per element): off the event loop.
    parsed = await asyncio.to_thread(
        _parse,
        result.body,
        feed_id=spec.id,
        url=result.final_url,
        content_type=result.content_type,
        lang_hint=spec.lang,
    )
    record = PollRecord(
        status=f"{result.status} ok",
        next_poll_at=next_poll,
        body_hash=body_hash,
        title=parsed.title or None,
        **validators,
    )
    first_poll = row is None or row.last_success_at is None
    plan = _plan(rt, spec, now, first_poll)
    ingested = await asyncio.to_thread(
        store.ingest, spec.id, parsed.articles, plan, record, now, clustering(rt)
    )
    if parsed.warning:
        log.info("feed %s: parsed with a warning: %s", spec.id, parsed.warning)
    log.info(
        "feed %s: %d items, %d new, %d matched, %d alerts queued",
        spec.id, ingested.seen, ingested.new, ingested.matched, ingested.alerts,
    )  # fmt: skip
    return PollReport(spec.id, record.status, ingested.new, ingested.matched, ingested.alerts)


async def _failed(
    rt: Runtime, spec: FeedSpec, now: datetime, next_poll: datetime, exc: Exception
) -> PollReport:
    if isinstance(exc, MonitorError):
        kind = "temporary" if isinstance(exc, TransientError) else "permanent"
        message = str(exc) or type(exc).__name__
        log.warning("feed %s: %s error: %s", spec.id, kind, message)
    else:
        kind, message = "internal", f"internal error ({type(exc).__name__}: {exc})"
    record = PollRecord(status=f"error ({kind})", next_poll_at=next_poll, error=message)
    await asyncio.to_thread(rt.store.record_poll, spec.id, record, now)
    return PollReport(spec.id, record.status, error=message)


async def poll_feeds(
    rt: Runtime, feed_ids: Sequence[str], *, concurrency: int = 8
) -> list[PollReport]:
    """Poll the given feeds, at most `concurrency` at a time; unknown ids are skipped."""
    specs = [rt.feeds[f] for f in feed_ids if f in rt.feeds and rt.feeds[f].enabled]
    if not specs:
        return []
    rows = {r.id: r for r in await asyncio.to_thread(rt.store.feeds, [s.id for s in specs])}
    gate = asyncio.Semaphore(concurrency)

    async def one(spec: FeedSpec) -> PollReport:
        async with gate:
            return await poll_feed(rt, spec, rows.get(spec.id))

    return list(await asyncio.gather(*(one(s) for s in specs)))
