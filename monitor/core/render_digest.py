"""Digest rendering: several stories in one message, as plain text, an email, or Telegram HTML.

Contract: pure functions of a `Digest` (no clock, no I/O; the heading shows `Digest.at`). Every
string that came from a feed is hostile, as in `render`: each is made one line (`one_line`: no
control character survives, lengths are capped), the HTML and Telegram forms escape all of it
with `esc`, and only http(s) URLs become links (`safe_link`). The email subject goes through
`header_text`.

What a digest shows, per story (one `AlertView` is one story): its priority, its title (a link
when the URL is safe), its source and the other sources that reported it with their count, the
published time, and the terms that hit.

- A "digest" groups by watchlist (`group_by_watchlist`): watchlists most urgent first (the
  highest priority any of its matches in this digest carries), then by display name. A story
  that matched several watchlists is listed under each of them, with "also in: …" naming the
  others: a reader who follows one watchlist reads its section alone and misses nothing, and
  a reader of the whole digest sees the repeat for what it is. Within a watchlist, stories
  are most urgent first, then in the digest's own order.
- A "summary" (flood control collapsed a burst of alerts into one message) is one flat list,
  most urgent first, under a heading that says so and how many; each story names every
  watchlist it hit with that watchlist's terms.

`render_digest_telegram` uses only <b>, <i>, <a href> and <blockquote>, may be any length (the
Telegram notifier splits it), and is made to be split between lines: every tag closes on the
line it opens and no line exceeds LINE_UNITS UTF-16 units, so any split at a newline leaves
well-formed parts, and a split at a blank line never separates a story's lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from monitor.core.model import Priority, WatchlistMatch
from monitor.core.render import (
    AlertView,
    Digest,
    EmailContent,
    also_names,
    esc,
    format_time,
    header_text,
    match_label,
    one_line,
    safe_link,
    term_fields,
    term_label,
)

__all__ = [
    "LINE_UNITS",
    "WatchlistLabel",
    "digest_title",
    "group_by_watchlist",
    "most_urgent_first",
    "render_digest_email",
    "render_digest_telegram",
    "render_digest_text",
]

# Caps, in characters before escaping, on the feed-derived pieces of one story. Escaping turns
# one character into at most 6 UTF-16 units (`&quot;`), which is how LINE_UNITS is kept.
TITLE_CHARS = 250
SOURCE_CHARS = 120
ALSO_LISTED = 10  # other sources named before "and N more"; the count is always exact
ALSO_CHARS = 300
TERMS_CHARS = 400
NAME_CHARS = 160
URL_CHARS = 2000
#: A longer link (escaped) shows its title unlinked, so that the title line stays bounded.
LINK_UNITS = 2048
#: The longest line `render_digest_telegram` writes, in UTF-16 units: under Telegram's 4096
#: with room for the part counter a splitter may add.
LINE_UNITS = 3900


@dataclass(frozen=True, slots=True)
class WatchlistLabel:
    """One watchlist as a digest heading shows it: the id, its name, the highest priority any of
    its matches in the digest carries."""

    watchlist_id: str
    name: str
    priority: Priority

    @property
    def label(self) -> str:
        """`Name (id)` or the id alone, one line, as alerts name a watchlist."""
        return match_label(WatchlistMatch(self.watchlist_id, self.name, self.priority, ()))


def _sort_key(label: WatchlistLabel) -> tuple[int, str, str]:
    return (-label.priority, label.label.casefold(), label.watchlist_id)


def group_by_watchlist(
    items: Iterable[AlertView],
) -> list[tuple[WatchlistLabel, list[AlertView]]]:
    """The stories of a digest under each watchlist they matched, in reading order.

    Watchlists: highest priority first, then display name (case-insensitive), then id. A story
    appears once under every watchlist it matched (twice-listed matches of one watchlist count
    once). Stories within a watchlist: highest story priority first, then in input order. The
    name a watchlist is shown with is the first one seen.
    """
    labels: dict[str, WatchlistLabel] = {}
    members: dict[str, list[AlertView]] = {}
    for view in items:
        seen: set[str] = set()
        for match in view.matches:
            wid = match.watchlist_id
            if wid in seen:
                continue
            seen.add(wid)
            known = labels.get(wid)
            if known is None:
                labels[wid] = WatchlistLabel(wid, match.name, match.priority)
            elif match.priority > known.priority:
                labels[wid] = replace(known, priority=match.priority)
            members.setdefault(wid, []).append(view)
    order = sorted(labels.values(), key=_sort_key)
    return [(label, most_urgent_first(members[label.watchlist_id])) for label in order]


def most_urgent_first(items: Iterable[AlertView]) -> list[AlertView]:
    """Highest priority first; equal priorities keep their order (the sort is stable)."""
    return sorted(items, key=lambda view: -view.priority)


def _count(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def digest_title(digest: Digest) -> str:
    """`Digest: 12 stories in 3 watchlists`, or `35 more alerts (flood control)`."""
    n = len(digest.items)
    if digest.kind == "summary":
        return f"{_count(n, 'more alert', 'more alerts')} (flood control)"
    watchlists = len(group_by_watchlist(digest.items))
    return f"Digest: {_count(n, 'story', 'stories')} in {_count(watchlists, 'watchlist')}"


def _summary_note(digest: Digest) -> str:
    n = len(digest.items)
    came = "alert came" if n == 1 else "alerts came"
    return (
        f"{n} more {came} in faster than this destination may receive them: flood control "
        "collapsed them into this summary, most urgent first."
    )


# --- one story, format-neutral ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Story:
    """The feed-derived pieces of one story, each one line and capped, not yet escaped."""

    priority: str
    title: str
    link: str | None
    url: str | None
    sources: str
    published: str | None


def _story(view: AlertView) -> _Story:
    article = view.article
    sources = one_line(view.source, SOURCE_CHARS) or "(unnamed)"
    if view.also:
        names = one_line(also_names(view.also, ALSO_LISTED), ALSO_CHARS)
        sources += f"; also {names} ({1 + len(view.also)} sources)"
    return _Story(
        priority=view.priority.name.upper(),
        title=one_line(article.title, TITLE_CHARS) or "(no title)",
        link=safe_link(article.url),
        url=one_line(article.url, URL_CHARS) if article.url else None,
        sources=sources,
        published=format_time(article.published_at) if article.published_at else None,
    )


def _meta(story: _Story) -> str:
    return story.sources + (f" · {story.published}" if story.published else "")


def _terms(match: WatchlistMatch) -> str:
    return one_line(", ".join(term_label(t, f) for t, f in term_fields(match)), TERMS_CHARS)


def _name(label: WatchlistLabel) -> str:
    return one_line(label.label, NAME_CHARS)


def _match_for(view: AlertView, watchlist_id: str) -> WatchlistMatch:
    return next(m for m in view.matches if m.watchlist_id == watchlist_id)


def _also_in(view: AlertView, here: str, labels: dict[str, WatchlistLabel]) -> str:
    """The story's other watchlists, in the digest's order, or ""."""
    others = {m.watchlist_id for m in view.matches} - {here}
    names = [_name(labels[w]) for w in sorted(others, key=lambda w: _sort_key(labels[w]))]
    return one_line(", ".join(names), ALSO_CHARS)


def _summary_matches(view: AlertView) -> list[tuple[str, str]]:
    """(watchlist name, its terms) for every watchlist the story hit, most urgent first."""
    seen: dict[str, WatchlistMatch] = {}
    for match in view.matches:
        seen.setdefault(match.watchlist_id, match)
    ordered = sorted(
        seen.values(),
        key=lambda m: _sort_key(WatchlistLabel(m.watchlist_id, m.name, m.priority)),
    )
    return [(one_line(match_label(m), NAME_CHARS), _terms(m)) for m in ordered]


def _group_heading(label: WatchlistLabel, views: Sequence[AlertView]) -> str:
    return f"{_name(label)} · {label.priority.name} · {_count(len(views), 'story', 'stories')}"


# --- plain text -------------------------------------------------------------------------------


def _text_story(view: AlertView) -> list[str]:
    story = _story(view)
    lines = [f"[{story.priority}] {story.title}", f"  {_meta(story)}"]
    if story.url:
        lines.append(f"  Link: {story.url}")
    return lines


def render_digest_text(digest: Digest) -> str:
    """The console and plain-email body: several lines, no trailing newline."""
    if digest.kind == "summary":
        lines = [f"Flood control · {format_time(digest.at)}", _summary_note(digest)]
        for view in most_urgent_first(digest.items):
            lines += ["", *_text_story(view)]
            lines += [f"  {name}: {terms}" for name, terms in _summary_matches(view)]
        return "\n".join(lines)

    groups = group_by_watchlist(digest.items)
    labels = {label.watchlist_id: label for label, _ in groups}
    lines = [f"{digest_title(digest)} · {format_time(digest.at)}"]
    for label, views in groups:
        lines += ["", f"== {_group_heading(label, views)} =="]
        for view in views:
            lines += ["", *_text_story(view)]
            lines.append(f"  Terms: {_terms(_match_for(view, label.watchlist_id))}")
            others = _also_in(view, label.watchlist_id, labels)
            if others:
                lines.append(f"  Also in: {others}")
    return "\n".join(lines)


# --- email ------------------------------------------------------------------------------------


def _html_title(story: _Story) -> str:
    title = esc(story.title)
    return f'<a href="{esc(story.link)}">{title}</a>' if story.link else title


def _html_story(view: AlertView, extra: Sequence[str]) -> str:
    """One <li>: `extra` are lines already escaped."""
    story = _story(view)
    lines = [
        f"<strong>[{story.priority}]</strong> {_html_title(story)}",
        f"<em>{esc(_meta(story))}</em>",
        *extra,
    ]
    return "<li>" + "<br>\n".join(lines) + "</li>"


def _digest_html(digest: Digest) -> str:
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"></head><body>']
    parts.append(f"<h2>{esc(digest_title(digest))}</h2>")
    parts.append(f"<p><em>{format_time(digest.at)}</em></p>")
    if digest.kind == "summary":
        parts.append(f"<p>{esc(_summary_note(digest))}</p>")
        parts.append("<ul>")
        for view in most_urgent_first(digest.items):
            extra = [
                f"<strong>{esc(name)}</strong>: {esc(terms)}"
                for name, terms in _summary_matches(view)
            ]
            parts.append(_html_story(view, extra))
        parts.append("</ul>")
    else:
        groups = group_by_watchlist(digest.items)
        labels = {label.watchlist_id: label for label, _ in groups}
        for label, views in groups:
            parts.append(f"<h3>{esc(_group_heading(label, views))}</h3>")
            parts.append("<ul>")
            for view in views:
                extra = [f"Terms: {esc(_terms(_match_for(view, label.watchlist_id)))}"]
                others = _also_in(view, label.watchlist_id, labels)
                if others:
                    extra.append(f"<em>Also in: {esc(others)}</em>")
                parts.append(_html_story(view, extra))
            parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def render_digest_email(digest: Digest) -> EmailContent:
    """`[monitor] Digest: …` or `[monitor] N more alerts (flood control)`, text and HTML."""
    return EmailContent(
        subject=header_text(f"[monitor] {digest_title(digest)}"),
        text=render_digest_text(digest),
        html=_digest_html(digest),
    )


# --- Telegram ---------------------------------------------------------------------------------


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _telegram_story(view: AlertView, extra: Sequence[str]) -> str:
    """One story: lines joined by single newlines, each tag closed on its own line."""
    story = _story(view)
    title = esc(story.title)
    if story.link is not None and _utf16(esc(story.link)) <= LINK_UNITS:
        title = f'<a href="{esc(story.link)}">{title}</a>'
    lines = [f"<b>{story.priority}</b> {title}", f"<i>{esc(_meta(story))}</i>", *extra]
    return "\n".join(lines)


def render_digest_telegram(digest: Digest) -> str:
    """The digest in Telegram's HTML parse mode, any length, splittable between lines."""
    blocks: list[str] = []
    if digest.kind == "summary":
        blocks.append(
            f"<b>Flood control</b> · {format_time(digest.at)}\n"
            f"<blockquote>{esc(_summary_note(digest))}</blockquote>"
        )
        for view in most_urgent_first(digest.items):
            extra = [f"<b>{esc(name)}</b>: {esc(terms)}" for name, terms in _summary_matches(view)]
            blocks.append(_telegram_story(view, extra))
        return "\n\n".join(blocks)

    groups = group_by_watchlist(digest.items)
    labels = {label.watchlist_id: label for label, _ in groups}
    blocks.append(f"<b>{esc(digest_title(digest))}</b>\n<i>{format_time(digest.at)}</i>")
    for label, views in groups:
        blocks.append(f"<b>{esc(_group_heading(label, views))}</b>")
        for view in views:
            extra = [esc(_terms(_match_for(view, label.watchlist_id)))]
            others = _also_in(view, label.watchlist_id, labels)
            if others:
                extra.append(f"<i>also in: {esc(others)}</i>")
            blocks.append(_telegram_story(view, extra))
    return "\n\n".join(blocks)
