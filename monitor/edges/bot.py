"""The Telegram transport for the team's commands: long-polls getUpdates, hands each update to a
handler and sends back what it says.

Contract: `BotLoop(bot, handler, offsets, ...).run(stop)` runs until `stop` is set (promptly: a
long poll in flight is abandoned, its updates come again next time) or the token is refused.
It first initialises the bot (getMe), deletes any webhook (with one set, getUpdates answers 409)
and sets the command menu, then polls `getUpdates(offset, timeout=poll_timeout,
allowed_updates=["message", "callback_query"])`. Each update goes to `handler` as an
`Incoming`; the next offset is saved in `offsets` before the replies are sent, so a restart
never handles an update twice (a lost reply is the price). Replies are sendMessage in HTML
with link previews off, or answerCallbackQuery for a button press (always answered, so the
button stops spinning).

Failures: network errors, 5xx and timeouts back off exponentially (capped, with jitter) and
go on; 429 waits as told; 409 Conflict (another process polls this bot) is logged at ERROR once
per spell and waits longer; InvalidToken is logged and ends the loop. A handler raising
`TransientError` (the database is down) leaves its update unconfirmed, to be handled again
after a back-off; any other handler error is logged and the update skipped. Nothing logged
contains the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import telegram
from telegram import BotCommand, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

from monitor.core.commands import TOAST_LIMIT
from monitor.core.errors import TransientError
from monitor.edges.notify.telegram import redact
from monitor.edges.state import State

__all__ = [
    "ALLOWED_UPDATES",
    "Backoff",
    "BotLoop",
    "Handler",
    "Incoming",
    "OffsetStore",
    "Reply",
    "StateOffsets",
]

log = logging.getLogger("monitor.bot")

ALLOWED_UPDATES = ("message", "callback_query")


@dataclass(frozen=True, slots=True)
class Incoming:
    """One update as the handler needs it: a message, or a button press (`callback_*`)."""

    update_id: int
    chat_id: int | None
    chat_username: str | None
    user_id: int | None
    user_name: str
    text: str | None = None
    callback_id: str | None = None
    callback_data: str | None = None
    message_id: int | None = None  # the message sent, or the one whose button was pressed
    bot_username: str = ""  # who it was sent to: `/cmd@name` counts only for this name


@dataclass(frozen=True, slots=True)
class Reply:
    """A message to the chat (Telegram HTML), or with `to_button` a button press's answer."""

    text: str
    to_button: bool = False


Handler = Callable[[Incoming], Awaitable[Sequence[Reply]]]
T = TypeVar("T")


class OffsetStore(Protocol):
    """Where the next getUpdates offset survives a restart; per bot, as update ids are."""

    def load(self, bot_id: int) -> int | None: ...

    def save(self, bot_id: int, offset: int) -> None: ...


class StateOffsets:
    """An OffsetStore in `daemon_state` under `key`: {"bot_id": ..., "offset": ...}."""

    def __init__(
        self, state: State, clock: Callable[[], datetime], key: str = "telegram_offset"
    ) -> None:
        self.state, self.clock, self.key = state, clock, key

    def load(self, bot_id: int) -> int | None:
        found = self.state.get(self.key)
        if found is None or found[0].get("bot_id") != bot_id:
            # Another bot's update ids mean nothing here; its offset could skip everything.
            return None
        offset = found[0].get("offset")
        return offset if isinstance(offset, int) else None

    def save(self, bot_id: int, offset: int) -> None:
        self.state.put(self.key, {"bot_id": bot_id, "offset": offset}, self.clock())


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait: `first` doubling per failure up to `cap`; `conflict` after a 409."""

    first: float = 1.0
    cap: float = 60.0
    conflict: float = 60.0

    def delay(self, failures: int, jitter: float) -> float:
        doublings = min(max(failures - 1, 0), 30)
        base = min(self.cap, self.first * float(2**doublings))
        # Between half and all of it: restarted daemons do not retry in lockstep.
        return base * (0.5 + jitter / 2)


def incoming_from(update: telegram.Update, bot_username: str) -> Incoming:
    """The parts of `update` the assistant reads; other kinds of update have no text."""
    query = update.callback_query
    if query is not None:
        message = query.message
        chat = message.chat if message is not None else None
        return Incoming(
            update_id=update.update_id,
            chat_id=chat.id if chat is not None else None,
            chat_username=chat.username if chat is not None else None,
            user_id=query.from_user.id,
            user_name=_name(query.from_user),
            callback_id=query.id,
            callback_data=query.data,
            message_id=message.message_id if message is not None else None,
            bot_username=bot_username,
        )
    msg = update.message
    if msg is None:
        return Incoming(update.update_id, None, None, None, "", bot_username=bot_username)
    user = msg.from_user
    return Incoming(
        update_id=update.update_id,
        chat_id=msg.chat.id,
        chat_username=msg.chat.username,
        user_id=user.id if user is not None else None,
        user_name=_name(user) if user is not None else "",
        text=msg.text,
        message_id=msg.message_id,
        bot_username=bot_username,
    )


def _name(user: telegram.User) -> str:
    return f"@{user.username}" if user.username else user.full_name


class BotLoop:
    def __init__(
        self,
        bot: telegram.Bot,
        handler: Handler,
        offsets: OffsetStore,
        *,
        poll_timeout: int = 30,
        backoff: Backoff = Backoff(),
        menu: Sequence[tuple[str, str]] = (),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.bot = bot
        self.handler = handler
        self.offsets = offsets
        self.poll_timeout = poll_timeout
        self.backoff = backoff
        self.menu = tuple(menu)
        self.jitter = jitter
        self.offset: int | None = None
        self._failures = 0
        self._conflict_told = False

    async def run(self, stop: asyncio.Event) -> None:
        if not await self._start(stop):
            return
        log.info("telegram bot @%s: answering commands", self.bot.username)
        while not stop.is_set():
            try:
                got, updates = await _unless_stopped(stop, self._get_updates())
            except Exception as exc:
                if not await self._trouble(exc, "getUpdates", stop):
                    return
                continue
            if not got or updates is None:
                break
            self._conflict_told = False
            settled = True
            for update in updates:
                if stop.is_set():
                    break  # the rest stay unconfirmed and come again after a restart
                settled = await self._one(update)
                if not settled:
                    break
            if settled:
                self._failures = 0
            else:
                await self._back_off(stop)
        log.info("telegram bot: stopped")

    async def _start(self, stop: asyncio.Event) -> bool:
        """Until it works: getMe, deleteWebhook, the menu, the saved offset; False: give up."""
        while not stop.is_set():
            try:
                got, _ = await _unless_stopped(stop, self._begin())
            except Exception as exc:
                if not await self._trouble(exc, "starting", stop):
                    return False
                continue
            if not got:
                return False
            if self.menu:
                commands = [BotCommand(name, about) for name, about in self.menu]
                try:
                    await self.bot.set_my_commands(commands)
                except TelegramError as exc:  # only the menu in the clients is missing
                    log.warning(
                        "telegram bot: could not set the command menu: %s", self._clean(exc)
                    )
            self._failures = 0
            return True
        return False

    async def _begin(self) -> None:
        await self.bot.initialize()
        await self.bot.delete_webhook()
        self.offset = await asyncio.to_thread(self.offsets.load, self.bot.id)

    async def _get_updates(self) -> tuple[telegram.Update, ...]:
        # A no-op once done; repeated because someone may have shut a shared Bot down.
        await self.bot.initialize()
        return await self.bot.get_updates(
            offset=self.offset, timeout=self.poll_timeout, allowed_updates=list(ALLOWED_UPDATES)
        )

    async def _one(self, update: telegram.Update) -> bool:
        """Handle one update; False when it must be tried again (a transient failure)."""
        incoming = incoming_from(update, self.bot.username)
        try:
            replies: Sequence[Reply] = await self.handler(incoming)
        except TransientError as exc:
            log.warning("telegram bot: update %d will be handled again: %s", update.update_id,
                        self._clean(exc))  # fmt: skip
            return False
        except Exception as exc:
            log.error("telegram bot: update %d skipped after an unexpected error:\n%s",
                      update.update_id, self._trace(exc))  # fmt: skip
            replies = ()
        self.offset = update.update_id + 1
        try:
            await asyncio.to_thread(self.offsets.save, self.bot.id, self.offset)
        except TransientError as exc:
            # The next getUpdates confirms it to Telegram anyway; only a restart before then
            # would see it again.
            log.warning("telegram bot: could not save the update offset: %s", self._clean(exc))
        await self._answer(incoming, replies)
        return True

    async def _answer(self, incoming: Incoming, replies: Sequence[Reply]) -> None:
        toast: str | None = None
        for reply in replies:
            if reply.to_button and incoming.callback_id is not None:
                toast = reply.text[:TOAST_LIMIT]
                continue
            if incoming.chat_id is None:
                continue
            await self._quietly(
                f"answer in chat {incoming.chat_id}",
                self.bot.send_message(
                    incoming.chat_id,
                    reply.text,
                    parse_mode=ParseMode.HTML,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                    reply_parameters=_reply_to(incoming),
                ),
            )
        if incoming.callback_id is not None:
            await self._quietly(
                "answer a button press",
                self.bot.answer_callback_query(incoming.callback_id, text=toast),
            )

    async def _quietly(self, doing: str, call: Coroutine[Any, Any, Any]) -> None:
        # The command has taken effect by now; a reply that fails is logged, not retried.
        try:
            await call
        except TelegramError as exc:
            log.warning("telegram bot: could not %s: %s", doing, self._clean(exc))

    async def _trouble(self, exc: Exception, doing: str, stop: asyncio.Event) -> bool:
        """Log `exc` and wait as it deserves; False when the loop must end."""
        if isinstance(exc, InvalidToken):
            log.error("telegram bot: the bot token was refused while %s; bot commands are off "
                      "until the token is fixed and the daemon restarted", doing)  # fmt: skip
            return False
        if isinstance(exc, Conflict):
            if not self._conflict_told:
                log.error(
                    "telegram bot: another process is polling updates for this bot (409 "
                    "Conflict); only one may. Stop it, or set 'telegram: {commands: false}' in "
                    "one of the monitor.yaml files. Retrying every %gs.",
                    self.backoff.conflict,
                )
                self._conflict_told = True
            await _sleep(stop, self.backoff.conflict * (0.5 + self.jitter() / 2))
            return True
        if isinstance(exc, RetryAfter):
            seconds = _retry_after_seconds(exc)
            log.warning("telegram bot: %s: flood control, waiting %gs", doing, seconds)
            await _sleep(stop, seconds)
            return True
        if isinstance(exc, TelegramError | TransientError):
            log.warning("telegram bot: %s failed: %s", doing, self._clean(exc))
        else:
            log.error("telegram bot: %s failed unexpectedly:\n%s", doing, self._trace(exc))
        await self._back_off(stop)
        return True

    async def _back_off(self, stop: asyncio.Event) -> None:
        self._failures += 1
        await _sleep(stop, self.backoff.delay(self._failures, self.jitter()))

    def _clean(self, exc: BaseException) -> str:
        return redact(f"{type(exc).__name__}: {exc}", {self.bot.token})

    def _trace(self, exc: BaseException) -> str:
        return redact("".join(traceback.format_exception(exc)).rstrip(), {self.bot.token})


def _reply_to(incoming: Incoming) -> ReplyParameters | None:
    # In a busy group the answer sits under its command; gone commands do not block it.
    if incoming.message_id is None:
        return None
    return ReplyParameters(incoming.message_id, allow_sending_without_reply=True)


async def _unless_stopped(
    stop: asyncio.Event, call: Coroutine[Any, Any, T]
) -> tuple[bool, T | None]:
    """(True, result) of `call`, or (False, None) when `stop` was set first (call cancelled)."""
    task = asyncio.ensure_future(call)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    if task.cancelled():
        return False, None
    return True, task.result()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Wait `seconds`, or less when `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def _retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22 warns on reading retry_after unless PTB_TIMEDELTA is set; the value is the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
