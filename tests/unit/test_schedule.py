"""When to poll next: adaptive intervals, server hints, backoff, disabling, a dead network.

Everything is pure, with `now` and the jitter passed in: every rule is a row of a table.
Durations are in seconds; the default policy is a 10-minute base within [2 min, 2 h].
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor.core.schedule import (
    HINT_CAP,
    JITTER,
    NETWORK_RETRY,
    FeedState,
    Hints,
    Outcome,
    Policy,
    after_failure,
    after_network_down,
    after_success,
    backoff,
    cache_directives,
    freshness,
    learn_rate,
    network_down,
    should_disable,
)

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
MIN, HOUR, DAY = 60, 3600, 86_400
DAY_CAP = int(HINT_CAP.total_seconds())


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _policy(base: float = 600, **kw: Any) -> Policy:
    bounds = {k: _s(v) for k, v in kw.items() if k in ("min_interval", "max_interval")}
    rest = {k: v for k, v in kw.items() if k not in bounds}
    if "max_backoff" in rest:
        rest["max_backoff"] = _s(rest["max_backoff"])
    return Policy(base=_s(base), **bounds, **rest)


def _state(
    interval: float | None = None,
    rate: float | None = None,
    success_ago: float | None = None,
    errors: int = 0,
    failing_ago: float | None = None,
) -> FeedState:
    return FeedState(
        interval=None if interval is None else _s(interval),
        items_per_day=rate,
        last_success_at=None if success_ago is None else NOW - _s(success_ago),
        error_count=errors,
        failing_since=None if failing_ago is None else NOW - _s(failing_ago),
    )


# -- bounds ---------------------------------------------------------------------------------------

BOUNDS = [
    # base, min, max → effective bounds: they always include the base
    (600, 120, 7200, (120, 7200)),
    (30, 120, 7200, (30, 7200)),  # a feed asked for 30 s: it may be polled that often
    (DAY, 120, 7200, (120, DAY)),  # a daily feed may stay daily
    (120, 120, 120, (120, 120)),
    (7200, 120, 7200, (120, 7200)),
]


@pytest.mark.parametrize(("base", "low", "high", "expected"), BOUNDS)
def test_bounds_include_the_base(
    base: float, low: float, high: float, expected: tuple[float, float]
) -> None:
    bounds = _policy(base, min_interval=low, max_interval=high).bounds
    assert bounds == (_s(expected[0]), _s(expected[1]))


# -- the publishing rate ---------------------------------------------------------------------------

RATES = [
    # previous rate, new items, elapsed → rate (items per day)
    (None, 5, None, None),  # first poll: its items are a backlog, not a rate
    (3.0, 5, None, 3.0),
    (None, 5, 600, 720.0),  # the first observation is taken whole
    (None, 0, 600, 0.0),
    (None, 1, DAY, 1.0),
    (10.0, 0, 0, 10.0),  # no span to divide by
    (10.0, 3, -60, 10.0),  # a clock that went backwards teaches nothing
    (10.0, -2, 3600, 10.0 * math.exp(-1 / 6)),  # a negative count is read as none
    (10.0, 0, 6 * HOUR, 10.0 * math.exp(-1)),  # six hours of silence: weight 1 - 1/e
    (0.0, 24, DAY, 24.0 * (1 - math.exp(-4))),
    (24.0, 1, HOUR, 24.0),  # publishing at the rate already known keeps it
    (100.0, 0, 1000 * DAY, 0.0),  # a long silence forgets everything
]


@pytest.mark.parametrize(("previous", "new", "elapsed", "expected"), RATES)
def test_learn_rate(
    previous: float | None, new: int, elapsed: float | None, expected: float | None
) -> None:
    result = learn_rate(previous, new, None if elapsed is None else _s(elapsed))
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, rel=1e-9, abs=1e-9)


# -- after a success -------------------------------------------------------------------------------

SUCCESS: list[tuple[str, Policy, FeedState, int, Hints, float]] = [
    # name, policy, state, new items, hints → interval in force (seconds)
    ("first poll, empty feed: grows from the base", _policy(), _state(), 0, Hints(), 900),
    ("first poll, a backlog: no rate yet, base", _policy(), _state(), 5, Hints(), 600),
    ("busy: 5 items in 10 min, lower bound", _policy(), _state(600, None, 600), 5, Hints(), 120),
    ("1 item an hour: half an hour", _policy(), _state(600, None, HOUR), 1, Hints(), 1800),
    ("1 item a day: upper bound", _policy(), _state(600, None, DAY), 1, Hints(), 7200),
    ("busy with a known rate", _policy(), _state(600, 720.0, 600), 5, Hints(), 120),
    ("an item after a quiet spell shortens", _policy(), _state(7200, 48.0, 7200), 2, Hints(),
     0.5 * DAY / (48 + (1 - math.exp(-1 / 3)) * (24 - 48))),
    ("empty poll: ×1.5", _policy(), _state(600, 48.0, 600), 0, Hints(), 900),
    ("empty poll: ×1.5 again", _policy(), _state(900, 48.0, 900), 0, Hints(), 1350),
    ("empty poll: capped at the upper bound", _policy(), _state(5000, 1.0, 5000), 0, Hints(),
     7200),
    ("empty poll at the upper bound stays", _policy(), _state(7200, 0.0, 7200), 0, Hints(), 7200),
    ("above the bounds (a past hint): back within", _policy(), _state(5 * HOUR, 1.0, 5 * HOUR),
     0, Hints(), 7200),
    ("below the bounds (config changed): from within", _policy(), _state(30, 1.0, 30), 0, Hints(),
     180),
    ("adaptation off: always the base", _policy(adapt=False), _state(120, 720.0, 600), 5,
     Hints(), 600),
    ("adaptation off, empty poll", _policy(adapt=False), _state(600, 0.0, 600), 0, Hints(), 600),
    ("a 30 s feed may be polled every 30 s", _policy(30), _state(30, None, 30), 10, Hints(), 30),
    ("a daily feed drifts past max_interval", _policy(DAY), _state(DAY, 0.0, DAY), 0, Hints(),
     DAY),
    # Server hints are floors, each capped at a day.
    ("max-age 1 h defers", _policy(), _state(600, None, 600), 5, Hints(freshness=3600), 3600),
    ("ttl 1 h defers", _policy(), _state(600, None, 600), 5, Hints(ttl=3600), 3600),
    ("the larger hint wins", _policy(), _state(), 0, Hints(freshness=1800, ttl=2400), 2400),
    ("a hint shorter than the interval is moot", _policy(), _state(), 0, Hints(ttl=60), 900),
    ("a hint past the upper bound still counts", _policy(), _state(), 0, Hints(ttl=5 * HOUR),
     5 * HOUR),
    ("a silly max-age is capped at a day", _policy(), _state(), 0, Hints(freshness=10**9),
     DAY_CAP),
    ("hints apply with adaptation off", _policy(adapt=False), _state(), 0, Hints(ttl=HOUR), HOUR),
    ("a zero hint is none", _policy(), _state(), 0, Hints(freshness=0), 900),
    ("a negative hint is none", _policy(), _state(), 0, Hints(ttl=-5), 900),
    ("a NaN hint is none", _policy(), _state(), 0, Hints(freshness=float("nan")), 900),
    ("an infinite hint is none", _policy(), _state(), 0, Hints(freshness=float("inf")), 900),
]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "state", "new", "hints", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in SUCCESS],
)
def test_after_success(
    policy: Policy, state: FeedState, new: int, hints: Hints, expected: float
) -> None:
    nxt = after_success(policy, state, NOW, new_items=new, hints=hints)
    assert nxt.state.interval is not None
    assert nxt.state.interval.total_seconds() == pytest.approx(expected)
    assert nxt.at == NOW + nxt.state.interval
    assert nxt.state.last_success_at == NOW
    assert (nxt.state.error_count, nxt.state.failing_since) == (0, None)


def test_a_success_ends_a_failing_streak_and_keeps_learning() -> None:
    state = _state(600, 24.0, HOUR, errors=3, failing_ago=HOUR)
    nxt = after_success(_policy(), state, NOW, new_items=1, hints=Hints())
    assert (nxt.state.error_count, nxt.state.failing_since) == (0, None)
    assert nxt.state.items_per_day == pytest.approx(24.0)


def test_a_quiet_feed_drifts_to_the_upper_bound_and_a_busy_one_to_the_lower() -> None:
    policy, quiet, busy = _policy(), _state(), _state()
    now = NOW
    for _ in range(12):
        now += quiet.interval or policy.base
        quiet = after_success(policy, quiet, now, new_items=0).state
    assert quiet.interval == timedelta(hours=2)
    now = NOW
    busy = after_success(policy, busy, now, new_items=20).state  # the backlog
    for _ in range(5):
        now += busy.interval or policy.base
        busy = after_success(policy, busy, now, new_items=3).state
    assert busy.interval == timedelta(minutes=2)


# -- after a failure -------------------------------------------------------------------------------

BACKOFF = [
    # base, max_backoff, errors in a row, jitter → wait (seconds)
    (600, 6 * HOUR, 1, 0.0, 600),
    (600, 6 * HOUR, 2, 0.0, 1200),
    (600, 6 * HOUR, 3, 0.0, 2400),
    (600, 6 * HOUR, 6, 0.0, 19200),
    (600, 6 * HOUR, 7, 0.0, 6 * HOUR),  # 38400 s, capped
    (600, 6 * HOUR, 1, 0.2, 720),
    (600, 6 * HOUR, 1, -0.2, 480),
    (600, 6 * HOUR, 3, 0.1, 2640),
    (600, 6 * HOUR, 6, 0.2, 6 * HOUR),  # 23040 s: jitter never takes a wait past the cap
    (600, 6 * HOUR, 7, -0.2, 6 * HOUR),  # 30720 s, capped
    (600, 6 * HOUR, 1000, 0.0, 6 * HOUR),  # no overflow
    (600, 6 * HOUR, 0, 0.0, 600),  # read as the first error
    (DAY, 6 * HOUR, 1, 0.0, DAY),  # never more often than the feed's own interval
    (DAY, 6 * HOUR, 2, 0.2, DAY),
    (30, 6 * HOUR, 1, 0.0, 30),
    (30, 10 * MIN, 5, 0.0, 480),
    (30, 10 * MIN, 6, 0.0, 600),
    (600, 600, 2, 0.0, 600),
]


@pytest.mark.parametrize(("base", "cap", "errors", "jitter", "expected"), BACKOFF)
def test_backoff(base: float, cap: float, errors: int, jitter: float, expected: float) -> None:
    wait = backoff(_policy(base, max_backoff=cap), errors, jitter)
    assert wait.total_seconds() == pytest.approx(expected)


FAILURE = [
    # base, errors so far, failing since (ago), jitter, Retry-After → wait, errors, failing since
    (600, 0, None, 0.0, None, 600, 1, 0),
    (600, 1, 600, 0.0, None, 1200, 2, 600),  # the first error's time is kept
    (600, 4, 7 * HOUR, 0.0, None, 9600, 5, 7 * HOUR),
    (30, 0, None, 0.0, 120, 120, 1, 0),  # Retry-After: 120 beats a 30 s backoff
    (30, 2, 60, 0.2, 300, 300, 3, 60),
    (600, 0, None, 0.0, 60, 600, 1, 0),  # a shorter Retry-After does not hasten the backoff
    (600, 0, None, 0.0, 10**9, DAY_CAP, 1, 0),  # a silly Retry-After is capped at a day
    (600, 0, None, 0.0, 0, 600, 1, 0),
    (600, 0, None, 0.0, -30, 600, 1, 0),
]


@pytest.mark.parametrize(
    ("base", "errors", "failing_ago", "jitter", "retry_after", "wait", "count", "since_ago"),
    FAILURE,
)
def test_after_failure(
    base: float,
    errors: int,
    failing_ago: float | None,
    jitter: float,
    retry_after: float | None,
    wait: float,
    count: int,
    since_ago: float,
) -> None:
    state = _state(900, 12.0, HOUR, errors=errors, failing_ago=failing_ago)
    nxt = after_failure(_policy(base), state, NOW, jitter=jitter, retry_after=retry_after)
    assert (nxt.at - NOW).total_seconds() == pytest.approx(wait)
    assert nxt.state.error_count == count
    assert nxt.state.failing_since == NOW - _s(since_ago)
    # Errors say nothing about how often the feed publishes: the schedule's memory is kept.
    assert (nxt.state.interval, nxt.state.items_per_day) == (_s(900), 12.0)
    assert nxt.state.last_success_at == NOW - _s(HOUR)


@pytest.mark.parametrize("errors", range(1, 12))
@pytest.mark.parametrize("jitter", [-JITTER, -0.1, 0.0, 0.1, JITTER])
def test_backoff_stays_within_the_jitter_bounds(errors: int, jitter: float) -> None:
    policy = _policy(60, max_backoff=HOUR)
    nominal = min(60 * 2 ** (errors - 1), HOUR)
    wait = backoff(policy, errors, jitter).total_seconds()
    assert (1 - JITTER) * nominal - 1e-6 <= wait <= min((1 + JITTER) * nominal, HOUR) + 1e-6


def test_the_network_being_down_counts_nothing() -> None:
    state = _state(900, 12.0, HOUR, errors=2, failing_ago=HOUR)
    nxt = after_network_down(state, NOW)
    assert nxt == type(nxt)(NOW + NETWORK_RETRY, state)


# -- disabling -------------------------------------------------------------------------------------

DISABLE = [
    # HTTP status, failing since (ago), disable_after → disabled?, words in the reason
    (410, None, None, True, "410 Gone"),
    (410, 0, 7 * DAY, True, "410 Gone"),  # at once, whatever disable_after says
    (404, 8 * DAY, 7 * DAY, True, "failing without a break for 8d"),
    (500, 7 * DAY, 7 * DAY, True, "for 7d"),  # exactly the limit
    (None, 2 * HOUR, HOUR, True, "for 2h"),
    (None, 90, 60, True, "for 90s"),
    (None, 30 * HOUR, DAY, True, "for 30h"),
    (None, 3 * DAY + 6 * HOUR, 3 * DAY, True, "for 3d6h"),
    (404, 6 * DAY, 7 * DAY, False, ""),
    (503, 100 * DAY, None, False, ""),  # disable_after: off
    (None, None, 7 * DAY, False, ""),  # not failing
    (404, None, 0, False, ""),
    (200, 8 * DAY, 7 * DAY, True, "8d"),
]


@pytest.mark.parametrize(("status", "failing_ago", "after", "disabled", "words"), DISABLE)
def test_should_disable(
    status: int | None, failing_ago: float | None, after: float | None, disabled: bool, words: str
) -> None:
    since = None if failing_ago is None else NOW - _s(failing_ago)
    reason = should_disable(status, since, NOW, None if after is None else _s(after))
    assert (reason is not None) == disabled
    if reason is not None:
        assert words in reason


# -- a dead network --------------------------------------------------------------------------------


def _cycle(**counts: int) -> list[Outcome]:
    kinds: tuple[Outcome, ...] = ("ok", "network", "http", "feed", "internal")
    return [kind for kind in kinds for _ in range(counts.get(kind, 0))]


NETWORK = [
    ({}, False),
    ({"network": 4}, False),  # too few fetches to tell a dead host from a dead link
    ({"network": 5}, True),
    ({"network": 4, "ok": 1}, True),  # 80 %
    ({"network": 3, "ok": 2}, False),
    ({"network": 8, "http": 2}, True),
    ({"network": 7, "ok": 3}, False),
    ({"network": 40, "ok": 10}, True),
    ({"network": 39, "ok": 11}, False),
    ({"http": 5}, False),  # an HTTP status is an answer: the network works
    ({"feed": 10}, False),
    ({"internal": 10}, False),
    ({"network": 1, "ok": 20}, False),
    ({"network": 200}, True),
]


@pytest.mark.parametrize(("counts", "down"), NETWORK)
def test_network_down(counts: dict[str, int], down: bool) -> None:
    outcomes = _cycle(**counts)
    assert network_down(outcomes) is down
    assert network_down(iter(outcomes)) is down  # any iterable, read once


# -- HTTP freshness (RFC 9111) ---------------------------------------------------------------------

DATE = "Wed, 04 Feb 2026 12:00:00 GMT"
HOUR_LATER = "Wed, 04 Feb 2026 13:00:00 GMT"

FRESHNESS: list[tuple[dict[str, str], float | None]] = [
    ({}, None),
    ({"cache-control": "max-age=3600"}, 3600),
    ({"cache-control": "public, max-age=3600"}, 3600),
    ({"cache-control": "max-age=3600, must-revalidate"}, 3600),
    ({"cache-control": "MAX-AGE=3600"}, 3600),  # directive names are case-insensitive
    ({"cache-control": 'max-age="3600"'}, 3600),  # the quoted form is accepted (§5.2)
    ({"cache-control": "max-age = 3600"}, 3600),
    ({"cache-control": "private,max-age=900"}, 900),
    ({"cache-control": "max-age=3600", "age": "600"}, 3000),  # §4.2.3: minus its age
    ({"cache-control": "max-age=3600", "age": "3600"}, None),  # already stale
    ({"cache-control": "max-age=3600", "age": "4000"}, None),
    ({"cache-control": "max-age=3600", "age": "soon"}, 3600),  # an invalid Age is ignored
    ({"cache-control": "max-age=60, max-age=3600"}, 60),  # §4.2.1: the first one counts
    ({"cache-control": "max-age=0"}, None),
    ({"cache-control": "max-age=-5"}, None),  # invalid: stale
    ({"cache-control": "max-age=abc"}, None),
    ({"cache-control": "max-age="}, None),
    ({"cache-control": "max-age=99999999999999"}, 2**31),  # §1.2.2
    ({"cache-control": "no-cache, max-age=3600"}, None),  # revalidate every time
    ({"cache-control": "max-age=3600, no-cache"}, None),
    ({"cache-control": 'no-cache="Set-Cookie", max-age=3600'}, 3600),  # only that field
    ({"cache-control": 'no-cache="a, b", max-age=3600'}, 3600),  # a comma in quotes
    ({"cache-control": "no-store"}, None),
    ({"cache-control": "no-store, max-age=3600"}, None),
    ({"cache-control": "s-maxage=3600"}, None),  # for shared caches; we are a private one
    ({"cache-control": "public"}, None),  # heuristic freshness is no server hint (§4.2.2)
    ({"expires": HOUR_LATER, "date": DATE}, 3600),  # §4.2.1: Expires minus Date
    ({"expires": HOUR_LATER, "date": DATE, "age": "600"}, 3000),
    ({"expires": HOUR_LATER}, 3600),  # no Date: minus the time it was received
    ({"expires": HOUR_LATER, "date": "yesterday"}, 3600),  # an invalid Date: likewise
    ({"expires": "0", "date": DATE}, None),  # §5.3: invalid means already expired
    ({"expires": "Tue, 03 Feb 2026 12:00:00 GMT", "date": DATE}, None),
    ({"expires": DATE, "date": DATE}, None),
    ({"expires": HOUR_LATER, "date": "Wed, 04 Feb 2026 11:00:00 GMT"}, 7200),  # server's clock
    ({"expires": HOUR_LATER, "cache-control": "max-age=60"}, 60),  # max-age wins (§5.3)
    ({"expires": HOUR_LATER, "cache-control": "no-cache"}, None),
    ({"expires": "Wed, 04 Feb 2026 13:00:00"}, None),  # no zone: not an HTTP-date
]


@pytest.mark.parametrize(("headers", "expected"), FRESHNESS)
def test_freshness(headers: dict[str, str], expected: float | None) -> None:
    result = freshness(headers, NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


DIRECTIVES = [
    ("", {}),
    ("max-age=60", {"max-age": "60"}),
    ("Public, Max-Age=60", {"public": None, "max-age": "60"}),
    ('no-cache="a, b", private', {"no-cache": "a, b", "private": None}),
    ('x="say \\"hi\\"", y', {"x": 'say "hi"', "y": None}),
    ("max-age=1, max-age=2", {"max-age": "1"}),
    (" , max-age=5 ,, ", {"max-age": "5"}),
]


@pytest.mark.parametrize(("value", "expected"), DIRECTIVES)
def test_cache_directives(value: str, expected: dict[str, str | None]) -> None:
    assert cache_directives(value) == expected
