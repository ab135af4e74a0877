"""Telegram notifier: sends an alert with the Bot API's sendMessage, in HTML parse mode.

Contract: `make_bot(token, api_url)` builds a python-telegram-bot `Bot` whose calls go to
`{api_url}/bot{token}/{method}` (MONITOR_TELEGRAM_API_URL) and installs a log filter that
replaces the token with `<token>` in the records of the loggers that print request URLs
(`httpx` logs every URL at INFO, PTB's `telegram.Bot` logs the base URL at DEBUG).
`TelegramNotifier.send` returns the Telegram message id as a string and classifies failures:

- 429 (RetryAfter) -> TransientError with the peer's retry_after;
- 400 (BadRequest) -> PermanentError, except "can't parse entities", which is retried once as
  plain text with no parse mode (the alert matters more than its formatting);
- ChatMigrated (a group became a supergroup) -> resent once to the new chat id, which is kept
  for later sends and logged at WARNING so the operator can update monitor.yaml;
- 403 (Forbidden: bot blocked, kicked, not an admin), 401/404 (InvalidToken) -> PermanentError;
- TimedOut -> TransientError (the message may have been delivered: a retry can duplicate it);
- any other NetworkError (5xx, connection refused) or an unreadable answer -> TransientError.

`send` awaits `Bot.initialize()` first (a no-op once done): sendMessage itself would work without
it, but getMe checks the token up front, and `Bot.shutdown` (called by `aclose`) only closes the
HTTP client of an initialised Bot. A getMe that fails on the network is transient and retried on
the next send. No message this module raises or logs contains the token; errors are raised
`from None` because PTB's own InvalidToken message quotes it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from datetime import timedelta

import telegram
from telegram import LinkPreviewOptions
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

from monitor.core.errors import MonitorError, PermanentError, TransientError
from monitor.core.render import AlertView
from monitor.core.render_telegram import render_telegram_html, render_telegram_text

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


def _is_parse_error(exc: BadRequest) -> bool:
    return "can't parse entities" in exc.message.lower()


class TelegramNotifier:
    def __init__(self, name: str, bot: telegram.Bot, chat_id: int | str) -> None:
        self.name = name
        self.chat_id = chat_id
        self._bot = bot

    async def send(self, view: AlertView) -> str | None:
        try:
            # A no-op once done; repeated because a Bot shared by several destinations may
            # have been shut down by another notifier's aclose().
            await self._bot.initialize()
            try:
                message = await self._post(render_telegram_html(view), ParseMode.HTML)
            except BadRequest as exc:
                if not _is_parse_error(exc):
                    raise
                logger.warning(
                    "telegram %s: HTML refused (%s); sending the alert as plain text",
                    self.name,
                    self._clean(exc),
                )
                message = await self._post(render_telegram_text(view), None)
        except TelegramError as exc:
            # `from None`: PTB's own messages can hold the token (InvalidToken on getMe does).
            raise self._classify(exc) from None
        return str(message.message_id)

    async def _post(self, text: str, parse_mode: str | None) -> telegram.Message:
        # Link previews off: an alert's preview would show the publisher's card and push the
        # matched terms out of view (Bot API: sendMessage, link_preview_options).
        options = LinkPreviewOptions(is_disabled=True)
        try:
            return await self._bot.send_message(
                self.chat_id, text, parse_mode=parse_mode, link_preview_options=options
            )
        except ChatMigrated as exc:
            old, self.chat_id = self.chat_id, exc.new_chat_id
            logger.warning(
                "telegram %s: chat %s became supergroup %s; sending there from now on, "
                "set chat_id: %s in monitor.yaml",
                self.name,
                old,
                exc.new_chat_id,
                exc.new_chat_id,
            )
            return await self._bot.send_message(
                self.chat_id, text, parse_mode=parse_mode, link_preview_options=options
            )

    def _clean(self, exc: BaseException) -> str:
        return redact(str(exc), {self._bot.token})

    def _classify(self, exc: TelegramError) -> MonitorError:
        where = f"telegram {self.name}"
        detail = f"{type(exc).__name__}: {self._clean(exc)}"
        if isinstance(exc, RetryAfter):
            seconds = _retry_after_seconds(exc)
            return TransientError(
                f"{where}: flood control, retry in {seconds:g}s", retry_after=seconds
            )
        if isinstance(exc, TimedOut):
            return TransientError(
                f"{where}: {detail} (the message may have been delivered: a retry can duplicate it)"
            )
        # BadRequest before NetworkError: PTB makes BadRequest a NetworkError subclass.
        if isinstance(exc, BadRequest):
            return PermanentError(f"{where}: {detail}")
        if isinstance(exc, Forbidden | InvalidToken | ChatMigrated):
            return PermanentError(f"{where}: {detail}")
        if isinstance(exc, NetworkError):
            return TransientError(f"{where}: {detail}")
        # "Invalid server response" (a proxy's HTML page) and the like: the peer may recover.
        return TransientError(f"{where}: {detail}")

    async def aclose(self) -> None:
        try:
            await self._bot.shutdown()
        except TelegramError as exc:
            logger.warning("telegram %s: shutdown failed: %s", self.name, self._clean(exc))
