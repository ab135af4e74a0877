"""monitor.edges.parse on the shared corpus: 79 real publisher feeds and ~300 hostile files.

The corpus is read in place (tests/corpus.py), never copied here; see corpus/MANIFEST.md.
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from monitor.core.errors import NotAFeed, PermanentError
from monitor.core.model import Article
from monitor.edges.parse import ParsedFeed, parse_feed
from tests.corpus import corpus_files, needs_corpus, shared_dir

pytestmark = needs_corpus

REAL = corpus_files("real")
HOSTILE = corpus_files("hostile")
# MANIFEST.md: "valid channel with ZERO items".
EMPTY = {"en_dailymail_worldnews_rss20_empty.xml"}
# MANIFEST.md: "JSON but NOT JSON Feed" and "INVALID JSON ... truncated".
NOT_FEEDS = {
    "en_scriptingnews_rss_in_json_not_jsonfeed.json",
    "en_allthis_jsonfeed_partial_invalid.json",
}


def real(name: str) -> ParsedFeed:
    base = shared_dir()
    assert base is not None
    return parse_feed((base / "corpus" / "real" / name).read_bytes(), feed_id=name)


def fields(article: Article) -> list[str]:
    return [
        article.guid,
        article.url or "",
        article.title,
        article.summary,
        article.content,
        article.author or "",
        *article.tags,
    ]


def assert_clean(article: Article) -> None:
    assert article.guid
    assert article.url is None or article.url.startswith(("http://", "https://"))
    assert article.published_at is None or article.published_at.tzinfo is UTC
    for text in fields(article):
        assert isinstance(text, str)
        assert "<script" not in text.lower()
        assert "\x00" not in text


@pytest.mark.parametrize("path", REAL, ids=[p.name for p in REAL])
def test_every_real_feed_parses(path: Path) -> None:
    body = path.read_bytes()
    if path.name in NOT_FEEDS:
        with pytest.raises(NotAFeed, match="JSON"):
            parse_feed(body, feed_id="real")
        return
    parsed = parse_feed(body, feed_id="real", url="https://publisher.example/feed")
    assert isinstance(parsed.title, str)
    assert (len(parsed.articles) == 0) == (path.name in EMPTY)
    assert len({a.guid for a in parsed.articles}) >= len(parsed.articles) * 0.9
    for article in parsed.articles:
        assert article.feed_id == "real"
        assert_clean(article)
        assert len(article.title) <= 1000
        assert len(article.summary) <= 10_000
        assert len(article.content) <= 50_000


@pytest.mark.parametrize(
    ("name", "count", "fmt"),
    [
        ("de_3960_journal_jsonfeed11.json", 20, "json11"),
        ("en_lukedorny_jsonfeed11_escaped_uris.json", 30, "json11"),
        ("en_inessential_jsonfeed10.json", 20, "json10"),
        ("en_daringfireball_jsonfeed10.json", 48, "json10"),
    ],
)
def test_json_feeds(name: str, count: int, fmt: str) -> None:
    parsed = real(name)
    assert (len(parsed.articles), parsed.format) == (count, fmt)
    assert all(a.url and "\\/" not in a.url for a in parsed.articles)
    assert all(a.title or a.summary for a in parsed.articles)


def test_gzip_body_is_the_same_feed_as_the_plain_one() -> None:
    zipped = real("ru_orenburg_news_rss20_gzip_body.xml.gz")
    plain = real("ru_orenburg_news_rss20_windows1251_yandex_ns.xml")
    assert len(zipped.articles) == 10
    assert [a.title for a in zipped.articles] == [a.title for a in plain.articles]


def test_legacy_encodings_decode_to_the_same_text() -> None:
    cp1251 = real("ru_newsru_rss20_windows1251.xml")
    ibm866 = real("ru_newsru_rss20_ibm866_transcoded.xml")
    assert [a.title for a in ibm866.articles] == [a.title for a in cp1251.articles]
    assert any("Росси" in a.title + a.summary for a in cp1251.articles)


def test_markup_in_titles_is_removed() -> None:
    for name in ("en_google_alerts_slack_atom_html_in_titles.xml", "fr_lefigaro_culture_rss20.xml"):
        titles = [a.title for a in real(name).articles]
        assert not any("<b>" in t or "<i>" in t for t in titles)
    assert "Tintin au pays des Soviets" in " ".join(
        a.title for a in real("fr_lefigaro_culture_rss20.xml").articles
    )


def test_languages() -> None:
    assert real("it_ilmessaggero_mondo_rss20_trimmed.xml").articles[0].lang == "it"  # "IT-it"
    assert {a.lang for a in real("zh_bbc_chinese_simplified_atom.xml").articles} == {"zh"}
    assert real("de_derstandard_rss20.xml").lang == "de"
    assert real("fr_lemonde_une_rss20.xml").lang is None


def test_dc_date_is_used_when_there_is_no_pubdate() -> None:
    assert all(a.published_at for a in real("de_orf_news_rdf_rss10_dcdate.xml").articles)


@pytest.mark.parametrize(
    ("name", "seconds"),
    [
        ("de_faz_aktuell_rss20.xml", 300),  # <ttl>5</ttl>
        ("de_orf_news_rdf_rss10_dcdate.xml", 1800),  # sy: hourly, twice
        ("en_londonist_rss20_2.7MB_leading_whitespace.xml", 3600),  # sy: hourly, once
        ("fr_lemonde_une_rss20.xml", None),
        ("de_3960_journal_jsonfeed11.json", None),
    ],
)
def test_ttl(name: str, seconds: int | None) -> None:
    assert real(name).ttl_seconds == seconds


def test_leading_whitespace_no_longer_breaks_the_xml_parser() -> None:
    parsed = real("en_londonist_rss20_2.7MB_leading_whitespace.xml")
    assert parsed.warning is None
    assert len(parsed.articles) == 40
    assert any(a.content for a in parsed.articles)


@pytest.mark.timeout(10)  # feedparser alone needs 1.5 s on quadratic.xml; here < 0.1 s each
@pytest.mark.parametrize(
    "path", HOSTILE, ids=[p.as_posix().split("/hostile/")[-1] for p in HOSTILE]
)
def test_every_hostile_file_is_handled(path: Path) -> None:
    try:
        parsed = parse_feed(path.read_bytes(), feed_id="hostile")
    except (NotAFeed, PermanentError):
        return
    for article in parsed.articles:
        assert_clean(article)
        for text in fields(article):
            assert "file:///" not in text
            assert "/etc/passwd" not in text
            assert not text.lower().startswith("javascript:")


def test_the_bombs_are_not_feeds() -> None:
    for path in HOSTILE:
        if path.parent.name == "xmltestdata":
            with pytest.raises(NotAFeed):
                parse_feed(path.read_bytes(), feed_id="hostile")
