"""Input that made feedparser raise plain exceptions: each is this feed's error, or is read."""

from __future__ import annotations

import pytest

from monitor.core.errors import NotAFeed
from monitor.edges.config import parse_duration
from monitor.edges.parse import parse_feed


@pytest.mark.parametrize("ref", [b"&#xD800;", b"&#55296;", b"&#0;", b"&#x110000;", b"&#99999999;"])
def test_a_reference_to_a_non_character_costs_one_character_not_the_feed(ref: bytes) -> None:
    body = (
        b"<rss><channel><title>t</title><item><title>A " + ref + b" B &#233;</title></item>"
        b"<item><title>second</title></item></channel></rss>"
    )
    titles = [a.title for a in parse_feed(body, feed_id="f").articles]
    assert titles == ["A \ufffd B é", "second"]


@pytest.mark.parametrize(
    "body",
    [
        b"<rss><channel><item><title>x</title></item></channel></rss>\x00\x00<item>",
        b'<?xml version="1.0" encoding="utf-32"?><rss><channel><item><title>x',
        bytes(range(256)) * 8,
    ],
)
def test_whatever_the_parser_raises_is_not_a_feed_or_a_result(body: bytes) -> None:
    try:
        parsed = parse_feed(body, feed_id="f")
    except NotAFeed as exc:
        assert str(exc)
    else:
        assert all(isinstance(a.title, str) for a in parsed.articles)


@pytest.mark.parametrize("text", ["9999999999d", "3651d", "87600h1s"])
def test_durations_that_would_overflow_a_date_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="longer than 3650 days"):
        parse_duration(text)
