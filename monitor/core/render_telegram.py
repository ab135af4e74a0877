"""Telegram rendering: an alert or a digest as Telegram HTML or as plain text, of any length.

Contract: pure functions (no clock, no I/O). `render_telegram_html` uses only tags the Bot API
lists for its HTML parse mode, escapes every string that came from a feed (quotes included, since
some of it lands in attributes) and links http(s) URLs only. Nothing is dropped to fit Telegram's
4096-unit limit: the notifier cuts the result into messages (`telegram_parts.split_html`). Only
single fields are capped (a title, a snippet, a term list), on the raw text before escaping
(`clip`), so an entity or a tag is never cut in half. The head (priority, title, source, time and
who else reported the story) comes first, so it is always in the first message; the blocks, one
per watchlist, follow, separated by blank lines, where the splitter prefers to cut.

`alert_buttons` says which inline buttons an alert carries (label, callback data);
`outgoing_html` / `outgoing_text` pick the renderer for what the notifier sends (an alert here,
a digest in `render_digest`). The pieces shared with the other formats live in `render`;
lengths are counted in UTF-16 code units as Telegram counts them (`utf16_len`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from monitor.core.model import WatchlistMatch
from monitor.core.render import (
    ELLIPSIS,
    AlertView,
    Outgoing,
    also_reported,
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
from monitor.core.render_digest import render_digest_telegram, render_digest_text
from monitor.core.telegram_parts import utf16_len

__all__ = [
    "CALLBACK_DATA_LIMIT",
    "TELEGRAM_LIMIT",
    "alert_buttons",
    "clip",
    "outgoing_html",
    "outgoing_text",
    "render_telegram_html",
    "render_telegram_text",
    "utf16_len",
]

#: Telegram's sendMessage limit: "1-4096 characters after entities parsing"; the splitter holds
#: the raw HTML of each part to it, which is stricter, so no parse result can exceed it.
TELEGRAM_LIMIT = 4096
#: Bot API, InlineKeyboardButton: "callback_data: Data to be sent in a callback query to the bot
#: when the button is pressed, 1-64 bytes".
CALLBACK_DATA_LIMIT = 64

# Field caps, in escaped UTF-16 units (a title of 600 ampersands escapes to 3000 units): long
# enough for any real headline or term list, short enough that one field cannot fill a message.
_TITLE, _SNIPPET, _TERMS, _NAME, _SOURCE, _URL = 600, 240, 600, 160, 120, 2048


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


def _raw(text: str) -> str:
    return text


def _telegram_head(view: AlertView) -> list[str]:
    article = view.article
    lines: list[str] = []
    if view.test:
        lines.append("<b>TEST</b> <i>This is a test alert, not a real match.</i>")
    title = esc(clip(squash(article.title).strip() or "(no title)", _TITLE))
    link = safe_link(article.url)
    # A URL longer than the cap is not linked: reopened at a cut it would crowd out the text.
    if link is not None and utf16_len(esc(link)) <= _URL:
        title = f'<a href="{esc(link)}">{title}</a>'
    else:
        title = f"<b>{title}</b>"
    lines.append(f"<b>{view.priority.name.upper()}</b> {title}")
    meta = esc(clip(squash(view.source).strip(), _SOURCE))
    if article.published_at is not None:
        meta += f" · {format_time(article.published_at)}"
    lines.append(f"<i>{meta}</i>")
    if view.also:
        lines.append(f"<i>{esc(also_reported(view))}</i>")
    return lines


def _telegram_block(view: AlertView, match: WatchlistMatch) -> str:
    name = esc(clip(match_label(match), _NAME))
    block = f"<b>{name}</b>: {_clip_list(term_fields(match), _TERMS)}"
    hit = snippet_hit(view.article, match)
    if hit is not None:
        before, marked, after = snippet(view.article.text(hit.field), hit.start, hit.end, _SNIPPET)
        # snippet() bounds characters; clip() bounds what escaping can blow them up to.
        quoted = (
            f"{esc(clip(before, _SNIPPET * 2))}<b>{esc(clip(marked, _SNIPPET * 2))}</b>"
            f"{esc(clip(after, _SNIPPET * 2))}"
        )
        block += f"\n<blockquote>{quoted}</blockquote>"
    return block


def render_telegram_html(view: AlertView) -> str:
    """The whole alert in Telegram's HTML parse mode, at any length (the notifier splits it).

    Uses only tags the Bot API lists for HTML style (b, i, a href, blockquote), and escapes every
    `<`, `>`, `&` and quote that is not markup, as that section of the Bot API docs requires.
    """
    head = "\n".join(_telegram_head(view))
    return head + "\n\n" + "\n\n".join(_telegram_block(view, m) for m in view.matches)


def render_telegram_text(view: AlertView) -> str:
    """The alert as plain text, for sending with no parse mode (the fallback when Telegram
    cannot parse the HTML): `render_text`, other sources included, at any length."""
    return render_text(view)


def alert_buttons(view: AlertView) -> list[list[tuple[str, str]]]:
    """The inline keyboard of an alert from the outbox, as rows of (label, callback_data).

    "Mute story" (`ms:<story_id>`, when the alert has a story), "Not relevant"
    (`nr:<alert_id>`) and "Snooze <watchlist> 24 h" (`sw:<watchlist_id>`, the most urgent
    watchlist); none outside the outbox (no alert_id). A button whose data would exceed the
    Bot API's 64 bytes is left out: cut data would name something else.
    """
    if view.alert_id is None:
        return []
    first: list[tuple[str, str]] = []
    if view.story_id is not None:
        first.append(("Mute story", f"ms:{view.story_id}"))
    first.append(("Not relevant", f"nr:{view.alert_id}"))
    rows = [first]
    top = max(view.matches, key=lambda m: m.priority)  # the first of the most urgent
    data = f"sw:{top.watchlist_id}"
    if len(data.encode("utf-8")) <= CALLBACK_DATA_LIMIT:
        label = clip(squash(top.name or top.watchlist_id).strip(), 32, escape=_raw)
        rows.append([(f"Snooze {label} 24 h", data)])
    return rows


def outgoing_html(message: Outgoing) -> str:
    """What the Telegram notifier sends, as HTML: the alert, or the digest."""
    if isinstance(message, AlertView):
        return render_telegram_html(message)
    return render_digest_telegram(message)


def outgoing_text(message: Outgoing) -> str:
    """The plain-text fallback of `outgoing_html`."""
    if isinstance(message, AlertView):
        return render_telegram_text(message)
    return render_digest_text(message)
