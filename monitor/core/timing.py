"""When an alert may go out, and when a failed one is tried again. Pure: `now` is an argument.

* Quiet hours (`"22:00-07:00"`, in the destination's time zone, may wrap midnight): an alert
  below `critical` queued inside the window waits until the window ends.
* Digest destinations: an alert waits for the next `digest_at` time in the destination's zone.
* Retries: exponential from 30 s, capped at one hour, and never sooner than the peer asked
  (Telegram's `retry_after`, HTTP `Retry-After`).

Local times are built with `datetime.combine(..., tzinfo=zone)` and converted to UTC, so a
daylight-saving change moves them with the wall clock, as the analyst expects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta, tzinfo

from monitor.core.model import Priority

RETRY_FIRST = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
#: After this many failed tries (30 s doubling to 1 h: about a day) an alert is failed for good,
#: so that one undeliverable alert cannot hold its destination's queue forever.
MAX_ATTEMPTS = 30


def parse_clock(text: str) -> time:
    """`"07:30"` → time(7, 30); ValueError with a readable message otherwise."""
    try:
        hours, minutes = text.strip().split(":")
        if len(minutes) != 2:
            raise ValueError
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like '07:30'") from None


def parse_window(text: str) -> tuple[time, time]:
    """`"22:00-07:00"` → (22:00, 07:00); the window may wrap midnight but not be empty."""
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError(f"{text!r} is not a window like '22:00-07:00'")
    start, end = parse_clock(start_text), parse_clock(end_text)
    if start == end:
        raise ValueError(f"{text!r} is an empty window")
    return start, end


def _local_at(day: datetime, at: time, zone: tzinfo) -> datetime:
    return datetime.combine(day.date(), at, tzinfo=zone).astimezone(UTC)


def quiet_until(now: datetime, zone: tzinfo, window: tuple[time, time]) -> datetime | None:
    """The end of the quiet window `now` falls in, in UTC; None when `now` is not inside one."""
    start, end = window
    local = now.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= clock < end
        ends_day = local
    else:  # wraps midnight: inside from `start` to midnight, and from midnight to `end`
        inside = clock >= start or clock < end
        ends_day = local + timedelta(days=1) if clock >= start else local
    if not inside:
        return None
    return _local_at(ends_day, end, zone)


def next_digest(now: datetime, zone: tzinfo, times: Sequence[time]) -> datetime:
    """The first `digest_at` time strictly after `now`, in UTC."""
    local = now.astimezone(zone)
    candidates = [
        _local_at(local + timedelta(days=offset), at, zone) for offset in (0, 1, 2) for at in times
    ]
    return min(c for c in candidates if c > now)


def release_time(
    priority: Priority,
    now: datetime,
    *,
    zone: tzinfo,
    quiet: tuple[time, time] | None,
    digest_at: Sequence[time] = (),
) -> datetime:
    """When a new alert of `priority` may first be sent to a destination."""
    at = next_digest(now, zone, digest_at) if digest_at else now
    if quiet is not None and priority < Priority.critical:
        end = quiet_until(at, zone, quiet)
        if end is not None:
            at = end
    return at


def retry_delay(attempts: int, retry_after: float | None = None) -> timedelta:
    """How long to wait after the `attempts`-th failed try (1 for the first)."""
    delay = RETRY_FIRST * (2 ** max(attempts - 1, 0)) if attempts < 20 else RETRY_MAX
    delay = min(delay, RETRY_MAX)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def is_backlog(
    published_at: datetime | None, now: datetime, window: timedelta | None, first_poll: bool
) -> bool:
    """Whether an item of a feed's first successful poll is old news, stored but not alerted.

    Only the first poll has a backlog: later, an item is new because the feed just added it,
    whatever date it claims. Undated items of a first poll count as backlog (their age is
    unknown, and a new feed's 200 undated items must not flood); `window=None` turns this off.
    """
    if not first_poll or window is None:
        return False
    return published_at is None or published_at < now - window
