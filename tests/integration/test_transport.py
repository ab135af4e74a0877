"""monitor.edges.transport against real loopback servers, and `fetch` on both of its paths.

A misbehaving peer is a scripted asyncio server (`RawServer`): it answers a path with fixed
bytes then hangs up, or resets, closes, or hangs. `fetch` goes straight to the transport with
make_client's client and through `AsyncClient.send` with any other: the two must agree.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import httpx
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from monitor.core.errors import PermanentError, TransientError
from monitor.edges import fetch as fetch_module
from monitor.edges import transport as transport_module
from monitor.edges.fetch import URL_CACHE_SIZE, USER_AGENT, FetchResult, fetch, make_client
from monitor.edges.transport import AiohttpTransport
from tests.fakes.feed_server import FeedServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@dataclass
class Seen:
    head: bytes
    body: bytes

    def header(self, name: str) -> list[str]:
        lines = self.head.decode("latin-1").split("\r\n")[1:]
        pairs = [line.split(":", 1) for line in lines if ":" in line]
        return [v.strip() for k, v in pairs if k.strip().lower() == name.lower()]


class RawServer:
    """127.0.0.1:<port>; `script[path]` is bytes to send before hanging up, or "close" (hang up
    without a word), "reset" (a TCP RST) or "hang" (say nothing until the test ends)."""

    def __init__(self) -> None:
        self.script: dict[str, bytes | str] = {}
        self.seen: list[Seen] = []
        self.arrived = asyncio.Event()  # set at the first request
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._answer(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.is_closing():
                writer.transport.abort()
            self._tasks.discard(task)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen = Seen(head, b"")
        if seen.header("content-length"):
            seen.body = await reader.readexactly(int(seen.header("content-length")[0]))
        elif seen.header("transfer-encoding"):
            seen.body = await reader.readuntil(b"0\r\n\r\n")
        self.seen.append(seen)
        self.arrived.set()
        action = self.script[head.split(b" ")[1].decode().split("?")[0]]
        if action == "reset":
            # SO_LINGER with a zero timeout: closing sends RST instead of FIN.
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif action == "hang":
            await asyncio.Event().wait()
        else:
            writer.write(action if isinstance(action, bytes) else b"")
            writer.close()  # a FIN, once all is sent
            await writer.wait_closed()


@pytest.fixture
async def raw() -> AsyncIterator[RawServer]:
    server = RawServer()
    await server.start()
    yield server
    await server.close()


def _plain_client(timeout: float = 5.0, max_connections: int = 4) -> httpx.AsyncClient:
    """The transport in a client `fetch` does not bypass: every request is `client.send`'s."""
    limits = httpx.Limits(max_connections=max_connections)
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        transport=AiohttpTransport(limits=limits),
        timeout=timeout,
    )


CLIENTS: dict[str, Callable[[], httpx.AsyncClient]] = {
    "direct": lambda: make_client(timeout=5.0, max_connections=4),
    "send": _plain_client,
}


@pytest.fixture(params=sorted(CLIENTS))
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    async with CLIENTS[request.param]() as c:
        yield c


# --- what peers get wrong -----------------------------------------------------------------------

GARBLED = b"HTTP/1.1 2x0 WHAT\r\n\r\n"
SHORT = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"
BAD_CHUNK = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc"
HEAD_TOO_LONG = b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n"
MISBEHAVIOUR: list[tuple[bytes | str, type[httpx.TransportError], bool]] = [
    # (what the peer does, the httpx error, whether fetch calls it a network failure)
    ("reset", httpx.ReadError, True),
    ("close", httpx.RemoteProtocolError, False),  # closed without an answer
    (GARBLED, httpx.RemoteProtocolError, False),
    (SHORT, httpx.RemoteProtocolError, False),  # body shorter than its Content-Length
    (BAD_CHUNK, httpx.RemoteProtocolError, False),
    (HEAD_TOO_LONG, httpx.RemoteProtocolError, False),
]


@pytest.mark.parametrize(("action", "error", "network"), MISBEHAVIOUR)
async def test_aiohttp_errors_come_out_as_httpx_ones(
    raw: RawServer, action: bytes | str, error: type[httpx.TransportError], network: bool
) -> None:
    raw.script["/x"] = action
    async with _plain_client() as c:
        with pytest.raises(httpx.TransportError) as caught:
            async with c.stream("GET", raw.url("/x")) as response:
                async for _ in response.aiter_raw():
                    pass
    assert type(caught.value) is error
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)
    assert caught.value.request.url == raw.url("/x")


@pytest.mark.parametrize(("action", "error", "network"), MISBEHAVIOUR)
async def test_fetch_classifies_them_alike_on_both_paths(
    raw: RawServer,
    client: httpx.AsyncClient,
    action: bytes | str,
    error: type[httpx.TransportError],
    network: bool,
) -> None:
    raw.script["/x"] = action
    with pytest.raises(TransientError) as caught:
        await fetch(client, raw.url("/x"))
    assert str(caught.value).startswith(f"{raw.url('/x')}: {error.__name__}: ")
    assert caught.value.network is network
    assert caught.value.status is None


async def test_refused_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with _plain_client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://127.0.0.1:{port}/")


@pytest.mark.timeout(10)
async def test_read_timeout_is_httpx_read_timeout(raw: RawServer) -> None:
    raw.script["/hang"] = "hang"
    async with _plain_client(timeout=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get(raw.url("/hang"))


@pytest.mark.timeout(10)
async def test_pool_timeout_is_a_timeout(raw: RawServer) -> None:
    raw.script["/hang"] = "hang"
    async with _plain_client(max_connections=1) as c:
        first = asyncio.create_task(c.get(raw.url("/hang")))
        await raw.arrived.wait()
        # the only connection is busy: waiting for it is aiohttp's connect timeout
        with pytest.raises(httpx.ConnectTimeout):
            await c.get(raw.url("/hang"), timeout=httpx.Timeout(5.0, pool=0.2))
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


# --- requests and responses as given ----------------------------------------------------------

OK = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"


async def test_request_headers_and_bytes_body_go_out_as_given(raw: RawServer) -> None:
    raw.script["/post"] = OK
    async with _plain_client() as c:
        request = c.build_request("POST", raw.url("/post?q=1"), content=b"hello")
        del request.headers["User-Agent"]
        del request.headers["Accept-Encoding"]
        response = await c.send(request)
    assert (response.status_code, response.content) == (201, b"ok")
    assert response.reason_phrase == "Created"
    assert response.http_version == "HTTP/1.1"
    [seen] = raw.seen
    assert seen.head.startswith(b"POST /post?q=1 HTTP/1.1\r\n")
    assert seen.body == b"hello"
    # aiohttp adds its own User-Agent and Accept-Encoding to a request that has none
    assert seen.header("user-agent") == []
    assert seen.header("accept-encoding") == []


async def test_streamed_request_body_is_sent_chunked(raw: RawServer) -> None:
    raw.script["/post"] = OK

    async def parts() -> AsyncIterator[bytes]:
        yield b"hel"
        yield b"lo"

    async with _plain_client() as c:
        response = await c.post(raw.url("/post"), content=parts())
    assert response.status_code == 201
    [seen] = raw.seen
    assert seen.header("transfer-encoding") == ["chunked"]
    assert seen.body == b"3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"


async def test_body_comes_as_sent_without_decoding(raw: RawServer) -> None:
    packed = gzip.compress(RSS)
    head = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(packed)
    raw.script["/feed"] = head + packed
    async with _plain_client() as c, c.stream("GET", raw.url("/feed")) as response:
        assert b"".join([chunk async for chunk in response.aiter_raw()]) == packed


async def test_repeated_fields_are_joined_alike_on_both_paths(
    raw: RawServer, client: httpx.AsyncClient
) -> None:
    raw.script["/feed"] = (
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nCache-Control: public\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(RSS), RSS)
    )
    result = await fetch(client, raw.url("/feed"))
    assert result.headers["cache-control"] == "max-age=60, public"


# --- fetch's direct path ---------------------------------------------------------------------


async def _refuse_send(*args: object, **kwargs: object) -> httpx.Response:
    raise AssertionError("fetch went through AsyncClient.send")


async def test_make_client_is_fetched_past_send_with_its_current_headers(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.add("/feed", RSS, etag='"v1"')
    async with make_client(user_agent="first/1", timeout=5.0) as c:
        monkeypatch.setattr(c, "send", _refuse_send)
        await fetch(c, feed_server.url("/feed"))
        c.headers["User-Agent"] = "second/2"
        assert (await fetch(c, feed_server.url("/feed"), etag='"v1"')).not_modified
        c.headers = httpx.Headers({"User-Agent": "third/3", "X-Extra": "yes"})
        await fetch(c, feed_server.url("/feed"))
    first, second, third = (r.headers for r in feed_server.requests_to("/feed"))
    assert (first["user-agent"], first["accept-encoding"]) == ("first/1", "gzip, deflate")
    assert (second["user-agent"], second["if-none-match"]) == ("second/2", '"v1"')
    assert (third["user-agent"], third["x-extra"]) == ("third/3", "yes")


async def test_what_the_direct_path_lacks_goes_through_send(feed_server: FeedServer) -> None:
    feed_server.add("/feed", RSS)
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(str(request.url))

    async with make_client(timeout=5.0) as c:
        c.event_hooks = {"request": [hook], "response": []}
        await fetch(c, feed_server.url("/feed"))
        assert hooked == [feed_server.url("/feed")]
        c.event_hooks = {"request": [], "response": []}
        c.auth = ("user", "secret")
        await fetch(c, feed_server.url("/feed"))
    assert feed_server.requests_to("/feed")[1].headers["authorization"].startswith("Basic ")


@pytest.mark.timeout(10)
async def test_direct_path_keeps_the_clients_read_timeout(feed_server: FeedServer) -> None:
    feed_server.add("/feed", RSS, hang=True)
    started = time.monotonic()
    async with make_client(timeout=0.3) as c:
        with pytest.raises(TransientError, match=r"timed out \(ReadTimeout\)") as caught:
            await fetch(c, feed_server.url("/feed"), deadline=5)
    assert caught.value.network
    assert time.monotonic() - started < 3


async def test_make_client_keeps_no_cookies(raw: RawServer) -> None:
    raw.script["/feed"] = (
        b"HTTP/1.1 200 OK\r\nSet-Cookie: id=1; Path=/\r\nContent-Length: 2\r\n\r\nok"
    )
    async with make_client(timeout=5.0) as c:
        await fetch(c, raw.url("/feed"))
        await fetch(c, raw.url("/feed"))
        assert not c.cookies
        await c.get(raw.url("/feed"))  # through send as well
        await c.get(raw.url("/feed"))
        assert not c.cookies
    assert all(seen.header("cookie") == [] for seen in raw.seen)


def _outcome(result: FetchResult | Exception) -> object:
    if isinstance(result, Exception):
        return type(result), str(result)
    return result.status, result.body, result.final_url, result.permanent_url


@pytest.mark.parametrize(
    ("start", "location"),
    [
        ("/dir/a", "/b"),  # absolute path
        ("/dir/a", "b"),  # relative path
        ("/dir/a", "//127.0.0.1:{port}/b"),  # network path
        ("/dir/a#top", "/b"),  # the fragment carries over (RFC 9110 §10.2.2)
        ("/dir/a", "http://[::1"),  # not a URL
        ("/dir/a", ""),  # itself
    ],
)
async def test_both_paths_follow_redirects_alike(
    feed_server: FeedServer, start: str, location: str
) -> None:
    port = feed_server.root_url.rsplit(":", 1)[1]
    feed_server.redirect(start.split("#")[0], location.format(port=port), status=301)
    feed_server.add("/b", RSS)
    feed_server.add("/dir/b", RSS)
    outcomes = []
    for make in CLIENTS.values():
        async with make() as c:
            try:
                outcomes.append(_outcome(await fetch(c, feed_server.url(start))))
            except (TransientError, PermanentError) as exc:
                outcomes.append(_outcome(exc))
    assert outcomes[0] == outcomes[1]


def test_parsed_urls_are_cached_within_a_bound() -> None:
    parse = fetch_module._parse_url
    parse.cache_clear()
    first = parse("http://example.org/feed/0")
    assert parse("http://example.org/feed/0") is first
    for i in range(URL_CACHE_SIZE + 10):
        parse(f"http://example.org/feed/{i}")
    info = parse.cache_info()
    assert info.maxsize == URL_CACHE_SIZE
    assert info.currsize == URL_CACHE_SIZE
    assert parse("http://example.org/feed/0") is not first  # the oldest went first
    parse.cache_clear()


def test_repeated_fields_read_as_httpx_reads_them() -> None:
    fields = CIMultiDict([("Cache-Control", "max-age=60"), ("ETag", '"a"'), ("cache-control", "x")])
    headers = transport_module._Headers(CIMultiDictProxy(fields))
    ours = httpx.Headers(list(fields.items()))
    for name in ("cache-control", "ETAG", "missing"):
        assert headers.get(name) == ours.get(name)
        assert (name in headers) is (name in ours)
    assert headers["Cache-Control"] == "max-age=60, x"
    assert list(headers) == ["cache-control", "etag"]
    assert len(headers) == 2
    with pytest.raises(KeyError):
        headers["missing"]


async def test_bound_clients_are_not_kept_alive() -> None:
    before = len(transport_module._BOUND)
    for _ in range(3):
        async with make_client() as c:
            assert c in transport_module._BOUND
    del c
    gc.collect()
    assert len(transport_module._BOUND) == before
