"""Pacing one Telegram bot's calls within the Bot API's limits, across all its chats.

Contract: `TelegramGate` wraps the pure `monitor.core.pace.Pacer` with a clock (monotonic by
default) and `asyncio.sleep`: `async with gate.slot(chat):` around every sendMessage or
editMessageText waits for the next slot that keeps every window (about 30 messages/s per bot,
1/s per chat, 20/min per group or channel, with a margin), and `hold(seconds, chat=None)`
stops calls for a 429's retry_after. `gate_for(bot)` is the gate shared by notifiers given the
same Bot and no gate; the composition root keeps one per token instead, so pacing survives
config reloads (which build new Bots).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable

import telegram

from monitor.core.pace import Pacer, chat_key

__all__ = ["TelegramGate", "gate_for"]


class TelegramGate:
    """Paces one bot's calls: a `Pacer` on the monotonic clock, waited out with asyncio.sleep.

    Share one per bot token among every notifier using it (they share the bot's limits); the
    Pacer is plain data, so a gate outlives config reloads. Calls to one chat pass one at a
    time, each booked only once the one before was answered (`Pacer.settle`): however long the
    network takes, Telegram never sees two closer than the chat's window.
    """

    def __init__(
        self, pacer: Pacer | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.pacer = pacer if pacer is not None else Pacer()
        self._clock = clock
        # Per chat, while in use only (so no lock outlives the event loop it was used on).
        self._locks: dict[int | str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def slot(self, chat: int | str) -> AsyncIterator[None]:
        """Wait for the next slot for a message (or an edit) to `chat`; send inside."""
        key = chat_key(chat)
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                now = self._clock()
                booked = self.pacer.book(key, now)
                if booked > now:
                    await asyncio.sleep(booked - now)
                try:
                    yield
                finally:
                    self.pacer.settle(key, booked, self._clock())
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[key]

    def hold(self, seconds: float, chat: int | str | None = None) -> None:
        """No call (to `chat`, or at all) for `seconds` from now: a 429's retry_after."""
        self.pacer.penalise(self._clock() + seconds, chat)


# By id: a Bot's hash changes once initialize() has fetched its user. Dropped with the Bot.
_GATES: dict[int, TelegramGate] = {}


def gate_for(bot: telegram.Bot) -> TelegramGate:
    """The gate shared by every notifier that was given this Bot and no gate of its own."""
    gate = _GATES.get(id(bot))
    if gate is None:
        gate = _GATES[id(bot)] = TelegramGate()
        weakref.finalize(bot, _GATES.pop, id(bot), None)
    return gate
