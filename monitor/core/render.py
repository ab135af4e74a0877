"""Alert rendering: one matched article becomes console text or an email, and the shared pieces.

Contract: pure functions of an `AlertView` (no clock, no I/O). Every string that came from a feed
is hostile: the HTML half of `render_email` escapes all of it (`esc`: quotes included, since some
of it lands in attributes) and only http(s) URLs ever become links (`safe_link`). `header_text`
makes any string safe for an email header: no CR, LF or other control character survives, so feed
text cannot add a header (RFC 5322 §2.2: a header field ends at CRLF), and no RFC 2047 encoded word
survives either, since Python's email package decodes one in an assigned header value and would
write the CR LF it hides. An alert whose story other sources reported too says so ("Also reported
by A, B (3 sources)", `also_reported`). `squash`, `snippet`, `one_line` and the term and watchlist
labels are shared with `render_telegram` and `render_digest`.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from monitor.core.model import FIELDS, Article, Hit, Priority, WatchlistMatch

ELLIPSIS = "…"
#: Marks the hit inside a plain-text snippet.
HIT_OPEN, HIT_CLOSE = "«", "»"
#: An alert names at most this many other sources of its story and counts the rest.
ALSO_NAMED = 5
#: Characters of one source name, in the "also reported by" list.
SOURCE_CHARS = 80

_SAFE_SCHEMES = ("http://", "https://")
# Bidi embeddings, overrides and isolates can make a subject display as something else.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class AlertView:
    """What one alert shows: the article, its feed's display name, and every watchlist it hit.

    An alert is per story: `also` names the other sources that reported the same story
    (display names, in the order they came, without `source`). `alert_id` and `story_id` are
    the outbox's ids, for the buttons a Telegram alert carries; None outside the outbox.
    """

    article: Article
    source: str
    matches: tuple[WatchlistMatch, ...]
    test: bool = False
    also: tuple[str, ...] = ()
    alert_id: int | None = None
    story_id: int | None = None

    def __post_init__(self) -> None:
        if not self.matches:
            raise ValueError("an alert needs at least one watchlist match")

    @property
    def priority(self) -> Priority:
        return max(m.priority for m in self.matches)


@dataclass(frozen=True, slots=True)
class Digest:
    """Several alerts in one message: a scheduled digest, or the summary that a burst of alerts
    beyond a destination's limit collapses into. Items are stories, most urgent first."""

    kind: Literal["digest", "summary"]
    items: tuple[AlertView, ...]
    at: datetime  # when it was put together, shown in its heading

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a digest needs at least one alert")


#: What a notifier sends.
Outgoing = AlertView | Digest


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


def esc(text: str) -> str:
    """`text` escaped for HTML text and attribute values alike (quotes included)."""
    return html.escape(text, quote=True)


def squash(text: str) -> str:
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
    before = squash(before).lstrip()
    if lo > 0:
        before = ELLIPSIS + before

    hi = end + right_room
    after = text[end:hi]
    if hi < len(text) and not text[hi].isspace():
        cut = next((i for i in range(len(after) - 1, -1, -1) if after[i].isspace()), None)
        if cut is not None:
            after = after[:cut]
    after = squash(after).rstrip()
    if hi < len(text):
        after += ELLIPSIS
    return before, squash(hit).strip(), after


def term_fields(match: WatchlistMatch) -> list[tuple[str, tuple[str, ...]]]:
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


def term_label(term: str, fields: Sequence[str]) -> str:
    """`term (title, summary)`: a term and the fields it hit in, one line."""
    term = squash(term).strip()
    return f"{term} ({', '.join(fields)})" if fields else term


def one_line(text: str, limit: int) -> str:
    """`text` as one tidy line: control characters become spaces (so `a\\r\\nb` reads `a b`),
    whitespace runs collapse, and the result is capped at `limit` characters with an ellipsis,
    cut between words when one ends near the cap."""
    cleaned = squash(text).strip()
    if len(cleaned) <= limit:
        return cleaned
    head = cleaned[: max(0, limit - 1)]
    space = head.rfind(" ")
    if space >= max(1, len(head) - 20):
        head = head[:space]
    return head.rstrip() + ELLIPSIS


def also_names(also: Sequence[str], limit: int = ALSO_NAMED) -> str:
    """`A, B, C and 2 more`: at most `limit` of the names, one line each, the rest counted."""
    names = [one_line(name, SOURCE_CHARS) or "(unnamed)" for name in also[: max(0, limit)]]
    rest = len(also) - len(names)
    if rest > 0:
        return f"{', '.join(names)} and {rest} more" if names else f"{rest} more"
    return ", ".join(names)


def also_reported(view: AlertView, limit: int = ALSO_NAMED) -> str:
    """`Also reported by A, B (3 sources)`, or "" when no other source reported the story.

    The count includes the alert's own source, so it is the story's number of sources.
    """
    if not view.also:
        return ""
    return f"Also reported by {also_names(view.also, limit)} ({1 + len(view.also)} sources)"


def snippet_hit(article: Article, match: WatchlistMatch) -> Hit | None:
    """The hit to quote for `match`, or None when no hit's field has text."""
    # The title is shown anyway, so a hit in the body tells the reader more.
    usable = [h for h in match.hits if article.text(h.field)]
    body = [h for h in usable if h.field != "title"]
    chosen = body or usable
    return chosen[0] if chosen else None


def match_label(match: WatchlistMatch) -> str:
    """`Name (id)`, or the id alone when the watchlist has no name of its own; one line."""
    if match.name and match.name != match.watchlist_id:
        return squash(f"{match.name} ({match.watchlist_id})").strip()
    return squash(match.watchlist_id).strip()


# --- plain text -----------------------------------------------------------------------------


def render_text(view: AlertView) -> str:
    """The console and plain-email body: several lines, no trailing newline."""
    article = view.article
    lines: list[str] = []
    if view.test:
        lines.append("[TEST] This is a test alert, not a real match.")
    lines.append(f"[{view.priority.name.upper()}] {squash(article.title).strip()}")
    lines.append(f"Source: {squash(view.source).strip()}")
    if view.also:
        lines.append(also_reported(view))
    if article.published_at is not None:
        lines.append(f"Published: {format_time(article.published_at)}")
    if article.url:
        lines.append(f"Link: {squash(article.url).strip()}")
    for match in view.matches:
        terms = ", ".join(term_label(t, f) for t, f in term_fields(match))
        lines.append(f"- {match_label(match)} [{match.priority.name}]: {terms}")
        hit = snippet_hit(article, match)
        if hit is not None:
            before, marked, after = snippet(article.text(hit.field), hit.start, hit.end)
            lines.append(f"  {hit.field}: {before}{HIT_OPEN}{marked}{HIT_CLOSE}{after}")
    return "\n".join(lines)


# --- email ----------------------------------------------------------------------------------


def header_text(text: str, limit: int = 200) -> str:
    """`text` made safe for an email header: `one_line`, and no RFC 2047 encoded word.

    Python's email package parses a header value assigned as a string as if it had been
    received, decoding `=?utf-8?q?a=0D=0AB?=` to `a` CR LF `B`, and (without the CVE-2024-6923
    fix, `policy.verify_generated_headers`, as in the Python 3.11.7 we test on) writes that CR LF
    out as is: a header injection that the control scrub alone cannot see. Every encoded word
    starts with `=?` (RFC 2047 §2), so `=?` becomes `= ?`, which no parser decodes.
    """
    return one_line(text.replace("=?", "= ?"), limit)


def email_subject(view: AlertView) -> str:
    names = ", ".join(m.name or m.watchlist_id for m in view.matches)
    prefix = "[TEST] " if view.test else ""
    return header_text(
        f"{prefix}[{view.priority.name.upper()}] {names}: {squash(view.article.title).strip()}"
    )


def _email_html(view: AlertView) -> str:
    article = view.article
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"></head><body>']
    if view.test:
        parts.append(
            "<p><strong>TEST</strong> <em>This is a test alert, not a real match.</em></p>"
        )
    title = esc(squash(article.title).strip() or "(no title)")
    link = safe_link(article.url)
    if link is not None:
        title = f'<a href="{esc(link)}">{title}</a>'
    parts.append(f"<h2>[{view.priority.name.upper()}] {title}</h2>")
    meta = esc(squash(view.source).strip())
    if article.published_at is not None:
        meta += f" · {format_time(article.published_at)}"
    parts.append(f"<p><em>{meta}</em></p>")
    if view.also:
        parts.append(f"<p>{esc(also_reported(view))}</p>")
    if article.url and link is None:
        parts.append(f"<p><code>{esc(squash(article.url).strip())}</code></p>")
    parts.append("<ul>")
    for match in view.matches:
        terms = ", ".join(esc(term_label(t, f)) for t, f in term_fields(match))
        item = f"<li><strong>{esc(match_label(match))}</strong> [{match.priority.name}]: {terms}"
        hit = snippet_hit(article, match)
        if hit is not None:
            before, marked, after = snippet(article.text(hit.field), hit.start, hit.end)
            item += (
                f"<blockquote>{esc(before)}<strong>{esc(marked)}</strong>{esc(after)}</blockquote>"
            )
        parts.append(item + "</li>")
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def render_email(view: AlertView) -> EmailContent:
    """Subject (header-safe), plain-text body and an escaped HTML alternative."""
    return EmailContent(subject=email_subject(view), text=render_text(view), html=_email_html(view))
