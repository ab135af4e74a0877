"""A feed publisher on 127.0.0.1: a real HTTP server in a background thread, on a free port.

Routes are a mutable table, path -> `Route` (status, headers, body), set with `add()`,
`redirect()` or by assigning `server.routes[path]`; an unknown path gets 404. A route can also:

- honour conditional requests (`etag=`, `last_modified=`): If-None-Match / If-Modified-Since
  that match get 304 (RFC 9110 §13.1.2 and §13.1.3, If-None-Match taking precedence);
- `hang`: never answer, until the server closes (the handler waits on an event, never spins);
- `hang_after_headers`: send the status line and headers, then nothing more;
- `trickle=seconds`: send the body one byte at a time, that far apart;
- `content_length=`: announce any Content-Length, true or not;
- `held`: hold the answer until `release()` (or until the server closes);
- be gzip-encoded (`add(..., gzip=True)` compresses the body once, sets Content-Encoding);
- send its own `Date` header (`headers={"Date": ...}`) instead of the server's clock.

Every request is recorded (method, target, lower-cased headers) before it is answered, hung
requests included. Requests being served at once (from their arrival until the answer starts)
are counted, per Host header and in all: `peak` and `peak_by_host` hold the most ever seen,
and `wait_serving(n)` blocks (on a condition) until n are.
Each response closes its connection, so no handler thread idles on keep-alive; `close()` wakes
hung handlers, hangs up on connected clients and joins every thread.

`wait_for_connections(n)` blocks (on a condition) until n clients are connected; it, the
lifecycle and the connection tracking come from tests/fakes/loopback.py.
`FeedServer` is a context manager for tests that drive a subprocess; fixture: `feed_server`.
"""

from __future__ import annotations

import email.utils
import gzip as _gzip
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.fakes.loopback import LoopbackFake, LoopbackHandler, running

__all__ = ["FeedServer", "RecordedRequest", "Route", "feed_server"]


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    hang: bool = False
    hang_after_headers: bool = False
    trickle: float | None = None
    content_length: int | None = None
    held: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        return urlsplit(self.target).path


class FeedServer(LoopbackFake):
    """The fake publisher. Use the `feed_server` fixture, or `with FeedServer() as server:`."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._serving = threading.Condition()
        self._active: Counter[str] = Counter()
        self._released = False
        self.peak = 0
        self.peak_by_host: Counter[str] = Counter()
        super().__init__(_Handler, "fake-feed-server")

    def wake(self) -> None:
        with self._serving:
            self._serving.notify_all()

    def url(self, path: str = "/") -> str:
        return self.root_url + path

    # --- routes -------------------------------------------------------------------------------

    def add(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        content_type: str | None = "application/rss+xml",
        headers: dict[str, str] | None = None,
        gzip: bool = False,
        **behaviour: Any,
    ) -> Route:
        """Serve `body` at `path`; `behaviour` takes the other `Route` fields."""
        all_headers = {"Content-Type": content_type} if content_type else {}
        all_headers.update(headers or {})
        if gzip:
            body = _gzip.compress(body, mtime=0)
            all_headers["Content-Encoding"] = "gzip"
        route = Route(status=status, body=body, headers=all_headers, **behaviour)
        with self._lock:
            self.routes[path] = route
        return route

    def redirect(self, path: str, to: str, status: int = 302) -> Route:
        """`path` answers `status` with Location `to` (relative or absolute)."""
        return self.add(path, status=status, content_type=None, headers={"Location": to})

    def route_for(self, target: str) -> Route | None:
        with self._lock:
            return self.routes.get(target) or self.routes.get(urlsplit(target).path)

    # --- what was asked -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @contextmanager
    def serving(self, host: str) -> Iterator[None]:
        """Count a request as being served (to `host`, its Host header) while inside."""
        with self._serving:
            self._active[host] += 1
            self.peak = max(self.peak, self._active.total())
            self.peak_by_host[host] = max(self.peak_by_host[host], self._active[host])
            self._serving.notify_all()
        try:
            yield
        finally:
            with self._serving:
                self._active[host] -= 1

    def wait_serving(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` requests are being served at once; False after `timeout`."""
        with self._serving:
            return self._serving.wait_for(lambda: self._active.total() >= count, timeout)

    def release(self) -> None:
        """Answer the `held` requests, and those to come."""
        with self._serving:
            self._released = True
            self._serving.notify_all()

    def await_release(self) -> None:
        with self._serving:
            self._serving.wait_for(lambda: self._released or self.stopping.is_set())


def _not_modified(route: Route, headers: dict[str, str]) -> bool:
    if route.etag is not None and "if-none-match" in headers:
        tags = [t.strip() for t in headers["if-none-match"].split(",")]
        weak = route.etag.removeprefix("W/")
        return "*" in tags or any(t.removeprefix("W/") == weak for t in tags)
    if route.last_modified is not None and "if-modified-since" in headers:
        try:
            since = email.utils.parsedate_to_datetime(headers["if-modified-since"])
        except (TypeError, ValueError):
            return False  # RFC 9110 §13.1.3: an invalid date is ignored
        return email.utils.parsedate_to_datetime(route.last_modified) <= since
    return False


class _Handler(LoopbackHandler[FeedServer]):
    timeout = 30  # a client that connects and says nothing does not pin a thread for ever

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        feeds = self.server.fake
        headers = {k.lower(): v for k, v in self.headers.items()}
        feeds.record(RecordedRequest(self.command, self.path, headers))
        self.close_connection = True
        # Counted until the answer starts: a client cannot have read any of it before the
        # count drops, so its next request never overlaps this one in the count.
        with feeds.serving(headers.get("host", "")):
            route = feeds.route_for(self.path)
            if route is None:
                route = Route(status=404, body=b"not found", headers={"Content-Type": "text/plain"})
            if route.hang:
                feeds.stopping.wait()
                return
            if route.held:
                feeds.await_release()
        self._answer(feeds, route, headers, send_body)

    def _answer(
        self, feeds: FeedServer, route: Route, headers: dict[str, str], send_body: bool
    ) -> None:
        status, body = route.status, route.body
        if _not_modified(route, headers):
            status, body = 304, b""
        self.send_response_only(status)
        self.send_header("Server", self.version_string())
        if not any(name.lower() == "date" for name in route.headers):
            self.send_header("Date", self.date_time_string())
        for name, value in route.headers.items():
            if status != 304 or name.lower() not in ("content-type", "content-encoding"):
                self.send_header(name, value)
        if route.etag is not None:
            self.send_header("ETag", route.etag)
        if route.last_modified is not None:
            self.send_header("Last-Modified", route.last_modified)
        length = route.content_length if route.content_length is not None else len(body)
        if status != 304:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        if route.hang_after_headers:
            self.wfile.flush()
            feeds.stopping.wait()
            return
        if not send_body or not body:
            return
        if route.trickle is None:
            self.wfile.write(body)
            return
        for i in range(len(body)):
            self.wfile.write(body[i : i + 1])
            self.wfile.flush()
            if feeds.stopping.wait(route.trickle):
                return


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running FeedServer; fails the test if the fake itself crashed while serving."""
    yield from running(FeedServer(), "the fake feed server failed")
