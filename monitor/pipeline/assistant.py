"""The bot's side of the conversation: what each command and alert button does, and who may.

Contract: `handle(rt, mutes, incoming)` answers one update with the config of `rt`:

* refuses (and changes nothing for) chats and users that `rt.config.telegram` does not allow,
  answering only commands and button presses, so chatter in a group stays unanswered;
* says nothing to plain text, commands for another bot, or when `telegram.commands` is off;
* `/help`, `/status` (feeds ok/failing, alerts queued/sent/failed per destination),
  `/watchlists` (id, name, priority, muted until), `/recent [watchlist]` (last 10 sent),
  `/mute <watchlist> <duration>` and `/unmute <watchlist>` (an unknown watchlist gets an error
  naming the known ones; malformed arguments the command's usage line);
* buttons: `sw:` mutes the watchlist for 24 h, `ms:` the story for 7 days, `nr:` records "not
  relevant"; each press is recorded as feedback with its action, and its answer confirms.

Storage calls run in a worker thread: the bot shares the daemon's event loop.
`run_bot(runtime, mutes, state, bot, stop)` runs the long-polling loop (monitor.edges.bot)
until `stop` is set, taking the Runtime in force at each update, so config reloads apply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import telegram

from monitor.core.commands import (
    MENU,
    SNOOZE,
    STALE_BUTTON,
    STORY_MUTE,
    Button,
    Command,
    FeedHealth,
    Help,
    Mute,
    MuteStory,
    NotRelevant,
    QueueCounts,
    Recent,
    ShowWatchlists,
    SnoozeWatchlist,
    Status,
    Unknown,
    Unmute,
    Usage,
    WatchlistLine,
    allowed,
    chat_matches,
    help_text,
    muted_text,
    not_relevant_toast,
    parse_button,
    parse_command,
    recent_text,
    refusal_text,
    snoozed_toast,
    status_text,
    story_muted_toast,
    unknown_text,
    unknown_watchlist_text,
    unmuted_text,
    usage_text,
    watchlists_text,
)
from monitor.edges.bot import Backoff, BotLoop, Incoming, Reply, StateOffsets
from monitor.edges.mutes import Mutes
from monitor.edges.schema import FAILED, PENDING, SENT, SKIPPED
from monitor.edges.state import State
from monitor.pipeline.runtime import Runtime

__all__ = ["RECENT", "handle", "run_bot"]

log = logging.getLogger("monitor.assistant")
RECENT = 10


async def handle(rt: Runtime, mutes: Mutes, incoming: Incoming) -> list[Reply]:
    spec = rt.config.telegram
    pressed = incoming.callback_id is not None
    command = None if pressed else parse_command(incoming.text, incoming.bot_username)
    if not spec.commands or (not pressed and command is None):
        return []
    if not allowed(incoming.chat_id, incoming.user_id, spec.allowed_chats, spec.admins,
                   incoming.chat_username):  # fmt: skip
        log.info("telegram bot: refused user %s (%s) in chat %s", incoming.user_id,
                 incoming.user_name, incoming.chat_id)  # fmt: skip
        return [Reply(refusal_text(incoming.chat_id), to_button=pressed)]
    if pressed:
        button = parse_button(incoming.callback_data)
        text = STALE_BUTTON if button is None else await _press(rt, mutes, incoming, button)
        return [Reply(text, to_button=True)]
    assert command is not None
    return [Reply(await _command(rt, mutes, incoming, command))]


def _by(incoming: Incoming) -> str:
    return f"telegram:{incoming.user_id} ({incoming.user_name})"


def _watchlist_id(rt: Runtime, name: str) -> str | None:
    """The configured id `name` means: exact, else the one id equal to it ignoring case."""
    if name in rt.watchlists:
        return name
    found = [w for w in rt.watchlists if w.lower() == name.lower()]
    return found[0] if len(found) == 1 else None


async def _command(rt: Runtime, mutes: Mutes, incoming: Incoming, command: Command) -> str:
    now = rt.clock()
    if isinstance(command, Help):
        return help_text()
    if isinstance(command, Unknown):
        return unknown_text(command.name)
    if isinstance(command, Usage):
        return usage_text(command)
    if isinstance(command, Status):
        return await _status(rt, mutes, now)
    if isinstance(command, ShowWatchlists):
        listing = await asyncio.to_thread(mutes.listing, now)
        muted = {m.target: m.until for m in listing if m.scope == "watchlist"}
        rows = [WatchlistLine(w.id, w.name, w.priority.name, muted.get(w.id))
                for w in sorted(rt.watchlists.values(), key=lambda w: w.id)]  # fmt: skip
        return watchlists_text(rows)
    if isinstance(command, Recent):
        wanted = None
        if command.watchlist is not None:
            wanted = _watchlist_id(rt, command.watchlist)
            if wanted is None:
                return unknown_watchlist_text(command.watchlist, rt.watchlists)
        items = await asyncio.to_thread(mutes.recent, wanted, RECENT, now)
        return recent_text(items, wanted)
    if isinstance(command, Mute):
        target = _watchlist_id(rt, command.watchlist)
        if target is None:
            return unknown_watchlist_text(command.watchlist, rt.watchlists)
        until, by = now + command.duration, _by(incoming)
        await asyncio.to_thread(mutes.mute, "watchlist", target, until, by, now)
        log.info("telegram bot: %s muted watchlist %s until %s", by, target, until.isoformat())
        return muted_text(target, until, command.duration, incoming.user_name)
    assert isinstance(command, Unmute)
    target = _watchlist_id(rt, command.watchlist) or command.watchlist
    was_muted = await asyncio.to_thread(mutes.unmute, "watchlist", target, now)
    if not was_muted and target not in rt.watchlists:
        # Not configured and not muted either: most likely a typo.
        return unknown_watchlist_text(command.watchlist, rt.watchlists)
    if was_muted:
        log.info("telegram bot: %s unmuted watchlist %s", _by(incoming), target)
    return unmuted_text(target, was_muted)


async def _status(rt: Runtime, mutes: Mutes, now: datetime) -> str:
    rows = await asyncio.to_thread(rt.store.feeds)
    feeds = [FeedHealth(f.id, f.error_count > 0, f.error_count, f.last_error)
             for f in rows if f.enabled and f.in_config]  # fmt: skip
    counts = await asyncio.to_thread(rt.outbox.alert_counts)
    destinations = rt.config.destinations
    queues = []
    for name in sorted(set(destinations) | set(counts)):
        by_status, spec = counts.get(name, {}), destinations.get(name)
        kind = spec.type if spec is not None else "(not configured)"
        queues.append(QueueCounts(name, kind, by_status.get(PENDING, 0), by_status.get(SENT, 0),
                                  by_status.get(FAILED, 0), by_status.get(SKIPPED, 0)))  # fmt: skip
    listing = await asyncio.to_thread(mutes.listing, now)
    return status_text(feeds, queues, len(listing))


async def _press(rt: Runtime, mutes: Mutes, incoming: Incoming, button: Button) -> str:
    now, by = rt.clock(), _by(incoming)
    if isinstance(button, NotRelevant):
        alert_id: int | None = button.alert_id
    else:
        alert_id = await _pressed_alert(rt, mutes, incoming)
    record = (alert_id, button.action, incoming.user_id, incoming.chat_id, now)
    # Callback data comes back from the client, which can send any (Bot API: "callback_data
    # ... may not match any button"): only configured watchlists can be snoozed.
    if isinstance(button, SnoozeWatchlist) and button.watchlist not in rt.watchlists:
        return STALE_BUTTON
    if isinstance(button, SnoozeWatchlist):
        until = now + SNOOZE
        await asyncio.to_thread(mutes.mute, "watchlist", button.watchlist, until, by, now)
        await asyncio.to_thread(mutes.record_feedback, *record, watchlists=(button.watchlist,))
        log.info("telegram bot: %s snoozed watchlist %s until %s", by, button.watchlist,
                 until.isoformat())  # fmt: skip
        return snoozed_toast(button.watchlist, until)
    if isinstance(button, MuteStory):
        until = now + STORY_MUTE
        await asyncio.to_thread(mutes.mute, "story", str(button.story_id), until, by, now)
        await asyncio.to_thread(mutes.record_feedback, *record, story_id=button.story_id)
        log.info("telegram bot: %s muted story %d until %s", by, button.story_id,
                 until.isoformat())  # fmt: skip
        return story_muted_toast(until)
    recorded = await asyncio.to_thread(mutes.record_feedback, *record)
    return not_relevant_toast(recorded)


async def _pressed_alert(rt: Runtime, mutes: Mutes, incoming: Incoming) -> int | None:
    """The alert whose message carried the button, found by its message id in this chat."""
    if incoming.message_id is None:
        return None
    here = [name for name, spec in rt.config.destinations.items()
            if spec.type == "telegram"
            and chat_matches(spec.chat_id, incoming.chat_id, incoming.chat_username)]  # fmt: skip
    return await asyncio.to_thread(
        mutes.alert_for_message, incoming.message_id, incoming.chat_id, here
    )


async def run_bot(
    runtime: Callable[[], Runtime],
    mutes: Mutes,
    state: State,
    bot: telegram.Bot,
    stop: asyncio.Event,
    *,
    poll_timeout: int = 30,
    backoff: Backoff | None = None,
) -> None:
    """Answer the team until `stop` is set (or the token is refused). `runtime()` is the
    Runtime in force now; `bot` is the caller's to build (make_bot) and to shut down."""

    async def on_update(incoming: Incoming) -> list[Reply]:
        return await handle(runtime(), mutes, incoming)

    offsets = StateOffsets(state, lambda: runtime().clock())
    menu = [(name, about) for name, _args, about in MENU]
    loop = BotLoop(bot, on_update, offsets, poll_timeout=poll_timeout,
                   backoff=backoff or Backoff(), menu=menu)  # fmt: skip
    await loop.run(stop)
