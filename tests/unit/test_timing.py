"""Quiet hours, digest times, retries and routing, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.core.model import Priority, WatchlistMatch
from monitor.core.route import Route, route
from monitor.core.timing import (
    is_backlog,
    next_digest,
    parse_clock,
    parse_window,
    quiet_until,
    release_time,
    retry_delay,
)

PARIS = ZoneInfo("Europe/Paris")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "window", "expected"),
    [
        ("2026-06-01T21:30", "22:00-07:00", "2026-06-02T05:00"),  # 23:30 Paris (UTC+2): inside
        ("2026-06-01T19:30", "22:00-07:00", None),  # 21:30 Paris: outside
        ("2026-06-01T03:00", "22:00-07:00", "2026-06-01T05:00"),  # 05:00 Paris: inside
        ("2026-06-01T05:00", "22:00-07:00", None),  # 07:00 Paris: window just ended
        ("2026-06-01T10:00", "12:00-14:00", "2026-06-01T12:00"),  # 12:00 Paris: inside
        ("2026-06-01T12:00", "12:00-14:00", None),
        ("2026-01-15T22:30", "22:00-07:00", "2026-01-16T06:00"),  # winter, UTC+1
    ],
)
def test_quiet_until(now: str, window: str, expected: str | None) -> None:
    result = quiet_until(_utc(now), PARIS, parse_window(window))
    assert result == (None if expected is None else _utc(expected))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-06-01T05:00", "2026-06-01T06:00"),  # 07:00 Paris → 08:00 digest
        ("2026-06-01T06:00", "2026-06-01T16:00"),  # exactly 08:00 → next is 18:00
        ("2026-06-01T17:00", "2026-06-02T06:00"),  # 19:00 Paris → tomorrow 08:00
        ("2026-03-28T17:00", "2026-03-29T06:00"),  # across the spring DST change
    ],
)
def test_next_digest(now: str, expected: str) -> None:
    assert next_digest(_utc(now), PARIS, [time(8), time(18)]) == _utc(expected)


def test_release_time_critical_ignores_quiet_hours() -> None:
    now = _utc("2026-06-01T23:00")  # 01:00 Paris
    quiet = parse_window("22:00-07:00")
    assert release_time(Priority.critical, now, zone=PARIS, quiet=quiet) == now
    assert release_time(Priority.high, now, zone=PARIS, quiet=quiet) == _utc("2026-06-02T05:00")


def test_release_time_digest_inside_quiet_hours_waits_for_the_end() -> None:
    now = _utc("2026-06-01T18:00")  # 20:00 Paris; next digest 06:00 Paris is inside quiet
    at = release_time(
        Priority.normal, now, zone=PARIS, quiet=parse_window("22:00-07:00"), digest_at=[time(6)]
    )
    assert at == _utc("2026-06-02T05:00")


@pytest.mark.parametrize(
    ("attempts", "retry_after", "seconds"),
    [(1, None, 30), (2, None, 60), (3, None, 120), (8, None, 3600), (50, None, 3600),
     (1, 90.0, 90), (5, 10.0, 480), (1, 0.0, 30)],
)  # fmt: skip
def test_retry_delay(attempts: int, retry_after: float | None, seconds: int) -> None:
    assert retry_delay(attempts, retry_after) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["7", "25:00", "07:60", "7h", "", "07:5"])
def test_parse_clock_rejects(bad: str) -> None:
    with pytest.raises(ValueError, match="time of day"):
        parse_clock(bad)


@pytest.mark.parametrize("bad", ["22:00", "22:00-22:00", "x-y"])
def test_parse_window_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_window(bad)


def _m(wid: str, priority: Priority = Priority.normal) -> WatchlistMatch:
    return WatchlistMatch(watchlist_id=wid, name=wid, priority=priority, terms=("x",))


def test_route_one_alert_per_destination_listing_its_watchlists() -> None:
    now = _utc("2026-06-01T12:00")
    found = [_m("taiwan"), _m("new-start", Priority.high)]
    notify = {"taiwan": None, "new-start": ("desk",)}
    plans = route(found, notify, [Route("desk"), Route("mail")], now)
    assert [(p.destination, p.watchlists, p.priority) for p in plans] == [
        ("desk", ("taiwan", "new-start"), Priority.high),
        ("mail", ("taiwan",), Priority.normal),
    ]


def test_route_min_priority_drops_and_quiet_hours_delay() -> None:
    now = _utc("2026-06-01T23:00")  # 01:00 Paris
    quiet = parse_window("22:00-07:00")
    routes = [
        Route("strict", min_priority=Priority.high),
        Route("night", zone=PARIS, quiet=quiet),
    ]
    plans = route([_m("taiwan")], {"taiwan": None}, routes, now)
    assert [(p.destination, p.next_attempt_at) for p in plans] == [
        ("night", _utc("2026-06-02T05:00"))
    ]


_NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("published", "window", "first_poll", "expected"),
    [
        (_NOW - timedelta(hours=1), timedelta(hours=24), True, False),
        (_NOW - timedelta(hours=24), timedelta(hours=24), True, False),  # on the edge: fresh
        (_NOW - timedelta(hours=24, seconds=1), timedelta(hours=24), True, True),
        (_NOW - timedelta(days=30), timedelta(hours=24), True, True),
        (None, timedelta(hours=24), True, True),  # undated on a first poll: age unknown
        (_NOW + timedelta(hours=3), timedelta(hours=24), True, False),  # dated in the future
        (_NOW - timedelta(days=30), timedelta(hours=24), False, False),  # later polls: new
        (None, timedelta(hours=24), False, False),
        (_NOW - timedelta(days=30), None, True, False),  # window off
        (None, None, True, False),
        (_NOW - timedelta(minutes=5), timedelta(minutes=1), True, True),
    ],
)
def test_is_backlog(
    published: datetime | None, window: timedelta | None, first_poll: bool, expected: bool
) -> None:
    assert is_backlog(published, _NOW, window, first_poll) is expected
