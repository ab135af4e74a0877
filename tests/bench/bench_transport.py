"""HTTP transport speed through `fetch`: httpx's own pool, aiohttp's under httpx, and make_client.

    python -m tests.bench.bench_transport [--requests N] [--concurrency C] [--rounds R]

Many concurrent small GETs on loopback against the bench's feed server (a separate process,
tests/bench/serve.py): a 120-byte body (`/tiny`), and a 304 answer to a conditional GET of a
feed (`/f/<i>` with its ETag), the warm cycle's exchange. Each is measured through
`monitor.edges.fetch.fetch` (streamed, as the daemon reads) with the same headers and timeout;
the clients differ in the transport and in the path a request takes:

- `httpx (httpcore pool)`: httpx's default transport, through `AsyncClient.send`;
- `httpx-aiohttp`: that package's transport, through `AsyncClient.send` (only when it is
  installed: the project no longer depends on it);
- `AiohttpTransport, send`: monitor.edges.transport's, through `AsyncClient.send`;
- `make_client`: the same transport as `make_client` builds it, where `fetch` goes straight to
  it (`transport.sender`), past httpx's Request, Response, auth and redirect machinery.

Rounds alternate between the clients and the best round counts. The machine may be shared: the
rate per CPU-second of the client process is printed beside the wall-clock rate, and is the
steadier of the two. Prints a table and writes JSON (--json PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from monitor.edges.fetch import ACCEPT, USER_AGENT, fetch, make_client
from monitor.edges.transport import AiohttpTransport
from tests.bench.procs import FeedServerProcess


def _headers() -> dict[str, str]:
    return {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}


def _limits(max_connections: int) -> httpx.Limits:
    return httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)


def httpx_default(max_connections: int) -> httpx.AsyncClient:
    limits = _limits(max_connections)
    return httpx.AsyncClient(headers=_headers(), limits=limits, timeout=30.0)


def httpx_aiohttp(max_connections: int) -> httpx.AsyncClient:
    from httpx_aiohttp import AiohttpTransport as Theirs  # optional: not a dependency

    transport = Theirs(limits=_limits(max_connections))
    return httpx.AsyncClient(headers=_headers(), transport=transport, timeout=30.0)


def aiohttp_send(max_connections: int) -> httpx.AsyncClient:
    """make_client's transport in a client `fetch` does not bypass: every request is `send`'s."""
    transport = AiohttpTransport(limits=_limits(max_connections))
    return httpx.AsyncClient(headers=_headers(), transport=transport, timeout=30.0)


def from_make_client(max_connections: int) -> httpx.AsyncClient:
    return make_client(timeout=30.0, max_connections=max_connections)


CLIENTS: dict[str, Callable[[int], httpx.AsyncClient]] = {
    "httpx (httpcore pool)": httpx_default,
    "httpx-aiohttp": httpx_aiohttp,
    "AiohttpTransport, send": aiohttp_send,
    "make_client": from_make_client,
}
if importlib.util.find_spec("httpx_aiohttp") is None:
    del CLIENTS["httpx-aiohttp"]


async def _round(
    make: Callable[[int], httpx.AsyncClient],
    urls: list[str],
    etag: str | None,
    concurrency: int,
) -> tuple[float, float]:
    """(requests per second of wall time, requests per second of this process's CPU time)."""
    async with make(concurrency) as client:
        # Warm the pool first: connection set-up is not what is measured.
        await asyncio.gather(*(fetch(client, urls[0], etag=etag) for _ in range(concurrency)))
        queue = iter(urls)

        async def worker() -> None:
            for url in queue:
                await fetch(client, url, etag=etag)

        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        return len(urls) / wall, len(urls) / max(cpu, 1e-9)


async def measure(
    server: FeedServerProcess, requests: int, concurrency: int, rounds: int
) -> list[dict[str, Any]]:
    tiny = [f"{server.root}/tiny/{i}" for i in range(requests)]
    first = await _first_etag(server)
    not_modified = [server.feed_url(0)] * requests
    rows = []
    for label, urls, etag in (("GET 120 B", tiny, None), ("GET 304", not_modified, first)):
        best: dict[str, tuple[float, float]] = {}
        for _ in range(rounds):
            for name, make in CLIENTS.items():
                wall, cpu = await _round(make, urls, etag, concurrency)
                old = best.get(name, (0.0, 0.0))
                best[name] = (max(old[0], wall), max(old[1], cpu))
        for name, (wall, cpu) in best.items():
            rows.append({"exchange": label, "client": name, "concurrency": concurrency,
                         "requests": requests, "requests_per_s": round(wall),
                         "requests_per_cpu_s": round(cpu)})  # fmt: skip
    return rows


async def _first_etag(server: FeedServerProcess) -> str:
    async with httpx_default(1) as client:
        result = await fetch(client, server.feed_url(0))
    assert result.etag is not None
    return result.etag


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'exchange':<10} {'client':<26} {'conc':>5} {'requests/s':>11} {'per CPU s':>10}")
    for r in rows:
        print(f"{r['exchange']:<10} {r['client']:<26} {r['concurrency']:>5} "
              f"{r['requests_per_s']:>11} {r['requests_per_cpu_s']:>10}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", default="32,128")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with FeedServerProcess(feeds=1, entries=20, seed=1) as server:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            rows += asyncio.run(measure(server, args.requests, concurrency, args.rounds))
    print_rows(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
