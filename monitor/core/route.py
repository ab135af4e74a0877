"""Routing: which destinations get an alert for an article, reporting which watchlists, when.

One alert per article and destination, listing every matched watchlist that notifies that
destination (a watchlist without `notify` notifies every destination). A destination's
`min_priority` drops alerts below it; quiet hours and digests only delay them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo

from monitor.core.model import AlertPlan, Priority, WatchlistMatch
from monitor.core.timing import release_time


@dataclass(frozen=True, slots=True)
class Route:
    """What routing needs to know about one destination."""

    name: str
    min_priority: Priority = Priority.low
    zone: tzinfo = UTC
    quiet: tuple[time, time] | None = None
    digest_at: tuple[time, ...] = ()


def route(
    found: Sequence[WatchlistMatch],
    notify: Mapping[str, tuple[str, ...] | None],
    routes: Sequence[Route],
    now: datetime,
) -> list[AlertPlan]:
    """Alerts to queue for one article that matched `found` (`notify`: watchlist id → names)."""
    plans = []
    for dest in routes:
        chosen = [m for m in found if _notifies(notify.get(m.watchlist_id), dest.name)]
        if not chosen:
            continue
        priority = max(m.priority for m in chosen)
        if priority < dest.min_priority:
            continue
        at = release_time(priority, now, zone=dest.zone, quiet=dest.quiet, digest_at=dest.digest_at)
        plans.append(
            AlertPlan(
                destination=dest.name,
                watchlists=tuple(m.watchlist_id for m in chosen),
                priority=priority,
                next_attempt_at=at,
            )
        )
    return plans


def _notifies(names: tuple[str, ...] | None, destination: str) -> bool:
    return names is None or destination in names
