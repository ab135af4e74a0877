"""Telegram notifier: an alert or a digest as one or more sendMessage calls, in HTML parse mode.

Contract: `make_bot(token, api_url)` builds a python-telegram-bot `Bot` whose calls go to
`{api_url}/bot{token}/{method}` (MONITOR_TELEGRAM_API_URL) and installs a log filter that
replaces the token with `<token>` in the records of the loggers that print request URLs
(`httpx` logs every URL at INFO, PTB's `telegram.Bot` logs the base URL at DEBUG).

`TelegramNotifier` implements `monitor.edges.notify.Notifier`. `send` renders the message
(`render_telegram_html`, or a digest renderer), cuts it into parts of at most 4096 UTF-16 units
(`split_html`), and sends them in order, skipping the parts `done` says an earlier attempt
delivered; the receipt's external id is `<chat_id>:<msgid>,<msgid>…` over every part, and an
error's `sent` holds the message ids (as strings) delivered so far. An alert from the outbox
carries its inline keyboard (`alert_buttons`) on its last part. `update` edits the first part in
place (editMessageText): True when edited or already showing that text, False when the message
is gone; only the first part is rewritten, which holds the head ("Also reported by …").

Every call (edits too) passes the bot's `TelegramGate` first, which paces it within Telegram's
rate limits (`monitor.core.pace`) together with every notifier sharing the gate: by default one
per Bot object (`gate_for`); the composition root may make one per token and pass it, so that
pacing survives a config reload.

Failures are classified, never retried here except as said:

- 429 (RetryAfter) -> TransientError with the peer's retry_after; the whole bot is held back in
  the gate until then (Bot API: "Too Many Requests: retry after N" applies to the bot);
- 400 (BadRequest; caught before NetworkError, of which PTB makes it a subclass) ->
  PermanentError, except "can't parse entities": the message is resent once as plain text with
  no parse mode (the alert matters more than its formatting);
- ChatMigrated (a group became a supergroup) -> resent once to the new chat id, which is kept
  as `chat_id` for later sends and logged at WARNING so the operator can update monitor.yaml;
- 403 (Forbidden: bot blocked, kicked, not an admin), 401/404 (InvalidToken) -> Refused;
- TimedOut: PTB raises it `from` the httpx timeout (HTTPXRequest.do_request). A connect or pool
  timeout means nothing was sent -> TransientError; a read or write timeout (or one whose cause
  is unknown) means the request may have reached Telegram -> Ambiguous;
- any other NetworkError (5xx, connection refused) or an unreadable answer -> TransientError.

`send` and `update` await `Bot.initialize()` first (a no-op once done): getMe checks the token
up front, and `Bot.shutdown` (by `aclose`) only closes the HTTP client of an initialised Bot.
No message this module raises or logs contains the token; errors are raised `from None`
because PTB's own InvalidToken message quotes it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Sequence
from datetime import timedelta

import httpx
import telegram
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from monitor.core.errors import Ambiguous, MonitorError, PermanentError, Refused, TransientError
from monitor.core.render import AlertView, Outgoing
from monitor.core.render_telegram import alert_buttons, outgoing_html, outgoing_text
from monitor.core.telegram_parts import join_part_ids, parse_part_ids, split_html, split_text
from monitor.edges.notify import Receipt
from monitor.edges.notify.gate import TelegramGate, gate_for

logger = logging.getLogger(__name__)

#: Loggers that print URLs holding the token; each gets the redacting filter.
URL_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")
REDACTED = "<token>"


class TokenRedactor(logging.Filter):
    """Rewrites a record's message with every known token replaced by `<token>`.

    On the logger that creates a record it runs before any handler sees it, so neither our
    handlers nor pytest's caplog receive the token; on a handler it guards that handler.
    """

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        super().__init__()
        self.tokens: set[str] = {t for t in tokens if t}

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: the handler reports it, not us
            return True
        redacted = redact(message, self.tokens)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # A traceback can quote the token too (PTB's InvalidToken does): format it here,
            # redacted; handlers print `exc_text` as it is.
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text, self.tokens)
        return True


_REDACTOR = TokenRedactor()


def redact(text: str, tokens: set[str] | frozenset[str]) -> str:
    for token in tokens:
        if token:
            text = text.replace(token, REDACTED)
    return text


def make_bot(token: str, api_url: str, *, timeout: float = 15.0) -> telegram.Bot:
    """A Bot talking to `{api_url}/bot{token}/...`; `timeout` bounds connect, read and write."""
    if not token:
        raise PermanentError("no Telegram bot token (set MONITOR_TELEGRAM_TOKEN)")
    root = api_url.rstrip("/")
    if not root.lower().startswith(("http://", "https://")):
        raise PermanentError(f"MONITOR_TELEGRAM_API_URL must be an http(s) URL, not {root!r}")
    _REDACTOR.tokens.add(token)
    for name in URL_LOGGERS:
        log = logging.getLogger(name)
        if _REDACTOR not in log.filters:
            log.addFilter(_REDACTOR)
    request = HTTPXRequest(
        connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout, pool_timeout=timeout
    )
    return telegram.Bot(
        token,
        base_url=f"{root}/bot",
        base_file_url=f"{root}/file/bot",
        request=request,
    )


def _retry_after_seconds(exc: RetryAfter) -> float:
    # PTB 22 warns on reading retry_after unless PTB_TIMEDELTA is set; the value is the same.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _says(exc: BadRequest, *phrases: str) -> bool:
    # Telegram tells 400s apart only by their description ("Bad Request: message is not
    # modified: ..."); PTB keeps it as `message`.
    text = exc.message.lower()
    return any(phrase in text for phrase in phrases)


_PARSE_ERROR = "can't parse entities"
_NOT_MODIFIED = "message is not modified"
# Deleted, or one a bot cannot edit (a service message, say).
#: 400 descriptions that condemn the chat rather than the message (Bot API error texts).
_DESTINATION_BROKEN = (
    "chat not found",
    "not enough rights",
    "have no rights",
    "need administrator rights",
    "bot is not a member",
    "chat_write_forbidden",
    "group chat was deactivated",
    "peer_id_invalid",
)
_GONE = ("message to edit not found", "message can't be edited")


def _may_have_arrived(exc: TimedOut) -> bool:
    """Whether a timed-out request may have reached Telegram.

    PTB 22's HTTPXRequest.do_request catches httpx.TimeoutException and raises TimedOut `from`
    it (PoolTimeout with its own message): the httpx class says which phase ran out. Connect
    and pool timeouts come before a byte is sent; read and write timeouts after the request
    (or part of it) went out.
    """
    cause: BaseException | None = exc.__cause__ or exc.__context__
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, httpx.ConnectTimeout | httpx.PoolTimeout):
            return False
        if isinstance(cause, httpx.ReadTimeout | httpx.WriteTimeout):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return True  # unknown: assume the worst, a possible duplicate


def _keyboard(message: Outgoing) -> InlineKeyboardMarkup | None:
    if not isinstance(message, AlertView):
        return None
    rows = alert_buttons(message)
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


class TelegramNotifier:
    def __init__(
        self,
        name: str,
        bot: telegram.Bot,
        chat_id: int | str,
        *,
        gate: TelegramGate | None = None,
    ) -> None:
        self.name = name
        self.chat_id = chat_id
        self._bot = bot
        self.gate = gate if gate is not None else gate_for(bot)

    async def send(self, message: Outgoing, done: Sequence[str] = ()) -> Receipt:
        ids = list(done)
        try:
            # A no-op once done; repeated because a Bot shared by several destinations may
            # have been shut down by another notifier's aclose().
            await self._initialize()
            parts = split_html(outgoing_html(message))
            if not parts:
                raise PermanentError(f"telegram {self.name}: the message has no text")
            try:
                await self._post_all(parts[len(ids) :], ParseMode.HTML, _keyboard(message), ids)
            except BadRequest as exc:
                self._html_refused(exc)
                # Only what has not arrived yet goes again, as plain text: the parts already
                # delivered in HTML stay as they are.
                plain = split_text(outgoing_text(message))
                await self._post_all(plain[len(ids) :], None, _keyboard(message), ids)
        except TelegramError as exc:
            # `from None`: PTB's own messages can hold the token (InvalidToken on getMe does).
            raise self._classify(exc, tuple(ids)) from None
        return Receipt(external_id=join_part_ids(self.chat_id, ids))

    async def _initialize(self) -> None:
        """getMe once per Bot. Nothing is posted by it, so no failure of it is ambiguous: a
        timeout here is a plain transient error, never "may have been delivered"."""
        try:
            await self._bot.initialize()
        except TimedOut as exc:
            raise NetworkError(f"getMe timed out: {type(exc.__cause__).__name__}") from None

    async def _post_all(
        self,
        parts: Sequence[str],
        parse_mode: str | None,
        keyboard: InlineKeyboardMarkup | None,
        ids: list[str],
    ) -> None:
        """Send `parts` in order, the keyboard on the last; each id is added as it arrives."""
        for index, text in enumerate(parts):
            last = index == len(parts) - 1
            sent = await self._post(text, parse_mode, keyboard if last else None)
            ids.append(str(sent.message_id))

    async def _post(
        self, text: str, parse_mode: str | None, keyboard: InlineKeyboardMarkup | None
    ) -> telegram.Message:
        # Link previews off: an alert's preview would show the publisher's card and push the
        # matched terms out of view (Bot API: sendMessage, link_preview_options).
        options = LinkPreviewOptions(is_disabled=True)

        async def attempt() -> telegram.Message:
            async with self.gate.slot(self.chat_id):
                return await self._bot.send_message(
                    self.chat_id,
                    text,
                    parse_mode=parse_mode,
                    link_preview_options=options,
                    reply_markup=keyboard,
                )

        try:
            return await attempt()
        except ChatMigrated as exc:
            self._migrated(exc.new_chat_id)
        return await attempt()  # once more, to the supergroup; a second migration is final

    def _migrated(self, new_chat_id: int) -> None:
        old, self.chat_id = self.chat_id, new_chat_id
        logger.warning(
            "telegram %s: chat %s became supergroup %s; sending there from now on, "
            "set chat_id: %s in monitor.yaml",
            self.name,
            old,
            new_chat_id,
            new_chat_id,
        )

    async def update(self, external_id: str, message: Outgoing) -> bool:
        parsed = parse_part_ids(external_id)
        if parsed is None:
            logger.warning("telegram %s: cannot edit %r: not a message id", self.name, external_id)
            return False
        chat, ids = parsed
        # The first part had the keyboard when it was also the last.
        keyboard = _keyboard(message) if len(ids) == 1 else None
        try:
            await self._initialize()
            first = split_html(outgoing_html(message))[:1]
            if not first:
                return False
            try:
                await self._edit(chat, ids[0], first[0], ParseMode.HTML, keyboard)
            except BadRequest as exc:
                self._html_refused(exc)
                await self._edit(
                    chat, ids[0], split_text(outgoing_text(message))[0], None, keyboard
                )
        except BadRequest as exc:
            if _says(exc, _NOT_MODIFIED):
                return True  # already shows this text: the edit's goal holds
            if _says(exc, *_GONE):
                return False
            raise self._classify(exc, ()) from None
        except ChatMigrated as exc:
            # Messages stay in the old, now read-only group: there is nothing to edit.
            if str(chat) == str(self.chat_id):
                self._migrated(exc.new_chat_id)
            return False
        except TelegramError as exc:
            raise self._classify(exc, ()) from None
        return True

    async def _edit(
        self,
        chat: int | str,
        message_id: int,
        text: str,
        parse_mode: str | None,
        keyboard: InlineKeyboardMarkup | None,
    ) -> None:
        # An edit counts against the limits like a message. The keyboard is passed again:
        # editMessageText without reply_markup removes an inline keyboard.
        async with self.gate.slot(chat):
            await self._bot.edit_message_text(
                text,
                chat_id=chat,
                message_id=message_id,
                parse_mode=parse_mode,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_markup=keyboard,
            )

    def _html_refused(self, exc: BadRequest) -> None:
        """Re-raises `exc` unless Telegram could not parse the HTML: then the caller goes on in
        plain text, once (the alert matters more than its formatting)."""
        if not _says(exc, _PARSE_ERROR):
            raise exc
        logger.warning("telegram %s: HTML refused (%s); plain text", self.name, self._clean(exc))

    def _clean(self, exc: BaseException) -> str:
        return redact(str(exc), {self._bot.token})

    def _classify(self, exc: TelegramError, sent: tuple[str, ...]) -> MonitorError:
        where = f"telegram {self.name}"
        detail = f"{type(exc).__name__}: {self._clean(exc)}"
        if sent:
            detail += f" (after {len(sent)} part(s) arrived)"
        if isinstance(exc, RetryAfter):
            seconds = _retry_after_seconds(exc)
            self.gate.hold(seconds)
            return TransientError(
                f"{where}: flood control, retry in {seconds:g}s", retry_after=seconds, sent=sent
            )
        if isinstance(exc, TimedOut):
            if _may_have_arrived(exc):
                return Ambiguous(
                    f"{where}: {detail} (the message may have been delivered: a retry can "
                    "duplicate it)",
                    sent=sent,
                )
            return TransientError(f"{where}: {detail} (nothing was sent)", sent=sent)
        # BadRequest before NetworkError: PTB makes BadRequest a NetworkError subclass.
        if isinstance(exc, BadRequest):
            if _says(exc, *_DESTINATION_BROKEN):
                # The chat, not this message, is the problem (a wrong chat_id, the bot lost its
                # rights): every alert would fail alike, so the destination pauses instead.
                return Refused(f"{where}: {detail}", sent=sent)
            return PermanentError(f"{where}: {detail}", sent=sent)
        if isinstance(exc, Forbidden | InvalidToken):
            return Refused(f"{where}: {detail}", sent=sent)
        if isinstance(exc, ChatMigrated):  # migrated again right after a migration
            return PermanentError(f"{where}: {detail}", sent=sent)
        # Other NetworkErrors (5xx, connection refused) and "Invalid server response" (a
        # proxy's HTML page) and the like: the peer may recover.
        return TransientError(f"{where}: {detail}", sent=sent)

    async def aclose(self) -> None:
        try:
            await self._bot.shutdown()
        except TelegramError as exc:
            logger.warning("telegram %s: shutdown failed: %s", self.name, self._clean(exc))
