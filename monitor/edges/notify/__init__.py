"""Notifiers: deliver one rendered message to one destination, and say how a failure looks.

Contract: a notifier has a `name` (the destination's name in monitor.yaml) and

- `send(message, done=())` delivers an `Outgoing` (one alert, or a digest / burst summary that
  lists several) and returns a `Receipt`: the external id (Telegram `chat:msgid[,msgid…]` for
  each part, an email Message-ID) and the recipients that refused it (SMTP per-recipient
  replies). `done` lists the parts an earlier, interrupted attempt already delivered (from
  the error's `sent`), so a resumed multi-part send does not repeat them.
- `update(external_id, message)` rewrites an alert already delivered (a story gained sources:
  Telegram edits its message in place); notifiers that cannot edit do nothing and return False.
- `aclose()` releases its connections.

A failed send raises `monitor.core.errors.TransientError` (the same message may go through
later; `retry_after` is set when the peer named a delay) or `PermanentError` (resending as is
cannot help); either carries in `sent` the parts that did arrive. A timeout after the request
went out is `Ambiguous` (a TransientError): it may have been delivered. Notifiers only
classify; retrying, backing off and giving up are the pipeline's decisions.

The implementations live in `telegram`, `email` and `console`, imported by whoever builds them,
so that importing the protocol does not import python-telegram-bot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from monitor.core.render import Outgoing

__all__ = ["Notifier", "Receipt"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a successful send leaves behind."""

    external_id: str | None = None
    #: Recipients that did not get the message, with the server's reply (e.g. "550 no such user").
    refused: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Notifier(Protocol):
    name: str

    async def send(self, message: Outgoing, done: Sequence[str] = ()) -> Receipt: ...

    async def update(self, external_id: str, message: Outgoing) -> bool: ...

    async def aclose(self) -> None: ...
