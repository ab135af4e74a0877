"""The parse pool with real worker processes: same results as parsing in-process, errors that
keep their kind, a killed worker replaced without losing the parse, secrets kept out."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.core.errors import NotAFeed
from monitor.core.match import Matcher
from monitor.core.model import Watchlist
from monitor.edges.parse import ParsedFeed
from monitor.edges.parse_pool import ParsePool, default_workers
from monitor.edges.parse_worker import prepare
from tests.bench.corpus import feed
from tests.corpus import corpus_files


def _bodies() -> list[bytes]:
    """Generated feeds, and the first real publisher feeds where ../shared is here."""
    return [feed(i, 5, 20260204) for i in range(3)] + [
        p.read_bytes() for p in corpus_files("real")[:8]
    ]


async def _parse(pool: ParsePool, body: bytes, lang: str | None = None) -> ParsedFeed:
    return await pool.parse(body, feed_id="f", url="https://example.org/feed",
                            content_type=None, lang_hint=lang)  # fmt: skip


@pytest.fixture
async def pool() -> AsyncIterator[ParsePool]:
    """A pool of one worker, not started yet; closed after the test."""
    pool = ParsePool(1)
    yield pool
    await pool.aclose()


@pytest.mark.parametrize(("cpus", "workers"), [(1, 0), (2, 2), (3, 3), (4, 4), (8, 4), (64, 4)])
def test_default_workers_are_one_per_core_from_two_cores_up(cpus: int, workers: int) -> None:
    assert default_workers(cpus) == workers


async def test_workers_parse_exactly_as_in_process(pool: ParsePool) -> None:
    assert await pool.start(wait=True)
    for body in _bodies():
        local = prepare(body, feed_id="f", url="https://example.org/feed",
                        content_type=None, lang_hint=None)  # fmt: skip
        assert await _parse(pool, body) == local


def _matcher(*terms: str) -> Matcher:
    """The shipped-like watchlists of the bench corpus's subjects, plus one of `terms`."""
    lists = [{"id": "taiwan", "match": {"any": ["Taiwan", "Тайвань", "台湾", "Taïwan"]}},
             {"id": "ukraine", "match": {"any": ["Ukrain*", "Украин*", "乌克兰"]}}]  # fmt: skip
    if terms:
        lists.append({"id": "extra", "match": {"any": list(terms)}})
    return Matcher(Watchlist.model_validate(w) for w in lists)


async def _prepared(pool: ParsePool, body: bytes, matcher: Matcher) -> ParsedFeed:
    return await pool.parse(body, feed_id="f", url="https://example.org/feed",
                            content_type=None, lang_hint=None, matcher=matcher,
                            feed_tags=("wire",))  # fmt: skip


async def test_workers_match_exactly_as_in_process(pool: ParsePool) -> None:
    await pool.start(wait=True)
    matcher = _matcher()
    # A feed sure to match, besides the generated and real ones (which may not, or be absent).
    topical = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
               b"<item><title>Taiwan holds drills near Kinmen</title><guid>1</guid></item>"
               b"<item><title>Rain in the Alps</title><guid>2</guid></item>"
               b"<item><title>Ukrainian grain talks resume</title><guid>3</guid></item>"
               b"</channel></rss>")  # fmt: skip
    matched = 0
    for body in [topical, *_bodies()]:
        local = prepare(body, feed_id="f", url="https://example.org/feed", content_type=None,
                        lang_hint=None, matcher=matcher, feed_tags=("wire",))  # fmt: skip
        remote = await _prepared(pool, body, matcher)
        assert remote == local
        assert len(remote.prepared) == len(remote.articles)
        assert all(p.matches is not None for p in remote.prepared)
        matched += sum(bool(p.matches) for p in remote.prepared)
    assert matched  # the comparison covered matches, not only misses


async def test_a_new_matcher_reaches_the_workers_before_their_next_parse(
    pool: ParsePool,
) -> None:
    await pool.start(wait=True)
    body = feed(0, 20, 20260204)
    before = await _prepared(pool, body, _matcher())
    title = before.articles[0].title
    word = next(w for w in title.split() if w.isalpha() and len(w) > 3)
    # A reload: another Matcher, with a watchlist on a word of the first title.
    after = await _prepared(pool, body, _matcher(word))
    assert not any(m.watchlist_id == "extra" for p in before.prepared for m in p.matches or ())
    assert [m.watchlist_id for m in after.prepared[0].matches or ()][-1] == "extra"
    # A worker started after the reload (the first one killed) is told them too. Until the
    # replacement is up a thread parses, and leaves the matching to the daemon.
    current = _matcher(word)
    os.kill(pool.pids()[0], signal.SIGKILL)
    assert len((await _prepared(pool, body, current)).prepared) == 20
    await pool.start(wait=True)
    again = await _prepared(pool, body, current)
    assert [m.watchlist_id for m in again.prepared[0].matches or ()][-1] == "extra"


async def test_without_a_worker_matching_is_left_to_the_daemon() -> None:
    pool = ParsePool(0)
    parsed = await _prepared(pool, feed(0, 5, 20260204), _matcher())
    assert [p.article for p in parsed.prepared] == list(parsed.articles)
    assert all(p.matches is None and p.guid_key for p in parsed.prepared)
    await pool.aclose()


async def test_a_feed_error_keeps_its_kind_and_message(pool: ParsePool) -> None:
    await pool.start(wait=True)
    with pytest.raises(NotAFeed, match="HTML"):
        await _parse(pool, b"<!doctype html><html><body><p>Hello</p></body></html>")
    # The worker is still there for the next feed.
    assert (await _parse(pool, feed(1, 3, 1))).articles


async def test_a_killed_worker_is_replaced_and_the_parse_goes_through(pool: ParsePool) -> None:
    await pool.start(wait=True)
    (before,) = pool.pids()
    os.kill(before, signal.SIGKILL)
    parsed = await _parse(pool, feed(2, 4, 1))
    assert len(parsed.articles) == 4
    await pool.start(wait=True)  # the replacement's start, begun in the background
    (after,) = pool.pids()
    assert after != before


async def test_first_parses_do_not_wait_for_the_workers(pool: ParsePool) -> None:
    parsed = await _parse(pool, feed(3, 2, 1))  # no worker is up yet: a thread parses
    assert len(parsed.articles) == 2
    assert await pool.start(wait=True)


async def test_workers_get_no_monitor_variables(
    pool: ParsePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONITOR_TELEGRAM_TOKEN", "123:secret-token")
    await pool.start(wait=True)
    (pid,) = pool.pids()
    environ = await asyncio.to_thread(Path(f"/proc/{pid}/environ").read_bytes)
    assert b"secret-token" not in environ and b"MONITOR_" not in environ


async def test_close_stops_the_workers() -> None:
    pool = ParsePool(2)
    await pool.start(wait=True)
    pids = pool.pids()
    assert len(pids) == 2
    await pool.aclose()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
