"""Pacing: slots honour every Telegram window for any arrival pattern, and are not later than
they need be."""

from __future__ import annotations

import bisect
import random
from collections import defaultdict

import pytest

from monitor.core.pace import (
    DEFAULT_MARGIN,
    TELEGRAM_LIMITS,
    Limits,
    Pacer,
    Window,
    is_group,
)

EXACT = 0.0

# (name, margin, arrivals as (chat, now), the delays expected)
TABLE: list[tuple[str, float, list[tuple[int | str, float]], list[float]]] = [
    ("one", EXACT, [(1, 0.0)], [0.0]),
    ("two-same-chat", EXACT, [(1, 0.0), (1, 0.0)], [0.0, 1.0]),
    ("three-same-chat", EXACT, [(1, 0.0)] * 3, [0.0, 1.0, 2.0]),
    ("two-chats", EXACT, [(1, 0.0), (2, 0.0)], [0.0, 1 / 30]),
    ("spaced-enough", EXACT, [(1, 0.0), (1, 1.0), (1, 2.5)], [0.0, 0.0, 0.0]),
    ("spaced-enough-overall", EXACT, [(1, 0.0), (2, 1 / 30), (3, 0.05)], [0.0, 0.0, 1 / 60]),
    ("spaced-too-little", EXACT, [(1, 0.0), (1, 0.4)], [0.0, 0.6]),
    ("margin-chat", DEFAULT_MARGIN, [(1, 0.0)] * 3, [0.0, 1.1, 2.2]),
    ("string-chat-id-is-the-number", EXACT, [(1234, 0.0), ("1234", 0.0)], [0.0, 1.0]),
    ("channel-name-case", EXACT, [("@News", 0.0), ("@news", 0.0)], [0.0, 1.0]),
    # Overall: 30 a second, one every 1/30 s, so a burst leaves as a stream.
    ("overall-stream", EXACT, [(c, 0.0) for c in range(31)], [c / 30 for c in range(31)]),
    (
        "overall-margin",
        DEFAULT_MARGIN,
        [(c, 0.0) for c in range(61)],
        [c * 1.1 / 30 for c in range(61)],
    ),
    ("overall-already-spaced", EXACT, [(c, c / 30) for c in range(31)], [0.0] * 31),
    (
        "overall-stream-goes-on",
        EXACT,
        [(c, 0.0) for c in range(20)] + [(c, 0.5) for c in range(20, 41)],
        [c / 30 for c in range(20)] + [(c / 30) - 0.5 for c in range(20, 41)],
    ),
    ("group-20-per-minute", EXACT, [(-5, 0.0)] * 21, [float(i) for i in range(20)] + [60.0]),
    (
        "group-margin",
        DEFAULT_MARGIN,
        [(-5, 0.0)] * 21,
        [round(1.1 * i, 6) for i in range(20)] + [66.0],
    ),
    ("channel-is-a-group", EXACT, [("@chan", 0.0)] * 21, [float(i) for i in range(20)] + [60.0]),
    (
        "private-chat-has-no-minute-limit",
        EXACT,
        [(7, 0.0)] * 21,
        [float(i) for i in range(21)],
    ),
    (
        "a-slow-chat-does-not-hold-up-others",
        EXACT,
        [(1, 0.0), (1, 0.0), (1, 0.0), (2, 0.0), (3, 0.5)],
        [0.0, 1.0, 2.0, 1 / 30, 0.0],
    ),
    (
        "a-later-caller-may-get-an-earlier-slot",
        EXACT,
        [(1, 0.0)] * 5 + [(c, 0.0) for c in range(2, 32)],
        # Chat 1 has 0, 1, 2, 3 and 4; the others fill the gaps of the stream between them.
        [0.0, 1.0, 2.0, 3.0, 4.0] + [c / 30 for c in range(1, 30)] + [31 / 30],
    ),
]


@pytest.mark.parametrize(
    ("margin", "arrivals", "expected"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_delays(
    margin: float, arrivals: list[tuple[int | str, float]], expected: list[float]
) -> None:
    pacer = Pacer(margin=margin)
    delays = [pacer.reserve(chat, now) for chat, now in arrivals]
    assert delays == pytest.approx(expected)


def test_a_flood_hold_delays_every_chat() -> None:
    pacer = Pacer(margin=EXACT)
    pacer.penalise(5.0)
    assert pacer.reserve(1, 1.0) == pytest.approx(4.0)
    assert pacer.reserve(2, 2.0) == pytest.approx(3.0 + 1 / 30)  # after the first, evenly
    assert pacer.reserve(3, 6.0) == 0.0


def test_a_chat_hold_delays_that_chat_only() -> None:
    pacer = Pacer(margin=EXACT)
    pacer.penalise(10.0, chat=-100)
    assert pacer.reserve("-100", 0.0) == pytest.approx(10.0)
    assert pacer.reserve(5, 0.0) == 0.0
    pacer.penalise(3.0, chat=-100)  # a shorter hold does not shorten the longer one
    assert pacer.reserve(-100, 11.0) == pytest.approx(0.0)
    assert pacer.reserve(-100, 11.0) == pytest.approx(1.0)


def test_a_hold_and_the_windows_add_up() -> None:
    pacer = Pacer(margin=EXACT)
    assert pacer.reserve(1, 0.0) == 0.0
    pacer.penalise(0.5)
    assert pacer.reserve(1, 0.0) == pytest.approx(1.0)  # the chat window is the later
    pacer.penalise(3.0)
    assert pacer.reserve(1, 0.0) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("chat", "group"),
    [
        (1, False),
        (123456789, False),
        (-1, True),
        (-1001234567890, True),
        ("@channel", True),
        ("-100123", True),
        ("123", False),
        (" 42 ", False),
    ],
)
def test_groups_are_told_by_their_id(chat: int | str, group: bool) -> None:
    assert is_group(chat) is group


def test_bad_windows_and_margins_are_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        Window(0, 1.0)
    with pytest.raises(ValueError, match="window"):
        Window(1, 0.0)
    with pytest.raises(ValueError, match="margin"):
        Pacer(margin=-0.1)


def test_limits_scale() -> None:
    fast = TELEGRAM_LIMITS.scaled(0.1)
    assert fast == Limits((Window(1, 0.1 / 30),), Window(1, 0.1), Window(20, 6.0))


def test_a_settled_slot_counts_from_its_answer() -> None:
    pacer = Pacer(margin=EXACT)
    booked = pacer.book(1, 0.0)
    assert booked == 0.0
    pacer.settle(1, booked, 0.4)  # answered 0.4 s later: it reached Telegram by then
    assert pacer.book(1, 0.5) == pytest.approx(1.4)
    pacer.settle(1, 99.0, 100.0)  # a slot it never booked (or long pruned): nothing happens
    pacer.settle(2, 0.0, 0.0)
    pacer.settle(3, 0.0, 5.0)  # a chat it has no slots for
    assert pacer.book(1, 0.5) == pytest.approx(2.4)


def test_settling_moves_only_the_chat_windows() -> None:
    pacer = Pacer(margin=EXACT)
    booked = pacer.book(-5, 0.0)
    pacer.settle(-5, booked, 0.5)
    assert pacer.book(7, 0.0) == pytest.approx(1 / 30)  # overall: still counted at 0.0
    assert pacer.book(-5, 0.0) == pytest.approx(1.5)  # its chat: counted from 0.5


#: What the Bot API and the fake enforce overall: 30 within any second.
SERVER_OVERALL = Window(30, 1.0)


# --- property: for any arrival pattern, no window is ever exceeded ----------------------------


def violations(slots: list[float], window: Window, slack: float) -> list[float]:
    """Where more than window.count slots fall within window.seconds (exclusive), as a server
    enforcing the exact limit counts them, with slots as much as `slack` later or earlier."""
    times = sorted(slots)
    return [
        times[i]
        for i in range(len(times) - window.count)
        if times[i + window.count] - times[i] < window.seconds - slack - 1e-9
    ]


def random_arrivals(seed: int) -> list[tuple[int | str, float]]:
    rng = random.Random(seed)
    chats: list[int | str] = [rng.choice([1, 2, 3, 77, -5, -100123, "@chan"])]
    chats += rng.sample([10, 11, 12, 13, -6, -7, "@other", 999], k=rng.randint(0, 8))
    now = 0.0
    out = []
    for _ in range(rng.randint(1, 300)):
        # Bursts (many at one instant), trickles and pauses, as alerts come.
        now += rng.choice([0.0, 0.0, 0.0, 0.01, 0.05, 0.3, 1.0, 5.0, 61.0])
        out.append((rng.choice(chats), now))
    return out


@pytest.mark.parametrize("seed", range(300))
@pytest.mark.parametrize("margin", [EXACT, DEFAULT_MARGIN])
def test_no_window_is_ever_exceeded(seed: int, margin: float) -> None:
    pacer = Pacer(margin=margin)
    rng = random.Random(seed)
    slots: list[float] = []
    by_chat: dict[int | str, list[float]] = defaultdict(list)
    holds: list[tuple[float, float]] = []
    for chat, now in random_arrivals(seed):
        if rng.random() < 0.02:
            holds.append((now, now + rng.choice([1.0, 3.0, 30.0])))
            pacer.penalise(holds[-1][1])
        delay = pacer.reserve(chat, now)
        assert delay >= 0
        slot = now + delay
        # A slot never falls inside a hold that was already known when it was reserved.
        assert all(not (start <= now and slot < until - 1e-9) for start, until in holds)
        slots.append(slot)
        by_chat[str(chat).lower()].append(slot)
    # Off by up to the margin (jitter between our clock and the server's), every slot still
    # passes a server that enforces the exact limits.
    for window in TELEGRAM_LIMITS.overall:
        assert violations(slots, window, 0.0) == []
    assert violations(slots, SERVER_OVERALL, SERVER_OVERALL.seconds * margin) == []
    for chat, times in by_chat.items():
        assert violations(times, TELEGRAM_LIMITS.chat, TELEGRAM_LIMITS.chat.seconds * margin) == []
        if is_group(chat):
            slack = TELEGRAM_LIMITS.group.seconds * margin
            assert violations(times, TELEGRAM_LIMITS.group, slack) == []


@pytest.mark.parametrize("seed", range(100))
def test_slots_are_as_early_as_the_windows_allow(seed: int) -> None:
    """Every slot is the earliest time from its arrival on at which one more message breaks no
    window, given the slots taken before it (checked by brute force on a fine grid)."""
    pacer = Pacer(margin=EXACT)
    taken: dict[str, list[float]] = defaultdict(list)
    for chat, now in random_arrivals(seed)[:60]:
        slot = now + pacer.reserve(chat, now)
        key = str(chat).lower()
        scopes = [("*", w) for w in TELEGRAM_LIMITS.overall] + [(key, TELEGRAM_LIMITS.chat)]
        if is_group(chat):
            scopes.append((key + "/group", TELEGRAM_LIMITS.group))
        # Any earlier time on a 10 ms grid would have broken some window.
        t = now
        while t < slot - 1e-6:
            assert any(violations(insorted(taken[s], t), w, 0.0) for s, w in scopes), (t, slot)
            t += 0.01
        for scope in {scope for scope, _ in scopes}:
            bisect.insort(taken[scope], slot)


def insorted(times: list[float], t: float) -> list[float]:
    out = list(times)
    bisect.insort(out, t)
    return out
