"""Politeness towards publishers: how many feeds are fetched at once, in all and per host,
and the least time between two requests to one host.

Contract: `Politeness(concurrency, per_host, spacing)`; `async with polite.slot(url):` around
one poll, or `await polite.run(items, url_of, work)` for a whole cycle: `work(item)` for every
item, within the same limits, with results (or the Exception each raised) in the order of
`items`. Local file feeds take only a slot in all. `host_of(url)` is the host name an
http(s) URL names, lower-cased (None for a file).

`run` keeps at most `concurrency` polls alive as tasks, not one task per feed waiting for
its slot: ten thousand waiting tasks weigh about 25 MB. Items wait in a queue per host; a
host with a free slot gives its next item, hosts taking turns, so a publisher with many
feeds and one slot holds no slot that other hosts could use.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["Politeness", "host_of"]


class Politeness:
    """Limits on a cycle's polls: in all, per host, and the spacing of starts to one host.

    A poll takes its host's slot first, then a slot in all, so polls waiting for a busy host
    hold none of the slots other hosts could use; the spacing is waited for last, once the
    poll is sure to start. A slot covers the whole poll (parsing and storing take milliseconds
    next to the fetch). Hosts are URL host names: 127.0.0.1 and localhost are two hosts.
    `clock` (seconds, monotonic) and `sleep` default to the event loop's.
    """

    def __init__(
        self,
        concurrency: int,
        per_host: int,
        spacing: float,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._all = asyncio.Semaphore(concurrency)
        self._per_host = per_host
        self._spacing = spacing
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}
        self._clock = clock
        self._sleep = sleep

    @asynccontextmanager
    async def slot(self, url: str) -> AsyncIterator[None]:
        host = host_of(url)
        if host is None:
            async with self._all:
                yield
            return
        async with self._gate(host), self._all:
            await self._spaced(host)
            yield

    def _gate(self, host: str) -> asyncio.Semaphore:
        gate = self._hosts.get(host)
        if gate is None:
            gate = self._hosts[host] = asyncio.Semaphore(self._per_host)
        return gate

    async def _spaced(self, host: str) -> None:
        """Wait until `spacing` after the last start to `host`, and count this start."""
        clock = self._clock or asyncio.get_running_loop().time
        now = clock()
        start = max(now, self._next_start.get(host, now))
        self._next_start[host] = start + self._spacing
        if start > now:
            await self._sleep(start - now)

    async def run(
        self, items: Sequence[T], url_of: Callable[[T], str], work: Callable[[T], Awaitable[R]]
    ) -> list[R | Exception]:
        """`work(item)` for every item within the limits; what each returned or raised (an
        Exception; anything else, a cancellation, cancels the others and goes up)."""
        results: dict[int, R | Exception] = {}
        queues: dict[str | None, deque[int]] = {}
        for n, item in enumerate(items):
            queues.setdefault(host_of(url_of(item)), deque()).append(n)
        ready = deque(queues)  # hosts with queued items, in turn
        blocked: list[str] = []  # hosts with queued items and no free slot
        running: set[asyncio.Task[None]] = set()  # for cancelling; `live` counts
        live = 0
        finished = asyncio.Event()

        async def one(n: int, host: str | None, gate: asyncio.Semaphore | None) -> None:
            nonlocal live
            try:
                if host is not None:
                    await self._spaced(host)
                results[n] = await work(items[n])
            except Exception as exc:  # the caller decides what a failure means
                results[n] = exc
            finally:
                self._all.release()
                if gate is not None:
                    gate.release()
                live -= 1
                finished.set()

        try:
            while ready or blocked or live:
                while ready and not self._all.locked():
                    host = ready.popleft()
                    gate = None
                    if host is not None:
                        gate = self._gate(host)
                        if gate.locked():
                            blocked.append(host)
                            continue
                        await gate.acquire()  # free: returns at once, without suspending
                    await self._all.acquire()  # likewise
                    queue = queues[host]
                    task = asyncio.create_task(one(queue.popleft(), host, gate))
                    live += 1
                    running.add(task)
                    task.add_done_callback(running.discard)
                    if queue:
                        ready.append(host)
                if live:
                    await finished.wait()
                    finished.clear()
                elif blocked:
                    # Slots held by a `slot()` user, not by this run: wait for one to free.
                    async with self._gate(blocked[0]):
                        pass
                elif ready:
                    async with self._all:  # likewise, a slot in all
                        pass
                ready.extendleft(reversed(blocked))  # their slots may be free now
                blocked.clear()
        except BaseException:
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            raise
        return [results[n] for n in range(len(items))]


@functools.lru_cache(maxsize=16384)
def host_of(url: str) -> str | None:
    """The host an http(s) URL names (lower-cased); None for a local file."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    return parts.hostname or None
