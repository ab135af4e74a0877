"""Splitting Telegram HTML: every part fits, parses, shows text, and together they show it all."""

from __future__ import annotations

import html
import random
import re

import pytest

from monitor.core.telegram_parts import (
    MIN_LIMIT,
    join_part_ids,
    parse_part_ids,
    split_html,
    split_text,
    utf16_len,
)
from tests.fakes.telegram_html import parse_html

# An independent reading of Telegram HTML for the checks: each visible character with the
# tags (as written, attributes and all) that are open around it.
_PIECE = re.compile(r"<(/?)([a-z-]+)[^>]*>|&[^;]+;|.", re.DOTALL)


def styled(markup: str) -> list[tuple[str, tuple[str, ...]]]:
    out: list[tuple[str, tuple[str, ...]]] = []
    stack: list[str] = []
    for m in _PIECE.finditer(markup):
        piece = m.group(0)
        if m.group(2):
            if m.group(1):
                assert stack and stack[-1].startswith(f"<{m.group(2)}"), markup
                stack.pop()
            else:
                stack.append(piece)
        else:
            out.extend((ch, tuple(stack)) for ch in html.unescape(piece))
    return out


def ink(chars: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, tuple[str, ...]]]:
    """The non-whitespace characters: what must survive every cut, formatting included."""
    return [(ch, tags) for ch, tags in chars if not ch.isspace()]


def squeeze(text: str) -> str:
    return "".join(text.split())


def check(markup: str, limit: int, *, formatting: bool = True) -> list[str]:
    """The split's invariants; returns the parts for more specific checks."""
    parts = split_html(markup, limit)
    assert parts, "a text with visible text gives at least one part"
    shown = []
    for part in parts:
        assert utf16_len(part) <= limit, (limit, part)
        visible = parse_html(part)  # raises where Telegram answers "can't parse entities"
        assert visible.strip(), f"empty part: {part!r}"
        shown.append(visible)
    assert squeeze("".join(shown)) == squeeze(parse_html(markup))
    if formatting:
        assert [x for p in parts for x in ink(styled(p))] == ink(styled(markup))
    return parts


# --- fixed cases ------------------------------------------------------------------------------

LINK = '<a href="https://example.org/?a=1&amp;b=&quot;2&quot;">'
BLOCK = "<b>Watchlist</b>: term (title)\n<blockquote>before <b>hit</b> after</blockquote>"

CASES: list[tuple[str, str, int]] = [
    ("fits", "<b>short</b> text", 4096),
    ("plain-words", "word " * 3000, 4096),
    ("plain-words-small", "word " * 300, 50),
    ("astral-emoji", "😀" * 5000, 4096),
    ("astral-emoji-odd-limit", "😀" * 100, 11),
    ("astral-in-bold", "<b>" + "😀" * 3000 + "</b>", 4096),
    ("entities", "&amp;" * 2000, 4096),
    ("entities-tight", "&amp;" * 100, 11),
    ("numeric-entities", "&#128512;&#x1F600;&lt;&gt;&quot;" * 300, 64),
    ("entity-at-boundary", "x" * 4093 + "&amp;" + "y" * 10, 4096),
    ("nested-a-b", LINK + "<b>" + "word " * 2000 + "</b></a>", 4096),
    ("nested-a-b-small", LINK + "<b>" + "word " * 200 + "</b></a>", 120),
    ("blockquote-across", "<blockquote>" + "quoted words " * 800 + "</blockquote>", 4096),
    ("blockquote-then-text", "<blockquote>" + "q " * 3000 + "</blockquote>\n\nafter", 4096),
    ("single-word-20k", "x" * 20_000, 4096),
    ("single-word-20k-bold", "<b>" + "x" * 20_000 + "</b>", 4096),
    ("single-word-20k-entities", "&lt;" * 20_000, 4096),
    ("cjk-no-spaces", "台湾海峡局势紧张" * 1500, 4096),
    ("blocks", "\n\n".join([BLOCK] * 200), 4096),
    ("blocks-small", "\n\n".join([BLOCK] * 20), 100),
    ("lines", "\n".join(["a line of text"] * 1000), 4096),
    ("spoiler-span", '<span class="tg-spoiler">' + "secret " * 1000 + "</span>", 4096),
    ("code-pre", '<pre><code class="language-python">' + "x = 1\n" * 1000 + "</code></pre>", 999),
    ("deep", "<b><i><u><s>" + "deep " * 1000 + "</s></u></i></b>", 200),
    ("whitespace-runs", ("word" + " " * 50 + "\n" * 5) * 200, 300),
    ("close-at-cut", "<b>" + "a " * 60 + "\n\n</b>" + "b " * 60, 128),
    ("leading-trailing-space", "   " + "word " * 100 + "   ", 64),
]


@pytest.mark.parametrize(("markup", "limit"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parts_fit_parse_and_keep_everything(markup: str, limit: int) -> None:
    check(markup, limit)


def test_a_text_that_fits_comes_back_unchanged() -> None:
    markup = "<b>head</b>\n\n" + "x" * 4000
    assert split_html(markup) == [markup]
    assert split_html("😀" * 2048) == ["😀" * 2048]


@pytest.mark.parametrize("markup", ["", " ", "\n\n\t", "<b></b>", "<b> </b>\n"])
def test_no_visible_text_gives_no_parts(markup: str) -> None:
    assert split_html(markup, 4096) == []


@pytest.mark.parametrize("limit", [-1, 0, 1, MIN_LIMIT - 1])
def test_a_limit_too_small_for_any_entity_is_refused(limit: int) -> None:
    with pytest.raises(ValueError, match="limit"):
        split_html("x" * 100, limit)


def test_a_20k_word_fills_every_part_but_the_last() -> None:
    parts = check("x" * 20_000, 4096)
    assert [len(p) for p in parts] == [4096] * 4 + [20_000 - 4 * 4096]


def test_emoji_are_never_halved() -> None:
    parts = check("😀" * 100, 11)  # 11 units hold five emoji, never five and a half
    assert all(set(p) == {"😀"} for p in parts)
    assert [len(p) for p in parts] == [5] * 20


def test_entities_are_never_cut() -> None:
    for limit in range(MIN_LIMIT, 40):
        for part in check("a&amp;b&#128512;c&quot;" * 20, limit):
            assert re.fullmatch(r"(?:[a-c]|&amp;|&#128512;|&quot;)+", part), (limit, part)


def test_open_tags_are_closed_and_reopened_with_their_attributes() -> None:
    parts = check(LINK + "<b>" + "word " * 200 + "</b></a>", 120)
    assert len(parts) > 2
    for part in parts:
        assert part.startswith(LINK + "<b>") and part.endswith("</b></a>")


def test_a_blockquote_across_a_cut_is_a_blockquote_on_both_sides() -> None:
    parts = check("intro\n\n<blockquote>" + "quoted " * 1000 + "</blockquote>", 4096)
    assert len(parts) == 2
    assert parts[0].startswith("intro\n\n<blockquote>") and parts[0].endswith("</blockquote>")
    assert parts[1].startswith("<blockquote>") and parts[1].endswith("</blockquote>")


def test_cuts_fall_between_blocks() -> None:
    blocks = [f"<b>Block {i}</b>: " + "word " * 80 for i in range(60)]
    stripped = {b.strip() for b in blocks}
    parts = check("\n\n".join(blocks), 4096)
    assert len(parts) > 1
    for part in parts:
        # Each part is whole blocks: it starts at one and ends at the end of one.
        assert all(chunk.strip() in stripped for chunk in part.split("\n\n"))


def test_line_ends_come_before_spaces() -> None:
    lines = [f"line {i} " + "w " * 30 for i in range(200)]
    for part in check("\n".join(lines), 1000):
        assert part.startswith("line ") and part.rstrip().endswith("w")


def test_a_blank_line_is_not_worth_a_nearly_empty_part() -> None:
    # A short head, then one long block: the cut goes inside the block, at a line end, rather
    # than sending the head alone.
    markup = "head\n\n" + "\n".join(["a line of text"] * 400)
    parts = check(markup, 1000)
    assert parts[0].startswith("head\n\na line")
    assert all(utf16_len(p) > 500 for p in parts[:-1])


def test_closing_tags_at_a_cut_do_not_leave_empty_tags() -> None:
    for part in check("<b>" + "a " * 60 + "\n\n</b>" + "b " * 60, 128):
        assert "<b></b>" not in part


def test_markup_too_long_to_reopen_goes_without_it() -> None:
    # An href longer than the limit: a part cannot hold the tag and any text, so it goes bare.
    long_link = '<a href="https://e.org/' + "x" * 100 + '">' + "link text " * 20 + "</a>"
    parts = check("before " * 5 + long_link + " after" * 5, 60, formatting=False)
    assert any("<a" not in p and "link text" in p for p in parts)


def test_plain_text_is_split_without_reading_markup() -> None:
    text = "A & B <b>not a tag</b> &amp; " * 400
    parts = split_text(text, 4096)
    assert len(parts) > 1
    assert all(utf16_len(p) <= 4096 and p.strip() for p in parts)
    assert squeeze("".join(parts)) == squeeze(text)
    assert split_text("short <b>") == ["short <b>"]


@pytest.mark.parametrize(
    ("chat", "ids", "external"),
    [
        (1234, ["7"], "1234:7"),
        (-1001234, ["7", "8", "9"], "-1001234:7,8,9"),
        ("@channel", [10, 11], "@channel:10,11"),
    ],
)
def test_part_ids_round_trip(chat: int | str, ids: list[str | int], external: str) -> None:
    assert join_part_ids(chat, ids) == external
    assert parse_part_ids(external) == (chat, [int(i) for i in ids])


@pytest.mark.parametrize("external", ["", "1234", "1234:", ":7", "1234:x", "1234:7,,8", "<msg>"])
def test_malformed_part_ids_are_none(external: str) -> None:
    assert parse_part_ids(external) is None


# --- random documents -------------------------------------------------------------------------

_WORDS = [
    "Taiwan", "drills", "&amp;", "&lt;b&gt;", "&quot;q&quot;", "&#128512;", "&#x27;", "😀",
    "👨‍👩‍👧", "台湾海峡", "Тайвань", "é", "a", "x" * 70, "&amp;" * 12,
]  # fmt: skip
_INLINE = ["<b>", "<i>", "<u>", "<s>", "<code>", "<tg-spoiler>", '<span class="tg-spoiler">']
_LINK = '<a href="https://example.org/p?q=1&amp;r=%22x%22">'


def _inline(rng: random.Random, depth: int) -> str:
    out: list[str] = []
    for _ in range(rng.randint(1, 12)):
        roll = rng.random()
        if roll < 0.15 and depth < 3:
            tag = rng.choice([*_INLINE, _LINK])
            name = re.match(r"<([a-z-]+)", tag)
            assert name is not None
            out.append(f"{tag}{_inline(rng, depth + 1)}</{name.group(1)}>")
        elif roll < 0.2:
            out.append(rng.choice(["\n", "\n\n", "  "]))
        else:
            out.append(rng.choice(_WORDS))
        out.append(" ")
    return "".join(out).strip() or "w"


def random_document(seed: int) -> str:
    rng = random.Random(seed)
    blocks = []
    for _ in range(rng.randint(1, 25)):
        body = _inline(rng, 0)
        blocks.append(f"<blockquote>{body}</blockquote>" if rng.random() < 0.3 else body)
    return rng.choice(["\n\n", "\n", " ", ""]).join(blocks)


@pytest.mark.parametrize("seed", range(150))
def test_random_documents_keep_their_text_at_any_limit(seed: int) -> None:
    markup = random_document(seed)
    for limit in (MIN_LIMIT, 17, 64):
        check(markup, limit, formatting=False)


@pytest.mark.parametrize("seed", range(150))
def test_random_documents_keep_their_formatting(seed: int) -> None:
    markup = random_document(seed)
    # Room for the deepest reopened markup (a blockquote and four tags, two of them links).
    for limit in (300, 4096):
        check(markup, limit)
