"""Pacing for Telegram's rate limits: when may the next message to a chat go?

Contract: a `Pacer` is pure bookkeeping (no clock, no sleeping: the caller passes `now`, in
seconds of any monotonic clock, and waits itself). `reserve(chat, now)` returns the delay after
`now` at which one message (a sendMessage or an editMessageText: the Bot API counts both) may go
to `chat`, and records that slot, so that concurrent callers get distinct slots. Slots honour
every window at once, as sliding windows: in no stretch of a window's length do more than its
count of slots fall, for any arrival pattern (bursts included). A later caller may get an earlier
slot than an earlier one (another chat's), so one slow chat does not hold up the others.

The limits are the Bot API FAQ's ("My bot is hitting limits, how do I avoid this?"): no more
than one message per second in a chat, 20 per minute in a group, about 30 per second overall.
The overall limit is paced as one message every 1/30 s rather than 30 at once: a burst reaches
the server in a heap, its requests delayed unevenly, and the next second's first could land
inside the window of the heap's last; evenly spaced, the 31st is a whole window after the 1st.
Telegram enforces the limits on its own clock, after the network's delay, so every window is
stretched by `margin` (a fraction: with 0.1, one message per 1.1 s in a chat, about 27 per
second overall, 20 per 66 s in a group), so that jitter does not trip an exact enforcement.

`book(chat, now)` is `reserve` as an absolute time. `settle(chat, booked, at)` moves a booked
slot, in its chat's windows, to the time its request was answered: the message reached Telegram
no later than that. A caller that books a chat's next message only after settling its last one
(the notifier's gate does) so keeps each chat's windows whatever the network's delay; the
overall spacing, shared by messages in flight at once, relies on the margin (any 31 slots are
1.1 s apart: a message may reach Telegram up to 0.1 s later than the one 30 before it, relative
to its slot, before an exact server would count 31 in a second).

`penalise(until, chat=None)` holds every message (or one chat's) back until `until`, for a 429's
retry_after ("Too Many Requests: retry after N").

Groups and channels are told by their id: a negative number or an `@channelname`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_MARGIN",
    "TELEGRAM_LIMITS",
    "Limits",
    "Pacer",
    "Window",
    "chat_key",
    "is_group",
]

#: How much longer than Telegram's each window is kept; see the module docstring.
DEFAULT_MARGIN = 0.1
# Float sums (a slot is an earlier one plus a span, many times over) may land a hair short of
# a window's end; far below any clock's resolution, and far inside the margin.
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Window:
    """At most `count` messages in any `seconds`."""

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.seconds <= 0:
            raise ValueError(f"a window needs a positive count and length, not {self}")


@dataclass(frozen=True, slots=True)
class Limits:
    overall: tuple[Window, ...]  # per bot, every chat together
    chat: Window  # per chat
    group: Window  # per group or channel chat, on top of `chat`

    def scaled(self, factor: float) -> Limits:
        """The same counts over windows `factor` times as long (tests run faster limits)."""

        def scale(w: Window) -> Window:
            return Window(w.count, w.seconds * factor)

        return Limits(tuple(map(scale, self.overall)), scale(self.chat), scale(self.group))


TELEGRAM_LIMITS = Limits(
    # 30 per second, evenly spaced (which keeps any 30 + 1 at least a second apart).
    overall=(Window(1, 1 / 30),),
    chat=Window(1, 1.0),
    group=Window(20, 60.0),
)


def is_group(chat: int | str) -> bool:
    """A group, supergroup or channel: a negative id or an `@channelname`."""
    key = chat_key(chat)
    return isinstance(key, str) or key < 0


def chat_key(chat: int | str) -> int | str:
    """One spelling per chat: "-100123" is the chat -100123, "@News" is "@news"."""
    # monitor.yaml may spell a numeric chat id as a string.
    if isinstance(chat, str):
        text = chat.strip()
        digits = text[1:] if text.startswith("-") else text
        return int(text) if digits.isdigit() else text.lower()
    return chat


@dataclass(slots=True)
class _Slots:
    """The slots taken under one window, sorted, with the window stretched by the margin."""

    count: int
    span: float
    times: list[float] = field(default_factory=list)

    def prune(self, now: float) -> None:
        # A slot a whole span before `now` shares no window with any slot from `now` on.
        drop = bisect.bisect_right(self.times, now - self.span)
        if drop:
            del self.times[:drop]

    def fits(self, t: float) -> bool:
        """Whether a slot at `t` keeps every `count + 1` consecutive slots at least a span apart
        (that is: no window shorter than the span holds more than `count` slots)."""
        times, n = self.times, self.count
        k = bisect.bisect_right(times, t)  # slots before t (ties count as before)
        # Each run of n+1 consecutive slots with t in it: j slots before t, n - j after it.
        for j in range(max(0, n - (len(times) - k)), min(n, k) + 1):
            first = times[k - j] if j else t
            last = times[k - j + n - 1] if j < n else t
            if last - first < self.span - _EPSILON:
                return False
        return True

    def earliest(self, t: float) -> float:
        """The earliest time from `t` on at which a slot fits. Fitting only starts again where an
        older slot leaves a window, so the candidates are `t` and each slot's time + span."""
        if self.fits(t):
            return t
        start = bisect.bisect_right(self.times, t - self.span)
        for moment in self.times[start:]:
            candidate = moment + self.span
            if candidate > t and self.fits(candidate):
                return candidate
        return max(t, self.times[-1] + self.span)  # unreachable: the last candidate fits

    def take(self, t: float) -> None:
        bisect.insort_right(self.times, t)

    def move(self, old: float, new: float) -> None:
        i = bisect.bisect_left(self.times, old)
        if i < len(self.times) and self.times[i] == old:  # else pruned already: nothing to do
            del self.times[i]
            self.take(new)


class Pacer:
    """Sliding-window bookkeeping for one bot; see the module docstring."""

    def __init__(self, limits: Limits = TELEGRAM_LIMITS, margin: float = DEFAULT_MARGIN) -> None:
        if margin < 0:
            raise ValueError("margin must not be negative")
        self.limits = limits
        self.margin = margin
        self._overall = [self._slots(w) for w in limits.overall]
        self._chats: dict[int | str, tuple[_Slots, _Slots | None]] = {}
        self._hold = float("-inf")
        self._chat_holds: dict[int | str, float] = {}

    def _slots(self, window: Window) -> _Slots:
        return _Slots(window.count, window.seconds * (1 + self.margin))

    def reserve(self, chat: int | str, now: float) -> float:
        """Seconds after `now` at which one message to `chat` may go; the slot is taken."""
        return self.book(chat, now) - now

    def book(self, chat: int | str, now: float) -> float:
        """The time (from `now` on) at which one message to `chat` may go; the slot is taken."""
        key = chat_key(chat)
        self._prune(now)
        t = max(now, self._hold, self._chat_holds.get(key, now))
        every = self._windows(key, create=True)
        while True:  # each round moves t to a later candidate, of which there are finitely many
            moved = max(w.earliest(t) for w in every)
            if moved == t:
                break
            t = moved
        for w in every:
            w.take(t)
        return t

    def settle(self, chat: int | str, booked: float, at: float) -> None:
        """The message booked at `booked` was answered at `at`: count it from then on in its
        chat's windows. (Not overall: other chats' slots are booked ahead, and moving a slot
        among them would only leave gaps too short to use.)"""
        if at > booked:
            for w in self._windows(chat_key(chat), create=False)[len(self._overall) :]:
                w.move(booked, at)

    def _windows(self, key: int | str, create: bool) -> list[_Slots]:
        windows = self._chats.get(key)
        if windows is None:
            if not create:
                return list(self._overall)
            group = self._slots(self.limits.group) if is_group(key) else None
            windows = self._chats[key] = (self._slots(self.limits.chat), group)
        return [*self._overall, *(w for w in windows if w is not None)]

    def penalise(self, until: float, chat: int | str | None = None) -> None:
        """No message (to `chat`, or to any chat when None) goes before `until`."""
        if chat is None:
            self._hold = max(self._hold, until)
        else:
            key = chat_key(chat)
            self._chat_holds[key] = max(self._chat_holds.get(key, until), until)

    def _prune(self, now: float) -> None:
        for w in self._overall:
            w.prune(now)
        for key in list(self._chats):
            chat, group = self._chats[key]
            chat.prune(now)
            if group is not None:
                group.prune(now)
            if not chat.times and (group is None or not group.times):
                del self._chats[key]
        for key in [k for k, until in self._chat_holds.items() if until <= now]:
            del self._chat_holds[key]
