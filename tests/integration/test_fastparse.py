"""The lxml fast path against feedparser: the same ParsedFeed, or the fast path declines.

Every real and hostile corpus file, with and without a feed URL (feedparser resolves guids and
links against it), goes through `parse_feed` twice, `fast=True` and `fast=False`, and the two
results must be equal field by field except `parser`, which says who read it. No difference is
allowed: the fast path ports feedparser's rules rather than approximating them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

import monitor.edges.fastparse as fastparse
from monitor.core.errors import MonitorError
from monitor.edges.parse import MAX_ENTRIES, ParsedFeed, parse_feed
from tests.corpus import corpus_files, needs_corpus

REAL = [p for p in corpus_files("real") if not p.name.endswith(".json")]
HOSTILE = corpus_files("hostile")
URLS = [None, "https://publisher.example/feeds/world.xml"]
# The real XML feeds feedparser has to read, and why (the rest, 69 of 73, take the fast path):
DECLINED = {
    # not well-formed (MANIFEST: "invalid token"): feedparser's loose parser reads it
    "en_guardian_world_rss20_illformed.xml",
    "zh-tw_coolloud_civic_news_rdf_big5_illformed.xml",
    # unescaped markup inside <content mode="xml"> / <title>: feedparser rebuilds it as XHTML
    "ja_brag_zakato_headline_atom03_shiftjis.xml",
    "ko_acnnewswire_pressreleases_rss20_euckr.xml",
}


def both(body: bytes, url: str | None = None, content_type: str | None = None) -> ParsedFeed | None:
    """The fast path's result after checking that feedparser's is the same (None: no feed)."""
    fast = _parse(body, url, content_type, fast=True)
    slow = _parse(body, url, content_type, fast=False)
    if isinstance(fast, ParsedFeed) and isinstance(slow, ParsedFeed):
        assert slow.parser in ("feedparser", "json")
        assert _fields(fast) == _fields(slow)
        for mine, theirs in zip(fast.articles, slow.articles, strict=True):
            assert dataclasses.asdict(mine) == dataclasses.asdict(theirs)
        return fast
    assert fast == slow  # the same error message
    return None


def _parse(body: bytes, url: str | None, content_type: str | None, *, fast: bool) -> Any:
    try:
        return parse_feed(body, feed_id="f", url=url, content_type=content_type, fast=fast)
    except MonitorError as exc:
        return f"{type(exc).__name__}: {exc}"


def _fields(parsed: ParsedFeed) -> dict[str, Any]:
    fields = dataclasses.asdict(parsed)
    fields.pop("parser")
    fields["articles"] = len(parsed.articles)
    return fields


@needs_corpus
@pytest.mark.parametrize("url", URLS, ids=["no-url", "url"])
@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_real_feeds_read_the_same_by_both_paths(path: Path, url: str | None) -> None:
    parsed = both(path.read_bytes(), url)
    assert parsed is not None
    assert parsed.parser == ("feedparser" if path.name in DECLINED else "lxml")


@needs_corpus
def test_fast_path_coverage_of_the_real_corpus() -> None:
    fast = [p.name for p in REAL if parse_feed(p.read_bytes(), feed_id="f").parser == "lxml"]
    assert len(REAL) == 73
    assert len(fast) == len(REAL) - len(DECLINED) == 69


@needs_corpus
@pytest.mark.parametrize("url", URLS, ids=["no-url", "url"])
@pytest.mark.parametrize(
    "path", HOSTILE, ids=[p.as_posix().split("/hostile/")[-1] for p in HOSTILE]
)
def test_hostile_files_read_the_same_by_both_paths(path: Path, url: str | None) -> None:
    both(path.read_bytes(), url)


def rss(items: str, channel: str = "", *, version: str = "2.0", ns: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="{version}"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:media="http://search.yahoo.com/mrss/"'
        f' xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"{ns}><channel>'
        f"<title>T</title><link>https://example.org/</link>{channel}{items}</channel></rss>"
    ).encode()


def atom(entries: str, attrs: str = "") -> bytes:
    return (
        f'<feed xmlns="http://www.w3.org/2005/Atom"{attrs}><title>F</title>'
        f'<link href="https://example.org/"/>{entries}</feed>'
    ).encode()


FAST_CASES = {
    "guid permalink and not": rss(
        '<item><guid>42</guid><title>a</title></item><item><guid isPermaLink="false">43</guid>'
        "<title>b</title></item><item><link>/rel</link><guid>https://example.org/g</guid>"
        "<title>c</title></item>"
    ),
    "authors": rss(
        "<item><title>a</title><author>jane@example.org (Jane Roe)</author></item>"
        "<item><title>b</title><dc:creator>A</dc:creator><dc:creator>B</dc:creator></item>"
        "<item><title>c</title><itunes:author>Pod</itunes:author></item>"
    ),
    "categories": rss(
        '<item><title>a</title><category domain="d">X</category><category>X</category>'
        "<dc:subject>Y</dc:subject><media:category>Z</media:category>"
        "<itunes:keywords>k1, k2,,</itunes:keywords><media:keywords>m1,m2</media:keywords>"
        '<itunes:category text="Outer"><itunes:category text="Inner"/></itunes:category></item>'
    ),
    "description then media description": rss(
        "<item><title>a</title><description>&lt;p&gt;one&lt;/p&gt;</description>"
        "<media:content url='https://example.org/x.jpg'><media:title>mt</media:title>"
        "<media:description>two</media:description></media:content></item>"
    ),
    "content before description": rss(
        "<item><title>a</title><content:encoded>&lt;b&gt;long&lt;/b&gt;</content:encoded>"
        "<description>short</description></item>"
    ),
    "looks like html titles": rss(
        "<item><title>&lt;i&gt;x&lt;/i&gt; &amp;amp; y</title></item>"
        "<item><title>a &lt; b &amp;c</title></item><item><title>&lt;foo&gt;x&lt;/foo&gt;</title>"
        "</item>"
    ),
    "mojibake and cp1252": rss(
        "<item><title>Ð¯Ð½Ð´ÐµÐºÑ</title>"
        "<description>\u0093quoted\u0094 \u0080</description></item>"
    ),
    "source and image": rss(
        '<item><title>a</title><source url="https://s.example/">Src</source></item>',
        "<image><title>Img</title><url>https://example.org/i.png</url>"
        "<link>https://example.org/img</link></image><ttl>15</ttl>",
    ),
    "rss 0.91": rss(
        "<item><title>a</title><link>https://example.org/a</link></item>", version="0.91"
    ),
    "no version": rss("<item><title>a</title></item>", version=""),
    "atom people, lang, base": atom(
        '<entry xml:lang="de_AT" xml:base="https://base.example/dir/"><id>urn:x:1</id>'
        "<title type='html'>&lt;b&gt;A&lt;/b&gt;</title><link rel='alternate' href='p/1'/>"
        "<author><name>N1</name><email>n1@example.org</email></author>"
        "<author><name>N2</name></author><updated>2024-05-01T10:00:00+02:00</updated>"
        "<category term='t1' label='L1'/><category label='L2'/>"
        "<summary>s</summary><content type='html'>&lt;p&gt;c&lt;/p&gt;</content></entry>"
        "<entry><title type='xhtml'>plain &amp; simple</title><content src='https://x/'/>"
        "<published>2024-05-02T00:00:00Z</published></entry>",
        ' xml:lang="fr"',
    ),
    "atom content then summary": atom(
        "<entry><id>tag:a</id><title>t</title><content>body</content><summary>sum</summary>"
        "</entry><entry><id>tag:b</id><summary>one</summary><summary>two</summary></entry>"
    ),
    "atom base64 content": atom(
        "<entry><id>tag:a</id><content type='application/octet-stream'>aGVsbG8=</content></entry>"
    ),
    "rdf 1.0 with sy": (
        b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        b' xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel rdf:about="x">'
        b"<title>R</title><link>https://example.org/</link><dc:language>pt-BR</dc:language>"
        b"<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>"
        b'</channel><item rdf:about="https://example.org/1"><title>one</title>'
        b"<dc:date>2024-05-01T08:30:00Z</dc:date></item></rdf:RDF>"
    ),
    "unknown namespaces": rss(
        '<item><title>a</title><x:title>not it</x:title><x:thing y="1">z</x:thing></item>',
        ns=' xmlns:x="https://unknown.example/ns"',
    ),
}


@pytest.mark.parametrize("url", URLS, ids=["no-url", "url"])
@pytest.mark.parametrize("body", FAST_CASES.values(), ids=FAST_CASES.keys())
def test_hand_made_feeds_take_the_fast_path_and_match(body: bytes, url: str | None) -> None:
    parsed = both(body, url)
    assert parsed is not None
    assert parsed.parser == "lxml"


@pytest.mark.parametrize("content_type", ["text/html", "text/xml", "application/rss+xml"])
def test_content_types_match(content_type: str) -> None:
    both(rss("<item><title>caf\u00e9</title></item>"), content_type=content_type)


DECLINES = {
    "undefined entity": rss("<item><title>a&nbsp;b</title></item>"),
    "internal entity": b'<!DOCTYPE rss [<!ENTITY e "x">]>' + rss("<item><title>&e;</title></item>"),
    "markup in a title": rss("<item><title>a <b>bold</b> move</title></item>"),
    "markup in a category": rss(
        '<item><title>a</title><category>x<y z="1">w</y></category></item>'
    ),
    "xhtml content": atom(
        '<entry><id>i</id><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">'
        "<p>x</p></div></content></entry>"
    ),
    "undeclared prefix": rss("<item><title>a</title><foo:bar>x</foo:bar></item>"),
    "unbound prefix": rss('<item xmlns:x=""><title>a</title></item>'),
    "georss": rss(
        "<item><title>a</title><georss:point>1 2</georss:point></item>",
        ns=' xmlns:georss="http://www.georss.org/georss"',
    ),
    "not well-formed": rss("<item><title>Fish &amp; chips & peas</title></item>"),
    "not a feed root": b"<html><body><item><title>x</title></item></body></html>",
}


@pytest.mark.parametrize("body", DECLINES.values(), ids=DECLINES.keys())
def test_unusual_documents_fall_back_to_feedparser(body: bytes) -> None:
    fast = _parse(body, None, None, fast=True)
    if isinstance(fast, ParsedFeed):
        assert fast.parser == "feedparser"
    both(body)


def test_a_huge_feed_costs_max_entries_items_and_one_block_of_tree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = "".join(
        f"<item><title>Item {i}</title><guid>g{i}</guid></item>" for i in range(100_000)
    )
    body = rss(items)
    assert len(body) > 4_000_000
    started: list[int] = []
    kept: list[int] = []
    start_item = fastparse._STARTS["item"]

    def spy(port: Any, attrs: dict[str, str]) -> None:
        started.append(1)
        kept.append(len(port.element.getparent()))  # the channel's children still in memory
        start_item(port, attrs)

    monkeypatch.setitem(fastparse._STARTS, "item", spy)
    parsed = parse_feed(body, feed_id="big")
    assert parsed.parser == "lxml"
    assert len(parsed.articles) == MAX_ENTRIES
    assert parsed.articles[-1].title == f"Item {MAX_ENTRIES - 1}"
    assert (
        parsed.warning == f"only the first {MAX_ENTRIES} entries were kept (the rest was not read)"
    )
    assert len(started) == MAX_ENTRIES + 1  # the one that found the cap
    # Finished items are dropped; what is left is the one block lxml has read ahead (32 KiB of
    # XML, ~600 of these items), however long the feed.
    assert max(kept) < 1_000


def test_an_unknown_element_with_attributes_replaces_a_value_as_in_feedparser() -> None:
    parsed = both(rss("<item><title>a</title></item>", '<ttl>5</ttl><ttl unit="min">7</ttl>'))
    assert parsed is not None
    assert (parsed.parser, parsed.ttl_seconds) == ("lxml", None)
