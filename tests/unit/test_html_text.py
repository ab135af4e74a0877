"""monitor.core.html_text: the fast path gives the reference tokenizer's result, on every input.

`_html_to_text_slow` is the reference (its behaviour is what tests/unit/test_normalize.py pins);
`_fast_html_to_text` answers None when the reference must read the input. Three sources of input:
a table of tricky fragments, a seeded generator of nasty ones, and every text field feedparser
extracts from the real-feed corpus (../shared/corpus/real, skipped when absent).
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any

import feedparser
import pytest

from monitor.core.html_text import _fast_html_to_text, _html_to_text_slow, html_to_text
from tests.corpus import corpus_files, needs_corpus


def outcome(function: Any, html: str, limit: int, single_line: bool) -> object:
    """The result, or the exception's type: the two paths must agree on both."""
    try:
        return function(html, limit, single_line=single_line)
    except Exception as exc:  # the reference's behaviour, whatever it is
        return type(exc)


def fast(html: str, limit: int, *, single_line: bool = False) -> str | None:
    """The fast path as html_to_text calls it (it only sees 0 < len(html) <= limit)."""
    if not 0 < len(html) <= limit:
        return None
    return _fast_html_to_text(html, limit, single_line)


def assert_same(html: str, limit: int, single_line: bool) -> bool | None:
    """html_to_text == the reference. Whether the fast path answered; None if not asked."""
    reference = outcome(_html_to_text_slow, html, limit, single_line)
    assert outcome(html_to_text, html, limit, single_line) == reference, (html, limit)
    answer = outcome(fast, html, limit, single_line)
    assert answer is None or answer == reference, (html, limit, single_line)
    return answer is not None if 0 < len(html) <= limit else None


ORDINARY = [
    "<p>Hello <b>world</b></p><p>Second</p>",
    '<p><b>Title 1-0</b> Text.</p><img alt="" src="https://img.example/1.jpg" /><p>More</p>',
    '<a href="https://news.example/fr/1?a=1&amp;b=2">lien</a> <em>jusqu\'à</em>',
    "Tom &amp; Jerry &lt;3 &quot;cats&quot; &#8212; &#x263A; &eacute;t&eacute;",
    "<table><tr><td>1</td><td>2</td></tr><tr><th>3</th></tr></table>",
    "one<br>two<br/>three<br />four<BR>five",
    "<DIV CLASS=x><UL><LI>a</LI><li>b</li></UL></DIV>",
    '<a title="x > y" href="/a">link</a> text',
    '<a b"c>quote in a name</a> <x y=\'1\' z="2" w=3>',
    "plain text, no markup at all",
    "</>a</ b>c</3>",
    "<p>  lots   of\n\n  space\t</p>\n\n\n<p>x</p>",
    "中文<p>日本語</p>한국어 <b>العربية</b> עברית\u200f",
    "&am<b>p; &amp<i>x &notin<b>y &#38<b>; &<b>amp; &#<b>38;",
    "a\u2028b\u2029c\xa0d\u3000e\x85f\x1cg",
    "nul\x00 bell\x07 del\x7f c1\x9f bom\ufeff bidi\u202e\u2066x\u2069",
    "x <!-- hidden <b>markup</b> --> y<!-- more --><!--><!--->z<!---->",
    "<!DOCTYPE html><?php echo 1 ?>text<!>x<?>y<!-x>z",
    "a<script>alert('<p>x</p>')</script>b<SCRIPT type='t'>x()</SCRIPT >c",
    '<iframe src="https://www.youtube.com/embed/x" allowfullscreen></iframe><p>after</p>',
    "<style>p { color: red }</style>a<template><p>inert</p></template>b<noembed>c</noembed>",
]


@pytest.mark.parametrize("html", ORDINARY)
@pytest.mark.parametrize("single_line", [False, True])
def test_ordinary_html_takes_the_fast_path(html: str, single_line: bool) -> None:
    assert assert_same(html, 1000, single_line)


TRICKY = [
    # Character references cut by a tag: the reference decodes each piece on its own.
    "&am<b>p;",
    "&amp<i>x",
    "&amp<i>;",
    "&a<p>b",
    "&<b>#38;",
    "&#3<b>8;",
    "&#x<b>26;",
    "&#x2<b>6;",
    "&lt<td>;",
    "&notin<b>x",
    "&notin;<b>x",
    "&notit<b>x",
    "&ac<b>E;",
    "&" + "a" * 31 + "<b>mp;",
    "&" + "a" * 32 + "<b>mp;",
    "&" + "a" * 40 + "<b>;",
    "&amp;<b>amp;",
    # References without ";" and the longest-prefix rule.
    "&notin &notin; &noti; &not &no &ampx &amp;x &ampamp; &lt3 &LT &GTx &gt=",
    "caf&eacute caf&#233 &#x26 &#38x &#0038; &#x; &#; & &; &&amp;",
    # References to control characters, line breaks, surrogates and out-of-range code points.
    "a&#0;b&#1;c&#9;d&#10;e&#11;f&#12;g&#13;h&#28;i&#31;j&#127;k",
    "&#128;&#129;&#x81;&#x85;&#x8d;&#x9d;&#x9f;&#xa0;&#xad;",
    "&#xD800;&#xdfff;&#x110000;&#99999999;&#xfdd0;&#xfffe;&#x10ffff;",
    "&#x2028;&#x2029;&#x202e;&#x2066;&#xfeff;&#x200b;&#x200f;&#x3000;",
    "&NewLine;&Tab;&nbsp;&ensp;&ThinSpace;x&NewLine;<p>&Tab;y",
    # Placeholder letters of the fast path, in the text and from references.
    "&#x2b0;<p>&#x2b1;<td>&#x2b2;<b>&#x2b3;&#688;",
    "Þórdís <b>Guðlaugur</b> Ðỏ \u02b0<p>\u02b1<td>\u02b2<b>\u02b3 x",
    "<p>x\u02b3",
    # A decimal reference too long for int(): both paths read it as U+FFFD.
    "a &#" + "1" * 5000 + "; b",
    "a <b>&#" + "1" * 5000 + "</b> b",
    # Tag ends, as _skip_tag reads them.
    '<a title="x > y">z</a>',
    "<a title='x > y'>z</a>",
    '<a title = "x > y">z',
    "<a title=\n'x > y'>z",
    '<a b"c>d',
    "<a b'c>d'>e",
    '<a b="c"d="e>f">g',
    '<a b="c"="d>e">f',
    "<a b=c>d",
    "<a b==c>d",
    "<a b= >c",
    '<a b=">c',
    "<a b='>c",
    '<a ="x>y">z',
    '<a b=""c="">d',
    "<p/>x<p/ >y<p//>z",
    '<p title="<b>">x</p>',
    '<p title="x<b x=\'">y\'>w">',
    "<a<b>c",
    "<a\x0bb>c",
    "</p foo='>'>x",
    "</td x>y</th\t>z",
    # Names: case, Unicode lower-casing, names that only start like a known one.
    "<P>a<Br>b<bR/>c<TD>d<tH>e",
    "<pre>a<pa>b<prex>c<p1>d<h7>e<h6>f",
    "<bloc\u212aquote>x</bloc\u212aquote>y",
    "<\u017fection>x</\u017fection>y<addre\u017f\u017f>z",
    "<TABLE\u212a>w",
    "<\u017fcript>x</\u017fcript>y",
    "<scr\u0130pt>x</scr\u0130pt>y",
    "<li\u0307>x",
    # Markup the fast path leaves to the reference.
    "x <!-- hidden <b>markup</b> --> y",
    "before <!-- never closed",
    "<!--><!--->a",
    "<!DOCTYPE html><?php echo 1 ?>text",
    "<![CDATA[wrapped <twice> &amp; kept]]> more",
    "<![CDATA[never closed",
    "a < b and c > d",
    "< b>",
    "<3",
    "a<script>alert('<p>x</p>')</script>b",
    "<SCRIPT type='text/javascript'>x()</SCRIPT >y",
    "<script>document.write('</scr' + 'ipt>')</script>z",
    '<script>w("</script>visible")</script>z',
    "<script>x</\u017fcript>y</script>z",
    "<script>x</SCR\u0130PT>y</script>z",
    "<style>x</style\t>y</STYLE/>z</style x='>'>w",
    "<script>x</scriptx>y</script>z",
    "<template>a<template>b</template>c</template>d",
    "<iframe>x</iframe",
    "<script>x</script b",
    "<script>x",
    "<script a='</script>'>x</script>y",
    "</script>x<script/>y",
    "<noframes>x</noframes><noembed>y</noembed>z",
    "<!-- a -- b -->c<!--->d<!-->e<!---->f<!-- x --!>g-->h",
    "<!x<p>y>z<?a<b>c",
    "<!--x<!--y-->z",
    "x<!-- never closed > y",
    "a<head>x</head>b<HEAD >y</head\t>z",
    "<head><title>Page</title></head><body>Body</body>",
    "<head>x",
    "<head>x<body>y",
    "<template><p>inert</p></template>shown",
    "<p",
    "<p ",
    "</p",
    "</",
    "<",
    "<a href='x",
    '<a href="x',
    # Whitespace and line breaks around blocks, cells and removed tags.
    " <br> a <br> <br> b <p> ",
    "<p>\n</p>\n<p> \t </p>a<td> </td><td></td>b",
    "a<td>b<p>c<td>d</td></p>",
    "<b> </b><i> </i>x<b>\n</b>y",
    "x\r\ny\rz\x0bw\x0cv",
    "a \x00 b\x1c\x1dc \x1e d\x1f",
    "a\u202e \u202e b",
    "\ufeff\ufeff<p>\ufeff</p>\ufeff",
    "",
    " ",
    "<p>",
    "<p></p><br><td>",
]


@pytest.mark.parametrize("html", TRICKY)
@pytest.mark.parametrize("limit", [1, 7, 1000, 100_000])
@pytest.mark.parametrize("single_line", [False, True])
def test_tricky_fragments_read_as_the_reference_reads_them(
    html: str, limit: int, single_line: bool
) -> None:
    assert_same(html, limit, single_line)


@pytest.mark.parametrize(
    "html",
    [
        "<![CDATA[x]]>",
        "<!x",
        "<!-- never closed",
        "a < b",
        "<script>x",
        "<script>x</script",
        "<Head>x</head>",
        "<p",
        '<a b="c>',
        "<bloc\u212aquote>",
        "\u02b0<p>",
        "&#x2b2;<p>",
    ],
)
def test_the_fast_path_declines_what_it_does_not_read(html: str) -> None:
    assert _fast_html_to_text(html, 1000, False) is None
    assert html_to_text(html, 1000) == _html_to_text_slow(html, 1000)


def test_input_longer_than_the_limit_goes_to_the_reference() -> None:
    # The reference stops reading once its budget (2 * limit + 2) is spent, counting characters
    # it removes later; the fast path reads everything, so it must not see such input.
    html = "\x00" * 25 + "<p>x"
    assert len(html) > 10
    assert html_to_text(html, 10) == _html_to_text_slow(html, 10) == ""
    assert _fast_html_to_text(html, 10, False) == "x"


# --- Generated fragments --------------------------------------------------------------------

NAMES = [
    *("p", "br", "div", "li", "ul", "h1", "h6", "table", "tr", "title", "body", "html", "pre"),
    *("td", "th"),
    *("script", "style", "head", "template", "iframe", "noembed", "noframes"),
    *("a", "b", "i", "em", "span", "img", "strong", "font", "x-y", "p1", "pa", "tdx", "bodyx"),
    *(
        "bloc\u212aquote",
        "\u017fection",
        "\u017fcript",
        "scr\u0130pt",
        "t\u212a",
        "\u02b2",
        "a<b",
        "a&amp;b",
    ),
]
ATTRIBUTES = [
    "",
    " ",
    "/",
    " /",
    " a=b",
    ' a="x > y"',
    " a='x > y'",
    ' a = "v"',
    " a=\n'v'",
    ' a="unclosed',
    " a='unclosed",
    ' b"c',
    " b'c",
    " =",
    " x=",
    " x= ",
    " x==y",
    ' a="<b>"',
    " a='\"'",
    ' a="\'"',
    ' a="&amp;"',
    " href=https://x/?a=1&b=2",
    ' a="\u02b0"',
    " \t\n",
]
ENTITIES = [
    *("&amp;", "&amp", "&am", "&lt", "&lt;", "&gt", "&notin", "&notin;", "&not", "&noti"),
    *("&eacute", "&nbsp;", "&NewLine;", "&Tab;", "&THORN;", "&ETH;", "&ordm;", "&#x2b1;"),
    *("&#38;", "&#38", "&#x26;", "&#x26", "&#0;", "&#1;", "&#9;", "&#10;", "&#13;", "&#28;"),
    *("&#x85;", "&#128;", "&#x81;", "&#x9f;", "&#xD800;", "&#x110000;", "&#x2028;", "&#x202e;"),
    *("&#xfeff;", "&#x2b0;", "&#690;", "&", "&#", "&#x", "&;", "&" + "x" * 40, "&ac", "&acE;"),
]
TEXT = [
    *("word", "two words", " ", "  ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\xa0"),
    *("\u2028", "\u2029", "\u3000", "\x85", "\x1c", "\x1f", "\x00", "\x07", "\x7f", "\x9f"),
    *("\u202e", "\u2066", "\u2069", "\u200f", "\u200d", "\ufeff", "\ud800", "\xad"),
    *("中文", "日本語", "한국어", "العربية", "עברית", "😀", "\u02b1", "Ð", "é", ";", "=", '"'),
    *("'", ">", "#", "x;", "amp;", "38;", "1", "p;", "in;", "t;", "E;"),
]
END_TAG_TAILS = ["", " ", " x", ' a=">"', "/", "\t"]
MARKUP = [
    *("<!-- c -->", "<!-->", "<!--->", "<!--", "<![CDATA[c&amp;d]]>", "<![CDATA[", "<!x>"),
    *("<?x?>", "<!", "<?", "</>", "</ b>", "</3>", "< b", "<3", "<", "</", "a < b"),
    *("<script>x</script>", "</script>", "<head>h</head>", "<body>", "<style>s"),
    *("<script>a</\u017fcript>b</script>", "<style>x</STYLE\t>", "<script>x</script"),
    *("<iframe>x</iframe/>", "<template>t</templatex></template>", "</scr", "<!-- -->"),
    *("<noembed>", "<noframes>x</noframes>", "<script a='</script>'>", "-->", "<!>", "<?>"),
]


def random_fragment(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.35:
            name = rng.choice(NAMES)
            name = rng.choice([name, name.upper(), name.capitalize()])
            if rng.random() < 0.4:
                parts.append(f"</{name}{rng.choice(END_TAG_TAILS)}>")
            else:
                attributes = "".join(rng.choice(ATTRIBUTES) for _ in range(rng.randint(0, 3)))
                parts.append(f"<{name}{attributes}>")
        elif kind < 0.55:
            parts.append(rng.choice(ENTITIES))
        elif kind < 0.9:
            parts.append(rng.choice(TEXT))
        else:
            parts.append(rng.choice(MARKUP))
    html = "".join(parts)
    if rng.random() < 0.1:
        html = html[: rng.randint(0, len(html))]  # EOF anywhere: inside a tag, a value, a name
    return html


def test_generated_fragments_read_as_the_reference_reads_them() -> None:
    rng = random.Random(20260204)
    answered = Counter[bool | None]()
    for _ in range(4000):
        html = random_fragment(rng)
        for limit in (1, 5, 40, 10_000):
            for single_line in (False, True):
                answered[assert_same(html, limit, single_line)] += 1
    # The fast path must answer often, or this test would not be testing it. Most fragments
    # hold something it declines (a comment, a script, an unclosed quote): a third is plenty.
    assert answered[True] > answered[False] / 2


# --- The real-feed corpus -------------------------------------------------------------------


def entry_texts(value: Any) -> Iterator[str]:
    """Every string in what feedparser extracted (values of dicts, items of lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from entry_texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from entry_texts(item)


@cache
def corpus_texts() -> tuple[str, ...]:
    texts: list[str] = []
    for path in corpus_files("real"):
        body = path.read_bytes()
        if body.startswith(b"\x1f\x8b"):
            body = gzip.decompress(body)
        if path.suffix == ".json":
            try:
                doc = json.loads(body)
            except ValueError:
                continue
            items = doc.get("items") if isinstance(doc, dict) else None
            texts.extend(entry_texts(items or []))
            continue
        parsed = feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False)
        texts.extend(entry_texts(parsed.get("feed", {})))
        for entry in parsed.get("entries", []):
            texts.extend(entry_texts(dict(entry)))
    return tuple(dict.fromkeys(t for t in texts if t))


@needs_corpus
def test_every_text_of_the_real_corpus_reads_as_the_reference_reads_it() -> None:
    texts = corpus_texts()
    assert len(texts) > 1000
    answered = Counter[bool | None]()
    for html in texts:
        for limit, single_line in [(1_000, True), (10_000, False), (50_000, False)]:
            answered[assert_same(html, limit, single_line)] += 1
    assert answered[True] > 0.95 * (answered[True] + answered[False])


def test_entry_texts_walks_dicts_and_lists() -> None:
    assert list(entry_texts({"a": ["x", {"b": "y"}], "c": 1})) == ["x", "y"]


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("a &#" + "9" * 5000 + "; b", "a \ufffd b"),  # more digits than CPython makes an int of
        ("x&#x" + "f" * 6000 + "y", "x\ufffdy"),
        ("<p>&#" + "1" * 9000, "\ufffd"),
        ("&#00000065;&#x0000041;", "AA"),  # leading zeros are not a large number
        ("&#12345678;|&#x1234567;", "\ufffd|\ufffd"),
    ],
)
def test_numeric_references_past_unicode_read_as_the_replacement_character(
    html: str, text: str
) -> None:
    assert html_to_text(html, 20_000) == text
    assert _html_to_text_slow(html, 20_000) == text
