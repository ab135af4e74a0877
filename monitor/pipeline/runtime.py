"""What the pipeline runs with: the config in force, its compiled matcher, and the edges.

A `Runtime` is immutable. A config reload builds a new one around the same store, outbox,
HTTP client and parse pool and swaps it in whole, so a poll or a delivery in flight finishes
on the config it started with, never on half of each. `close_notifiers(rt)` closes the
notifiers a runtime built, once nothing will send through them again; the HTTP client and the
parse pool, shared across reloads, are their owner's to close.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import httpx

from monitor.core.match import Matcher
from monitor.core.model import Watchlist
from monitor.core.route import Route
from monitor.core.timing import parse_clock, parse_window
from monitor.edges.config import Config, FeedSpec
from monitor.edges.destinations import Destinations
from monitor.edges.notify import Notifier
from monitor.edges.outbox import Outbox
from monitor.edges.parse_pool import ParsePool
from monitor.edges.store import FeedDef, Store

log = logging.getLogger("monitor.runtime")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Muted(Protocol):
    """What is muted right now (monitor.edges.mutes.MuteSet)."""

    @property
    def watchlists(self) -> frozenset[str]: ...

    @property
    def stories(self) -> frozenset[int]: ...


class MuteSource(Protocol):
    def active(self, now: datetime) -> Muted: ...


#: Tells the operator something once (Telegram admins, and the log): a destination that keeps
#: refusing messages, say. Best effort: it never raises.
Notice = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class Runtime:
    config: Config
    matcher: Matcher
    store: Store
    outbox: Outbox
    client: httpx.AsyncClient
    notifiers: Mapping[str, Notifier]
    clock: Callable[[], datetime] = utc_now
    destinations: Destinations | None = None
    mutes: MuteSource | None = None
    notice: Notice | None = None
    #: Where feed bodies are parsed (worker processes, or a thread); shared across reloads.
    parser: ParsePool = field(default_factory=lambda: ParsePool(0))
    routes: tuple[Route, ...] = field(init=False)
    feeds: Mapping[str, FeedSpec] = field(init=False)
    watchlists: Mapping[str, Watchlist] = field(init=False)
    #: watchlist id → the destinations it notifies (None: every destination), for routing.
    notify: Mapping[str, tuple[str, ...] | None] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "routes", routes_from(self.config))
        object.__setattr__(self, "feeds", {f.id: f for f in self.config.feeds})
        object.__setattr__(self, "watchlists", {w.id: w for w in self.config.watchlists})
        object.__setattr__(self, "notify", {w.id: w.notify for w in self.config.watchlists})

    def feed_defs(self) -> list[FeedDef]:
        return [FeedDef(f.id, f.url, f.name, f.enabled) for f in self.config.feeds]


def routes_from(config: Config) -> tuple[Route, ...]:
    routes = []
    for name, dest in sorted(config.destinations.items()):
        digest = tuple(parse_clock(t) for t in dest.digest_at) if dest.mode == "digest" else ()
        routes.append(
            Route(
                name=name,
                min_priority=dest.min_priority,
                zone=dest.tz,
                quiet=parse_window(dest.quiet_hours) if dest.quiet_hours else None,
                digest_at=digest,
            )
        )
    return tuple(routes)


async def close_notifiers(rt: Runtime) -> None:
    """Close every notifier of `rt`, logging (never raising) the failures."""
    for notifier in rt.notifiers.values():
        try:
            await notifier.aclose()
        except Exception:
            # A notifier that fails to close must neither stop the daemon nor hide how a
            # command ended.
            log.exception("closing %s", notifier.name)
