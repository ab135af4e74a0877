"""Canonical URLs and dedupe keys: a table of the copies publishers hand out."""

from __future__ import annotations

import pytest

from monitor.core.dedupe import canonical_url, guid_key, url_key

CANONICAL = [
    ("https://Example.ORG/a/b", "https://example.org/a/b"),
    ("HTTPS://example.org/a", "https://example.org/a"),
    ("https://example.org", "https://example.org/"),
    ("https://example.org:443/a", "https://example.org/a"),
    ("http://example.org:80/a", "http://example.org/a"),
    ("http://example.org:8080/a", "http://example.org:8080/a"),
    ("https://example.org/a#comments", "https://example.org/a"),
    ("https://example.org/a?utm_source=rss&utm_medium=feed", "https://example.org/a"),
    ("https://example.org/a?id=7&utm_campaign=x", "https://example.org/a?id=7"),
    ("https://example.org/a?UTM_Source=x&id=7", "https://example.org/a?id=7"),
    ("https://example.org/a?fbclid=abc", "https://example.org/a"),
    ("https://example.org/a?gclid=abc&dclid=d&msclkid=m", "https://example.org/a"),
    ("https://example.org/a?b=2&a=1", "https://example.org/a?a=1&b=2"),
    ("https://example.org/A/Case", "https://example.org/A/Case"),
    ("https://example.org/a?q=", "https://example.org/a?q="),
    ("https://bücher.example/a", "https://xn--bcher-kva.example/a"),
    ("https://example.org./a", "https://example.org/a"),
    ("  https://example.org/a  ", "https://example.org/a"),
    ("https://[::1]:8443/a", "https://[::1]:8443/a"),
    ("ftp://example.org/a", None),
    ("javascript:alert(1)", None),
    ("/relative/path", None),
    ("https://", None),
    ("http://example.org:99999/a", None),
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonical_url(url: str, expected: str | None) -> None:
    assert canonical_url(url) == expected


def test_tracking_copies_share_a_key() -> None:
    base = url_key("https://www.example.org/story/1")
    assert base is not None
    assert url_key("https://WWW.example.org/story/1?utm_source=twitter#top") == base
    assert url_key("https://www.example.org/story/1?fbclid=IwAR0") == base
    assert url_key("https://www.example.org/story/2") != base
    assert url_key(None) is None
    assert url_key("mailto:x@example.org") is None


def test_guid_key_is_fixed_width_and_distinct() -> None:
    long_guid = "x" * 10_000
    assert len(guid_key(long_guid)) == 64
    assert guid_key("a") != guid_key("b")
    assert guid_key(" a ") == guid_key("a")
    # a URL and a GUID with the same text are different kinds of key
    assert guid_key("https://example.org/") != url_key("https://example.org/")
