"""Delivering the outbox: send each due alert, mark it sent only after the send succeeded.

A transient failure (Telegram or SMTP down, 429, a timeout) leaves the alert pending with a
retry time and stops that destination for this round: the next alerts would meet the same
outage, and the order of alerts is kept. A permanent failure (the peer refused this very
message) marks the alert failed with the reason, visible in `monitor status`. An unexpected
exception is a bug: it is logged with its traceback and the alert retried, never dropped.
After MAX_ATTEMPTS tries (about a day) an alert is failed for good, so that one undeliverable
alert cannot hold its destination's queue forever. Alerts for a destination the config no
longer names stay pending, untouched, in case it comes back.

One deliverer at a time per process: the daemon holds a lock around `deliver_due`, because two
rounds reading the same pending alert would both send it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from monitor.core.errors import PermanentError, TransientError
from monitor.core.render import AlertView
from monitor.core.timing import MAX_ATTEMPTS, retry_delay
from monitor.edges.outbox import DueAlert
from monitor.pipeline.runtime import Runtime

log = logging.getLogger("monitor.deliver")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    failed: int = 0

    def __add__(self, other: DeliveryReport) -> DeliveryReport:
        return DeliveryReport(
            self.sent + other.sent, self.retried + other.retried, self.failed + other.failed
        )


def view_of(rt: Runtime, alert: DueAlert) -> AlertView:
    """The alert as rendered now: watchlist names from the config in force."""
    named = tuple(
        replace(m, name=rt.watchlists[m.watchlist_id].name)
        if m.watchlist_id in rt.watchlists
        else m
        for m in alert.matches
    )
    return AlertView(article=alert.article, source=alert.source, matches=named)


async def _deliver_to(rt: Runtime, destination: str, due: Sequence[DueAlert]) -> DeliveryReport:
    """Send in order; returns early (with `retried` set) when the destination is failing."""
    outbox = rt.outbox
    notifier = rt.notifiers.get(destination)
    report = DeliveryReport()
    assert notifier is not None  # due alerts are fetched for configured destinations only
    for alert in due:
        if not alert.matches:
            await asyncio.to_thread(outbox.mark_failed, alert.id, "its matches are gone")
            report += DeliveryReport(failed=1)
            continue
        try:
            external_id = await notifier.send(view_of(rt, alert))
        except PermanentError as exc:
            log.error("alert %d to %s: failed for good: %s", alert.id, destination, exc)
            await asyncio.to_thread(outbox.mark_failed, alert.id, str(exc))
            report += DeliveryReport(failed=1)
            continue
        except Exception as exc:  # transient, or a bug in a notifier: retry, never lose it
            if not isinstance(exc, TransientError):
                log.exception("alert %d to %s: unexpected error", alert.id, destination)
            error = str(exc) if isinstance(exc, TransientError) else f"{type(exc).__name__}: {exc}"
            if alert.attempts + 1 >= MAX_ATTEMPTS:
                # About a day of retries: this alert, not the destination, is the problem.
                log.error("alert %d to %s: giving up after %d attempts: %s",
                          alert.id, destination, MAX_ATTEMPTS, error)  # fmt: skip
                message = f"gave up after {MAX_ATTEMPTS} attempts: {error}"
                await asyncio.to_thread(outbox.mark_failed, alert.id, message)
                report += DeliveryReport(failed=1)
                continue
            hint = exc.retry_after if isinstance(exc, TransientError) else None
            at = rt.clock() + retry_delay(alert.attempts + 1, hint)
            log.warning("alert %d to %s: will retry at %s: %s", alert.id, destination,
                        at.isoformat(timespec="seconds"), error)  # fmt: skip
            await asyncio.to_thread(outbox.mark_retry, alert.id, error, at)
            return report + DeliveryReport(retried=1)
        await asyncio.to_thread(outbox.mark_sent, alert.id, rt.clock(), external_id)
        report += DeliveryReport(sent=1)
    return report


async def deliver_due(rt: Runtime, *, batch: int = 200) -> DeliveryReport:
    """Send every alert that is due, destinations in parallel, each in order."""
    total = DeliveryReport()
    paused: set[str] = set()  # destinations that failed this round wait for their retry time
    while True:
        due = await asyncio.to_thread(rt.outbox.due_alerts, rt.clock(), batch, list(rt.notifiers))
        by_destination: dict[str, list[DueAlert]] = {}
        for alert in due:
            if alert.destination not in paused:
                by_destination.setdefault(alert.destination, []).append(alert)
        if not by_destination:
            return total
        names = list(by_destination)
        reports = await asyncio.gather(*(_deliver_to(rt, n, by_destination[n]) for n in names))
        for name, report in zip(names, reports, strict=True):
            total += report
            if report.retried:
                paused.add(name)
        if len(due) < batch:
            return total
