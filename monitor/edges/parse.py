"""Turn a feed's bytes into Articles: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed 1.0/1.1.

Contract: `parse_feed(body, feed_id=, url=, content_type=, lang_hint=)` returns a `ParsedFeed`
(title, link, lang, format, articles, warning, ttl_seconds, parser) or raises `NotAFeed` (an HTML
page, JSON that is not JSON Feed, an XML document that is no feed) or `PermanentError` (a gzip
body inflating past MAX_BODY_BYTES). A feed that is broken but still yields entries parses, with
`warning` saying what was wrong. Every Article holds plain text only (normalize.html_to_text /
plain_text), absolute http(s) links or None, aware UTC dates or None, and a non-empty guid.

The body is hostile, and this module never fetches anything: feedparser only ever sees the bytes
in an `io.BytesIO` (given a str it would treat it as a URL or a path and open it). Before it does,
the guards in `xmlguard` inflate a raw gzip body (within MAX_BODY_BYTES), transcode a UTF-16/32
or EBCDIC body to UTF-8, and remove the DOCTYPE, so no ENTITY declaration is ever expanded.

Two readers give the same result: `fastparse` (lxml, no entity expansion, no network) takes the
well-formed RSS / RDF / Atom documents it can read exactly as feedparser would, and declines the
rest, which feedparser reads (its loose parser copes with broken XML). The fast path stops after
MAX_ENTRIES entries, so a 10 MB feed of 100,000 items costs MAX_ENTRIES items of work; feedparser
reads every entry and the extra ones are dropped afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.core.errors import MonitorError, NotAFeed
from monitor.core.languages import primary_language
from monitor.core.model import Article
from monitor.core.normalize import html_to_text, plain_text, to_utc
from monitor.core.prepare import Prepared
from monitor.edges.fastparse import parse_fast
from monitor.edges.xmlguard import defuse, drop_bad_char_refs, gunzip, wide_to_utf8

__all__ = ["MAX_BODY_BYTES", "MAX_ENTRIES", "ParsedFeed", "parse_feed"]

MAX_BODY_BYTES = 10 * 2**20
MAX_ENTRIES = 5000
TITLE_CHARS = 1_000
SUMMARY_CHARS = 10_000
CONTENT_CHARS = 50_000
TAG_CHARS = 200
MAX_TAGS = 50
AUTHOR_CHARS = 200
MAX_KEY_CHARS = 1_000
MAX_URL_CHARS = 4_096
#: A feed asking for more than a week between polls is not taken at its word.
MAX_TTL_SECONDS = 7 * 24 * 3600
# RSS 1.0 syndication module (http://purl.org/rss/1.0/modules/syndication/): sy:updatePeriod.
_SY_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 604800, "monthly": 2592000}
_SY_PERIODS["yearly"] = 365 * 86400
_JSON_FEED = re.compile(r"^https?://jsonfeed\.org/version/1(\.\d+)?/?$")


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    link: str | None
    lang: str | None
    articles: tuple[Article, ...]
    #: feedparser's version ("rss20", "atom10", ...) or "json10" / "json11".
    format: str = ""
    #: Set when the feed is broken (bozo) but still usable.
    warning: str | None = None
    #: How long the feed asks readers to wait between polls: RSS `<ttl>` (minutes), or
    #: `sy:updatePeriod` / `sy:updateFrequency` (RSS 1.0 syndication module); None if unsaid.
    ttl_seconds: int | None = None
    #: Which reader produced it: "lxml" (the fast path), "feedparser" or "json".
    parser: str = ""
    #: `articles` prepared (`core.prepare`), in the same order; `parse_feed` leaves it empty,
    #: `parse_worker.prepare` fills it.
    prepared: tuple[Prepared, ...] = ()


def parse_feed(
    body: bytes,
    *,
    feed_id: str,
    url: str | None = None,
    content_type: str | None = None,
    lang_hint: str | None = None,
    fast: bool = True,
) -> ParsedFeed:
    """Parse one feed document; see the module doc for what is returned and raised.

    `fast=False` skips the lxml fast path (`fastparse`) and always runs feedparser: the two give
    the same result wherever the fast path accepts a document (tests/integration/test_fastparse).

    feedparser raises plain exceptions on some hostile input (a lone surrogate in a character
    reference gives UnicodeEncodeError, a bogus encoding declaration UnicodeDecodeError, odd
    structures KeyError or ValueError): whatever it raises is this feed's problem, reported as
    NotAFeed, never a crash of the caller.
    """
    try:
        return _parse_feed(body, feed_id, url, content_type, lang_hint, fast)
    except MonitorError:
        raise
    except Exception as exc:  # see the docstring
        raise NotAFeed(f"feed could not be parsed ({type(exc).__name__}: {exc})") from exc


def _parse_feed(
    body: bytes,
    feed_id: str,
    url: str | None,
    content_type: str | None,
    lang_hint: str | None,
    fast: bool,
) -> ParsedFeed:
    if body.startswith(b"\x1f\x8b"):
        body = gunzip(body, MAX_BODY_BYTES)
    base = url if url and urlsplit(url).scheme.lower() in ("http", "https") else None
    hint = primary_language(lang_hint)
    start = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if not start:
        raise NotAFeed("not a feed (empty body)")
    if start in (b"{", b"[") or ("json" in (content_type or "").lower() and start != b"<"):
        return _parse_json(body, feed_id, base, hint)
    return _parse_xml(body, feed_id, base, content_type, hint, fast)


# --- XML, through the fast path or feedparser -------------------------------------------------


def _parse_xml(
    body: bytes,
    feed_id: str,
    base: str | None,
    content_type: str | None,
    hint: str | None,
    fast: bool,
) -> ParsedFeed:
    looks_like_html = _looks_like_html(body)
    body, content_type = wide_to_utf8(body, content_type)
    body = drop_bad_char_refs(defuse(body))
    headers = {}
    if content_type:
        headers["content-type"] = content_type
    if base:
        headers["content-location"] = base
    # The fast path reads at most MAX_ENTRIES entries; feedparser reads them all, then we cut.
    result = parse_fast(body, headers, MAX_ENTRIES) if fast else None
    parser = "lxml" if result is not None else "feedparser"
    if result is None:
        # Sanitising and URI resolution rewrite HTML that html_to_text then throws away anyway.
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    version = _get(result, "version") or ""
    entries = _get(result, "entries") or []
    if not version and not entries:
        if looks_like_html:
            raise NotAFeed("not a feed (HTML page)")
        raise NotAFeed("not a feed (no RSS, Atom or RDF document found)")
    feed = _get(result, "feed") or {}
    base = base or _http_url(_get(feed, "link"), None)
    feed_lang = _declared_lang(_get(feed, "language"), _get(feed, "title_detail"))
    articles = []
    for entry in entries[:MAX_ENTRIES]:
        article = _entry_article(entry, feed_id, base, hint, feed_lang)
        if article is not None:
            articles.append(article)
    warning = None
    exc = _get(result, "bozo_exception")
    # feedparser flags a missing Content-Type as NonXMLContentType; a file has none.
    if _get(result, "bozo") and (content_type or type(exc).__name__ != "NonXMLContentType"):
        warning = plain_text(f"{type(exc).__name__}: {exc}", 300, single_line=True)
    kept = None
    if len(entries) > MAX_ENTRIES:
        kept = f"only the first {MAX_ENTRIES} of {len(entries)} entries were kept"
    elif _get(result, "truncated"):
        kept = f"only the first {MAX_ENTRIES} entries were kept (the rest was not read)"
    if kept:
        warning = f"{warning}; {kept}" if warning else kept
    return ParsedFeed(
        title=_text(_get(feed, "title"), _get(feed, "title_detail"), TITLE_CHARS, single_line=True),
        link=_http_url(_get(feed, "link"), base),
        lang=hint or feed_lang,
        articles=tuple(articles),
        format=version,
        warning=warning,
        ttl_seconds=_ttl_seconds(feed),
        parser=parser,
    )


def _entry_article(
    entry: Any, feed_id: str, base: str | None, hint: str | None, feed_lang: str | None
) -> Article | None:
    content = ""
    for part in _get(entry, "content") or ():
        if content := _text(_get(part, "value"), part, CONTENT_CHARS):
            break
    detail = _get(entry, "title_detail") or _get(entry, "summary_detail")
    article = Article(
        feed_id=feed_id,
        guid=_clean_key(_get(entry, "id")),
        url=_http_url(_get(entry, "link"), base),
        title=_text(
            _get(entry, "title"), _get(entry, "title_detail"), TITLE_CHARS, single_line=True
        ),
        summary=_text(_get(entry, "summary"), _get(entry, "summary_detail"), SUMMARY_CHARS),
        content=content,
        tags=_tags(_get(t, "term") or _get(t, "label") for t in _get(entry, "tags") or ()),
        lang=hint or _declared_lang(detail) or feed_lang,
        author=_line(_get(entry, "author"), AUTHOR_CHARS) or None,
        published_at=to_utc(_get(entry, "published_parsed"))
        or to_utc(_get(entry, "updated_parsed")),
    )
    return _complete(article, _get(entry, "link"))


def _get(mapping: Any, key: str) -> Any:
    # dict.get, not FeedParserDict.get: its aliases ("updated_parsed" falling back to
    # "published_parsed", "description" to "summary") warn with DeprecationWarning and blur
    # which field was really there.
    return dict.get(mapping, key) if isinstance(mapping, dict) else None


def _text(value: Any, detail: Any, limit: int, *, single_line: bool = False) -> str:
    """A feedparser text construct as plain text: its declared type says whether it is HTML."""
    if not isinstance(value, str) or not value:
        return ""
    kind = _get(detail, "type")
    # RSS titles are text/plain unless feedparser saw markup in them (looks_like_html); an
    # escaped "A &amp; B &lt;script&gt;" arrives as the text "A & B <script>" and stays so.
    if kind == "text/plain":
        return plain_text(value, limit, single_line=single_line)
    return html_to_text(value, limit, single_line=single_line)


def _ttl_seconds(feed: Any) -> int | None:
    """How long the feed asks to be left alone, in seconds; None when unsaid or nonsense.

    RSS 2.0 `<ttl>` is minutes. The RSS 1.0 syndication module says "updated N times per
    period": sy:updatePeriod (default daily) divided by sy:updateFrequency (default 1). A value
    that is not a positive integer, or gives less than a second, is ignored; more than
    MAX_TTL_SECONDS is cut to it (a feed saying ttl=99999999 should still be polled weekly).
    """
    ttl = _positive_int(_get(feed, "ttl"))
    seconds = ttl * 60 if ttl else None
    period = _get(feed, "sy_updateperiod")
    frequency = _get(feed, "sy_updatefrequency")
    if seconds is None and (period is not None or frequency is not None):
        length = _SY_PERIODS.get(period.strip().lower()) if isinstance(period, str) else None
        times = _positive_int(frequency) if frequency is not None else 1
        if period is None:
            length = _SY_PERIODS["daily"]
        if length and times:
            seconds = length // times or None
    return min(seconds, MAX_TTL_SECONDS) if seconds else None


def _positive_int(value: Any) -> int | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text) or None


def _declared_lang(*values: Any) -> str | None:
    for value in values:
        if isinstance(value, dict):
            value = _get(value, "language")
        if isinstance(value, str) and (primary := primary_language(value)):
            return primary
    return None


def _looks_like_html(body: bytes) -> bool:
    head = body[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head


# --- JSON Feed (https://jsonfeed.org/version/1.1) ---------------------------------------------


def _parse_json(body: bytes, feed_id: str, base: str | None, hint: str | None) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except RecursionError:
        raise NotAFeed("not a feed (JSON nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise NotAFeed(f"not a feed (invalid JSON: {str(exc)[:120]})") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not _JSON_FEED.match(version):
        raise NotAFeed("not a feed (JSON, but not JSON Feed)")
    items = doc.get("items")
    items = items if isinstance(items, list) else []
    link = _http_url(doc.get("home_page_url"), base)
    base = base or _http_url(doc.get("feed_url"), None) or link
    feed_lang = _declared_lang(doc.get("language"))
    articles = []
    for item in items[:MAX_ENTRIES]:
        if isinstance(item, dict):
            article = _json_article(item, feed_id, base, hint, feed_lang)
            if article is not None:
                articles.append(article)
    return ParsedFeed(
        title=_line(doc.get("title"), TITLE_CHARS),
        link=link,
        lang=hint or feed_lang,
        articles=tuple(articles),
        format="json11" if version.rstrip("/").endswith("1.1") else "json10",
        parser="json",
        warning=(
            f"only the first {MAX_ENTRIES} of {len(items)} items were kept"
            if len(items) > MAX_ENTRIES
            else None
        ),
    )


def _json_article(
    item: dict[str, Any], feed_id: str, base: str | None, hint: str | None, feed_lang: str | None
) -> Article | None:
    # JSON Feed: title and summary are plain text; content_html is HTML, content_text is not.
    content = html_to_text(_str(item.get("content_html")), CONTENT_CHARS)
    authors = item.get("authors")
    author = authors[0] if isinstance(authors, list) and authors else item.get("author")  # 1.0
    author_name = author.get("name") if isinstance(author, dict) else None
    raw_id = item.get("id")
    tags = item.get("tags")
    article = Article(
        feed_id=feed_id,
        guid=_clean_key(str(raw_id) if type(raw_id) in (str, int) else None),
        url=_http_url(item.get("url"), base) or _http_url(item.get("external_url"), base),
        title=_line(item.get("title"), TITLE_CHARS),
        summary=plain_text(_str(item.get("summary")), SUMMARY_CHARS),
        content=content or plain_text(_str(item.get("content_text")), CONTENT_CHARS),
        tags=_tags(tags if isinstance(tags, list) else ()),
        lang=hint or _declared_lang(item.get("language")) or feed_lang,
        author=_line(author_name, AUTHOR_CHARS) or None,
        published_at=to_utc(_str(item.get("date_published")))
        or to_utc(_str(item.get("date_modified"))),
    )
    return _complete(article, item.get("url"))


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- shared ----------------------------------------------------------------------------------


def _complete(article: Article, raw_link: Any) -> Article | None:
    """Fill in the summary and guid, drop a content equal to its summary, or skip the entry."""
    summary, content = article.summary, article.content
    if not summary and content:
        summary = plain_text(content, SUMMARY_CHARS)
    if content == summary:
        content = ""
    link = _clean_key(raw_link)
    if not (article.title or summary or article.url or link):
        return None  # nothing to show or match (corpus: en_pcmag's illegally nested items)
    guid = article.guid or article.url or link
    if not guid:
        stamp = article.published_at.isoformat() if article.published_at else ""
        seed = f"{article.title or summary}\n{stamp}"
        guid = "sha256:" + hashlib.sha256(seed.encode("utf-8", "replace")).hexdigest()
    return replace(article, guid=guid, summary=summary, content=content)


def _line(value: Any, limit: int) -> str:
    return plain_text(value, limit, single_line=True) if isinstance(value, str) else ""


def _clean_key(value: Any) -> str:
    """A guid or link minus control characters and stray whitespace; hashed when huge."""
    key = _line(value, len(value) + 1) if isinstance(value, str) else ""
    if len(key) > MAX_KEY_CHARS:
        key = "sha256:" + hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()
    return key


def _tags(values: Iterable[Any]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if tag := _line(value, TAG_CHARS):
            seen.setdefault(tag, None)
            if len(seen) >= MAX_TAGS:
                break
    return tuple(seen)


def _http_url(value: Any, base: str | None) -> str | None:
    """`value` made absolute against `base`, when that gives an http(s) URL with a host."""
    if not isinstance(value, str):
        return None
    text = plain_text(value, MAX_URL_CHARS + 1, single_line=True)
    if not text or len(text) > MAX_URL_CHARS:
        return None
    try:
        absolute = urljoin(base, text) if base else text
        parts = urlsplit(absolute)
    except ValueError:
        return None  # an invalid IPv6 literal, say
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return absolute
