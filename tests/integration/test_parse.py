"""monitor.edges.parse on small, hand-made feeds: one behaviour per test."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.core.errors import NotAFeed, PermanentError
from monitor.core.model import Article
from monitor.edges.parse import MAX_ENTRIES, parse_feed

FEED_URL = "https://news.example.org/feeds/world.xml"


def rss(items: str, channel: str = "", *, prolog: str = '<?xml version="1.0"?>') -> bytes:
    return (
        f'{prolog}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        f' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>World</title>'
        f"<link>https://news.example.org/</link>{channel}{items}</channel></rss>"
    ).encode()


def one(body: bytes, **kwargs: str | None) -> Article:
    [article] = parse_feed(body, feed_id="world", **kwargs).articles
    return article


def test_rss_title_is_plain_text_even_with_escaped_markup() -> None:
    article = one(rss("<item><title>A &amp; B &lt;script&gt;</title></item>"))
    assert article.title == "A & B <script>"


def test_rss_title_that_looks_like_html_is_stripped() -> None:
    item = "<item><title>&lt;i&gt;Le Monde&lt;/i&gt; &amp;amp; co</title></item>"
    assert one(rss(item)).title == "Le Monde & co"


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ('<title type="text">A &amp; B &lt;script&gt;</title>', "A & B <script>"),
        ('<title type="html">A &lt;b&gt;bold&lt;/b&gt; &amp;amp; more</title>', "A bold & more"),
        (
            '<title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">X <b>Y</b></div>'
            "</title>",
            "X Y",
        ),
    ],
)
def test_atom_title_types(title: str, text: str) -> None:
    body = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>f</title>'
        f"<entry><id>urn:1</id>{title}</entry></feed>"
    ).encode()
    assert one(body).title == text


def test_summary_and_content_are_text_without_scripts() -> None:
    item = (
        "<item><title>t</title>"
        "<description>&lt;p&gt;Short &lt;script&gt;steal()&lt;/script&gt;text&lt;/p&gt;"
        "</description>"
        "<content:encoded><![CDATA[<p>Long</p><style>p{}</style><p>story</p>]]></content:encoded>"
        "</item>"
    )
    article = one(rss(item))
    assert article.summary == "Short text"
    assert article.content == "Long\nstory"


def test_content_equal_to_summary_is_not_kept_twice() -> None:
    item = (
        "<item><title>t</title><description>Same words</description>"
        "<content:encoded>&lt;p&gt;Same words&lt;/p&gt;</content:encoded></item>"
    )
    article = one(rss(item))
    assert (article.summary, article.content) == ("Same words", "")


def test_content_alone_fills_the_summary() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>f</title><entry><id>urn:1</id>'
        b'<title>t</title><content type="html">&lt;p&gt;Only content&lt;/p&gt;</content>'
        b"</entry></feed>"
    )
    article = one(body)
    assert (article.summary, article.content) == ("Only content", "")


def test_guid_then_link_then_hash() -> None:
    items = (
        "<item><guid isPermaLink='false'>tag:x,2024:1</guid><title>a</title></item>"
        "<item><link>https://news.example.org/b</link><title>b</title></item>"
        "<item><title>c</title><pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate></item>"
    )
    first, second, third = parse_feed(rss(items), feed_id="world").articles
    assert first.guid == "tag:x,2024:1"
    assert second.guid == "https://news.example.org/b"
    assert third.guid.startswith("sha256:")
    assert third.guid == parse_feed(rss(items), feed_id="world").articles[2].guid


def test_links_are_absolute_and_http_only() -> None:
    items = (
        "<item><title>a</title><link>/2024/a.html</link></item>"
        "<item><title>b</title><link>javascript:alert(1)</link></item>"
        "<item><title>c</title><link>data:text/html,hi</link></item>"
        "<item><title>d</title><link>HTTPS://news.example.org/d</link></item>"
    )
    urls = [a.url for a in parse_feed(rss(items), feed_id="w", url=FEED_URL).articles]
    assert urls == [
        "https://news.example.org/2024/a.html",
        None,
        None,
        "https://news.example.org/d",
    ]


def test_relative_links_fall_back_to_the_channel_link() -> None:
    article = one(rss("<item><title>a</title><link>story/1</link></item>"))
    assert article.url == "https://news.example.org/story/1"


def test_tags_author_and_dates() -> None:
    item = (
        "<item><title>t</title><category>Politics</category><category>Europe</category>"
        "<category>Politics</category><dc:creator>Jane Roe</dc:creator>"
        "<pubDate>Wed, 01 May 2024 12:00:00 +0200</pubDate></item>"
        "<item><title>u</title><dc:date>2024-05-02T08:30:00Z</dc:date></item>"
        "<item><title>v</title><pubDate>the day after tomorrow</pubDate></item>"
    )
    first, second, third = parse_feed(rss(items=item), feed_id="w").articles
    assert first.tags == ("Politics", "Europe")
    assert first.author == "Jane Roe"
    assert first.published_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert second.published_at == datetime(2024, 5, 2, 8, 30, tzinfo=UTC)
    assert third.published_at is None


def test_language_hint_then_entry_then_feed() -> None:
    body = rss("<item><title>t</title></item>", "<language>pt-BR</language>")
    assert one(body).lang == "pt"
    assert one(body, lang_hint="es").lang == "es"
    assert parse_feed(body, feed_id="w").lang == "pt"
    atom = (
        b'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="de"><title>f</title>'
        b'<entry xml:lang="fr_FR"><id>urn:1</id><title>t</title></entry></feed>'
    )
    assert one(atom).lang == "fr"


def test_empty_items_are_skipped() -> None:
    items = "<item></item><item><title>kept</title></item><item><author>x</author></item>"
    assert [a.title for a in parse_feed(rss(items), feed_id="w").articles] == ["kept"]


def test_valid_feed_without_items() -> None:
    parsed = parse_feed(rss(""), feed_id="w")
    assert parsed.articles == ()
    assert (parsed.title, parsed.link, parsed.format) == (
        "World",
        "https://news.example.org/",
        "rss20",
    )


def test_broken_feed_with_entries_parses_with_a_warning() -> None:
    body = rss("<item><title>Fish &amp; chips & peas</title></item>")
    parsed = parse_feed(body, feed_id="w")
    assert [a.title for a in parsed.articles] == ["Fish & chips & peas"]
    assert parsed.warning and "SAXParseException" in parsed.warning


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html><head><title>Hi</title></head><body>x</body></html>", "HTML page"),
        (b"<html><body><p>Moved</p></body></html>", "HTML page"),
        (b"", "empty body"),
        (b"  \n\t", "empty body"),
        (b"<root><a>not a feed</a></root>", "no RSS, Atom or RDF"),
        (b"just words", "no RSS, Atom or RDF"),
        (b'{"rss": {"channel": {}}}', "JSON, but not JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [', "invalid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON"),
        (b"\x1f\x8bnot really gzip", "corrupt gzip"),
    ],
)
def test_not_a_feed(body: bytes, message: str) -> None:
    with pytest.raises(NotAFeed, match=message):
        parse_feed(body, feed_id="w")


def test_json_feed() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Blog",
        "home_page_url": "https://blog.example.org/",
        "feed_url": "https://blog.example.org/feed.json",
        "language": "de-AT",
        "items": [
            {
                "id": "1",
                "url": "/posts/1",
                "title": "A & B <script>",
                "content_html": "<p>Hello <b>world</b></p><script>alert(1)</script>",
                "summary": "Plain summary",
                "tags": ["x", 3, "y"],
                "authors": [{"name": "Ann"}],
                "date_published": "2024-05-01T12:00:00+02:00",
            },
            {"id": 2, "content_text": "Only text <kept>", "date_modified": "2024-05-02T00:00:00Z"},
            {"id": "3", "title": {"not": "a string"}},
            "not an item",
        ],
    }
    parsed = parse_feed(json.dumps(doc).encode(), feed_id="blog")
    assert (parsed.title, parsed.link, parsed.lang, parsed.format) == (
        "Blog",
        "https://blog.example.org/",
        "de",
        "json11",
    )
    first, second = parsed.articles
    assert first.guid == "1"
    assert first.url == "https://blog.example.org/posts/1"
    assert first.title == "A & B <script>"
    assert (first.summary, first.content) == ("Plain summary", "Hello world")
    assert first.tags == ("x", "y")
    assert first.author == "Ann"
    assert first.published_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert first.lang == "de"
    assert second.guid == "2"
    assert (second.summary, second.content) == ("Only text <kept>", "")
    assert second.published_at == datetime(2024, 5, 2, tzinfo=UTC)


def test_json_feed_1_0_author() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1",
        "items": [{"id": "a", "title": "t", "author": {"name": "Old Style"}}],
    }
    parsed = parse_feed(json.dumps(doc).encode(), feed_id="j")
    assert parsed.format == "json10"
    assert parsed.articles[0].author == "Old Style"


def test_gzip_body_is_inflated() -> None:
    body = gzip.compress(rss("<item><title>zipped</title></item>"))
    assert one(body).title == "zipped"


def test_gzip_bomb_body_is_refused() -> None:
    with pytest.raises(PermanentError, match="larger than 10 MiB"):
        parse_feed(gzip.compress(bytes(11 * 2**20)), feed_id="w")


def test_http_charset_is_honoured() -> None:
    body = rss("<item><title>Тайвань</title></item>", prolog="").decode().encode("windows-1251")
    article = one(body, content_type="application/rss+xml; charset=windows-1251")
    assert article.title == "Тайвань"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_wide_encodings(codec: str) -> None:
    body = rss(
        "<item><title>台湾 Тайвань</title></item>",
        prolog=f'<?xml version="1.0" encoding="{codec}"?>',
    ).decode()
    assert one(body.encode(codec)).title == "台湾 Тайвань"


@pytest.mark.timeout(10)
@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_entity_expansion_is_not_performed(codec: str) -> None:
    # feedparser would expand this "safe" literal entity 2,000 times (200 MB of title)
    prolog = '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "' + "B" * 100_000 + '">]>'
    body = rss(f"<item><title>x{'&a;' * 2000}</title></item>", prolog=prolog).decode()
    article = one(body.encode(codec))
    assert article.title.startswith("x&a;&a;")
    assert "BBBB" not in article.title


def test_external_entities_are_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-TOKEN")
    prolog = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY leak SYSTEM "{secret.as_uri()}">\n'
        '<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd">\n%remote;\n]>'
    )
    body = rss(
        "<item><title>a &leak; b</title><description>&leak;</description></item>", prolog=prolog
    )
    article = one(body)
    fields = (article.title, article.summary, article.content, article.guid)
    assert not any("TOP-SECRET" in f or "file:" in f for f in fields)


@pytest.mark.parametrize(
    ("fast", "warning"),
    [
        # feedparser reads every entry, then we keep the first MAX_ENTRIES
        (False, f"only the first {MAX_ENTRIES} of {MAX_ENTRIES + 3} entries were kept"),
        # the fast path stops reading at entry MAX_ENTRIES + 1, so it cannot count the rest
        (True, f"only the first {MAX_ENTRIES} entries were kept (the rest was not read)"),
    ],
)
def test_entries_beyond_the_cap_are_dropped_with_a_warning(fast: bool, warning: str) -> None:
    items = "".join(f"<item><title>{i}</title></item>" for i in range(MAX_ENTRIES + 3))
    parsed = parse_feed(rss(items), feed_id="w", fast=fast)
    assert parsed.parser == ("lxml" if fast else "feedparser")
    assert [a.title for a in parsed.articles] == [str(i) for i in range(MAX_ENTRIES)]
    assert parsed.warning == warning


SY = 'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"'


@pytest.mark.parametrize(
    ("channel", "seconds"),
    [
        ("<ttl>30</ttl>", 1800),
        ("<ttl> 5 </ttl>", 300),
        (
            "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>",
            1800,
        ),
        ("<sy:updatePeriod>Daily</sy:updatePeriod>", 86400),  # frequency defaults to 1
        ("<sy:updateFrequency>4</sy:updateFrequency>", 21600),  # period defaults to daily
        ("<ttl>10</ttl><sy:updatePeriod>hourly</sy:updatePeriod>", 600),  # ttl says it directly
        ("<sy:updatePeriod>yearly</sy:updatePeriod>", 7 * 86400),  # a year is cut to a week
        ("<ttl>99999999999</ttl>", 7 * 86400),
        ("", None),
        ("<ttl>0</ttl>", None),
        ("<ttl>-5</ttl>", None),
        ("<ttl>soon</ttl>", None),
        ("<ttl>1.5</ttl>", None),
        ("<ttl>" + "9" * 5000 + "</ttl>", None),
        ("<sy:updatePeriod>fortnightly</sy:updatePeriod>", None),
        (
            "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>0</sy:updateFrequency>",
            None,
        ),
        (
            "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>7200</sy:updateFrequency>",
            None,
        ),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["lxml", "feedparser"])
def test_ttl_seconds(channel: str, seconds: int | None, fast: bool) -> None:
    body = rss("<item><title>t</title></item>", channel).replace(b"<rss ", f"<rss {SY} ".encode())
    parsed = parse_feed(body, feed_id="w", fast=fast)
    assert parsed.parser == ("lxml" if fast else "feedparser")
    assert parsed.ttl_seconds == seconds


def test_ttl_inside_an_item_is_not_the_feeds() -> None:
    body = rss("<item><title>t</title><ttl>5</ttl></item>")
    assert parse_feed(body, feed_id="w").ttl_seconds is None
    assert parse_feed(body, feed_id="w", fast=False).ttl_seconds is None


def test_json_feeds_have_no_ttl() -> None:
    doc = {"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "t"}]}
    parsed = parse_feed(json.dumps(doc).encode(), feed_id="j")
    assert (parsed.ttl_seconds, parsed.parser) == (None, "json")
