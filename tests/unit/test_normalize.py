"""monitor.core.normalize: HTML and plain text to clean text, every date form to aware UTC."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from monitor.core.normalize import html_to_text, plain_text, to_utc


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello <b>world</b></p><p>Second</p>", "Hello world\nSecond"),
        (
            "Tom &amp; Jerry &lt;3 &quot;cats&quot; &#8212; &#x263A; &eacute;t&eacute;",
            'Tom & Jerry <3 "cats" — ☺ été',
        ),
        ("AT&T and a&b=c", "AT&T and a&b=c"),
        ("caf&eacute caf&#233", "café café"),
        ("a<script>alert('<p>x</p>')</script>b", "ab"),
        ("safe<script>x()</script> words", "safe words"),
        ("<SCRIPT type='text/javascript'>x()</SCRIPT >y", "y"),
        ("<script>document.write('</scr' + 'ipt>')</script>z", "z"),
        # HTML5: a script ends at the first "</script", wherever it is.
        ('<script>w("</script>visible")</script>z', 'visible")z'),
        ("a<style>p { color: red }</style>b", "ab"),
        ("<head><title>Page</title><style>x</style></head><body>Body</body>", "Body"),
        ("<template><p>inert</p></template>shown", "shown"),
        ("<iframe src=x>fallback <b>text</b></iframe>after", "after"),
        ("x <!-- hidden <b>markup</b> --> y", "x y"),
        ("before <!-- never closed", "before"),
        ("<!DOCTYPE html><?php echo 1 ?>text", "text"),
        ("<![CDATA[wrapped <twice> & kept]]> more", "wrapped <twice> & kept more"),
        ("one<br>two<br/>three<br />four", "one\ntwo\nthree\nfour"),
        ("<div><div><p>deep</p></div><ul><li>a</li><li>b</li></ul></div>", "deep\na\nb"),
        ("<table><tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>", "1 2\n3"),
        ("<p>  lots   of\n\n  space\t</p>\n\n\n<p>x</p>", "lots of space\nx"),
        ("in<b>line</b> <i>tags</i> join", "inline tags join"),
        ('<a title="x > y" href="/a">link</a> text', "link text"),
        ('<a b"c>quote in a name</a>', "quote in a name"),
        ("a < b and c > d", "a < b and c > d"),
        ("unclosed <a href='x", "unclosed"),
        ("</>a</ b>c", "ac"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
        ("nul\x00 bell\x07 del\x7f c1\x85\x9f", "nul bell del c1"),
        ("evil\u202etxt.exe \u2066iso\u2069", "eviltxt.exe iso"),
        ("עברית\u200f and ZW\u200dJ", "עברית\u200f and ZW\u200dJ"),
        ("&#0;&#1;&#xD800;", "\ufffd\ufffd"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html, 1000) == text


def test_html_to_text_single_line_folds_breaks() -> None:
    assert html_to_text("<p>a</p><p>b</p>c<br>d", 100, single_line=True) == "a b c d"


@pytest.mark.parametrize(
    ("text", "limit", "capped"),
    [
        ("alpha beta gamma delta", 100, "alpha beta gamma delta"),
        ("alpha beta gamma delta", 15, "alpha beta…"),
        ("alpha beta gamma delta", 22, "alpha beta gamma delta"),
        ("中文没有空格的句子很长很长", 6, "中文没有空…"),
        ("supercalifragilistic word", 10, "supercali…"),
        ("anything", 0, ""),
    ],
)
def test_cap_at_a_word_boundary(text: str, limit: int, capped: str) -> None:
    assert html_to_text(text, limit) == capped
    assert plain_text(text, limit) == capped
    assert len(capped) <= max(limit, 0)


def test_html_to_text_stops_early_on_huge_input() -> None:
    html = "<p>" + "word " * 2_000_000 + "</p>"
    text = html_to_text(html, 50)
    assert len(text) <= 50
    assert text.endswith("…")


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "html",
    [
        "<!--" * 200_000,  # quadratic in CPython 3.11.7's HTMLParser (CVE-2025-6069)
        '<a b="' * 300_000,
        "<a b='" * 300_000,
        "<![" * 300_000,  # AssertionError in HTMLParser
        "<x" * 300_000,
        "</x" * 300_000,
        "<" * 1_000_000,
        "&" * 1_000_000,
        "<script>" * 300_000,
        "<p>" * 1_000_000,
    ],
)
def test_html_to_text_is_linear_on_pathological_markup(html: str) -> None:
    assert isinstance(html_to_text(html, 50_000), str)


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("A & B <script>", "A & B <script>"),
        ("AT&amp;T keeps its entity", "AT&amp;T keeps its entity"),
        ("  padded\tand\u00a0spaced  ", "padded and spaced"),
        ("line one\r\nline two\r\n\r\n\rthree", "line one\nline two\nthree"),
        ("ctl\x00\x01\x1b[31m", "ctl[31m"),
        ("bom\ufeff and \ud800 lone surrogate", "bom and lone surrogate"),
    ],
)
def test_plain_text(text: str, clean: str) -> None:
    assert plain_text(text, 1000) == clean


def test_plain_text_single_line() -> None:
    assert plain_text("Breaking:\n  news\n", 100, single_line=True) == "Breaking: news"


PARIS = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (time.struct_time((2024, 5, 1, 10, 0, 0, 2, 122, 0)), datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (
            time.struct_time((2016, 12, 31, 23, 59, 60, 5, 366, 0)),
            datetime(2016, 12, 31, 23, 59, 59, tzinfo=UTC),
        ),
        (time.struct_time((2024, 2, 30, 0, 0, 0, 0, 1, 0)), None),
        (time.struct_time((1900, 1, 1, 0, 0, 0, 0, 1, 0)), None),
        (datetime(2024, 5, 1, 10, 0), datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (datetime(2024, 5, 1, 12, 0, tzinfo=PARIS), datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (date(2024, 5, 1), datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01t10:00:00z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.1234567Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01 10:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("Wed, 01 May 2024 10:00:00 GMT", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("Wed, 01 May 2024 12:00:00 +0200", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("01 May 2024 05:00:00 EST", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("Wed, 01 May 2024 10:00:00 XYZ", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("  Wed, 01 May 24 10:00:00 GMT ", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("1969-12-31T23:59:59Z", None),
        ("2200-01-01T00:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:59:59-01:00", None),
        ("yesterday", None),
        ("", None),
        ("2024-13-45", None),
        ("1714557600", None),
        ("2024-05-01T10:00:00Z" * 20, None),
        (None, None),
        (1714557600, None),
    ],
)
def test_to_utc(value: object, expected: datetime | None) -> None:
    result = to_utc(value)
    assert result == expected
    if result is not None:
        assert result.tzinfo is UTC
