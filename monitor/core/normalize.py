"""Turn what feeds say into the plain text and UTC datetimes that Articles hold.

Contract (pure: no I/O, no clock, no environment):

- `html_to_text(html, limit)`: the visible text of an HTML fragment. The contents of script,
  style, head, template (and the other raw-text elements: iframe, noembed, noframes) are dropped
  entirely, comments and declarations too; block elements and <br> become line breaks, table
  cells spaces; character references are decoded; runs of whitespace become one space, blank
  lines disappear; control characters other than "\\n" are removed; the result is at most `limit`
  characters, cut at a word boundary when one is near, with "…" marking the cut.
- `plain_text(s, limit)`: the same clean-up for text that is already text (an RSS title declared
  text/plain): no tags are stripped and no entities decoded, so `A & B <script>` stays exactly that.
- Both take `single_line=True` to fold line breaks into spaces (titles).
- `to_utc(value)`: an aware UTC datetime from a feedparser `time.struct_time` (which is UTC), a
  naive datetime (taken as UTC), an aware datetime, or an ISO-8601 / RFC 3339 / RFC 822 string;
  None for anything else, for garbage, and for dates outside [1970, 2200).

The HTML is tokenized here rather than with `html.parser.HTMLParser`: on CPython 3.11.7 (the
version this project is tested on) HTMLParser is quadratic on unterminated constructs (800 KB of
"<!--" took 257 s, 120 KB of '<a b="' more than 20 s; CVE-2025-6069) and raises AssertionError on
"<![<![", and feed content is hostile. This tokenizer follows the HTML5 tokenizer closely enough for
text extraction and never looks at a character twice: every scan either finds its terminator and
moves past it, or hits the end of input and stops, as HTML5 does for EOF inside a tag or comment.
"""

from __future__ import annotations

import email.utils
import html as _html
import re
import time
from datetime import UTC, date, datetime

__all__ = ["html_to_text", "plain_text", "to_utc"]

MIN_YEAR = 1970
MAX_YEAR = 2199  # anything later is a broken date field, not a scheduled post
_MAX_DATE_CHARS = 100

# Elements whose contents are never visible text. script/style/iframe/noembed/noframes are
# raw text in HTML5 (their contents are not even tokenized); head and template are parsed but
# inert, and dropping them wholesale is what a reader sees.
_DROPPED = frozenset({"script", "style", "iframe", "noembed", "noframes", "head", "template"})
_BLOCK_NAMES = (
    "address article aside blockquote body br caption center dd details dialog div dl dt",
    "fieldset figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html legend li",
    "main nav ol option p pre section summary table tbody tfoot thead title tr ul",
)
_BLOCK = frozenset(name for line in _BLOCK_NAMES for name in line.split())
_CELL = frozenset({"td", "th"})

# HTML5 §13.2.5.6/8: a tag name is an ASCII letter followed by anything but whitespace, / or >.
_TAG_NAME = re.compile(r"[A-Za-z][^\t\n\f\r />]*")
_TAG_STOP = re.compile(r"[>=]")
_SPACES = re.compile(r"[\t\n\f\r ]*")
_END_OF = {
    name: re.compile(rf"</{name}[\t\n\f\r />]", re.IGNORECASE) for name in _DROPPED - {"head"}
}
# A head without </head> ends where the body starts (HTML5 "in head" insertion mode).
_END_OF["head"] = re.compile(r"</head[\t\n\f\r />]|<body[\t\n\f\r />]", re.IGNORECASE)

# Control characters (Cc) other than the line break, lone surrogates (JSON can encode them and
# no database or Telegram accepts them), the BOM used as a zero-width space, and the bidi
# embedding/override/isolate controls: an unbalanced U+202E in a title reverses the rest of an
# alert, link included ("Trojan Source", CVE-2021-42574). LRM/RLM and ZWJ/ZWNJ stay: Hebrew,
# Arabic, Persian and Indic text need them.
_UNWANTED = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\u202a-\u202e\u2066-\u2069]"
)
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r" ?\n[\n ]*")


def html_to_text(html: str, limit: int, *, single_line: bool = False) -> str:
    """The visible text of an HTML fragment, at most `limit` characters (see the module doc)."""
    if limit <= 0 or not html:
        return ""
    pieces: list[str] = []
    # Stop tokenizing once clearly more than `limit` characters of text are collected: a 2 MB
    # content:encoded (corpus: en_londonist) needs only its first 50,000 characters. Each piece
    # counts its stripped length plus one, so twice the limit is always more than enough.
    budget = 2 * limit + 2
    i, n = 0, len(html)
    while i < n and budget > 0:
        lt = html.find("<", i)
        end = n if lt < 0 else lt
        if end - i > budget + 64:
            # A long run of text: take it in slices, so that 10 MB without a tag costs one slice,
            # and never cut a character reference (at most 32 characters long) in two.
            cut = i + budget + 64
            amp = html.rfind("&", cut - 40, cut)
            if amp > i and ";" not in html[amp:cut]:
                cut = amp
            budget -= _add(pieces, _html.unescape(html[i:cut]))
            i = cut
            continue
        if end > i:
            budget -= _add(pieces, _html.unescape(html[i:end]))
        if lt < 0:
            break
        i, text, separator = _markup(html, lt)
        if text:
            budget -= _add(pieces, text)
        if separator:
            pieces.append(separator)
    return _finish("".join(pieces), limit, single_line)


def plain_text(s: str, limit: int, *, single_line: bool = False) -> str:
    """`s` with control characters removed and whitespace collapsed, at most `limit` characters.

    No tag stripping and no entity decoding: the input is already text.
    """
    if limit <= 0 or not s:
        return ""
    return _finish(_LINE_BREAKS.sub("\n", s), limit, single_line)


def _add(pieces: list[str], text: str) -> int:
    # Whitespace in HTML source is never a line break; only the markup makes lines.
    text = _INLINE_SPACE.sub(" ", text.replace("\n", " "))
    pieces.append(text)
    stripped = len(text.strip())
    return stripped + 1 if stripped else 0


def _markup(html: str, lt: int) -> tuple[int, str, str]:
    """Consume the markup at `html[lt] == "<"`: (next index, literal text, separator)."""
    n = len(html)
    nxt = html[lt + 1 : lt + 2]
    if html.startswith("<!--", lt):
        for empty in ("<!-->", "<!--->"):  # HTML5 "abrupt closing of empty comment"
            if html.startswith(empty, lt):
                return lt + len(empty), "", ""
        close = html.find("-->", lt + 4)
        return (n if close < 0 else close + 3), "", ""
    if html.startswith("<![CDATA[", lt):
        # A CDATA section inside HTML is a publisher wrapping text twice; the text is meant.
        close = html.find("]]>", lt + 9)
        return (n, html[lt + 9 :], "") if close < 0 else (close + 3, html[lt + 9 : close], "")
    if nxt in ("!", "?"):
        close = html.find(">", lt + 2)  # HTML5: a bogus comment up to the next ">"
        return (n if close < 0 else close + 1), "", ""
    if nxt == "/":
        name_match = _TAG_NAME.match(html, lt + 2)
        close = html.find(">", lt + 2)
        if close < 0:
            return n, "", ""  # EOF in a tag: HTML5 drops it
        if name_match is None:
            return close + 1, "", ""  # "</>" or "</ ...>": ignored / bogus comment
        return close + 1, "", _separator(name_match.group().lower())
    name_match = _TAG_NAME.match(html, lt + 1)
    if name_match is None:
        return lt + 1, "<", ""  # "a < b": a literal less-than sign
    name = name_match.group().lower()
    after = _skip_tag(html, name_match.end())
    if name in _DROPPED:
        closing = _END_OF[name].search(html, after)
        if closing is None:
            # A stray <head> with no </head> and no <body> is not worth the text after it.
            return (after, "", "\n") if name == "head" else (n, "", "")
        if name == "head" and closing.group()[1] != "/":
            return closing.start(), "", "\n"  # let the <body> tag be read normally
        close = html.find(">", closing.end() - 1)
        # "a<script>x</script>b" reads "ab" in a browser: no separator unless it is the head.
        return (n if close < 0 else close + 1), "", "\n" if name == "head" else ""
    return after, "", _separator(name)


def _skip_tag(html: str, i: int) -> int:
    """Index after the ">" closing a start tag whose attributes start at `i` (len(html) at EOF).

    Quotes only delimit an attribute value right after "=", as in HTML5, so `<a title="x > y">`
    is one tag and `<a b"c>` ends at its ">".
    """
    n = len(html)
    while True:
        stop = _TAG_STOP.search(html, i)
        if stop is None:
            return n
        if html[stop.start()] == ">":
            return stop.end()
        spaces = _SPACES.match(html, stop.end())
        j = spaces.end() if spaces else stop.end()
        if j < n and html[j] in "\"'":
            close = html.find(html[j], j + 1)
            if close < 0:
                return n  # EOF in an attribute value
            i = close + 1
        else:
            i = j


def _separator(name: str) -> str:
    if name in _BLOCK:
        return "\n"
    if name in _CELL:
        return " "
    return ""


def _finish(text: str, limit: int, single_line: bool) -> str:
    text = _UNWANTED.sub("", text)
    text = _INLINE_SPACE.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text).strip()
    if single_line:
        text = text.replace("\n", " ")
    return _cap(text, limit)


def _cap(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # Cut at the last space when it is not too far back; scripts without spaces (Chinese,
    # Japanese) are cut where the limit falls.
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if boundary >= limit // 2:
        cut = cut[:boundary]
    return cut.rstrip() + "…"


def to_utc(value: object) -> datetime | None:
    """An aware UTC datetime, or None when `value` is not a plausible date (see module doc)."""
    result: datetime | None
    if isinstance(value, time.struct_time):
        result = _from_struct(value)
    elif isinstance(value, datetime):
        result = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        result = _from_string(value)
    else:
        return None
    if result is None:
        return None
    try:
        result = result.astimezone(UTC)
    except (OverflowError, ValueError):
        return None  # an offset pushed it past year 1 or 9999
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        return None
    return result


def _from_struct(value: time.struct_time) -> datetime | None:
    # feedparser normalizes every date it parses to a UTC struct_time.
    try:
        # tm_sec may be 60 or 61 (leap seconds, RFC 822 allows them); datetime does not.
        return datetime(*value[:5], min(value.tm_sec, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _from_string(value: str) -> datetime | None:
    text = value.strip()
    if not text or len(text) > _MAX_DATE_CHARS:
        return None
    try:
        # RFC 3339 (JSON Feed) allows a lower-case "t" and "z"; fromisoformat does not.
        return datetime.fromisoformat(text.upper())
    except ValueError:
        pass
    try:
        # RFC 822/2822 (RSS pubDate), including obsolete zone names such as "EST" and "GMT";
        # an unknown zone gives a naive datetime, taken as UTC like every other naive value.
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
