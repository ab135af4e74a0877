"""When to poll a feed next, and when to give up on it. Pure: `now` and the jitter are arguments.

Contract:

* `after_success(policy, state, now, new_items=, hints=)`: a poll that worked (200, 304, the
  same bytes again). The publishing rate (`items_per_day`, an EWMA) learns from the new items
  seen since the last success (a first poll teaches nothing: its items are the feed's backlog),
  and the interval in force becomes
  - `policy.base` when adaptation is off;
  - about half the expected gap between items (GAP_SHARE × 1 day / rate), within the bounds,
    when the poll brought new items: a feed that publishes often is polled often;
  - the previous interval × GROWTH (within the bounds) when it brought none: a quiet feed
    drifts, gently, to the upper bound;
  - never shorter than what the server asked for (`Hints`: HTTP freshness per RFC 9111, RSS
    `<ttl>`), each hint capped at HINT_CAP so that a silly max-age cannot stop polling.
* `after_failure(policy, state, now, jitter=, retry_after=)`: exponential backoff from the base,
  `base × 2^(n-1) × (1 + jitter)` for the n-th error in a row, capped at `max_backoff` (or the
  base, when longer), and never sooner than the peer's Retry-After (RFC 9110 §10.2.3; capped at
  HINT_CAP). The interval in force and the rate are kept: errors say nothing about how often
  the feed publishes.
* `after_network_down(state, now)`: the daemon's own network was down (see `network_down`): the
  error is not the feed's, so nothing is counted and the feed is retried in NETWORK_RETRY.
* `should_disable(status, failing_since, now, disable_after)`: the reason to take a feed out of
  the rotation (410 Gone at once; failing without a break for `disable_after`), or None.
* `network_down(outcomes)`: whether a poll cycle's outcomes say that our network, not the
  feeds, failed.
* `freshness(headers, now)`: the seconds a response stays fresh (RFC 9111 §4.2), or None.

The bounds always include the base: `[min(min_interval, base), max(max_interval, base)]`, so a
feed configured to poll every 30 s or every day is never pushed outside what it asked for.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Literal

#: An empty poll stretches the interval by this factor (up to the upper bound).
GROWTH = 1.5
#: Poll at this share of the expected gap between two items: most items are seen within about
#: half a gap of their publication, at two polls per item.
GAP_SHARE = 0.5
#: The EWMA's time constant: a poll covering `elapsed` weighs 1 - exp(-elapsed / RATE_MEMORY).
#: Weighting by time, not by poll, keeps the estimate independent of how often we poll.
RATE_MEMORY = timedelta(hours=6)
#: No server hint (max-age, Expires, ttl, Retry-After) defers a poll by more than this.
HINT_CAP = timedelta(hours=24)
#: The jitter the caller should draw, uniformly in [-JITTER, JITTER], for `after_failure`:
#: feeds that failed together (a host down) do not all come back at the same second.
JITTER = 0.2
#: When the network is down, feeds are retried this soon, all together (no jitter), so that the
#: next cycle polls them together again and tells, again, whether the network is back.
NETWORK_RETRY = timedelta(minutes=1)
#: "The network is down": at least this share of at least this many network fetches of one
#: cycle failed at the connection level. Fewer fetches cannot tell a dead host from a dead link.
NETWORK_SHARE = Fraction(4, 5)
NETWORK_MIN_FEEDS = 5

_DAY = 86_400.0
_MAX_DELTA = 2**31  # RFC 9111 §1.2.2: larger delta-seconds are read as 2^31

#: How one poll ended: `ok`, or the kind of error. `network`: no answer at all (refused,
#: reset, DNS, timeout); `http`: an HTTP error status; `feed`: an answer that is not a usable
#: feed (not a feed, too large, a redirect loop); `internal`: a bug of ours.
Outcome = Literal["ok", "network", "http", "feed", "internal"]


@dataclass(frozen=True, slots=True)
class Policy:
    """What the config says: the feed's base interval and the daemon-wide bounds."""

    base: timedelta
    min_interval: timedelta = timedelta(minutes=2)
    max_interval: timedelta = timedelta(hours=2)
    adapt: bool = True
    max_backoff: timedelta = timedelta(hours=6)

    @property
    def bounds(self) -> tuple[timedelta, timedelta]:
        return min(self.min_interval, self.base), max(self.max_interval, self.base)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the feed row remembers between polls."""

    #: The interval in force (None: never scheduled, the base applies).
    interval: timedelta | None = None
    #: The publishing rate, an EWMA of new items per day (None: not yet observed).
    items_per_day: float | None = None
    last_success_at: datetime | None = None
    #: Errors in a row, and when the first of them happened.
    error_count: int = 0
    failing_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class Hints:
    """What the server or the feed asked for, in seconds; None when unsaid."""

    #: How long the response stays fresh (`freshness(headers, now)`, RFC 9111 §4.2).
    freshness: float | None = None
    #: RSS `<ttl>` ("how long a channel can be cached before refreshing from the source", RSS
    #: 2.0) or sy:updatePeriod / sy:updateFrequency (RSS 1.0 syndication module), in seconds.
    #: A 304 or an unchanged body is not parsed and brings no ttl: the interval in force, grown
    #: from the last one, keeps the floor unless the ttl is past the upper bound.
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Next:
    """When to poll next, and the state to remember until then."""

    at: datetime
    state: FeedState


def _clamp(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    return max(low, min(value, high))


def _hint(seconds: float | None) -> timedelta:
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return timedelta(0)
    return min(timedelta(seconds=seconds), HINT_CAP)


def learn_rate(previous: float | None, new_items: int, elapsed: timedelta | None) -> float | None:
    """The EWMA of items per day after seeing `new_items` over `elapsed` (None: unknown).

    Nothing is learnt without a span to divide by: the first poll (whose items are the feed's
    backlog, not its rate) or a clock that went backwards. The first observation is taken whole.
    """
    if elapsed is None or elapsed <= timedelta(0):
        return previous
    seconds = elapsed.total_seconds()
    sample = max(0, new_items) * _DAY / seconds
    if previous is None:
        return sample
    weight = 1.0 - math.exp(-seconds / RATE_MEMORY.total_seconds())
    return previous + weight * (sample - previous)


def after_success(
    policy: Policy, state: FeedState, now: datetime, *, new_items: int, hints: Hints = Hints()
) -> Next:
    """The next poll after one that worked; see the module doc for the rules."""
    low, high = policy.bounds
    elapsed = now - state.last_success_at if state.last_success_at is not None else None
    rate = learn_rate(state.items_per_day, new_items, elapsed)
    previous = _clamp(state.interval or policy.base, low, high)
    if not policy.adapt:
        interval = policy.base
    elif new_items > 0 and elapsed is not None and rate:
        gap = timedelta(seconds=GAP_SHARE * _DAY / rate)
        interval = _clamp(gap, low, high)
    elif new_items > 0:
        # Items, but no rate to read them against (the first poll: a backlog): stay put.
        interval = previous
    else:
        interval = _clamp(previous * GROWTH, low, high)
    # A hint is a floor, not a new base: it may take the interval past the upper bound for this
    # poll, and the next empty poll starts again from within the bounds.
    interval = max(interval, _hint(hints.freshness), _hint(hints.ttl))
    fresh = FeedState(interval=interval, items_per_day=rate, last_success_at=now)
    return Next(now + interval, fresh)


def backoff(policy: Policy, errors: int, jitter: float) -> timedelta:
    """The wait after the `errors`-th error in a row: base × 2^(errors-1) × (1 + jitter), capped.

    The cap is `max_backoff`, or the base when that is longer: a failing feed is never polled
    more often than its configured interval. Jitter is applied before the cap, so at the cap the
    waits spread below it, never above.
    """
    cap = max(policy.max_backoff, policy.base)
    doublings = min(max(errors, 1) - 1, 62)  # 2^62 × any interval is far past any cap
    raw = policy.base.total_seconds() * 2.0**doublings * (1.0 + jitter)
    # Compared in seconds: past the cap, `raw` may be too large for a timedelta.
    return timedelta(seconds=min(cap.total_seconds(), max(raw, 0.0)))


def after_failure(
    policy: Policy,
    state: FeedState,
    now: datetime,
    *,
    jitter: float,
    retry_after: float | None = None,
) -> Next:
    """The next poll after an error that counts against the feed; see the module doc."""
    errors = state.error_count + 1
    wait = max(backoff(policy, errors, jitter), _hint(retry_after))
    failing = FeedState(
        interval=state.interval,
        items_per_day=state.items_per_day,
        last_success_at=state.last_success_at,
        error_count=errors,
        failing_since=state.failing_since or now,
    )
    return Next(now + wait, failing)


def after_network_down(state: FeedState, now: datetime) -> Next:
    """The next poll when the cycle's network was down: nothing counted, back in a minute."""
    return Next(now + NETWORK_RETRY, state)


def should_disable(
    status: int | None,
    failing_since: datetime | None,
    now: datetime,
    disable_after: timedelta | None,
) -> str | None:
    """Why the feed should be disabled now, or None to keep polling it.

    410 Gone is the publisher saying the feed is gone for good (RFC 9110 §15.5.11: "likely to be
    permanent"), so it disables at once. Any other error disables only once the feed has failed
    without a break for `disable_after` (None: never).
    """
    if status == 410:
        return "HTTP 410 Gone: the publisher removed the feed for good"
    if disable_after is None or failing_since is None:
        return None
    if now - failing_since >= disable_after:
        return f"failing without a break for {_span(now - failing_since)}"
    return None


def network_down(outcomes: Iterable[Outcome]) -> bool:
    """Whether one cycle's network fetches failed mostly at the connection level.

    Pass the outcomes of the fetches that went over the network (local files say nothing about
    it). When at least NETWORK_SHARE of at least NETWORK_MIN_FEEDS of them got no answer at all,
    the likeliest cause is our own link, DNS or firewall, not every publisher at once.
    """
    seen = list(outcomes)
    if len(seen) < NETWORK_MIN_FEEDS:
        return False
    failed = sum(1 for o in seen if o == "network")
    return failed >= NETWORK_SHARE * len(seen)


# -- HTTP freshness (RFC 9111) ------------------------------------------------------------------

_DIRECTIVE = re.compile(
    r"""([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,\s]*))?\s*(?:,|$)"""
)


def cache_directives(value: str | None) -> dict[str, str | None]:
    """Cache-Control directives, names lower-cased, values unquoted (RFC 9111 §5.2).

    When a directive appears twice, the first one counts (RFC 9111 §4.2.1).
    """
    directives: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(value or ""):
        name, argument = match.group(1).lower(), match.group(2)
        if argument is not None and argument.startswith('"'):
            argument = re.sub(r"\\(.)", r"\1", argument[1:-1])
        directives.setdefault(name, argument)
    return directives


def _delta_seconds(value: str | None) -> int | None:
    """RFC 9111 §1.2.2 delta-seconds: digits only; None when absent or invalid."""
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        return None
    return min(int(value[:12]), _MAX_DELTA)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else None


def freshness(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds the response stays fresh from now (RFC 9111 §4.2), or None: poll as usual.

    `headers` are lower-cased names. The freshness lifetime is max-age (§5.2.2.1; s-maxage is
    for shared caches, and we are a private one), else Expires minus Date (§4.2.1; minus `now`
    when there is no Date). The age is the Age header (§5.1): the apparent age from Date would
    compare our clock with the server's, and clock skew must not cancel a hint. Unqualified
    no-cache or no-store (§5.2.2.4, §5.2.2.5), an invalid max-age or Expires (§5.3: "0" means
    already expired) and heuristic freshness (§4.2.2, a cache's own guess) give no hint.
    """
    directives = cache_directives(headers.get("cache-control"))
    if "no-store" in directives or ("no-cache" in directives and not directives["no-cache"]):
        return None
    if "max-age" in directives:
        lifetime = _delta_seconds(directives["max-age"])
        if lifetime is None:
            return None
        seconds = float(lifetime)
    elif "expires" in headers:
        expires = _http_date(headers["expires"])
        if expires is None:
            return None
        date = _http_date(headers.get("date")) or now
        seconds = (expires - date).total_seconds()
    else:
        return None
    remaining = seconds - (_delta_seconds(headers.get("age")) or 0)
    return remaining if remaining > 0 else None


def _span(delta: timedelta) -> str:
    """A short duration for people: 45s, 12m, 5h, 3d, 1d6h."""
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 2 * 86_400:
        return f"{seconds // 3600}h"
    days, rest = divmod(seconds, 86_400)
    hours = rest // 3600
    return f"{days}d{hours}h" if hours else f"{days}d"
