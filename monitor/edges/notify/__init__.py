"""Notifiers: deliver one rendered alert to one destination, and say how a failure looks.

Contract: a notifier has a `name` (the destination's name in monitor.yaml), `send(view)` that
delivers one `AlertView` and returns an external id (a Telegram message id, an email Message-ID)
or None, and `aclose()` that releases its connections. A failed send raises
`monitor.core.errors.TransientError` (the same alert may go through later; `retry_after` is set
when the peer named a delay) or `PermanentError` (resending as is cannot help). Notifiers only
classify; retrying, backing off and giving up are the pipeline's decisions.

The implementations live in `telegram`, `email` and `console`, imported by whoever builds them,
so that importing the protocol does not import python-telegram-bot.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from monitor.core.render import AlertView

__all__ = ["Notifier"]


@runtime_checkable
class Notifier(Protocol):
    name: str

    async def send(self, view: AlertView) -> str | None: ...

    async def aclose(self) -> None: ...
