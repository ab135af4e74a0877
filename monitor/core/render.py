"""Alert rendering: one matched article becomes console text, Telegram HTML or an email.

Contract: pure functions of an `AlertView` (no clock, no I/O). Every string that came from a feed
is hostile: `render_telegram_html` and the HTML half of `render_email` escape all of it (quotes
included, since some of it lands in attributes), only http(s) URLs ever become links, and the
Telegram text stays within the Bot API's 4096-character limit, counted in UTF-16 code units as
Telegram counts them. Truncation happens on the raw text before escaping, so an entity or a tag is
never cut in half. `header_text` makes any string safe for an email header: no CR, LF or other
control character survives, so feed text cannot add a header (RFC 5322 §2.2: a header field ends
at CRLF).
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.core.model import FIELDS, Article, Hit, Priority, WatchlistMatch

#: Telegram's sendMessage limit: "1-4096 characters after entities parsing"; we hold the raw
#: HTML to it, which is stricter, so no parse result can exceed it.
TELEGRAM_LIMIT = 4096
ELLIPSIS = "…"
#: Marks the hit inside a plain-text snippet.
HIT_OPEN, HIT_CLOSE = "«", "»"

_SAFE_SCHEMES = ("http://", "https://")
# Bidi embeddings, overrides and isolates can make a subject display as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class AlertView:
    """What one alert shows: the article, its feed's display name, and every watchlist it hit."""

    article: Article
    source: str
    matches: tuple[WatchlistMatch, ...]
    test: bool = False

    def __post_init__(self) -> None:
        if not self.matches:
            raise ValueError("an alert needs at least one watchlist match")

    @property
    def priority(self) -> Priority:
        return max(m.priority for m in self.matches)


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


def send_test_view(now: datetime) -> AlertView:
    """The alert `monitor send-test` delivers; `now` is shown so the recipient can match it up."""
    stamp = format_time(now)
    title = "Test alert from monitor"
    article = Article(
        feed_id="monitor",
        guid=f"send-test:{stamp}",
        url=None,
        title=title,
        summary=f"This is a test alert sent at {stamp}. If you can read it, the destination works.",
        published_at=now,
    )
    match = WatchlistMatch(
        watchlist_id="send-test",
        name="Test",
        priority=Priority.low,
        terms=("Test",),
        hits=(Hit(term="Test", field="title", start=0, end=4),),
    )
    return AlertView(article=article, source="monitor", matches=(match,), test=True)


# --- pieces shared by every format ----------------------------------------------------------


def format_time(moment: datetime) -> str:
    """`2024-05-01 12:00 UTC`; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def safe_link(url: str | None) -> str | None:
    """The URL when it may become a link (http or https only), else None."""
    if url is None:
        return None
    url = url.strip()
    if url.lower().startswith(_SAFE_SCHEMES) and not any(_is_control(ch) for ch in url):
        return url
    return None


def _is_control(ch: str) -> bool:
    # Cc covers C0, DEL and C1 (so NEL, U+0085); Zl/Zp are U+2028/U+2029; Cs are lone
    # surrogates, which no encoder will write.
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") or ch in _BIDI_CONTROLS


def _squash(text: str) -> str:
    """Controls out (a feed's ESC sequences must not reach a terminal), whitespace runs as one
    space, keeping a single space at either end."""
    if not text:
        return ""
    if not text.isprintable():  # every control is non-printable: skip the scan when none is
        text = "".join(" " if _is_control(ch) else ch for ch in text)
    inner = " ".join(text.split())
    if not inner:
        return " "
    lead = " " if text[0].isspace() else ""
    tail = " " if text[-1].isspace() else ""
    return lead + inner + tail


def snippet(text: str, start: int, end: int, width: int = 160) -> tuple[str, str, str]:
    """(before, hit, after) around `text[start:end]`, about `width` characters in all.

    Cuts fall between words where the text has spaces (CJK text has none and is cut anywhere);
    a cut side gets an ellipsis. Whitespace runs (newlines in article bodies) become one space.
    """
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    hit = text[start:end]
    if len(hit) > width:
        hit = hit[: max(1, width - 1)].rstrip() + ELLIPSIS
    room = max(0, width - len(hit))
    left_room = min(room // 2, start)
    right_room = min(room - left_room, len(text) - end)
    left_room = min(room - right_room, start)

    lo = start - left_room
    before = text[lo:start]
    if lo > 0 and not text[lo - 1].isspace():
        # Drop the partial first word, unless there is no word boundary at all.
        cut = next((i for i, ch in enumerate(before) if ch.isspace()), None)
        if cut is not None:
            before = before[cut:]
    before = _squash(before).lstrip()
    if lo > 0:
        before = ELLIPSIS + before

    hi = end + right_room
    after = text[end:hi]
    if hi < len(text) and not text[hi].isspace():
        cut = next((i for i in range(len(after) - 1, -1, -1) if after[i].isspace()), None)
        if cut is not None:
            after = after[:cut]
    after = _squash(after).rstrip()
    if hi < len(text):
        after += ELLIPSIS
    return before, _squash(hit).strip(), after


def _term_fields(match: WatchlistMatch) -> list[tuple[str, tuple[str, ...]]]:
    """Each term that hit, in watchlist order, with the fields it hit in (in FIELDS order)."""
    found: dict[str, set[str]] = {}
    for hit in match.hits:
        found.setdefault(hit.term, set()).add(hit.field)
    terms = list(match.terms) + [t for t in found if t not in match.terms]
    order = {name: i for i, name in enumerate(FIELDS)}
    return [
        (term, tuple(sorted(found.get(term, ()), key=lambda f: (order.get(f, len(order)), f))))
        for term in terms
    ]


def _term_label(term: str, fields: Sequence[str]) -> str:
    term = _squash(term).strip()
    return f"{term} ({', '.join(fields)})" if fields else term


def _snippet_hit(article: Article, match: WatchlistMatch) -> Hit | None:
    # The title is shown anyway, so a hit in the body tells the reader more.
    usable = [h for h in match.hits if article.text(h.field)]
    body = [h for h in usable if h.field != "title"]
    chosen = body or usable
    return chosen[0] if chosen else None


def _match_label(match: WatchlistMatch) -> str:
    if match.name and match.name != match.watchlist_id:
        return _squash(f"{match.name} ({match.watchlist_id})").strip()
    return _squash(match.watchlist_id).strip()


# --- plain text -----------------------------------------------------------------------------


def render_text(view: AlertView) -> str:
    """The console and plain-email body: several lines, no trailing newline."""
    article = view.article
    lines: list[str] = []
    if view.test:
        lines.append("[TEST] This is a test alert, not a real match.")
    lines.append(f"[{view.priority.name.upper()}] {_squash(article.title).strip()}")
    lines.append(f"Source: {_squash(view.source).strip()}")
    if article.published_at is not None:
        lines.append(f"Published: {format_time(article.published_at)}")
    if article.url:
        lines.append(f"Link: {_squash(article.url).strip()}")
    for match in view.matches:
        terms = ", ".join(_term_label(t, f) for t, f in _term_fields(match))
        lines.append(f"- {_match_label(match)} [{match.priority.name}]: {terms}")
        hit = _snippet_hit(article, match)
        if hit is not None:
            before, marked, after = snippet(article.text(hit.field), hit.start, hit.end)
            lines.append(f"  {hit.field}: {before}{HIT_OPEN}{marked}{HIT_CLOSE}{after}")
    return "\n".join(lines)


def render_telegram_text(view: AlertView) -> str:
    """`render_text` cut to Telegram's limit, for sending with no parse mode."""
    return clip(render_text(view), TELEGRAM_LIMIT, escape=lambda s: s)


# --- Telegram HTML --------------------------------------------------------------------------


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an astral-plane emoji counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def clip(text: str, max_units: int, escape: Callable[[str], str] = _esc) -> str:
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
        escaped = _esc(_term_label(term, fields))
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
    title = _esc(clip(_squash(article.title).strip() or "(no title)", caps.title))
    link = safe_link(article.url)
    if link is not None and utf16_len(_esc(link)) <= 2048:
        title = f'<a href="{_esc(link)}">{title}</a>'
    else:
        title = f"<b>{title}</b>"
    lines.append(f"<b>{view.priority.name.upper()}</b> {title}")
    meta = _esc(clip(_squash(view.source).strip(), 120))
    if article.published_at is not None:
        meta += f" · {format_time(article.published_at)}"
    lines.append(f"<i>{meta}</i>")
    return lines


def _telegram_block(view: AlertView, match: WatchlistMatch, caps: _Caps) -> str:
    name = _esc(clip(_match_label(match), caps.name))
    block = f"<b>{name}</b>: {_clip_list(_term_fields(match), caps.terms)}"
    hit = _snippet_hit(view.article, match) if caps.snippet else None
    if hit is not None:
        before, marked, after = snippet(
            view.article.text(hit.field), hit.start, hit.end, caps.snippet
        )
        # snippet() bounds characters; clip() bounds what escaping can blow them up to.
        quoted = (
            f"{_esc(clip(before, caps.snippet * 2))}<b>{_esc(clip(marked, caps.snippet * 2))}</b>"
            f"{_esc(clip(after, caps.snippet * 2))}"
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


# --- email ----------------------------------------------------------------------------------


def header_text(text: str, limit: int = 200) -> str:
    """`text` made safe and tidy for an email header: one line, no control characters.

    Control characters become spaces (so `a\\r\\nb` reads `a b`), whitespace runs collapse,
    and the result is capped at `limit` characters with an ellipsis.
    """
    cleaned = _squash(text).strip()
    if len(cleaned) <= limit:
        return cleaned
    head = cleaned[: max(0, limit - 1)]
    space = head.rfind(" ")
    if space >= max(1, len(head) - 20):
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def email_subject(view: AlertView) -> str:
    names = ", ".join(m.name or m.watchlist_id for m in view.matches)
    prefix = "[TEST] " if view.test else ""
    return header_text(
        f"{prefix}[{view.priority.name.upper()}] {names}: {_squash(view.article.title).strip()}"
    )


def _email_html(view: AlertView) -> str:
    article = view.article
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"></head><body>']
    if view.test:
        parts.append(
            "<p><strong>TEST</strong> <em>This is a test alert, not a real match.</em></p>"
        )
    title = _esc(_squash(article.title).strip() or "(no title)")
    link = safe_link(article.url)
    if link is not None:
        title = f'<a href="{_esc(link)}">{title}</a>'
    parts.append(f"<h2>[{view.priority.name.upper()}] {title}</h2>")
    meta = _esc(_squash(view.source).strip())
    if article.published_at is not None:
        meta += f" · {format_time(article.published_at)}"
    parts.append(f"<p><em>{meta}</em></p>")
    if article.url and link is None:
        parts.append(f"<p><code>{_esc(_squash(article.url).strip())}</code></p>")
    parts.append("<ul>")
    for match in view.matches:
        terms = ", ".join(_esc(_term_label(t, f)) for t, f in _term_fields(match))
        item = f"<li><strong>{_esc(_match_label(match))}</strong> [{match.priority.name}]: {terms}"
        hit = _snippet_hit(article, match)
        if hit is not None:
            before, marked, after = snippet(article.text(hit.field), hit.start, hit.end)
            item += (
                f"<blockquote>{_esc(before)}<strong>{_esc(marked)}</strong>{_esc(after)}"
                "</blockquote>"
            )
        parts.append(item + "</li>")
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def render_email(view: AlertView) -> EmailContent:
    """Subject (header-safe), plain-text body and an escaped HTML alternative."""
    return EmailContent(subject=email_subject(view), text=render_text(view), html=_email_html(view))
