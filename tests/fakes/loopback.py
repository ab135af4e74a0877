"""The skeleton the HTTP fakes share: a real threaded HTTP server on 127.0.0.1, on a free port.

`LoopbackFake` runs a `LoopbackServer` in a background thread: `start()` / `close()` or `with`,
`root_url`, `errors` (what crashed inside the fake while serving) and `stopping` (set by
`close()`, for handlers that wait to wake on). The server tracks every open client connection
so that `close()` can hang up on them: a handler blocked on a silent or keep-alive client wakes,
and `server_close()` joins every handler thread, so no thread outlives the fake.
`wait_for_connections(n)` blocks (on a condition) until n clients are connected.

A fake subclasses `LoopbackFake` with its `LoopbackHandler` subclass; its handlers reach it as
`self.server.fake`. `running(fake, failure)` is the body of a fixture: it fails the test, with
the message `failure`, when the fake itself crashed while serving.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

import pytest

__all__ = ["LoopbackFake", "LoopbackHandler", "LoopbackServer", "running"]

F = TypeVar("F", bound="LoopbackFake")


class LoopbackFake:
    """A fake served by its own loopback server thread, named `thread_name`."""

    def __init__(self, handler: type[LoopbackHandler[Any]], thread_name: str) -> None:
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self._server = LoopbackServer(self, handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=thread_name, kwargs={"poll_interval": 0.05}
        )

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Wake handlers waiting on the fake's own conditions; `close()` calls it."""

    def close(self) -> None:
        self.stopping.set()  # wakes the handlers that wait on it (hung, trickling, stalled)
        self.wake()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.drop_connections()
        self._server.server_close()  # joins the handler threads
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` client connections are open (accepted, not yet finished)."""
        return self._server.wait_for_connections(count, timeout)


class LoopbackServer(ThreadingHTTPServer, Generic[F]):
    # Non-daemon handler threads, joined by server_close(): no thread outlives the fixture.
    daemon_threads = False
    block_on_close = True
    # socketserver's default listen backlog is 5: a burst of concurrent clients on a loaded
    # machine would be reset before the handler threads accept them.
    request_queue_size = 128

    def __init__(self, fake: F, handler: type[LoopbackHandler[Any]]) -> None:
        self.fake = fake
        self._conns_changed = threading.Condition()
        self._conns: set[socket.socket] = set()
        super().__init__(("127.0.0.1", 0), handler)

    def track(self, conn: socket.socket) -> None:
        with self._conns_changed:
            if self.fake.stopping.is_set():
                _hang_up(conn)
            self._conns.add(conn)
            self._conns_changed.notify_all()

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_changed:
            self._conns.discard(conn)

    def wait_for_connections(self, count: int, timeout: float) -> bool:
        with self._conns_changed:
            return self._conns_changed.wait_for(lambda: len(self._conns) >= count, timeout)

    def drop_connections(self) -> None:
        """Wake handler threads blocked on a silent or keep-alive client so they can be joined."""
        with self._conns_changed:
            for conn in self._conns:
                _hang_up(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError) or exc is None:
            return  # a client that hung up (a deadline, a size cap), or our own hang-up
        self.fake.errors.append(exc)
        super().handle_error(request, client_address)


class LoopbackHandler(BaseHTTPRequestHandler, Generic[F]):
    protocol_version = "HTTP/1.1"  # keep-alive, as PTB's pooled client expects
    server: LoopbackServer[F]

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        self.server.untrack(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the server would otherwise write every request to stderr


def _hang_up(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def running(fake: F, failure: str) -> Iterator[F]:
    """Start `fake`, yield it, close it; then fail the test if the fake crashed while serving."""
    fake.start()
    try:
        yield fake
    finally:
        fake.close()
    if fake.errors:
        pytest.fail(f"{failure}: {fake.errors!r}")
