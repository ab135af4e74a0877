"""Telegram rendering: an `AlertView` as Telegram HTML, or as plain text, within 4096 units.

Contract: pure functions of an `AlertView` (no clock, no I/O). `render_telegram_html` uses only
tags the Bot API lists for its HTML parse mode, escapes every string that came from a feed (quotes
included, since some of it lands in attributes) and links http(s) URLs only; it and
`render_telegram_text` stay within TELEGRAM_LIMIT, counted in UTF-16 code units as Telegram counts
them (`utf16_len`). Truncation (`clip`) happens on the raw text before escaping, so an entity or a
tag is never cut in half. The pieces shared with the other formats live in `render`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from monitor.core.model import WatchlistMatch
from monitor.core.render import (
    ELLIPSIS,
    AlertView,
    esc,
    format_time,
    match_label,
    render_text,
    safe_link,
    snippet,
    snippet_hit,
    squash,
    term_fields,
    term_label,
)

__all__ = ["TELEGRAM_LIMIT", "clip", "render_telegram_html", "render_telegram_text", "utf16_len"]

#: Telegram's sendMessage limit: "1-4096 characters after entities parsing"; we hold the raw
#: HTML to it, which is stricter, so no parse result can exceed it.
TELEGRAM_LIMIT = 4096


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an astral-plane emoji counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clip(text: str, max_units: int, escape: Callable[[str], str] = esc) -> str:
    """The longest prefix of `text` (plus … when cut) whose escaped form fits `max_units`.

    Cuts code points, never the escaped form, so no entity is split; prefers a word boundary
    when one is near the end.
    """
    if utf16_len(escape(text)) <= max_units:
        return text
    budget = max_units - 1  # the ellipsis is one unit
    used = 0
    cut = 0
    for i, ch in enumerate(text):
        cost = utf16_len(escape(ch))
        if used + cost > budget:
            break
        used += cost
        cut = i + 1
    head = text[:cut]
    space = head.rfind(" ")
    if space >= max(1, cut - 20):
        head = head[:space]
    return head.rstrip() + ELLIPSIS if max_units > 0 else ""


def _clip_list(items: Sequence[tuple[str, tuple[str, ...]]], max_units: int) -> str:
    """`term (fields), …` escaped, whole items only, ending `+N more` when some do not fit."""
    shown: list[str] = []
    used = 0
    for i, (term, fields) in enumerate(items):
        escaped = esc(term_label(term, fields))
        cost = utf16_len(escaped) + (2 if shown else 0)
        rest = len(items) - i - 1
        tail = len(f", +{rest} more") if rest else 0
        if used + cost + tail > max_units:
            break
        shown.append(escaped)
        used += cost
    else:
        return ", ".join(shown)
    more = f"+{len(items) - len(shown)} more"
    return ", ".join([*shown, more]) if shown else more


@dataclass(frozen=True, slots=True)
class _Caps:
    title: int
    snippet: int  # characters of context; 0 leaves snippets out
    terms: int
    name: int


# Tried in order until everything fits: shorter snippets first, then none, then terser lists,
# so that every watchlist stays visible as long as possible (the contract shows all of them).
_LEVELS = (
    _Caps(title=600, snippet=240, terms=600, name=160),
    _Caps(title=300, snippet=160, terms=300, name=100),
    _Caps(title=200, snippet=100, terms=160, name=80),
    _Caps(title=160, snippet=0, terms=100, name=60),
    _Caps(title=100, snippet=0, terms=40, name=40),
)


def _telegram_head(view: AlertView, caps: _Caps) -> list[str]:
    article = view.article
    lines: list[str] = []
    if view.test:
        lines.append("<b>TEST</b> <i>This is a test alert, not a real match.</i>")
    title = esc(clip(squash(article.title).strip() or "(no title)", caps.title))
    link = safe_link(article.url)
    if link is not None and utf16_len(esc(link)) <= 2048:
        title = f'<a href="{esc(link)}">{title}</a>'
    else:
        title = f"<b>{title}</b>"
    lines.append(f"<b>{view.priority.name.upper()}</b> {title}")
    meta = esc(clip(squash(view.source).strip(), 120))
    if article.published_at is not None:
        meta += f" · {format_time(article.published_at)}"
    lines.append(f"<i>{meta}</i>")
    return lines


def _telegram_block(view: AlertView, match: WatchlistMatch, caps: _Caps) -> str:
    name = esc(clip(match_label(match), caps.name))
    block = f"<b>{name}</b>: {_clip_list(term_fields(match), caps.terms)}"
    hit = snippet_hit(view.article, match) if caps.snippet else None
    if hit is not None:
        before, marked, after = snippet(
            view.article.text(hit.field), hit.start, hit.end, caps.snippet
        )
        # snippet() bounds characters; clip() bounds what escaping can blow them up to.
        quoted = (
            f"{esc(clip(before, caps.snippet * 2))}<b>{esc(clip(marked, caps.snippet * 2))}</b>"
            f"{esc(clip(after, caps.snippet * 2))}"
        )
        block += f"\n<blockquote>{quoted}</blockquote>"
    return block


def _assemble(head: Iterable[str], blocks: Iterable[str]) -> str:
    return "\n".join(head) + "\n\n" + "\n\n".join(blocks)


def render_telegram_html(view: AlertView) -> str:
    """The alert in Telegram's HTML parse mode, at most TELEGRAM_LIMIT UTF-16 units.

    Uses only tags the Bot API lists for HTML style (b, i, a href, blockquote), and escapes every
    `<`, `>`, `&` and quote that is not markup, as that section of the Bot API docs requires.
    """
    for caps in _LEVELS:
        text = _assemble(
            _telegram_head(view, caps), (_telegram_block(view, m, caps) for m in view.matches)
        )
        if utf16_len(text) <= TELEGRAM_LIMIT:
            return text
    # Still too long (hundreds of watchlists): show as many as fit and count the rest.
    caps = _LEVELS[-1]
    head = _telegram_head(view, caps)
    blocks: list[str] = []
    used = utf16_len(_assemble(head, []))
    for i, match in enumerate(view.matches):
        block = _telegram_block(view, match, caps)
        more = f"<i>+{len(view.matches) - i - 1} more watchlists</i>"
        cost = utf16_len(block) + 2  # the blank line before it
        if used + cost + 2 + len(more) > TELEGRAM_LIMIT:
            break
        blocks.append(block)
        used += cost
    blocks.append(f"<i>+{len(view.matches) - len(blocks)} more watchlists</i>")
    return _assemble(head, blocks)


def render_telegram_text(view: AlertView) -> str:
    """`render_text` cut to Telegram's limit, for sending with no parse mode."""
    return clip(render_text(view), TELEGRAM_LIMIT, escape=lambda s: s)
