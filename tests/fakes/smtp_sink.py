"""An SMTP sink on 127.0.0.1: aiosmtpd's real server in its own thread, on a free port.

Records each delivered message (envelope sender, accepted recipients, raw bytes, parsed
EmailMessage). Scriptable: `fail_data(n)` answers the next n DATA commands with 451,
`refuse(*addresses)` answers RCPT TO for those addresses with 550 (`refuse(..., code=450)`: a
greylisting 450 instead); `REFUSALS` holds the exact replies. `SmtpSink(credentials=(user,
password))` advertises AUTH PLAIN/LOGIN over plain text (a loopback test, not a deployment) and
answers 535 to wrong credentials. Fixture: `smtp_sink`.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

__all__ = ["REFUSALS", "Delivered", "SmtpSink", "smtp_sink"]

#: The RCPT TO reply for a refused address, by code; `{address}` is filled in.
REFUSALS = {
    550: "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
    450: "450 4.2.0 <{address}>: Recipient address rejected: Greylisted, try again later",
}


@dataclass(frozen=True)
class Delivered:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        with self.sink._lock:
            code = self.sink._refused.get(address.lower())
        if code is not None:
            return REFUSALS[code].format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        with self.sink._lock:
            if self.sink._data_failures > 0:
                self.sink._data_failures -= 1
                return "451 4.3.0 Temporary local problem, try again later"
            raw = envelope.original_content or b""
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.sink._delivered.append(
                Delivered(envelope.mail_from or "", tuple(envelope.rcpt_tos), raw, parsed)
            )
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """Binds port 0 itself: aiosmtpd's Controller needs a port number before it starts."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        super().__init__(handler, hostname="127.0.0.1", port=port, **kwargs)

    def _create_server(self) -> Any:
        # The server takes the socket over and closes it when it stops.
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=None)


class SmtpSink:
    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._delivered: list[Delivered] = []
        self._refused: dict[str, int] = {}
        self._data_failures = 0
        self.credentials = credentials
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = _Controller(_Handler(self), **kwargs)
        self.host = "127.0.0.1"
        self.port: int = self._controller.port

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.credentials == (
            data.login.decode(),
            data.password.decode(),
        )
        # handled=False: aiosmtpd then answers 535 itself (True means we already replied).
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail_data(self, times: int = 1) -> None:
        """Answer the next `times` DATA commands with 451 (a transient failure)."""
        with self._lock:
            self._data_failures += times

    def refuse(self, *addresses: str, code: int = 550) -> None:
        """Answer RCPT TO for these addresses with `code`: 550 (permanent) or 450 (greylisting)."""
        if code not in REFUSALS:
            raise ValueError(f"no refusal scripted for {code}")
        with self._lock:
            self._refused.update((a.lower(), code) for a in addresses)

    @property
    def messages(self) -> list[Delivered]:
        with self._lock:
            return list(self._delivered)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink
