"""Hostile input through parse_feed, on both readers (the lxml fast path and feedparser).

Hand-made cases: input that made feedparser raise plain exceptions is this feed's error, or is
read. Corpus cases (../shared/corpus/hostile, skipped when absent): every file parses or is
refused without a crash and with bounded output (no entity is ever expanded), and nothing from an
external entity and no script or event-handler markup reaches the text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from monitor.core.errors import NotAFeed, PermanentError
from monitor.core.model import Article
from monitor.edges.config import parse_duration
from monitor.edges.parse import ParsedFeed, parse_feed
from tests.corpus import corpus_files, needs_corpus

HOSTILE = corpus_files("hostile")
XSS = [p for p in HOSTILE if p.parent.name == "sanitize"]
PATH_IDS = [p.as_posix().split("/hostile/")[-1] for p in HOSTILE]
BOTH = pytest.mark.parametrize("fast", [True, False], ids=["fast", "feedparser"])
# Markup, not text: a tag that scripts or embeds, an event handler, a script URL.
MARKUP = re.compile(
    r"<\s*/?\s*(script|style|iframe|object|embed|img|svg|body|html|a)\b|javascript:|vbscript:"
    r"|\bon[a-z]+\s*=",
    re.IGNORECASE,
)
# What the sanitize fixtures' scripts do (location.href=..., executeMe(), alert(...)).
SCRIPT_BODY = re.compile(r"location\.href|executeMe|alert\(|document\.", re.IGNORECASE)


@BOTH
@pytest.mark.parametrize("ref", [b"&#xD800;", b"&#55296;", b"&#0;", b"&#x110000;", b"&#99999999;"])
def test_a_reference_to_a_non_character_costs_one_character_not_the_feed(
    ref: bytes, fast: bool
) -> None:
    body = (
        b"<rss><channel><title>t</title><item><title>A " + ref + b" B &#233;</title></item>"
        b"<item><title>second</title></item></channel></rss>"
    )
    titles = [a.title for a in parse_feed(body, feed_id="f", fast=fast).articles]
    assert titles == ["A \ufffd B é", "second"]


@BOTH
@pytest.mark.parametrize(
    "body",
    [
        b"<rss><channel><item><title>x</title></item></channel></rss>\x00\x00<item>",
        b'<?xml version="1.0" encoding="utf-32"?><rss><channel><item><title>x',
        bytes(range(256)) * 8,
    ],
)
def test_whatever_the_parser_raises_is_not_a_feed_or_a_result(body: bytes, fast: bool) -> None:
    try:
        parsed = parse_feed(body, feed_id="f", fast=fast)
    except NotAFeed as exc:
        assert str(exc)
    else:
        assert all(isinstance(a.title, str) for a in parsed.articles)


@pytest.mark.parametrize("text", ["9999999999d", "3651d", "87600h1s"])
def test_durations_that_would_overflow_a_date_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="longer than 3650 days"):
        parse_duration(text)


def texts(article: Article) -> list[str]:
    return [article.title, article.summary, article.content]


def parsed_or_none(path: Path, fast: bool) -> ParsedFeed | None:
    try:
        return parse_feed(path.read_bytes(), feed_id="h", fast=fast)
    except (NotAFeed, PermanentError):
        return None


@needs_corpus
@BOTH
@pytest.mark.parametrize("path", HOSTILE, ids=PATH_IDS)
def test_hostile_files_give_bounded_output(path: Path, fast: bool) -> None:
    parsed = parsed_or_none(path, fast)
    if parsed is None:
        return
    body_size = len(path.read_bytes())
    # An expanded entity multiplies the input (quadratic.xml: 100 KB used 2,000 times); what a
    # feed legitimately produces is its own text, at most a few times over (a summary copied
    # from the content, a guid from the link) plus a hash guid per entry.
    out = sum(len(t) for a in parsed.articles for t in [*texts(a), a.guid, a.url or ""])
    assert out <= 4 * body_size + 100 * len(parsed.articles)
    assert len(parsed.title) <= 1000


@needs_corpus
@BOTH
@pytest.mark.parametrize("path", HOSTILE, ids=PATH_IDS)
def test_external_entities_and_script_urls_never_reach_the_text(path: Path, fast: bool) -> None:
    parsed = parsed_or_none(path, fast)
    for article in parsed.articles if parsed else ():
        for text in [*texts(article), article.guid, article.author or "", *article.tags]:
            assert "root:x:0:0" not in text  # /etc/passwd, from an external entity
            assert "file:" not in text.lower()
            assert not MARKUP.search(text), text
        assert article.url is None or article.url.startswith(("http://", "https://"))


@needs_corpus
def test_the_xss_corpus_is_there() -> None:
    assert len(XSS) >= 100


@needs_corpus
@BOTH
@pytest.mark.parametrize("path", XSS, ids=[p.name for p in XSS])
def test_scripts_and_their_contents_are_dropped(path: Path, fast: bool) -> None:
    parsed = parsed_or_none(path, fast)
    assert parsed is not None
    feed_texts = [parsed.title, *(t for a in parsed.articles for t in texts(a))]
    for text in feed_texts:
        assert not MARKUP.search(text), text
        assert not SCRIPT_BODY.search(text), text
