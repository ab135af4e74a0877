"""HTTP/1.1 under `monitor.edges.fetch`: an httpx transport over aiohttp's connection pool, and a
way past httpx's client machinery to it for a GET that needs none of it.

Contract:

- `AiohttpTransport(limits=, verify=)` is an `httpx.AsyncBaseTransport`. `handle_async_request`
  sends any httpx request with exactly its headers (aiohttp adds only Host) and its body (bytes or
  a stream); the response's stream yields the body as sent, no Content-Encoding undone (the
  caller inflates, under its own size cap). Closing a response before its end closes the
  connection; after its end the connection goes back to the pool. Timeouts are the request's
  "timeout" extension, per phase: connect -> aiohttp's sock_connect, read -> sock_read (each
  read), pool -> connect (a pool slot and the connection together, aiohttp's nearest); aiohttp
  has no write timeout; None is no limit.
- Every aiohttp error comes out as the httpx exception of the same meaning (`_AIOHTTP_TO_HTTPX`),
  chained from aiohttp's: callers catch httpx's classes only.
- TLS as httpx's own pool: `httpx.create_ssl_context(verify)` (certifi's roots, or SSL_CERT_FILE /
  SSL_CERT_DIR). No proxy, as before: httpx mounts no environment proxy on a client given its
  transport, and this pool does not look for one (aiohttp's lookup is a thread hop a request).
  No cookies: aiohttp's jar is a dummy (a client's jar is httpx's business).
- `bind(client, transport)` marks a client built on `transport` (nothing mounted) as one whose
  GETs may go straight to it. `sender(client, headers, deadline)` then returns a `Sender`:
  `send(url)` makes the GET `client.send(client.build_request("GET", url, headers=headers))`
  would make, and `redirect(url, response)` is where httpx would go next (None if nowhere).
  For a bound client without auth, params, event hooks or cookies it skips httpx's Request,
  Response, auth, redirect and cookie machinery, most of the CPU a 304 costs; for any other
  client it is `client.send`. Either way the response is a `Response`, streamed, to `aclose`.
  Phase timeouts no shorter than `deadline` are left out: the caller's deadline ends it first.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

__all__ = ["AiohttpTransport", "Response", "Sender", "bind", "sender"]

# Most specific first: the first class the aiohttp error is an instance of wins.
_AIOHTTP_TO_HTTPX: tuple[tuple[type[aiohttp.ClientError], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # closed, no answer
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),  # body cut short or malformed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # status line or headers garbled
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),  # reset, broken pipe
    (aiohttp.ClientError, httpx.NetworkError),
)
# aiohttp adds these when a request lacks them (its own User-Agent; "br" whenever brotli is
# importable): a request goes out with the headers httpx gave it and no others.
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent")
_NO_TIMEOUT = aiohttp.ClientTimeout()  # aiohttp's default is 5 minutes in all
_REDIRECTS = frozenset((301, 302, 303, 307, 308))


def _as_httpx(exc: aiohttp.ClientError, request: httpx.Request | None) -> httpx.TransportError:
    kind = next(h for a, h in _AIOHTTP_TO_HTTPX if isinstance(exc, a))
    return kind(str(exc) or type(exc).__name__, request=request)


@functools.lru_cache(maxsize=64)
def _timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    if connect is None and read is None and pool is None:
        return _NO_TIMEOUT
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


def _unsent(headers: CIMultiDict[str]) -> list[str] | None:
    # None when all are there: aiohttp copies every request's headers to skip even one.
    return [name for name in _AUTO_HEADERS if name not in headers] or None


def _wire_url(url: httpx.URL) -> URL:
    # Already encoded by httpx: sent as httpx would send it, not requoted by yarl.
    return URL(str(url), encoded=True)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """aiohttp's pool (one `ClientSession`, opened on first use) behind httpx's transport API."""

    def __init__(self, *, limits: httpx.Limits | None = None, verify: Any = True) -> None:
        limits = limits or httpx.Limits()
        self._limit = limits.max_connections or 0  # aiohttp's 0: no limit
        self._keepalive = limits.keepalive_expiry
        self._ssl = httpx.create_ssl_context(verify=verify)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _open(self) -> aiohttp.ClientSession:
        # In the running loop, at first use: aiohttp binds its pool to the loop it was made in.
        if self._closed:
            raise RuntimeError("the transport is closed")
        connector = aiohttp.TCPConnector(
            limit=self._limit,
            limit_per_host=0,
            keepalive_timeout=self._keepalive if self._keepalive is not None else 0,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=_NO_TIMEOUT,
        )
        return self._session

    async def _get(
        self, url: URL, headers: CIMultiDict[str], phases: aiohttp.ClientTimeout
    ) -> _Answer:
        # `_Direct`'s GET: no httpx Request or Response is made.
        session = self._session or self._open()
        try:
            response = await session.request(
                "GET",
                url,
                headers=headers,
                skip_auto_headers=_unsent(headers),
                allow_redirects=False,
                timeout=phases,
            )
        except aiohttp.ClientError as exc:
            raise _as_httpx(exc, None) from exc
        return _Answer(response)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        phases = request.extensions.get("timeout") or {}
        encoding = request.headers.encoding
        headers = CIMultiDict(
            (k.decode(encoding), v.decode(encoding)) for k, v in request.headers.raw
        )
        data: Any
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream  # aiohttp frames a stream itself (chunked)
            headers.popall("Transfer-Encoding", None)
        try:
            response = await session.request(
                request.method,
                _wire_url(request.url),
                headers=headers,
                skip_auto_headers=_unsent(headers),
                data=data,
                allow_redirects=False,
                timeout=_timeout(phases.get("connect"), phases.get("read"), phases.get("pool")),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except aiohttp.ClientError as exc:
            raise _as_httpx(exc, request) from exc
        major, minor = response.version or (1, 1)
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_Stream(response, request),
            request=request,
            extensions={
                "http_version": b"HTTP/%d.%d" % (major, minor),
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


async def _chunks(
    response: aiohttp.ClientResponse, size: int | None, request: httpx.Request | None
) -> AsyncIterator[bytes]:
    content = response.content
    try:
        async for chunk in content.iter_chunked(size) if size else content.iter_any():
            yield chunk
    except aiohttp.ClientError as exc:
        raise _as_httpx(exc, request) from exc


class _Stream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _chunks(self._response, None, self._request)

    async def aclose(self) -> None:
        # Read to its end, the connection is back in the pool already; else it is closed.
        self._response.release()


class Response(Protocol):
    """What a `Sender` answers: an `httpx.Response`, or as much of one as `fetch` reads."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class _Answer:
    """An aiohttp response as a `Response`: the body as sent, chunked as `aiter_raw` asks."""

    __slots__ = ("_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status_code: int = response.status
        self.headers: Mapping[str, str] = _Headers(response.headers)

    def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        return _chunks(self._response, chunk_size, None)

    async def aclose(self) -> None:
        self._response.release()


class _Headers(Mapping[str, str]):
    """aiohttp's case-insensitive headers, a repeated field's lines joined as httpx joins them
    (RFC 9110 §5.3), so that both paths read the same values."""

    __slots__ = ("_fields",)

    def __init__(self, fields: CIMultiDictProxy[str]) -> None:
        self._fields = fields

    def __getitem__(self, name: str) -> str:
        values = self._fields.getall(name)  # KeyError when absent
        return values[0] if len(values) == 1 else ", ".join(values)

    def get(self, name: str, default: Any = None) -> Any:
        values = self._fields.getall(name, None)
        if values is None:
            return default
        return values[0] if len(values) == 1 else ", ".join(values)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k.lower() for k in self._fields))

    def __len__(self) -> int:
        return len({k.lower() for k in self._fields})


class Sender(Protocol):
    async def send(self, url: httpx.URL) -> Response: ...
    def redirect(self, url: httpx.URL, response: Response) -> httpx.URL | None: ...


@dataclass(slots=True)
class _Bound:
    transport: AiohttpTransport
    raw: list[tuple[bytes, bytes]]  # the client's headers when `fields` was made from them
    fields: CIMultiDict[str]


_BOUND: weakref.WeakKeyDictionary[httpx.AsyncClient, _Bound] = weakref.WeakKeyDictionary()


def bind(client: httpx.AsyncClient, transport: AiohttpTransport) -> httpx.AsyncClient:
    """Let `sender` go straight to `transport`, which `client` was built on (nothing mounted)."""
    _BOUND[client] = _Bound(transport, [], CIMultiDict())
    return client


def sender(client: httpx.AsyncClient, headers: dict[str, str], deadline: float) -> Sender:
    """How to GET as `client` would, with `headers` besides the client's (see the module doc)."""
    bound = _BOUND.get(client)
    if bound is None or client.is_closed or client.auth is not None or client.params:
        return _ViaClient(client, headers)
    hooks = client.event_hooks
    if hooks["request"] or hooks["response"] or client.cookies:
        return _ViaClient(client, headers)
    raw = client.headers.raw
    if raw != bound.raw:  # changed since, in place or not
        encoding = client.headers.encoding
        bound.fields = CIMultiDict((k.decode(encoding), v.decode(encoding)) for k, v in raw)
        bound.raw = raw
    fields = bound.fields.copy()
    fields.update(headers)  # replacing, as httpx merges a request's headers into the client's
    timeout = client.timeout
    phases = (timeout.connect, timeout.read, timeout.pool)
    # A phase timeout no shorter than the deadline can never end the exchange first.
    limits = _timeout(*(t if t is not None and t < deadline else None for t in phases))
    return _Direct(bound.transport, fields, limits)


class _ViaClient:
    """Every hop through `client.send`: any httpx client, with all its machinery."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self._client = client
        self._headers = headers
        self._next: httpx.Request | None = None

    async def send(self, url: httpx.URL) -> Response:
        request = self._next
        if request is None or request.url != url:
            request = self._client.build_request("GET", url, headers=self._headers)
        response = await self._client.send(request, stream=True, follow_redirects=False)
        self._next = response.next_request
        return response

    def redirect(self, url: httpx.URL, response: Response) -> httpx.URL | None:
        return None if self._next is None else self._next.url


class _Direct:
    """Every hop straight to the transport, with the headers and timeouts `sender` worked out."""

    def __init__(
        self, transport: AiohttpTransport, fields: CIMultiDict[str], phases: aiohttp.ClientTimeout
    ) -> None:
        self._transport = transport
        self._fields = fields
        self._phases = phases

    async def send(self, url: httpx.URL) -> Response:
        return await self._transport._get(_wire_url(url), self._fields, self._phases)

    def redirect(self, url: httpx.URL, response: Response) -> httpx.URL | None:
        """Where a redirect points, resolved as httpx resolves it (`AsyncClient._redirect_url`)."""
        location = response.headers.get("location")
        if location is None or response.status_code not in _REDIRECTS:
            return None
        try:
            target = httpx.URL(location)
        except httpx.InvalidURL as exc:
            raise httpx.RemoteProtocolError(f"Invalid URL in location header: {exc}.") from None
        if target.scheme and not target.host:
            target = target.copy_with(host=url.host)  # "http:/path" (httpx issue #771)
        if target.is_relative_url:
            target = url.join(target)  # RFC 9110 §10.2.2: relative to the request's URL
        if url.fragment and not target.fragment:
            target = target.copy_with(fragment=url.fragment)  # ibid.: the fragment carries over
        return target
