"""Rendering: hostile feed text is escaped, links are safe, Telegram's limit holds, headers stay
one line."""

from __future__ import annotations

import dataclasses
import email.policy
import html
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest

from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.core.render import (
    AlertView,
    Digest,
    also_names,
    also_reported,
    header_text,
    render_email,
    render_text,
    send_test_view,
    snippet,
)
from monitor.core.render_telegram import (
    CALLBACK_DATA_LIMIT,
    TELEGRAM_LIMIT,
    alert_buttons,
    outgoing_html,
    outgoing_text,
    render_telegram_html,
    render_telegram_text,
    utf16_len,
)
from monitor.core.telegram_parts import split_html, split_text
from tests.fakes.telegram_html import parse_html

HOSTILE = "A & B <script>alert(\"x\")</script> 'q'"
WHEN = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def match(
    wid: str = "taiwan",
    terms: tuple[str, ...] = ("Taiwan",),
    hits: tuple[Hit, ...] = (),
    priority: Priority = Priority.normal,
    name: str = "",
) -> WatchlistMatch:
    return WatchlistMatch(wid, name or wid, priority, terms, hits)


def view(
    title: str = "Taiwan holds drills",
    summary: str = "",
    url: str | None = "https://example.org/a",
    source: str = "Example News",
    matches: tuple[WatchlistMatch, ...] | None = None,
) -> AlertView:
    article = Article(
        feed_id="f", guid="g", url=url, title=title, summary=summary, published_at=WHEN
    )
    if matches is None:
        start = title.find("Taiwan")
        hits = (Hit("Taiwan", "title", start, start + 6),) if start >= 0 else ()
        matches = (match(hits=hits),)
    return AlertView(article=article, source=source, matches=matches)


def hostile_view() -> AlertView:
    summary = f"Before the hit {HOSTILE} Taiwan {HOSTILE} after the hit."
    start = summary.index("Taiwan")
    hit = Hit("Taiwan", "summary", start, start + 6)
    return view(
        title=f"{HOSTILE} Taiwan",
        summary=summary,
        source=HOSTILE,
        matches=(match(name=HOSTILE, terms=("Taiwan", HOSTILE), hits=(hit,)),),
    )


def telegram_visible(text: str) -> str:
    """What a Telegram user reads; parse_html raises where the Bot API would answer 400."""
    return parse_html(text)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]


def anchors(markup: str) -> _Anchors:
    parser = _Anchors()
    parser.feed(markup)
    return parser


# --- escaping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "render",
    [render_telegram_html, lambda v: render_email(v).html],
    ids=["telegram", "email-html"],
)
def test_hostile_text_is_escaped_everywhere(render: Callable[[AlertView], str]) -> None:
    markup = render(hostile_view())
    # No markup survives from the feed: the only tags are ours.
    assert "<script" not in markup
    assert HOSTILE not in markup
    assert "A &amp; B &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &#x27;q&#x27;" in markup
    assert set(anchors(markup).tags) <= {
        "b", "i", "a", "blockquote", "html", "head", "meta", "body", "h2", "p", "em", "ul",
        "li", "strong", "code",
    }  # fmt: skip


def test_hostile_telegram_text_reads_back_verbatim() -> None:
    visible = telegram_visible(render_telegram_html(hostile_view()))
    # Title, source, watchlist name and snippet all show the raw text, decoded once.
    assert visible.count(HOSTILE) >= 4


def test_plain_text_keeps_text_and_marks_the_hit() -> None:
    text = render_text(hostile_view())
    assert f"{HOSTILE} Taiwan" in text
    assert "«Taiwan»" in text
    assert "Published: 2024-05-01 12:30 UTC" in text
    assert "Link: https://example.org/a" in text


def test_terminal_escape_sequences_do_not_reach_the_console() -> None:
    text = render_text(view(title="Taiwan \x1b[2J\x1b]0;pwned\x07 news\r\nfake line"))
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "fake line" in text.splitlines()[0]


# --- links ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "linked"),
    [
        ('https://example.org/a?x=1&y="2"', True),
        ("http://example.org/", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("https://example.org/\nnext", False),
        (None, False),
    ],
)
def test_only_http_links_become_anchors(url: str | None, linked: bool) -> None:
    for markup in (render_telegram_html(view(url=url)), render_email(view(url=url)).html):
        hrefs = anchors(markup).hrefs
        if linked:
            assert hrefs == [url]  # the parser decodes &amp; and &quot; back
        else:
            assert hrefs == []
        assert "javascript:" not in " ".join(hrefs).lower()


def test_a_quote_in_the_url_cannot_leave_the_attribute() -> None:
    markup = render_telegram_html(view(url='https://e.org/"><b onmouseover="x'))
    assert anchors(markup).hrefs == ['https://e.org/"><b onmouseover="x']
    telegram_visible(markup)


# --- Telegram: whole messages, cut into parts --------------------------------------------------


def many_matches(n: int, terms: int = 30) -> tuple[WatchlistMatch, ...]:
    return tuple(
        match(
            wid=f"list-{i}",
            name=f"Watchlist number {i} " + "&" * 50,
            terms=tuple(f"term<{j}>" for j in range(terms)),
            hits=(Hit("term<0>", "summary", 0, 5),),
        )
        for i in range(n)
    )


def telegram_parts(alert: AlertView) -> list[str]:
    """The alert as the notifier sends it: each part within the limit and valid on its own."""
    markup = render_telegram_html(alert)
    parts = split_html(markup, TELEGRAM_LIMIT)
    for part in parts:
        assert utf16_len(part) <= TELEGRAM_LIMIT
        assert len(part.encode("utf-16-le")) // 2 <= 4096
        assert telegram_visible(part).strip()
        assert not re.search(r"&[#A-Za-z0-9]*…", part)
    whole = "".join(telegram_visible(markup).split())
    assert "".join("".join(telegram_visible(p).split()) for p in parts) == whole
    return parts


@pytest.mark.parametrize(
    "alert",
    [
        view(title="&" * 20_000),
        view(title="Taiwan " + "<>&\"'" * 5000, source="&" * 5000),
        view(title="😀" * 5000),  # astral plane: 2 UTF-16 units each
        view(title="T" * 4095 + "😀"),
        view(summary="😀 " * 3000, matches=many_matches(3)),
        view(summary="word & " * 3000, matches=many_matches(40)),
        view(summary="x" * 500, matches=many_matches(400, terms=200)),
        view(url="https://example.org/" + "a&" * 5000),
    ],
    ids=["ampersands", "mixed", "emoji", "edge", "emoji-snippets", "40", "400", "long-url"],
)
def test_telegram_parts_stay_within_4096_utf16_units(alert: AlertView) -> None:
    telegram_parts(alert)


@pytest.mark.parametrize(
    ("title", "cap"),
    [("&" * 20_000, 600), ("😀" * 5000, 600), ("Taiwan " * 3000, 600)],
    ids=["ampersands", "emoji", "words"],
)
def test_a_huge_title_is_capped_not_the_message(title: str, cap: int) -> None:
    [first, *_] = telegram_parts(view(title=title))
    shown = telegram_visible(first).splitlines()[0]
    assert shown.endswith("…") and utf16_len(shown) <= cap + len("NORMAL ")


def test_every_watchlist_is_shown_however_many() -> None:
    parts = telegram_parts(view(matches=many_matches(400, terms=200)))
    assert len(parts) > 1
    visible = "\n".join(telegram_visible(p) for p in parts)
    assert [int(n) for n in re.findall(r"Watchlist number (\d+)", visible)] == list(range(400))
    assert "more watchlists" not in visible


def test_the_head_is_in_the_first_part() -> None:
    alert = replace(view(matches=many_matches(40)), also=("Reuters", "AP"))
    first = telegram_visible(telegram_parts(alert)[0])
    assert first.startswith("NORMAL Taiwan holds drills\nExample News · 2024-05-01 12:30 UTC\n")
    assert "Also reported by Reuters, AP (3 sources)" in first


@pytest.mark.parametrize(
    ("also", "line"),
    [
        ((), None),
        (("Reuters",), "Also reported by Reuters (2 sources)"),
        (("A", "B", "C"), "Also reported by A, B, C (4 sources)"),
        (tuple("ABCDEFG"), "Also reported by A, B, C, D, E and 2 more (8 sources)"),
        ((HOSTILE, "B"), f"Also reported by {HOSTILE}, B (3 sources)"),
        (("  spaced\n out ", "   "), "Also reported by spaced out, (unnamed) (3 sources)"),
        (("x" * 500,), "Also reported by " + "x" * 79 + "… (2 sources)"),
    ],
    ids=["none", "one", "three", "seven", "hostile", "blank-names", "long-name"],
)
def test_also_reported_by(also: tuple[str, ...], line: str | None) -> None:
    alert = replace(view(), also=also)
    markup = render_telegram_html(alert)
    head = telegram_visible(markup).split("\n\n")[0].splitlines()
    text_head = render_telegram_text(alert).splitlines()
    if line is None:
        assert not any("Also reported" in x for x in head + text_head)
    else:
        assert head[2] == line  # under the source, in italics
        assert f"<i>{html.escape(line)}</i>" in markup
        assert text_head[2] == line  # the plain fallback says the same, under "Source:"


def test_plain_telegram_fallback_is_whole_and_splits_within_the_limit() -> None:
    text = render_telegram_text(view(title="😀" * 5000, matches=many_matches(40)))
    parts = split_text(text)
    assert len(parts) > 1
    assert all(utf16_len(p) <= TELEGRAM_LIMIT for p in parts)
    assert "".join("".join(p.split()) for p in parts) == "".join(text.split())


@pytest.mark.parametrize(
    ("alert_id", "story_id", "wid", "rows"),
    [
        (None, None, "taiwan", []),
        (None, 9, "taiwan", []),
        (
            17,
            9,
            "taiwan",
            [
                [("Mute story", "ms:9"), ("Not relevant", "nr:17")],
                [("Snooze taiwan 24 h", "sw:taiwan")],
            ],
        ),
        (17, None, "taiwan", [[("Not relevant", "nr:17")], [("Snooze taiwan 24 h", "sw:taiwan")]]),
    ],
    ids=["no-alert", "story-only", "all", "no-story"],
)
def test_alert_buttons(
    alert_id: int | None, story_id: int | None, wid: str, rows: list[list[tuple[str, str]]]
) -> None:
    alert = replace(view(matches=(match(wid),)), alert_id=alert_id, story_id=story_id)
    assert alert_buttons(alert) == rows


@pytest.mark.parametrize(("length", "snooze"), [(61, True), (62, False), (500, False)])
def test_callback_data_stays_within_64_bytes(length: int, snooze: bool) -> None:
    wid = "w" * length  # "sw:" + 61 characters is 64 bytes
    alert = replace(view(matches=(match(wid),)), alert_id=10**12, story_id=10**12)
    buttons = [b for row in alert_buttons(alert) for b in row]
    assert all(len(data.encode()) <= CALLBACK_DATA_LIMIT for _, data in buttons)
    assert [d for _, d in buttons if d.startswith("sw:")] == ([f"sw:{wid}"] if snooze else [])
    assert ("Mute story", f"ms:{10**12}") in buttons


def test_snooze_names_the_most_urgent_watchlist() -> None:
    alert = replace(
        view(matches=(match("low"), match("urgent", priority=Priority.critical), match("b"))),
        alert_id=1,
    )
    assert alert_buttons(alert)[-1] == [("Snooze urgent 24 h", "sw:urgent")]


def test_a_digest_renders_every_alert() -> None:
    items = (hostile_view(), replace(view(), also=("AP",)))
    digest = Digest(kind="summary", items=items, at=WHEN)
    markup = outgoing_html(digest)
    visible = "\n".join(telegram_visible(p) for p in split_html(markup))
    assert visible.count(HOSTILE) >= 4 and "Taiwan holds drills" in visible
    text = outgoing_text(digest)
    assert f"{HOSTILE} Taiwan" in text and "Taiwan holds drills" in text
    assert outgoing_html(items[1]) == render_telegram_html(items[1])
    assert outgoing_text(items[1]) == render_telegram_text(items[1])


# --- snippets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "width", "expected"),
    [
        ("short Taiwan text", 6, 12, 160, ("short ", "Taiwan", " text")),
        (
            "one two three four five six Taiwan seven eight nine ten eleven",
            28, 34, 30,
            ("…five six ", "Taiwan", " seven eight…"),
        ),
        ("Taiwan at the start of a long sentence here", 0, 6, 20, ("", "Taiwan", " at the start…")),
        ("a long sentence that ends with Taiwan", 31, 37, 20, ("…ends with ", "Taiwan", "")),
        ("台湾海峡局势紧张台湾军队进行演习台湾", 8, 10, 8, ("…势紧张", "台湾", "军队进…")),
        ("line one\n\n  Taiwan\tline two", 12, 18, 160, ("line one ", "Taiwan", " line two")),
    ],
)  # fmt: skip
def test_snippet_cuts_between_words(
    text: str, start: int, end: int, width: int, expected: tuple[str, str, str]
) -> None:
    assert snippet(text, start, end, width) == expected


def test_snippet_clamps_offsets_and_caps_huge_hits() -> None:
    assert snippet("abc", 10, 20) == ("abc", "", "")
    before, hit, after = snippet("x" * 1000, 0, 1000, width=50)
    assert len(before + hit + after) <= 51 and hit.endswith("…")


def test_text_names_terms_with_their_fields() -> None:
    summary = "The Taiwan strait"
    hits = (
        Hit("Taiwan", "title", 0, 6),
        Hit("Taiwan", "summary", 4, 10),
        Hit("strait", "summary", 11, 17),
    )
    alert = view(
        title="Taiwan news",
        summary=summary,
        matches=(match(terms=("Taiwan", "strait"), hits=hits, priority=Priority.high),),
    )
    text = render_text(alert)
    assert "Taiwan (title, summary), strait (summary)" in text
    assert text.startswith("[HIGH] Taiwan news")
    assert "summary: The «Taiwan» strait" in text  # a body hit is preferred over the title


def test_priority_is_the_highest_of_the_matches() -> None:
    alert = view(matches=(match("a"), match("b", priority=Priority.critical), match("c")))
    assert alert.priority is Priority.critical
    assert render_text(alert).startswith("[CRITICAL]")


def test_a_view_needs_a_match() -> None:
    with pytest.raises(ValueError, match="at least one"):
        view(matches=())


def test_published_time_is_shown_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    article = Article(
        "f", "g", None, "Taiwan", published_at=datetime(2024, 5, 1, 14, 30, tzinfo=paris)
    )
    text = render_text(AlertView(article, "src", (match(),)))
    assert "Published: 2024-05-01 12:30 UTC" in text


def test_send_test_view_is_a_marked_test() -> None:
    alert = send_test_view(WHEN)
    assert alert.test
    assert "[TEST]" in render_text(alert)
    assert "2024-05-01 12:30 UTC" in render_text(alert)
    assert render_email(alert).subject.startswith("[TEST]")
    assert "TEST" in telegram_visible(render_telegram_html(alert))


# --- email headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("plain subject", "plain subject"),
        ("a\r\nBcc: x@y", "a Bcc: x@y"),
        ("a\rb\nc", "a b c"),
        ("nul\x00byte", "nul byte"),
        ("next\x85line", "next line"),
        ("line\u2028sep\u2029para", "line sep para"),
        ("tab\tand  spaces   ", "tab and spaces"),
        ("bell\x07 esc\x1b[31m del\x7f", "bell esc [31m del"),
        ("rtl \u202egnp.exe", "rtl gnp.exe"),
        ("Тайвань 台湾 😀", "Тайвань 台湾 😀"),
        # RFC 2047 encoded words would be decoded by the email package (see header_text).
        ("=?utf-8?q?a=0D=0ABcc:_x@y?=", "= ?utf-8?q?a=0D=0ABcc:_x@y?="),
        ("x=?utf-8?b?YQ0KQmNjOiB4QHk=?=y", "x= ?utf-8?b?YQ0KQmNjOiB4QHk= ?=y"),
        ("==??=", "== ??="),
        ("a =\r\n? b", "a = ? b"),
    ],
)
def test_header_text_removes_controls(raw: str, clean: str) -> None:
    assert header_text(raw) == clean


def test_header_text_caps_length() -> None:
    capped = header_text("word " * 200, limit=50)
    assert len(capped) <= 50 and capped.endswith("…")


def test_injected_subject_adds_no_header() -> None:
    alert = view(title="Taiwan\r\nBcc: victim@example.org\r\n\r\nbody")
    content = render_email(alert)
    message = EmailMessage(policy=email.policy.SMTP)
    message["Subject"] = content.subject
    message["From"] = "monitor@example.org"
    message["To"] = "desk@example.org"
    message.set_content(content.text)
    raw = message.as_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^bcc:", head)
    assert message["Bcc"] is None
    assert "\r" not in content.subject and "\n" not in content.subject


def test_lone_surrogates_and_controls_cannot_break_encoding() -> None:
    # JSON feeds may carry "\\ud800"; no renderer may produce text that cannot be encoded.
    odd = "Taiwan \ud800 \x00\x1b[0m \udfff end"
    alert = view(title=odd, summary=odd, url="https://e.org/\ud800", source=odd)
    for out in (
        render_text(alert),
        render_telegram_html(alert),
        render_telegram_text(alert),
        render_email(alert).subject,
        render_email(alert).text,
        render_email(alert).html,
    ):
        out.encode("utf-8")
        assert "\x00" not in out and "\x1b" not in out


# --- other sources of the story ---------------------------------------------------------------


def with_also(also: tuple[str, ...], source: str = "Example News") -> AlertView:
    return dataclasses.replace(view(source=source), also=also)


@pytest.mark.parametrize(
    ("also", "line"),
    [
        ((), ""),
        (("Reuters",), "Also reported by Reuters (2 sources)"),
        (("Reuters", "AP"), "Also reported by Reuters, AP (3 sources)"),
        (tuple("ABCDE"), "Also reported by A, B, C, D, E (6 sources)"),
        (tuple("ABCDEF"), "Also reported by A, B, C, D, E and 1 more (7 sources)"),
        (tuple(f"S{i}" for i in range(40)), "S3, S4 and 35 more (41 sources)"),
        (("Bad\r\nBcc: x", "\x1b[2Jx", "  "), "Bad Bcc: x, [2Jx, (unnamed) (4 sources)"),
        (("x" * 200,), "Also reported by " + "x" * 79 + "… (2 sources)"),
    ],
)
def test_also_reported_names_and_counts_the_sources(also: tuple[str, ...], line: str) -> None:
    alert = with_also(also)
    assert line in also_reported(alert)
    text = render_text(alert)
    if also:
        assert line in text
        # Right under the source it adds to.
        lines = text.splitlines()
        assert lines[lines.index("Source: Example News") + 1].startswith("Also reported by")
    else:
        assert "Also reported" not in text and also_reported(alert) == ""


@pytest.mark.parametrize(
    ("names", "limit", "shown"),
    [
        (("a", "b", "c"), 5, "a, b, c"),
        (("a", "b", "c"), 2, "a, b and 1 more"),
        (("a", "b", "c"), 0, "3 more"),
        ((), 5, ""),
    ],
)
def test_also_names_caps_the_list(names: tuple[str, ...], limit: int, shown: str) -> None:
    assert also_names(names, limit) == shown


def test_also_reported_in_email_html_is_escaped() -> None:
    content = render_email(with_also((HOSTILE, "AP")))
    assert HOSTILE not in content.html and "<script" not in content.html
    expected = "Also reported by A &amp; B &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    assert f"<p>{expected} &#x27;q&#x27;, AP (3 sources)</p>" in content.html
    assert f"Also reported by {HOSTILE}, AP (3 sources)" in content.text
    assert "Also reported" not in render_email(view()).html
