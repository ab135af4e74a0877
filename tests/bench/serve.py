"""The bench's feed server: a separate process serving the corpus over HTTP/1.1 on 127.0.0.1.

    python -m tests.bench.serve --feeds F --entries E --seed S

Generates the corpus (tests/bench/corpus.py) first, then listens on a free port of 127.0.0.1
and prints `READY <port>` on stdout. Routes:

- `GET /f/<i>`: feed i, gzip-encoded when the client accepts it, with a strong ETag;
  `If-None-Match` with that ETag gets `304 Not Modified`. After the command `validators off`
  the same route ignores validators and sends the same 200 body with no ETag and no
  Last-Modified, as many servers do (`validators on` restores them);
- `GET /tiny/<anything>`: a 120-byte body, for measuring the HTTP client alone;
- anything else: 404.

Connections are kept alive (HTTP/1.1); the server is a plain asyncio Protocol writing
prebuilt bytes, so that on loopback the client, not the server, is what gets measured.
Commands come one a line on stdin and are answered on stdout: `validators on|off`,
`stats` (`requests <n> 200 <n> 304 <n>`). The process exits when stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import sys
import threading
import time
from datetime import UTC, datetime

from tests.bench.corpus import feed

_TINY = b'{"ok": true, "items": [' + b",".join(b"%d" % i for i in range(30)) + b"]}"


class Corpus:
    def __init__(self, feeds: int, entries: int, seed: int, compress: bool) -> None:
        now = datetime.now(UTC)
        self.plain: list[bytes] = []
        self.gzipped: list[bytes] = []
        self.etags: list[bytes] = []
        for i in range(feeds):
            body = feed(i, entries, seed, now)
            self.plain.append(body)
            self.gzipped.append(gzip.compress(body, compresslevel=5, mtime=0) if compress else b"")
            self.etags.append(b'"' + hashlib.sha1(body).hexdigest()[:16].encode() + b'"')
        self.validators = True
        self.counts = {200: 0, 304: 0, 404: 0}


def _head(status: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 " + status]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class FeedProtocol(asyncio.Protocol):
    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536 and self.transport is not None:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            self.answer(head)

    def answer(self, head: bytes) -> None:
        transport = self.transport
        assert transport is not None
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        target = parts[1] if len(parts) >= 2 else b"/"
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get(b"connection", b"").lower() == b"close"
        common = [(b"Date", _Clock.date()), (b"Server", b"bench")]
        if close:
            common.append((b"Connection", b"close"))
        corpus = self.corpus
        if (
            target.startswith(b"/f/")
            and target[3:].isdigit()
            and int(target[3:]) < len(corpus.plain)
        ):
            i = int(target[3:])
            etag = corpus.etags[i]
            if corpus.validators and headers.get(b"if-none-match") == etag:
                corpus.counts[304] += 1
                transport.write(_head(b"304 Not Modified", [*common, (b"ETag", etag)]))
            else:
                corpus.counts[200] += 1
                extra = [(b"Content-Type", b"application/rss+xml; charset=utf-8")]
                if corpus.validators:
                    extra.append((b"ETag", etag))
                gz = corpus.gzipped[i]
                if gz and b"gzip" in headers.get(b"accept-encoding", b""):
                    body = gz
                    extra.append((b"Content-Encoding", b"gzip"))
                else:
                    body = corpus.plain[i]
                extra.append((b"Content-Length", str(len(body)).encode()))
                transport.writelines([_head(b"200 OK", common + extra), body])
        elif target.startswith(b"/tiny/"):
            corpus.counts[200] += 1
            extra = [(b"Content-Type", b"application/json"),
                     (b"Content-Length", str(len(_TINY)).encode())]  # fmt: skip
            transport.writelines([_head(b"200 OK", common + extra), _TINY])
        else:
            corpus.counts[404] += 1
            transport.write(_head(b"404 Not Found", [*common, (b"Content-Length", b"0")]))
        if close:
            transport.close()


class _Clock:
    """The Date header, formatted once a second."""

    second = -1
    value = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.value = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now)).encode()
        return cls.value


def _commands(loop: asyncio.AbstractEventLoop, corpus: Corpus, done: asyncio.Event) -> None:
    """Read stdin in a thread; apply each command on the loop and answer on stdout."""

    def apply(line: str) -> None:
        words = line.split()
        if words[:1] == ["validators"] and len(words) == 2:
            corpus.validators = words[1] == "on"
            print(f"ok validators {words[1]}", flush=True)
        elif words[:1] == ["stats"]:
            c = corpus.counts
            print(f"requests {sum(c.values())} 200 {c[200]} 304 {c[304]}", flush=True)
        else:
            print(f"error unknown command {line!r}", flush=True)

    for raw in sys.stdin:
        if raw.strip():
            loop.call_soon_threadsafe(apply, raw.strip())
    loop.call_soon_threadsafe(done.set)


async def main_async(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    corpus = Corpus(args.feeds, args.entries, args.seed, not args.no_gzip)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FeedProtocol(corpus), "127.0.0.1", args.port, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    size = sum(map(len, corpus.plain))
    print(f"READY {port} {size} {time.perf_counter() - started:.1f}", flush=True)
    done = asyncio.Event()
    threading.Thread(target=_commands, args=(loop, corpus, done), daemon=True).start()
    async with server:
        await done.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=20260204)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-gzip", action="store_true")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
