"""Fetch one feed's bytes over HTTP(S), or from a local file, within hard limits.

Contract:

- `make_client(user_agent=, timeout=, max_connections=)` builds the shared `httpx.AsyncClient`,
  over aiohttp's pool (monitor.edges.transport), keeping no cookies. `fetch` takes any
  `httpx.AsyncClient`; with make_client's it skips httpx's request machinery, making the request
  `client.send` would make with the client's headers and timeouts (`transport.sender`).
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
import email.utils
import functools
import hashlib
import http
import stat
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote, urlsplit

import httpx

from monitor.core.errors import PermanentError, TransientError
from monitor.edges.inflate import Inflater, TooLarge
from monitor.edges.transport import AiohttpTransport, Response, bind, sender

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
#: Feed URLs kept parsed, about 0.5 KB each: more feeds than one process polls.
URL_CACHE_SIZE = 16_384


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

    The httpx API over aiohttp's connection pool (monitor.edges.transport). On loopback `fetch`
    gets a 304 through it for about a seventh of the CPU httpcore's pool takes (whose every
    request scans every pooled connection), and a third of what the same transport takes
    through `AsyncClient.send` (`make bench-transport`). It keeps no cookies.
    """
    transport = AiohttpTransport(
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
    )
    client = httpx.AsyncClient(
        headers={
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            # Only codings decoded here, under the size cap; never br/zstd (see Inflater).
            "Accept-Encoding": "gzip, deflate",
        },
        timeout=httpx.Timeout(timeout),
        transport=transport,
        # fetch() follows redirects itself, up to MAX_REDIRECTS: httpx reads (and inflates)
        # every redirect's body in full before following it, with no size limit.
        follow_redirects=False,
        max_redirects=MAX_REDIRECTS,
        # No cookies: one jar shared by every feed grows with each site that sets one, and
        # httpx copies it and http.cookiejar scans all its domains on every request.
        cookies=CookieJar(DefaultCookiePolicy(allowed_domains=[])),
    )
    return bind(client, transport)


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
    local = None if url[:4].lower() == "http" else _local_path(url)  # no Path for http(s)
    try:
        # One deadline for the whole exchange: httpx's read timeout applies per read, so a server
        # trickling one byte every half second would otherwise never time out.
        async with asyncio.timeout(deadline):
            if local is not None:
                return await asyncio.to_thread(_read_local, url, local, etag, max_bytes)
            return await _fetch_http(client, url, etag, last_modified, max_bytes, deadline)
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


@functools.lru_cache(maxsize=URL_CACHE_SIZE)
def _parse_url(url: str) -> httpx.URL:
    # httpx takes ~20 µs to parse a URL, a seventh of a whole 304 exchange on make_client's
    # path: each feed's is parsed once (while among the URL_CACHE_SIZE last fetched).
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise PermanentError(f"{url}: not an http(s) URL or absolute path")
    return httpx.URL(url)


async def _fetch_http(
    client: httpx.AsyncClient,
    url: str,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    deadline: float,
) -> FetchResult:
    target = _parse_url(url)
    headers: dict[str, str] = {}
    # Validators come from a server; one with CR/LF or non-ASCII would make the request invalid.
    if etag and _header_safe(etag):
        headers["If-None-Match"] = etag
    if last_modified and _header_safe(last_modified):
        headers["If-Modified-Since"] = last_modified
    hops = sender(client, headers, deadline)
    final_url = str(target)
    seen = {final_url}
    permanent = False
    permanent_url: str | None = None
    only_permanent_so_far = True
    for _ in range(MAX_REDIRECTS + 1):
        response = await hops.send(target)
        try:
            nxt = hops.redirect(target, response)
            if nxt is None:
                moved = (permanent, permanent_url)
                return await _finish(
                    response, final_url, url, etag, last_modified, max_bytes, moved
                )
            location = str(nxt)
            if nxt.scheme not in ("http", "https"):
                raise PermanentError(f"{url}: redirected off http(s), to {location}")
            if location in seen:
                raise PermanentError(f"{url}: redirect loop at {location}")
            seen.add(location)
            if response.status_code in (301, 308):
                permanent = True
                if only_permanent_so_far:
                    permanent_url = location
            else:
                only_permanent_so_far = False
            target, final_url = nxt, location
        finally:
            # The redirect's own body is never read.
            await response.aclose()
    raise PermanentError(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _finish(
    response: Response,
    final_url: str,
    url: str,
    etag: str | None,
    last_modified: str | None,
    max_bytes: int,
    moved: tuple[bool, str | None],
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
            final_url=final_url,
            permanent_redirect=moved[0],
            permanent_url=moved[1],
            headers=MappingProxyType(
                {k: v for k in KEPT_HEADERS if (v := headers.get(k)) is not None}
            ),
        )

    if status == 304:
        # RFC 9110 §15.4.5: a 304 may refresh the validators; keep ours when it does not.
        return result(
            b"", headers.get("etag") or etag, headers.get("last-modified") or last_modified
        )
    what = f"{url}: HTTP {status} {_phrase(status)}".rstrip()
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


async def _read_body(response: Response, url: str, max_bytes: int) -> bytes:
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


def _phrase(status: int) -> str:
    # The standard phrase, not the server's: that one is free text from a hostile peer.
    try:
        return http.HTTPStatus(status).phrase
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
