"""Fetch one feed's bytes over HTTP(S), or from a local file, within hard limits.

Contract:

- `make_client(user_agent=, timeout=, max_connections=)` builds the shared `httpx.AsyncClient`.
- `await fetch(client, url, etag=, last_modified=, max_bytes=, deadline=)` returns a
  `FetchResult` or raises: `TransientError` (timeouts, connection failures, 408, 429, 5xx; with
  `retry_after` in seconds when the server said so, `network=True` for timeouts and connection
  failures, `status` for HTTP statuses) or `PermanentError` (other 4xx, with `status`; more than
  MAX_REDIRECTS redirects or a loop, a redirect off http(s), a body over `max_bytes`, an unknown
  Content-Encoding, a corrupt compressed body, a missing local file). Every message names the URL.
- A conditional request (RFC 9110 §13.1) is made from `etag` / `last_modified`; a 304 comes back
  as `not_modified=True` with `body=b""`. A local feed (`file://` URL or absolute path) gets an
  ETag that is a hash of its bytes, so an unchanged file is "not modified" too.
- The whole exchange, redirects and body included, ends within `deadline` seconds, and no more
  than `max_bytes` are ever held, before or after decompression.

This module knows nothing of storage or parsing: it returns bytes and the validators to send next.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import http
import stat
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from monitor.core.errors import PermanentError, TransientError
from monitor.edges.inflate import Inflater, TooLarge

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "FetchResult",
    "fetch",
    "make_client",
    "retry_after_seconds",
]

USER_AGENT = "monitor/0.1 (+https://github.com/monitor-alerts/monitor)"
DEFAULT_MAX_BYTES = 10 * 2**20
MAX_REDIRECTS = 5
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/rdf+xml;q=0.9,"
    " application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5"
)
# Response headers kept for the scheduler: caching hints it may honour later.
KEPT_HEADERS = ("cache-control", "expires", "age", "date", "content-language")
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One successful exchange. `etag` / `last_modified` are what to send next time."""

    status: int
    body: bytes
    not_modified: bool
    etag: str | None
    last_modified: str | None
    content_type: str | None
    final_url: str
    #: A 301 or 308 was in the redirect chain.
    permanent_redirect: bool = False
    #: Where the leading run of 301/308 redirects ends: the URL to store instead of the old one
    #: (for 301 -> 302 -> page, the 302's URL: the temporary hop may change back).
    permanent_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def make_client(
    *, user_agent: str = USER_AGENT, timeout: float = 30.0, max_connections: int = 20
) -> httpx.AsyncClient:
    """The client `fetch` expects: one per process, closed by its owner (`async with`).

    The httpx API over aiohttp's connection pool (httpx-aiohttp): on loopback it answers 2.5-5x
    the requests per CPU-second of httpcore's pool, whose every request scans every pooled
    connection (`make bench-transport`).
    """
    return httpx.AsyncClient(
        headers={
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            # Only codings decoded here, under the size cap; never br/zstd (see Inflater).
            "Accept-Encoding": "gzip, deflate",
        },
        timeout=httpx.Timeout(timeout),
        transport=_Transport(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            )
        ),
        # fetch() follows redirects itself, up to MAX_REDIRECTS: httpx reads (and inflates)
        # every redirect's body in full before following it, with no size limit.
        follow_redirects=False,
        max_redirects=MAX_REDIRECTS,
    )


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport, with aiohttp's errors told apart as httpx tells them.

    Its own map calls a refused connection a ConnectTimeout and lets some errors through as
    aiohttp's (a malformed response); here every aiohttp error becomes the httpx error of the
    same meaning, so `fetch` classifies them as before. Cookies stay httpx's: aiohttp's jar is
    a dummy. Bodies come as sent (no decompression: `fetch` inflates them under its cap).
    """

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry or 0,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with _as_httpx_errors(request):
            response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_Stream(response.stream, request),
            request=request,
            extensions=response.extensions,
        )


class _Stream(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx_errors(self._request):
            async for chunk in self._stream:
                yield chunk

    async def aclose(self) -> None:
        with _as_httpx_errors(self._request):
            await self._stream.aclose()


# Most specific first: the first class the aiohttp error is an instance of wins.
_AIOHTTP_TO_HTTPX: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),
    (aiohttp.ClientError, httpx.NetworkError),
)


@contextlib.contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, httpx.TransportError) as exc:
        # httpx-aiohttp raises its own mapping `from` the aiohttp error: map that one again.
        cause = exc if isinstance(exc, aiohttp.ClientError) else exc.__cause__
        if not isinstance(cause, aiohttp.ClientError):
            raise
        kind = next(h for a, h in _AIOHTTP_TO_HTTPX if isinstance(cause, a))
        raise kind(str(cause) or type(cause).__name__, request=request) from cause


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline: float = 30.0,
) -> FetchResult:
    """GET `url` (or read the local file it names); see the module doc for the contract."""
    local = _local_path(url)
    try:
        # One deadline for the whole exchange: httpx's read timeout applies per read, so a server
        # trickling one byte every half second would otherwise never time out.
        async with asyncio.timeout(deadline):
            if local is not None:
                return await asyncio.to_thread(_read_local, url, local, etag, max_bytes)
            return await _fetch_http(client, url, etag, last_modified, max_bytes)
    except TimeoutError:
        raise TransientError(
            f"{url}: no complete answer within {deadline:g} s", network=True
        ) from None
    except httpx.UnsupportedProtocol as exc:
        raise PermanentError(f"{url}: unsupported URL ({exc})") from None
    except httpx.InvalidURL as exc:
        raise PermanentError(f"{url}: invalid URL ({exc})") from None
    except httpx.TimeoutException as exc:
        raise TransientError(f"{url}: timed out ({type(exc).__name__})", network=True) from None
    except httpx.TransportError as exc:
        # NetworkError: refused, reset, DNS; a ProtocolError is the peer's answer, not the wire.
        network = isinstance(exc, httpx.NetworkError)
        raise TransientError(f"{url}: {type(exc).__name__}: {exc}", network=network) from None


async def _fetch_http(
    client: httpx.AsyncClient,
    url: str,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
) -> FetchResult:
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise PermanentError(f"{url}: not an http(s) URL or absolute path")
    headers: dict[str, str] = {}
    # Validators come from a server; one with CR/LF or non-ASCII would make the request invalid.
    if etag and _header_safe(etag):
        headers["If-None-Match"] = etag
    if last_modified and _header_safe(last_modified):
        headers["If-Modified-Since"] = last_modified
    request = client.build_request("GET", url, headers=headers)
    seen = {str(request.url)}
    permanent = False
    permanent_url: str | None = None
    only_permanent_so_far = True
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(request, stream=True, follow_redirects=False)
        try:
            nxt = response.next_request
            if nxt is None:
                return await _finish(
                    response, url, etag, last_modified, max_bytes, permanent, permanent_url
                )
            target = str(nxt.url)
            if nxt.url.scheme not in ("http", "https"):
                raise PermanentError(f"{url}: redirected off http(s), to {target}")
            if target in seen:
                raise PermanentError(f"{url}: redirect loop at {target}")
            seen.add(target)
            if response.status_code in (301, 308):
                permanent = True
                if only_permanent_so_far:
                    permanent_url = target
            else:
                only_permanent_so_far = False
            request = nxt
        finally:
            # The redirect's own body is never read.
            await response.aclose()
    raise PermanentError(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _finish(
    response: httpx.Response,
    url: str,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    permanent: bool,
    permanent_url: str | None,
) -> FetchResult:
    status = response.status_code
    headers = response.headers

    def result(body: bytes, new_etag: str | None, new_last_modified: str | None) -> FetchResult:
        return FetchResult(
            status=status,
            body=body,
            not_modified=status == 304,
            etag=new_etag,
            last_modified=new_last_modified,
            content_type=headers.get("content-type"),
            final_url=str(response.url),
            permanent_redirect=permanent,
            permanent_url=permanent_url,
            headers=MappingProxyType({k: headers[k] for k in KEPT_HEADERS if k in headers}),
        )

    if status == 304:
        # RFC 9110 §15.4.5: a 304 may refresh the validators; keep ours when it does not.
        return result(
            b"", headers.get("etag") or etag, headers.get("last-modified") or last_modified
        )
    what = f"{url}: HTTP {status} {_phrase(response)}".rstrip()
    if status in (408, 429) or status >= 500:
        retry_after = retry_after_seconds(
            headers.get("retry-after"), date=headers.get("date"), now=time.time()
        )
        raise TransientError(what, retry_after=retry_after, status=status)
    if status >= 400:
        raise PermanentError(what, status=status)
    if status >= 300:
        raise PermanentError(f"{what} without a usable Location")
    body = await _read_body(response, url, max_bytes)
    return result(body, headers.get("etag"), headers.get("last-modified"))


async def _read_body(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    too_large = PermanentError(f"{url}: response larger than {_size(max_bytes)}")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large  # said so up front: not one byte is read
    inflater = Inflater.for_encoding(response.headers.get("content-encoding", ""), max_bytes)
    if inflater is None:
        encoding = response.headers.get("content-encoding", "")
        raise PermanentError(f"{url}: unsupported Content-Encoding {encoding[:40]!r}")
    body = bytearray()
    raw = 0
    try:
        # aiter_raw: the bytes as sent; httpx's own decoder inflates a whole network chunk
        # before anyone can look at its size (a 65 KB gzip bomb became 67 MB that way).
        async for chunk in response.aiter_raw(_READ_CHUNK):
            raw += len(chunk)
            if raw > max_bytes:
                raise too_large
            body += inflater.feed(chunk)
        body += inflater.finish()
    except TooLarge:
        raise too_large from None
    except (zlib.error, EOFError) as exc:
        raise PermanentError(f"{url}: corrupt compressed body ({exc})") from None
    return bytes(body)


def retry_after_seconds(value: str | None, *, date: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 §10.2.3), or None.

    The header is either delay-seconds or an HTTP-date; a date is measured against the
    response's own Date header when there is one (the server's clock, so skew cancels out),
    else against `now` (POSIX seconds).
    """
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(int(value[:12]))
    when = _http_date(value)
    if when is None:
        return None
    reference = _http_date(date) if date else None
    base = reference if reference is not None else now
    return max(0.0, when - base)


def _http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


def _phrase(response: httpx.Response) -> str:
    # The standard phrase, not the server's: that one is free text from a hostile peer.
    try:
        return http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable() and len(value) <= 1024


def _size(n: int) -> str:
    for unit, factor in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def _local_path(url: str) -> Path | None:
    """The path a `file://` URL or an absolute path names; None for anything else."""
    if url[:5].lower() == "file:":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise PermanentError(f"{url}: file URLs on another host are not supported")
        return Path(unquote(parts.path))
    path = Path(url)
    return path if path.is_absolute() else None


def _read_local(url: str, path: Path, etag: str | None, max_bytes: int) -> FetchResult:
    try:
        info = path.stat()
        # A FIFO or a device would block or never end; only regular files are feeds.
        if not stat.S_ISREG(info.st_mode):
            raise PermanentError(f"{url}: not a regular file")
        if info.st_size > max_bytes:
            raise PermanentError(f"{url}: file larger than {_size(max_bytes)}")
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except (FileNotFoundError, NotADirectoryError):
        raise PermanentError(f"{url}: no such file") from None
    except PermissionError:
        raise PermanentError(f"{url}: permission denied") from None
    except IsADirectoryError:
        raise PermanentError(f"{url}: not a regular file") from None
    except OSError as exc:
        raise TransientError(f"{url}: {exc.strerror or exc}") from None
    if len(body) > max_bytes:
        raise PermanentError(f"{url}: file larger than {_size(max_bytes)}")
    # A strong validator from the content itself: an unchanged file costs no parse, whatever
    # its mtime says (a deploy that rewrites identical files, say).
    digest = '"sha256-' + hashlib.sha256(body).hexdigest() + '"'
    unchanged = etag == digest
    return FetchResult(
        status=304 if unchanged else 200,
        body=b"" if unchanged else body,
        not_modified=unchanged,
        etag=digest,
        last_modified=None,
        content_type=None,
        final_url=path.as_uri(),
    )
