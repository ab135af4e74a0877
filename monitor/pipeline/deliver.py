"""Delivering the outbox: send each due alert, mark it sent only after the send succeeded.

A transient failure (Telegram or SMTP down, 429, a timeout) leaves the alert pending with a
retry time and stops that destination for this round: the next alerts would meet the same
outage, and the order of alerts is kept. A permanent failure (the peer refused this very
message) marks the alert failed with the reason, visible in `monitor status`. An unexpected
exception is a bug: it is logged with its traceback and the alert retried, never dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from monitor.core.errors import PermanentError, TransientError
from monitor.core.render import AlertView
from monitor.core.timing import retry_delay
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
    for alert in due:
        if notifier is None:
            error = f"destination {destination!r} is no longer configured"
            await asyncio.to_thread(outbox.mark_failed, alert.id, error)
            report += DeliveryReport(failed=1)
            continue
        if not alert.matches:
            await asyncio.to_thread(outbox.mark_failed, alert.id, "its matches are gone")
            report += DeliveryReport(failed=1)
            continue
        try:
            external_id = await notifier.send(view_of(rt, alert))
        except TransientError as exc:
            at = rt.clock() + retry_delay(alert.attempts + 1, exc.retry_after)
            log.warning("alert %d to %s: will retry at %s: %s", alert.id, destination,
                        at.isoformat(timespec="seconds"), exc)  # fmt: skip
            await asyncio.to_thread(outbox.mark_retry, alert.id, str(exc), at)
            return report + DeliveryReport(retried=1)
        except PermanentError as exc:
            log.error("alert %d to %s: failed for good: %s", alert.id, destination, exc)
            await asyncio.to_thread(outbox.mark_failed, alert.id, str(exc))
            report += DeliveryReport(failed=1)
            continue
        except Exception as exc:  # a bug in a notifier must not lose the alert
            log.exception("alert %d to %s: unexpected error", alert.id, destination)
            at = rt.clock() + retry_delay(alert.attempts + 1)
            await asyncio.to_thread(outbox.mark_retry, alert.id, f"{type(exc).__name__}: {exc}", at)
            return report + DeliveryReport(retried=1)
        await asyncio.to_thread(outbox.mark_sent, alert.id, rt.clock(), external_id)
        report += DeliveryReport(sent=1)
    return report


async def deliver_due(rt: Runtime, *, batch: int = 200) -> DeliveryReport:
    """Send every alert that is due, destinations in parallel, each in order."""
    total = DeliveryReport()
    paused: set[str] = set()  # destinations that failed this round wait for their retry time
    while True:
        due = await asyncio.to_thread(rt.outbox.due_alerts, rt.clock(), batch)
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
