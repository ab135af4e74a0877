"""The team's conversation with the bot, pure: parse commands and buttons, decide who may talk,
and word the answers. No I/O and no clock: times are arguments.

Contract:

* `parse_command(text, bot_username)` reads `/help`, `/start`, `/status`, `/watchlists`,
  `/recent [watchlist]`, `/mute <watchlist> <duration>` and `/unmute <watchlist>` (any case,
  extra whitespace, `/cmd@BotName` only when BotName is ours) into a command; malformed
  arguments give `Usage` (the command's usage line, and what was wrong), an unknown command
  `Unknown`; text that is no command, or a command for another bot, gives None.
* `parse_duration("1h30m")`: days, hours, minutes, more than 0 and at most `MAX_MUTE`.
* `parse_button` / `button_data` read and write the alert buttons' callback data:
  `ms:<story id>` (mute the story), `sw:<watchlist id>` (snooze the watchlist), `nr:<alert id>`.
* `allowed(...)`: the bot answers a chat listed in `telegram.allowed_chats` (by id or
  @username) and an admin anywhere, private chats included; nobody else.
* The `*_text` functions return Telegram HTML (every value escaped) within the 4096-unit limit;
  the `*_toast` ones plain text for a button's answer (at most 200 characters).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from monitor.core.model import NAME_PATTERN
from monitor.core.render import esc, safe_link, squash
from monitor.core.render_telegram import TELEGRAM_LIMIT, utf16_len

#: The longest mute a command may ask for: a forgotten mute must not silence a topic for good.
MAX_MUTE = timedelta(days=30)
SNOOZE = timedelta(hours=24)  # the `sw:` button
STORY_MUTE = timedelta(days=7)  # the `ms:` button
TOAST_LIMIT = 200  # answerCallbackQuery text

_DURATION = re.compile(r"(?:([0-9]{1,6})d)?(?:([0-9]{1,6})h)?(?:([0-9]{1,6})m)?", re.IGNORECASE)

#: (command, arguments, what it does): the help text and the bot's command menu.
MENU: tuple[tuple[str, str, str], ...] = (
    ("status", "", "feeds and alert queues"),
    ("watchlists", "", "watchlists, priorities and mutes"),
    ("recent", "[watchlist]", "the last 10 alerts sent"),
    ("mute", "<watchlist> <duration>", "silence a watchlist, e.g. /mute taiwan 6h"),
    ("unmute", "<watchlist>", "end a mute"),
    ("help", "", "this list"),
)
USAGE = {
    "recent": "Usage: /recent [watchlist], e.g. /recent taiwan",
    "mute": "Usage: /mute <watchlist> <duration>, e.g. /mute taiwan 6h",
    "unmute": "Usage: /unmute <watchlist>, e.g. /unmute taiwan",
}


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Status:
    pass


@dataclass(frozen=True, slots=True)
class ShowWatchlists:
    pass


@dataclass(frozen=True, slots=True)
class Recent:
    watchlist: str | None = None


@dataclass(frozen=True, slots=True)
class Mute:
    watchlist: str
    duration: timedelta


@dataclass(frozen=True, slots=True)
class Unmute:
    watchlist: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Malformed arguments: `line` is the command's usage line, `problem` what was wrong."""

    command: str
    line: str
    problem: str = ""


@dataclass(frozen=True, slots=True)
class Unknown:
    name: str


Command = Help | Status | ShowWatchlists | Recent | Mute | Unmute | Usage | Unknown


def parse_duration(text: str) -> timedelta:
    """`"30m"`, `"2h"`, `"1d"`, `"1h30m"` → timedelta; ValueError (readable) otherwise."""
    found = _DURATION.fullmatch(text.strip())
    if not text.strip() or found is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 1d or 1h30m")
    days, hours, minutes = (int(part) if part else 0 for part in found.groups())
    total = (days * 24 + hours) * 60 + minutes  # minutes, compared before any timedelta exists
    if total <= 0:
        raise ValueError(f"{text!r} is no time at all")
    if total > MAX_MUTE.total_seconds() // 60:
        raise ValueError(f"{text!r} is longer than {MAX_MUTE.days} days, the longest mute")
    return timedelta(minutes=total)


def format_duration(span: timedelta) -> str:
    """`timedelta(hours=1, minutes=30)` → `"1h30m"`; whole minutes, the largest units first."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = "".join(f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n)
    return text or "0m"


def _watchlist_arg(name: str, value: str) -> Usage | None:
    if NAME_PATTERN.fullmatch(value):
        return None
    return Usage(name, USAGE[name], f"{value!r} is not a watchlist id")


def parse_command(text: str | None, bot_username: str) -> Command | None:
    """The command in `text`; None when it is none, or is addressed to another bot."""
    words = (text or "").split()
    if not words or not words[0].startswith("/") or len(words[0]) < 2:
        return None
    name, at, addressee = words[0][1:].partition("@")
    if at and addressee.lower() != bot_username.lstrip("@").lower():
        return None  # `/status@OtherBot` in a shared group is not ours to answer
    name, args = name.lower(), words[1:]
    if name in ("help", "start"):  # Telegram sends /start when a private chat opens
        return Help()
    if name == "status":
        return Status()
    if name == "watchlists":
        return ShowWatchlists()
    if name == "recent":
        if len(args) > 1:
            return Usage(name, USAGE[name], "give one watchlist, or none")
        if args:
            return _watchlist_arg(name, args[0]) or Recent(args[0])
        return Recent()
    if name == "mute":
        if len(args) != 2:
            return Usage(name, USAGE[name])
        try:
            duration = parse_duration(args[1])
        except ValueError as exc:
            return Usage(name, USAGE[name], str(exc))
        return _watchlist_arg(name, args[0]) or Mute(args[0], duration)
    if name == "unmute":
        if len(args) != 1:
            return Usage(name, USAGE[name])
        return _watchlist_arg(name, args[0]) or Unmute(args[0])
    return Unknown(name)


# --- buttons --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MuteStory:
    story_id: int
    action: ClassVar[str] = "mute_story"


@dataclass(frozen=True, slots=True)
class SnoozeWatchlist:
    watchlist: str
    action: ClassVar[str] = "snooze_watchlist"


@dataclass(frozen=True, slots=True)
class NotRelevant:
    alert_id: int
    action: ClassVar[str] = "not_relevant"


Button = MuteStory | SnoozeWatchlist | NotRelevant


def parse_button(data: str | None) -> Button | None:
    """The button behind callback data; None for anything this version did not write."""
    prefix, sep, value = (data or "").partition(":")
    if not sep:
        return None
    if prefix in ("ms", "nr") and value.isascii() and value.isdigit() and len(value) <= 18:
        return MuteStory(int(value)) if prefix == "ms" else NotRelevant(int(value))
    if prefix == "sw" and NAME_PATTERN.fullmatch(value):
        return SnoozeWatchlist(value)
    return None


def button_data(button: Button) -> str:
    """The callback data for `button`; ValueError past Telegram's 64 bytes (a watchlist id
    longer than 61 characters: leave that button out)."""
    if isinstance(button, MuteStory):
        data = f"ms:{button.story_id}"
    elif isinstance(button, SnoozeWatchlist):
        data = f"sw:{button.watchlist}"
    else:
        data = f"nr:{button.alert_id}"
    if len(data.encode()) > 64:
        raise ValueError(f"callback data {data!r} is longer than Telegram's 64 bytes")
    return data


# --- who may talk ---------------------------------------------------------------------------


def chat_matches(spec: int | str | None, chat_id: int | None, chat_username: str | None) -> bool:
    """Whether `spec` (a config chat id: a number or @username) names this chat."""
    if spec is None or isinstance(spec, bool):
        return False
    if isinstance(spec, int):
        return chat_id is not None and spec == chat_id
    text = spec.strip()
    if re.fullmatch(r"-?\d+", text):
        return chat_id is not None and int(text) == chat_id
    return bool(chat_username) and text.lstrip("@").lower() == (chat_username or "").lower()


def allowed(
    chat_id: int | None,
    user_id: int | None,
    allowed_chats: Iterable[int | str],
    admins: Iterable[int],
    chat_username: str | None = None,
) -> bool:
    """Answered: a chat in `allowed_chats` (id or @username), or an admin in any chat."""
    if user_id is not None and user_id in set(admins):
        return True
    return any(chat_matches(spec, chat_id, chat_username) for spec in allowed_chats)


# --- what the bot says ----------------------------------------------------------------------


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _fit(head: Sequence[str], items: Sequence[str], tail: Sequence[str] = ()) -> str:
    """`head`, as many `items` as fit in one message, then `… and N more`, then `tail`."""
    budget = TELEGRAM_LIMIT - 100 - sum(utf16_len(line) + 1 for line in (*head, *tail))
    shown: list[str] = []
    for item in items:
        cost = utf16_len(item) + 1
        if cost > budget:
            break
        shown.append(item)
        budget -= cost
    more = [f"… and {len(items) - len(shown)} more"] if len(shown) < len(items) else []
    return "\n".join([*head, *shown, *more, *tail])


def _clip(text: str, limit: int) -> str:
    text = squash(text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def help_text() -> str:
    lines = ["<b>Monitor bot</b>"]
    for name, args, what in MENU:
        command = f"/{name} {args}".rstrip()
        lines.append(f"{esc(command)} — {esc(what)}")
    lines.append("Durations: 30m, 2h, 1d, 1h30m (at most 30d).")
    return "\n".join(lines)


def unknown_text(name: str) -> str:
    return f"Unknown command /{esc(_clip(name, 64))}. Send /help for the list."


def usage_text(usage: Usage) -> str:
    lines = [esc(usage.problem)] if usage.problem else []
    return "\n".join([*lines, esc(usage.line)])


def refusal_text(chat_id: int | None) -> str:
    where = "this chat" if chat_id is None else f"chat {chat_id}"
    return f"This bot answers only its team. Ask an admin to add {where} to monitor.yaml."


@dataclass(frozen=True, slots=True)
class FeedHealth:
    id: str
    failing: bool
    errors: int = 0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueCounts:
    destination: str
    kind: str  # telegram | email | console | "(not configured)"
    queued: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0  # not sent on purpose: muted, or a new feed's backlog


def status_text(feeds: Sequence[FeedHealth], queues: Sequence[QueueCounts], mutes: int = 0) -> str:
    failing = [f for f in feeds if f.failing]
    head = ["<b>Status</b>", f"Feeds: {len(feeds) - len(failing)} ok, {len(failing)} failing"]
    items = [
        f"• {esc(f.id)}: {f.errors} error(s) in a row"
        + (f" — {esc(_clip(f.last_error, 120))}" if f.last_error else "")
        for f in failing
    ]
    tail = ["Alerts (queued / sent / failed):"]
    tail += [
        f"• {esc(q.destination)} ({esc(q.kind)}): {q.queued} / {q.sent} / {q.failed}"
        + (f" ({q.skipped} skipped: muted or backlog)" if q.skipped else "")
        for q in queues
    ] or ["• no destinations"]
    tail.append(f"Active mutes: {mutes}")
    return _fit(head, items, tail)


@dataclass(frozen=True, slots=True)
class WatchlistLine:
    id: str
    name: str
    priority: str
    muted_until: datetime | None = None


def watchlists_text(rows: Sequence[WatchlistLine]) -> str:
    if not rows:
        return "No watchlists are configured."
    items = []
    for row in rows:
        name = f" — {esc(_clip(row.name, 80))}" if row.name != row.id else ""
        muted = f" — muted until {when(row.muted_until)}" if row.muted_until else ""
        items.append(f"• <code>{esc(row.id)}</code>{name} ({esc(row.priority)}){muted}")
    return _fit([f"<b>Watchlists ({len(rows)})</b>"], items)


@dataclass(frozen=True, slots=True)
class RecentAlert:
    """A sent alert as `/recent` shows it (one per story, across destinations)."""

    title: str
    url: str | None
    source: str
    watchlists: tuple[str, ...]
    sent_at: datetime
    story_id: int | None = None


def recent_text(items: Sequence[RecentAlert], watchlist: str | None) -> str:
    about = f" for {esc(watchlist)}" if watchlist else ""
    if not items:
        return f"No alerts sent{about} yet."
    lines = []
    for item in items:
        title = esc(_clip(item.title, 200)) or "(no title)"
        link = safe_link(item.url)
        headline = f'<a href="{esc(link)}">{title}</a>' if link else title
        lists = ", ".join(item.watchlists)
        lines.append(
            f"• {headline}\n  {esc(_clip(item.source, 60))} · {esc(lists)} · {when(item.sent_at)}"
        )
    return _fit([f"<b>Last {len(items)} alert(s){about}</b>"], lines)


def unknown_watchlist_text(name: str, known: Iterable[str]) -> str:
    ids = sorted(known)
    listing = ", ".join(ids) if ids else "none are configured"
    return _fit([f"No watchlist {esc(_clip(name, 64))}."], [f"Known: {esc(listing)}"])


def muted_text(watchlist: str, until: datetime, duration: timedelta, by: str) -> str:
    return (
        f"Muted <b>{esc(watchlist)}</b> for {format_duration(duration)}, until {when(until)}"
        f" (by {esc(_clip(by, 64))}). Send /unmute {esc(watchlist)} to end it sooner."
    )


def unmuted_text(watchlist: str, was_muted: bool) -> str:
    if was_muted:
        return f"Unmuted <b>{esc(watchlist)}</b>: its alerts go out again."
    return f"<b>{esc(watchlist)}</b> was not muted."


def snoozed_toast(watchlist: str, until: datetime) -> str:
    return _clip(f"Snoozed {watchlist} until {when(until)}.", TOAST_LIMIT)


def story_muted_toast(until: datetime) -> str:
    return f"Story muted until {when(until)}."


def not_relevant_toast(recorded: bool) -> str:
    return "Noted: not relevant. Thank you." if recorded else "Already noted."


STALE_BUTTON = "This button is no longer supported."
