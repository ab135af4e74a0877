"""Digest rendering: grouping by watchlist, the flood-control summary, escaping, splittable
Telegram HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.core.render import AlertView, Digest
from monitor.core.render_digest import (
    LINE_UNITS,
    WatchlistLabel,
    digest_title,
    group_by_watchlist,
    most_urgent_first,
    render_digest_email,
    render_digest_telegram,
    render_digest_text,
)
from tests.fakes.telegram_html import parse_html

HOSTILE = "A & B <script>alert(\"x\")</script> 'q'"
ESCAPED = "A &amp; B &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &#x27;q&#x27;"
AT = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)
PUBLISHED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

L, N, H, C = Priority.low, Priority.normal, Priority.high, Priority.critical


def wm(
    wid: str, priority: Priority = N, name: str = "", terms: tuple[str, ...] = ("x",)
) -> WatchlistMatch:
    hits = tuple(Hit(t, "title", 0, 1) for t in terms)
    return WatchlistMatch(wid, name or wid, priority, terms, hits)


def story(
    guid: str,
    *matches: WatchlistMatch,
    title: str | None = None,
    url: str | None = None,
    source: str = "Example News",
    also: tuple[str, ...] = (),
) -> AlertView:
    article = Article(
        feed_id="f",
        guid=guid,
        url=url if url is not None else f"https://example.org/{guid}",
        title=title if title is not None else f"Story {guid}",
        published_at=PUBLISHED,
    )
    return AlertView(article=article, source=source, matches=matches, also=also)


def grouped(items: list[AlertView]) -> list[tuple[str, list[str]]]:
    """group_by_watchlist as (watchlist id, [story guids]), easy to write in a table."""
    return [
        (label.watchlist_id, [v.article.guid for v in views])
        for label, views in group_by_watchlist(items)
    ]


# --- grouping -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], []),
        ([story("a", wm("taiwan"))], [("taiwan", ["a"])]),
        # A story under every watchlist it matched.
        ([story("a", wm("taiwan"), wm("ship"))], [("ship", ["a"]), ("taiwan", ["a"])]),
        # Watchlists: most urgent first ...
        (
            [story("a", wm("low", L)), story("b", wm("crit", C)), story("c", wm("high", H))],
            [("crit", ["b"]), ("high", ["c"]), ("low", ["a"])],
        ),
        # ... then by display name, case-insensitively ...
        (
            [story("a", wm("w1", name="gamma")), story("b", wm("w2", name="Beta")),
             story("c", wm("w3", name="alpha"))],
            [("w3", ["c"]), ("w2", ["b"]), ("w1", ["a"])],
        ),
        # ... then by id (same name, different lists).
        (
            [story("a", wm("zz", name="Same")), story("b", wm("aa", name="Same"))],
            [("aa", ["b"]), ("zz", ["a"])],
        ),
        # A name of its own is shown as "Name (id)" and sorted as such.
        (
            [story("a", wm("a-id", name="Zulu")), story("b", wm("z-id", name="Alpha"))],
            [("z-id", ["b"]), ("a-id", ["a"])],
        ),
        # Within a watchlist: the story's own priority (its highest match) first.
        (
            [story("a", wm("ship")), story("b", wm("ship"), wm("war", C)),
             story("c", wm("ship"), wm("port", H))],
            [("war", ["b"]), ("port", ["c"]), ("ship", ["b", "c", "a"])],
        ),
        # Equal priorities keep the digest's order.
        (
            [story(g, wm("ship")) for g in "dbeca"],
            [("ship", ["d", "b", "e", "c", "a"])],
        ),
        # Two matches of one watchlist in one story: listed once.
        ([story("a", wm("ship"), wm("ship"))], [("ship", ["a"])]),
        # A watchlist whose priority changed between alerts ranks by the highest seen.
        (
            [story("a", wm("ship", L)), story("b", wm("port", N)), story("c", wm("ship", H))],
            [("ship", ["c", "a"]), ("port", ["b"])],
        ),
        # Mixed: three stories, four watchlists.
        (
            [story("a", wm("taiwan", H), wm("ship")), story("b", wm("ship"), wm("port", L)),
             story("c", wm("taiwan", H)), story("d", wm("energy", C))],
            [("energy", ["d"]), ("taiwan", ["a", "c"]), ("ship", ["a", "b"]), ("port", ["b"])],
        ),
        # Many stories over many watchlists: every (story, watchlist) pair exactly once.
        (
            [story(f"s{i}", wm(f"w{i % 3}"), wm(f"w{(i + 1) % 3}")) for i in range(6)],
            [("w0", ["s0", "s2", "s3", "s5"]), ("w1", ["s0", "s1", "s3", "s4"]),
             ("w2", ["s1", "s2", "s4", "s5"])],
        ),
    ],
    ids=[
        "empty", "one", "under-each", "by-priority", "by-name-casefold", "by-id", "name-and-id",
        "story-priority", "stable", "duplicate-match", "priority-changed", "mixed", "many",
    ],
)  # fmt: skip
def test_group_by_watchlist(items: list[AlertView], expected: list[tuple[str, list[str]]]) -> None:
    assert grouped(items) == expected


def test_group_label_keeps_the_first_name_and_the_highest_priority() -> None:
    items = [story("a", wm("ship", L, name="Shipping")), story("b", wm("ship", H, name="Renamed"))]
    [(label, _)] = group_by_watchlist(items)
    assert label == WatchlistLabel("ship", "Shipping", H)
    assert label.label == "Shipping (ship)"
    assert WatchlistLabel("ship", "ship", N).label == "ship"


@pytest.mark.parametrize(
    ("priorities", "expected"),
    [
        ([N], [0]),
        ([L, N, H, C], [3, 2, 1, 0]),
        ([N, C, N, C, L], [1, 3, 0, 2, 4]),
        ([H, H, H], [0, 1, 2]),
        ([L, C], [1, 0]),
    ],
)
def test_most_urgent_first_is_stable(priorities: list[Priority], expected: list[int]) -> None:
    items = [story(str(i), wm("w", p)) for i, p in enumerate(priorities)]
    assert [int(v.article.guid) for v in most_urgent_first(items)] == expected


@pytest.mark.parametrize(
    ("kind", "items", "title"),
    [
        ("digest", [story("a", wm("w"))], "Digest: 1 story in 1 watchlist"),
        ("digest", [story("a", wm("w")), story("b", wm("w"))], "Digest: 2 stories in 1 watchlist"),
        ("digest", [story("a", wm("w"), wm("v"))], "Digest: 1 story in 2 watchlists"),
        (
            "digest",
            [story(str(i), wm(f"w{i % 3}")) for i in range(12)],
            "Digest: 12 stories in 3 watchlists",
        ),
        ("summary", [story("a", wm("w"))], "1 more alert (flood control)"),
        ("summary", [story(str(i), wm("w")) for i in range(35)], "35 more alerts (flood control)"),
    ],
)
def test_digest_title_counts(kind: str, items: list[AlertView], title: str) -> None:
    digest = Digest(kind, tuple(items), AT)  # type: ignore[arg-type]
    assert digest_title(digest) == title
    assert render_digest_email(digest).subject == f"[monitor] {title}"


# --- what a digest shows ----------------------------------------------------------------------


def sample_digest() -> Digest:
    return Digest(
        "digest",
        (
            story("a", wm("taiwan", H, "Taiwan", ("Taiwan", "strait")), wm("ship", N, "Shipping"),
                  also=("Reuters", "AP")),
            story("b", wm("ship", N, "Shipping")),
            story("c", wm("energy", C, "Energy")),
        ),
        AT,
    )  # fmt: skip


def test_text_digest_lists_every_story_under_its_watchlists() -> None:
    text = render_digest_text(sample_digest())
    assert text.splitlines()[0] == "Digest: 3 stories in 3 watchlists · 2024-05-01 13:00 UTC"
    sections = re.split(r"^== (.*) ==$", text, flags=re.M)[1:]
    names = sections[0::2]
    bodies = sections[1::2]
    assert names == [
        "Energy (energy) · critical · 1 story",
        "Taiwan (taiwan) · high · 1 story",
        "Shipping (ship) · normal · 2 stories",
    ]
    assert re.findall(r"Story \w", bodies[0]) == ["Story c"]
    assert re.findall(r"Story \w", bodies[1]) == ["Story a"]
    assert re.findall(r"Story \w", bodies[2]) == ["Story a", "Story b"]
    # Each listing: priority, title, sources with their count, time, link, terms, other lists.
    assert "[HIGH] Story a" in bodies[1]
    assert "Example News; also Reuters, AP (3 sources) · 2024-05-01 12:00 UTC" in bodies[1]
    assert "Link: https://example.org/a" in bodies[1]
    assert "Terms: Taiwan (title), strait (title)" in bodies[1]
    assert "Also in: Shipping (ship)" in bodies[1]
    assert "Terms: x (title)" in bodies[2] and "Also in: Taiwan (taiwan)" in bodies[2]
    assert "Also in" not in bodies[0]


def test_summary_is_one_flat_list_most_urgent_first() -> None:
    items = (
        story("a", wm("ship", N, "Shipping")),
        story("b", wm("energy", C, "Energy"), wm("ship", N, "Shipping")),
        story("c", wm("taiwan", H, "Taiwan")),
    )
    text = render_digest_text(Digest("summary", items, AT))
    lines = text.splitlines()
    assert lines[0] == "Flood control · 2024-05-01 13:00 UTC"
    assert lines[1].startswith("3 more alerts came in faster than this destination")
    assert "flood control collapsed them into this summary" in lines[1]
    assert "==" not in text
    assert re.findall(r"\[(\w+)\] Story (\w)", text) == [
        ("CRITICAL", "b"), ("HIGH", "c"), ("NORMAL", "a"),
    ]  # fmt: skip
    # Each story names every watchlist it hit, most urgent first, with that list's terms.
    b = text[text.index("Story b") : text.index("Story c")]
    assert b.index("Energy (energy): x (title)") < b.index("Shipping (ship): x (title)")


@pytest.mark.parametrize(
    ("also", "shown"),
    [
        ((), "Example News · "),
        (("Reuters",), "Example News; also Reuters (2 sources)"),
        (tuple(f"S{i}" for i in range(10)), "also S0, S1, S2, S3, S4, S5, S6, S7, S8, S9 (11"),
        (tuple(f"S{i}" for i in range(13)), "S8, S9 and 3 more (14 sources)"),
        (("Bad\r\nname", "\x1b[2J"), "also Bad name, [2J (3 sources)"),
    ],
)
def test_every_source_is_named_and_counted(also: tuple[str, ...], shown: str) -> None:
    digest = Digest("digest", (story("a", wm("w"), also=also),), AT)
    for out in (
        render_digest_text(digest),
        parse_html(render_digest_telegram(digest)),
    ):
        assert shown in out
        assert "\x1b" not in out and "\r" not in out


# --- hostile text -------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]


def tags(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    return parser


def hostile_digest(kind: str) -> Digest:
    items = (
        story("a", wm("w1", H, HOSTILE, (HOSTILE,)), title=HOSTILE, source=HOSTILE,
              also=(HOSTILE,), url="https://example.org/?a=1&b=\"2\""),
        story("b", wm("w2", N, HOSTILE), title=f"{HOSTILE} two", url="javascript:alert(1)"),
    )  # fmt: skip
    return Digest(kind, items, AT)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["digest", "summary"])
def test_email_html_escapes_every_feed_string(kind: str) -> None:
    content = render_digest_email(hostile_digest(kind))
    markup = content.html
    assert "<script" not in markup and HOSTILE not in markup
    assert markup.count(ESCAPED) >= 5  # title, source, also, watchlist name, term
    found = tags(markup)
    assert found.tags <= {"html", "head", "meta", "body", "h2", "h3", "p", "em", "ul", "li",
                          "strong", "a", "br"}  # fmt: skip
    assert found.hrefs == ['https://example.org/?a=1&b="2"']  # javascript: never links
    assert HOSTILE in content.text  # plain text shows it as written


@pytest.mark.parametrize("kind", ["digest", "summary"])
def test_telegram_uses_few_tags_and_escapes_everything(kind: str) -> None:
    markup = render_digest_telegram(hostile_digest(kind))
    visible = parse_html(markup)  # raises where the Bot API would answer 400
    assert HOSTILE not in markup and "<script" not in markup
    assert visible.count(HOSTILE) >= 5
    found = tags(markup)
    assert found.tags <= {"b", "i", "a", "blockquote"}
    assert "javascript:" not in " ".join(found.hrefs)
    assert all(h == 'https://example.org/?a=1&b="2"' for h in found.hrefs) and found.hrefs


# --- Telegram: any length, split between lines --------------------------------------------------


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def huge_story(i: int) -> AlertView:
    many = tuple(wm(f"w{j}", Priority(j % 4), "&" * 400, tuple(f't"{k}' for k in range(80)))
                 for j in range(5))  # fmt: skip
    return story(
        f"s{i}",
        *many,
        title="&\"<>'" * 2000 + "😀" * 500,
        source="&" * 1000,
        also=tuple("<" * 500 for _ in range(40)),
        url="https://example.org/" + "&" * 5000 if i % 2 else "https://example.org/" + "a" * 300,
    )


@pytest.mark.parametrize("kind", ["digest", "summary"])
def test_every_telegram_line_stands_alone_and_fits(kind: str) -> None:
    digest = Digest(kind, tuple(huge_story(i) for i in range(30)), AT)  # type: ignore[arg-type]
    markup = render_digest_telegram(digest)
    assert utf16(markup) > 4096  # long: the notifier splits it
    parse_html(markup)
    for line in markup.split("\n"):
        assert utf16(line) <= LINE_UNITS
        parse_html(line)  # every tag closes on the line it opens
    assert not re.search(r"&[#A-Za-z0-9]*…", markup)  # no entity was cut


def test_a_long_link_leaves_the_title_unlinked_but_shown() -> None:
    digest = Digest("digest", (huge_story(1), huge_story(2)), AT)
    markup = render_digest_telegram(digest)
    assert tags(markup).hrefs == ["https://example.org/" + "a" * 300] * 5


def test_every_story_is_in_the_telegram_digest() -> None:
    items = tuple(story(f"{i:03}", wm(f"w{i % 7}", Priority(i % 4))) for i in range(200))
    visible = parse_html(render_digest_telegram(Digest("digest", items, AT)))
    assert sorted(set(re.findall(r"Story (\d{3})", visible))) == [f"{i:03}" for i in range(200)]
    assert "Digest: 200 stories in 7 watchlists" in visible
