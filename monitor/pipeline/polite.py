"""Politeness towards publishers: how many feeds are fetched at once, in all and per host,
and the least time between two requests to one host.

Contract: `Politeness(concurrency, per_host, spacing)`; `async with polite.slot(url):` around
one poll. Local file feeds take only a slot in all. `host_of(url)` is the host name an
http(s) URL names, lower-cased (None for a file).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

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
        gate = self._hosts.setdefault(host, asyncio.Semaphore(self._per_host))
        async with gate, self._all:
            clock = self._clock or asyncio.get_running_loop().time
            now = clock()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + self._spacing
            if start > now:
                await self._sleep(start - now)
            yield


@functools.lru_cache(maxsize=16384)
def host_of(url: str) -> str | None:
    """The host an http(s) URL names (lower-cased); None for a local file."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    return parts.hostname or None
