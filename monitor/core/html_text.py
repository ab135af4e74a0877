"""HTML fragments and feed text as the clean plain text that Articles hold.

Contract (pure: no I/O, no clock, no environment); monitor.core.normalize re-exports both:

- `html_to_text(html, limit)`: the visible text of an HTML fragment. The contents of script,
  style, head, template (and the other raw-text elements: iframe, noembed, noframes) are dropped
  entirely, comments and declarations too; block elements and <br> become line breaks, table
  cells spaces; character references are decoded; runs of whitespace become one space, blank
  lines disappear; control characters other than "\\n" are removed; the result is at most `limit`
  characters, cut at a word boundary when one is near, with "…" marking the cut.
- `plain_text(s, limit)`: the same clean-up for text that is already text (an RSS title declared
  text/plain): no tags are stripped and no entities decoded, so `A & B <script>` stays exactly that.
- Both take `single_line=True` to fold line breaks into spaces (titles).

The HTML is tokenized here rather than with `html.parser.HTMLParser`: on CPython 3.11.7 (the
version this project is tested on) HTMLParser is quadratic on unterminated constructs (800 KB of
"<!--" took 257 s, 120 KB of '<a b="' more than 20 s; CVE-2025-6069) and raises AssertionError on
"<![<![", and feed content is hostile. This tokenizer follows the HTML5 tokenizer closely enough for
text extraction and never looks at a character twice: every scan either finds its terminator and
moves past it, or hits the end of input and stops, as HTML5 does for EOF inside a tag or comment.

Two paths, one result. `_html_to_text_slow` is that tokenizer, and the reference: it reads one
piece of markup at a time in Python, which made it the largest single cost of parsing a feed (50
tags in a 2 KB description). `_fast_html_to_text` does the same job in a few passes of C code over
the whole text: one regular expression replaces each tag, comment or dropped element by a
placeholder letter saying what it separates (a line, a cell, nothing), then references are decoded
and whitespace folded. Its
result is the reference's, character for character (its docstring says why; tests/unit/
test_html_text.py compares the two on tricky fragments, thousands of generated ones and the
real-feed corpus). What it would not read the same way it declines, and the reference reads it:
input longer than `limit`, CDATA, a literal "<", head, anything unclosed (a tag, a comment, a
script), and text holding a placeholder letter. It is linear too: the expression reads each
tag a bounded number of times, and its first failure ends the pass.
"""

from __future__ import annotations

import html as _html
import re
from operator import attrgetter

__all__ = ["html_to_text", "plain_text"]

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


# A numeric reference past U+10FFFF reads as U+FFFD (HTML5), which html.unescape knows, but it
# first makes an int of the digits, and CPython refuses more than 4,300 of them (ValueError):
# one such reference in a description would have failed its whole feed.
_HUGE_REF = re.compile(r"&#(?:0*[1-9][0-9]{7,}|[xX]0*[1-9a-fA-F][0-9a-fA-F]{6,});?")


def _unescape(text: str) -> str:
    if "&#" in text:
        text = _HUGE_REF.sub("\ufffd", text)
    return _html.unescape(text)


def html_to_text(html: str, limit: int, *, single_line: bool = False) -> str:
    """The visible text of an HTML fragment, at most `limit` characters (see the module doc)."""
    if limit <= 0 or not html:
        return ""
    if len(html) <= limit:
        text = _fast_html_to_text(html, limit, single_line)
        if text is not None:
            return text
    return _html_to_text_slow(html, limit, single_line=single_line)


def plain_text(s: str, limit: int, *, single_line: bool = False) -> str:
    """`s` with control characters removed and whitespace collapsed, at most `limit` characters.

    No tag stripping and no entity decoding: the input is already text.
    """
    if limit <= 0 or not s:
        return ""
    return _finish(_LINE_BREAKS.sub("\n", s), limit, single_line)


# --- The reference: a tokenizer reading one piece of markup at a time ------------------------


def _html_to_text_slow(html: str, limit: int, *, single_line: bool = False) -> str:
    """html_to_text by the tokenizer alone, for any input: what the fast path must equal."""
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
            budget -= _add(pieces, _unescape(html[i:cut]))
            i = cut
            continue
        if end > i:
            budget -= _add(pieces, _unescape(html[i:end]))
        if lt < 0:
            break
        i, text, separator = _markup(html, lt)
        if text:
            budget -= _add(pieces, text)
        if separator:
            pieces.append(separator)
    return _finish("".join(pieces), limit, single_line)


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


# --- The fast path: whole-text passes that give the reference's result -----------------------

# What markup leaves in the text until the end, one letter per kind: a line break, a cell's
# space, nothing, and the mark of a "<" the expression could not read. Letters, because re.sub
# takes each replacement from the name of the group that matched (attrgetter("lastgroup"): a C
# call, no Python function per tag) and a group name is an identifier. Letters outside ASCII,
# because then they are not whitespace, do not end a reference name and are in no name of
# html.entities.html5, so `&am<b>p;` and `&amp<i>x` decode as the reference decodes its pieces
# (see _fast_html_to_text). Phonetic modifier letters, found nowhere in the real-feed corpus;
# Latin-1 letters would keep ASCII text one byte per character, but mojibake is full of them
# (UTF-8 Cyrillic read as Latin-1 is "Ð" every other character).
_LINE, _GAP, _NOTHING, _UNREAD = "\u02b0", "\u02b1", "\u02b2", "\u02b3"


def _any_case(name: str) -> str:
    # [pP] rather than re.IGNORECASE, under which "s" also matches "ſ" and "k" the Kelvin sign,
    # while the reference compares str.lower(): "ſcript".lower() is not "script".
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in name)


def _one_of(names: frozenset[str]) -> str:
    # Grouped by first letter: re skips an alternative whose first letter does not match.
    rests: dict[str, list[str]] = {}
    for name in sorted(names):
        rests.setdefault(name[0], []).append(name[1:])
    return "(?:{})".format(
        "|".join(
            _any_case(first) + "(?:{})".format("|".join(_any_case(r) for r in sorted(rest)))
            for first, rest in sorted(rests.items())
        )
    )


# The whole of a name, as _TAG_NAME takes it. U+212A KELVIN SIGN is the one character outside
# ASCII that str.lower() turns into an ASCII letter ("k"); a name holding it is the reference's.
_NAME_END = r"(?=[\t\n\f\r />])"
_ANY_NAME = rf"[A-Za-z][^\t\n\f\r />\u212a]*+{_NAME_END}"
# A start tag's attributes as _skip_tag reads them: up to ">" or "="; after "=" and spaces a
# quoted value runs to its closing quote (a ">" inside is text); a quote anywhere else is just a
# character. An unclosed value fails the match, where the reference reads to EOF.
_ATTRIBUTES = r"""(?:[^>=]*+=[\t\n\f\r ]*+(?:"[^"]*+"|'[^']*+'|(?!["'])))*+[^>=]*+>"""
# An element whose contents are dropped, from its start tag to the end of its end tag, as
# _markup reads it: the first "</name" (in any case, as _END_OF finds it) followed by a name end,
# then up to the first ">" from there. Atomic: once that "</name" is found, a missing ">" fails
# the match rather than going on to look for another "</name" (quadratic).
_RAW_TEXT = "|".join(
    rf"{_any_case(name)}{_NAME_END}{_ATTRIBUTES}"
    rf"(?>[\s\S]*?</(?i:{name}){_NAME_END})[^>]*+>"
    for name in sorted(_DROPPED - {"head"})
)
# One match per "<", as _markup reads it. Group 1 is the "/" of an end tag, which ends at its
# first ">" whatever its name. The empty named group that matches says what the markup
# separates: a line, a cell, or nothing (other tags, the dropped elements but head, comments,
# "<!...>" and "<?...>"). Anything else (a literal "<", CDATA, head) and anything unclosed takes
# the rest of the text and leaves _UNREAD: the pass ends at its first failure, so the scans of
# failed markup cannot add up (no quadratic time on "<a b=\"" * n), and the text goes to the
# reference. Possessive quantifiers and alternatives that exclude one another: a tag's name is
# read once per kind tried, the attributes of a failing tag twice, and nothing more.
_TAG = re.compile(
    "<(?:"
    rf"(/)?+(?:{_one_of(_BLOCK)}{_NAME_END}(?P<{_LINE}>)|{_one_of(_CELL)}{_NAME_END}(?P<{_GAP}>))"
    rf"(?(1)[^>]*+>|{_ATTRIBUTES})"
    rf"|(?:/(?:{_ANY_NAME}|(?![A-Za-z]))[^>]*+>"
    rf"|(?!{_one_of(_DROPPED)}{_NAME_END}){_ANY_NAME}{_ATTRIBUTES}"
    rf"|{_RAW_TEXT}"
    r"|!--(?:>|->|(?>[\s\S]*?-->))"
    r"|(?!!--|!\[CDATA\[)[!?][^>]*+>"
    rf")(?P<{_NOTHING}>)"
    rf"|[\s\S]*+(?P<{_UNREAD}>))"
)
_kind = attrgetter("lastgroup")
_OTHER_SPACE = re.compile(r"[^\S ]+")
_SPACE_RUN = re.compile(" {2,}")


def _fast_html_to_text(html: str, limit: int, single_line: bool) -> str | None:
    """html_to_text of `html` when 0 < len(html) <= limit, or None: the reference must read it.

    Why the result is the reference's:
    - The budget: with len(html) <= limit the reference never stops early nor slices a run of
      text. Every piece it adds costs its stripped length plus one, at most twice the characters
      it came from (no reference is shorter than what it decodes to), so the budget
      2 * limit + 2 stays positive; and at index i at most limit - i characters are left, never
      more than the budget + 64 it slices at, which is at least 2 * limit + 66 - 2 * i.
    - The markup: _TAG reads what _markup reads at a "<" and ends at the same index, or fails.
      When no "<" failed (no _UNREAD), every "<" began markup it read, so the text in between
      is the reference's pieces, and each placeholder stands for the reference's separator.
    - The references: unescaping the whole text is unescaping each piece. html.unescape reads
      a name reference over up to 32 characters other than tab, LF, FF, space, "<&#;", and a
      placeholder is such a character, so `&amp<b>x` gives "amp" + placeholder + "x", which is
      no name; it then takes the longest prefix that is a name (2 characters at least): "amp",
      as the reference does for the piece "&amp", and keeps the rest as it was. A prefix
      reaching the placeholder is never a name (names are ASCII), so `&am<b>p;` stays text; a
      numeric reference stops at a placeholder. Unescaping never removes a placeholder but can
      make one (`&#x2b0;`): then the count is off and the reference reads the text, as it reads
      text that holds one already.
    - Whitespace: the reference folds every run of whitespace in a piece to " ", joins pieces
      and separators, removes unwanted characters, folds spaces again, turns a gap holding a line
      break into "\\n" and strips. Placeholders are not whitespace, so folding once over the
      whole text is folding each piece; the rest is done here on the joined text.
    """
    if _LINE in html or _GAP in html or _NOTHING in html:
        return None
    text, tags = _TAG.subn(_kind, html)
    if text.endswith(_UNREAD):
        return None
    if "&" in text:
        text = _unescape(text)
        if text.count(_LINE) + text.count(_GAP) + text.count(_NOTHING) != tags:
            return None
    text = text.replace(_NOTHING, "").replace(_GAP, " ")
    if single_line:
        text = text.replace(_LINE, " ")
    # Whitespace becomes " ", then what is unwanted goes, then runs of spaces fold, as in the
    # reference: \x1c-\x1f are both, and whitespace first (_add, then _finish); removing the
    # rest commutes with mapping whitespace as long as spaces fold last. Printable means no
    # whitespace but " " and nothing unwanted (that is all Cc, Cf or Cs): a step is skipped
    # when that cheap test says it would change nothing.
    if not text.isprintable():
        text = text.replace("\n", " ")  # the usual whitespace in HTML source, in one fast pass
        if not text.isprintable():
            text = _OTHER_SPACE.sub(" ", text)
            if not text.isprintable():
                text = _UNWANTED.sub("", text)
    if "  " in text:
        text = _SPACE_RUN.sub(" ", text)
    if _LINE not in text:
        return _cap(text.strip(" "), limit)
    # Single spaces now: drop those beside a line break, then the breaks at either end, then
    # fold runs of breaks (each pass halves the longest run).
    text = text.replace(" " + _LINE, _LINE).replace(_LINE + " ", _LINE).strip(" " + _LINE)
    while _LINE + _LINE in text:
        text = text.replace(_LINE + _LINE, _LINE)
    return _cap(text.replace(_LINE, "\n"), limit)
