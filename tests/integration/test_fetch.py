"""monitor.edges.fetch against a real HTTP server on 127.0.0.1 (tests/fakes/feed_server.py)."""

from __future__ import annotations

import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from monitor.core.errors import PermanentError, TransientError
from monitor.edges.fetch import USER_AGENT, fetch, make_client, retry_after_seconds
from tests.fakes.feed_server import FeedServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LAST_MODIFIED = "Wed, 01 May 2024 10:00:00 GMT"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(user_agent=USER_AGENT, timeout=5.0, max_connections=4) as c:
        yield c


async def test_200_returns_body_and_validators(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    result = await fetch(client, feed_server.url("/feed"), etag=None, last_modified=None)
    assert (result.status, result.body, result.not_modified) == (200, RSS, False)
    assert (result.etag, result.last_modified) == ('"v1"', LAST_MODIFIED)
    assert result.content_type == "application/rss+xml"
    assert result.final_url == feed_server.url("/feed")
    assert not result.permanent_redirect
    assert "date" in result.headers
    [request] = feed_server.requests_to("/feed")
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in request.headers


async def test_304_sends_validators_back(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", RSS, etag='"v1"', last_modified=LAST_MODIFIED)
    first = await fetch(client, feed_server.url("/feed"))
    second = await fetch(
        client, feed_server.url("/feed"), etag=first.etag, last_modified=first.last_modified
    )
    assert (second.status, second.not_modified, second.body) == (304, True, b"")
    assert (second.etag, second.last_modified) == ('"v1"', LAST_MODIFIED)
    sent = feed_server.requests_to("/feed")[1].headers
    assert sent["if-none-match"] == '"v1"'
    assert sent["if-modified-since"] == LAST_MODIFIED


async def test_304_from_last_modified_alone(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", RSS, last_modified=LAST_MODIFIED)
    result = await fetch(client, feed_server.url("/feed"), last_modified=LAST_MODIFIED)
    assert result.not_modified
    assert result.last_modified == LAST_MODIFIED


async def test_changed_etag_gets_the_new_body(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", RSS, etag='"v2"')
    result = await fetch(client, feed_server.url("/feed"), etag='"v1"')
    assert (result.status, result.body, result.etag) == (200, RSS, '"v2"')


async def test_redirect_chain_is_followed_and_301_flagged(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.redirect("/old", "/moved", status=301)
    feed_server.redirect("/moved", feed_server.url("/today"), status=302)
    feed_server.add("/today", RSS)
    result = await fetch(client, feed_server.url("/old"))
    assert result.body == RSS
    assert result.final_url == feed_server.url("/today")
    assert result.permanent_redirect
    # the 302 may change back: the URL to keep is where the permanent hop pointed
    assert result.permanent_url == feed_server.url("/moved")
    assert [r.path for r in feed_server.requests] == ["/old", "/moved", "/today"]


@pytest.mark.parametrize(
    ("status", "permanent"), [(302, False), (303, False), (307, False), (308, True)]
)
async def test_redirect_kinds(
    feed_server: FeedServer, client: httpx.AsyncClient, status: int, permanent: bool
) -> None:
    feed_server.redirect("/a", "/b", status=status)
    feed_server.add("/b", RSS)
    result = await fetch(client, feed_server.url("/a"))
    assert result.body == RSS
    assert result.permanent_redirect is permanent
    assert result.permanent_url == (feed_server.url("/b") if permanent else None)


async def test_redirect_loop_is_permanent(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.redirect("/x", "/y")
    feed_server.redirect("/y", "/x")
    with pytest.raises(PermanentError, match="redirect loop") as caught:
        await fetch(client, feed_server.url("/x"))
    assert feed_server.url("/x") in str(caught.value)


async def test_too_many_redirects_is_permanent(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    for hop in range(7):
        feed_server.redirect(f"/r{hop}", f"/r{hop + 1}")
    feed_server.add("/r7", RSS)
    with pytest.raises(PermanentError, match="more than 5 redirects"):
        await fetch(client, feed_server.url("/r0"))
    assert len(feed_server.requests) == 6


async def test_redirect_off_http_is_refused(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.redirect("/evil", "file:///etc/passwd")
    with pytest.raises(PermanentError, match="off http"):
        await fetch(client, feed_server.url("/evil"))


@pytest.mark.parametrize(
    ("status", "phrase"), [(404, "Not Found"), (410, "Gone"), (403, "Forbidden")]
)
async def test_4xx_is_permanent(
    feed_server: FeedServer, client: httpx.AsyncClient, status: int, phrase: str
) -> None:
    feed_server.add("/feed", b"no", status=status)
    url = feed_server.url("/feed")
    with pytest.raises(PermanentError) as caught:
        await fetch(client, url)
    assert str(caught.value) == f"{url}: HTTP {status} {phrase}"


@pytest.mark.parametrize("status", [500, 502, 503, 408])
async def test_5xx_is_transient(
    feed_server: FeedServer, client: httpx.AsyncClient, status: int
) -> None:
    feed_server.add("/feed", b"oops", status=status)
    with pytest.raises(TransientError, match=f"HTTP {status}") as caught:
        await fetch(client, feed_server.url("/feed"))
    assert caught.value.retry_after is None


async def test_429_carries_retry_after_seconds(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", b"slow down", status=429, headers={"Retry-After": "120"})
    with pytest.raises(TransientError, match="HTTP 429 Too Many Requests") as caught:
        await fetch(client, feed_server.url("/feed"))
    assert caught.value.retry_after == 120


async def test_503_retry_after_http_date(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    # measured against the server's own Date header, which the fake always sends
    later = formatdate(time.time() + 300, usegmt=True)
    feed_server.add("/feed", b"", status=503, headers={"Retry-After": later})
    with pytest.raises(TransientError) as caught:
        await fetch(client, feed_server.url("/feed"))
    assert caught.value.retry_after is not None
    assert 295 <= caught.value.retry_after <= 301


def test_retry_after_seconds_forms() -> None:
    date = "Wed, 01 May 2024 10:00:00 GMT"
    assert retry_after_seconds("30", date=None, now=0) == 30
    assert retry_after_seconds("Wed, 01 May 2024 10:02:00 GMT", date=date, now=0) == 120
    assert retry_after_seconds("Wed, 01 May 2024 09:00:00 GMT", date=date, now=0) == 0
    now = 1714557600.0  # 2024-05-01T10:00:00Z
    assert retry_after_seconds("Wed, 01 May 2024 10:00:45 GMT", date=None, now=now) == 45
    assert retry_after_seconds("soon", date=None, now=now) is None
    assert retry_after_seconds("-5", date=None, now=now) is None
    assert retry_after_seconds(None, date=None, now=now) is None


@pytest.mark.timeout(10)
async def test_hang_times_out_within_the_deadline(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", RSS, hang=True)
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"within 0\.5 s"):
        await fetch(client, feed_server.url("/feed"), deadline=0.5)
    assert time.monotonic() - started < 3


@pytest.mark.timeout(10)
async def test_trickle_times_out_within_the_deadline(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    # a byte every 0.2 s: each read is far inside httpx's 5 s read timeout
    feed_server.add("/feed", RSS, trickle=0.2)
    started = time.monotonic()
    with pytest.raises(TransientError, match="no complete answer"):
        await fetch(client, feed_server.url("/feed"), deadline=0.5)
    assert time.monotonic() - started < 3


async def test_gzip_body_is_decoded(feed_server: FeedServer, client: httpx.AsyncClient) -> None:
    feed_server.add("/feed", RSS * 100, gzip=True)
    result = await fetch(client, feed_server.url("/feed"))
    assert result.body == RSS * 100


@pytest.mark.parametrize("raw", [False, True])
async def test_deflate_body_is_decoded_zlib_or_raw(
    feed_server: FeedServer, client: httpx.AsyncClient, raw: bool
) -> None:
    squeeze = zlib.compressobj(wbits=-15 if raw else 15)
    body = squeeze.compress(RSS * 50) + squeeze.flush()
    feed_server.add("/feed", body, headers={"Content-Encoding": "deflate"})
    result = await fetch(client, feed_server.url("/feed"))
    assert result.body == RSS * 50


async def test_concatenated_gzip_members(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    body = gzip.compress(RSS[:20]) + gzip.compress(RSS[20:])
    feed_server.add("/feed", body, headers={"Content-Encoding": "gzip"})
    assert (await fetch(client, feed_server.url("/feed"))).body == RSS


async def test_gzip_bomb_is_stopped_at_the_cap(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    bomb = gzip.compress(bytes(50 * 2**20), compresslevel=9)
    assert len(bomb) < 100_000
    feed_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(PermanentError, match="response larger than 1 MiB"):
            await fetch(client, feed_server.url("/bomb"), max_bytes=2**20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20  # the cap plus a copy (2.3 MB seen), far from the 50 MB inflated


async def test_corrupt_gzip_is_permanent(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", gzip.compress(RSS)[:-12], headers={"Content-Encoding": "gzip"})
    with pytest.raises(PermanentError, match="corrupt compressed body"):
        await fetch(client, feed_server.url("/feed"))


async def test_unknown_content_encoding_is_permanent(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", b"\x00\x01", headers={"Content-Encoding": "br"})
    with pytest.raises(PermanentError, match="unsupported Content-Encoding 'br'"):
        await fetch(client, feed_server.url("/feed"))


@pytest.mark.timeout(10)
async def test_huge_content_length_is_refused_without_reading(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    # The body never comes: reading it would end in the deadline's TransientError instead.
    feed_server.add("/feed", RSS, content_length=10**12, hang_after_headers=True)
    with pytest.raises(PermanentError, match="response larger than 10 MiB"):
        await fetch(client, feed_server.url("/feed"), deadline=5)


async def test_body_over_the_cap_is_permanent(
    feed_server: FeedServer, client: httpx.AsyncClient
) -> None:
    feed_server.add("/feed", b"x" * 5000)
    with pytest.raises(PermanentError, match="response larger than 4000 bytes"):
        await fetch(client, feed_server.url("/feed"), max_bytes=4000)


async def test_connection_refused_is_transient(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed"
    with pytest.raises(TransientError, match="ConnectError") as caught:
        await fetch(client, url)
    assert url in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://example.org/feed", "feeds/relative.xml"])
async def test_unsupported_urls_are_permanent(client: httpx.AsyncClient, url: str) -> None:
    with pytest.raises(PermanentError, match="not an http"):
        await fetch(client, url)


@pytest.mark.parametrize("as_uri", [False, True])
async def test_local_file_and_not_modified(
    client: httpx.AsyncClient, tmp_path: Path, as_uri: bool
) -> None:
    path = tmp_path / "feed one.xml"
    path.write_bytes(RSS)
    url = path.as_uri() if as_uri else str(path)
    first = await fetch(client, url)
    assert (first.status, first.body, first.not_modified) == (200, RSS, False)
    assert first.etag and first.final_url == path.as_uri()
    again = await fetch(client, url, etag=first.etag)
    assert (again.status, again.body, again.not_modified) == (304, b"", True)
    path.write_bytes(RSS + b"\n")
    changed = await fetch(client, url, etag=first.etag)
    assert (changed.body, changed.not_modified) == (RSS + b"\n", False)
    assert changed.etag != first.etag


async def test_local_file_errors(client: httpx.AsyncClient, tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="no such file") as caught:
        await fetch(client, str(tmp_path / "missing.xml"))
    assert "missing.xml" in str(caught.value)
    with pytest.raises(PermanentError, match="not a regular file"):
        await fetch(client, str(tmp_path))
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(PermanentError, match="larger than 1 KiB"):
        await fetch(client, big.as_uri(), max_bytes=1024)
    with pytest.raises(PermanentError, match="another host"):
        await fetch(client, "file://server/share/feed.xml")


@pytest.mark.timeout(10)
async def test_feed_server_closes_with_hung_and_silent_clients(client: httpx.AsyncClient) -> None:
    before = set(threading.enumerate())
    with FeedServer() as server:
        host, port = server.root_url.removeprefix("http://").split(":")
        silent = socket.create_connection((host, int(port)))  # connects, never sends a request
        assert server.wait_for_connections(1)
        server.add("/hang", RSS, hang=True)
        server.add("/slow", RSS, trickle=1.0)
        for path in ("/hang", "/slow"):
            with pytest.raises(TransientError):
                await fetch(client, server.url(path), deadline=0.3)
    silent.close()
    assert set(threading.enumerate()) <= before
