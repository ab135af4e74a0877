"""Email notifier: one alert or digest, one multipart/alternative message (text + escaped HTML).

Contract: implements `monitor.edges.notify.Notifier`. `EmailNotifier.send` renders an alert
(`render_email`) or a digest / flood-control summary (`render_digest_email`), builds the message
with `email.policy.SMTP` (CRLF line ends, RFC 2047 encoded words for non-ASCII headers), sends it
with smtplib in a worker thread and returns a `Receipt` with its Message-ID. An email is one
part: when `done` is not empty an earlier attempt already delivered it, and nothing is sent
again. `update` returns False: a delivered email cannot be edited, and sending it again would
be a second message, not an update. Only `header_text` output and the configured From/To reach
the headers, so feed text cannot add a header (RFC 5322 §2.2: a field ends at CRLF, and none
survives, nor an RFC 2047 encoded word that would decode to one).

Failures are classified by what the server said (RFC 5321 §4.2.1: 4yz is transient, 5yz is
permanent): no connection, a timeout, a dropped connection or a 4xx reply -> TransientError;
a 5xx reply, a certificate that does not verify, or a server without the STARTTLS/AUTH we were
configured to use -> PermanentError. When every recipient is refused the error carries each
recipient's code (transient if any code is 4xx, e.g. greylisting). When only some are refused
the message went to the others: that is a success, the refused ones are logged at WARNING and
returned in `Receipt.refused` ({address: "550 5.1.1 reason"}).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import logging
import smtplib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal

from monitor.core.errors import Ambiguous, MonitorError, PermanentError, Refused, TransientError
from monitor.core.render import AlertView, Outgoing, render_email, squash
from monitor.core.render_digest import render_digest_email
from monitor.edges.notify import Receipt

logger = logging.getLogger(__name__)

TlsMode = Literal["starttls", "tls", "none"]


class EmailNotifier:
    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        tls: TlsMode,
        user: str | None,
        password: str | None,
        sender: str,
        to: tuple[str, ...],
        timeout: float = 30.0,
    ) -> None:
        if tls not in ("starttls", "tls", "none"):
            raise ValueError(f"tls must be 'starttls', 'tls' or 'none', not {tls!r}")
        if not to:
            raise ValueError("an email destination needs at least one recipient")
        for address in (sender, *to):
            if any(ch in address for ch in "\r\n\x00") or "@" not in address:
                raise ValueError(f"{address!r} is not an email address")
        self.name = name
        self.host = host
        self.port = port
        self.tls: TlsMode = tls
        self.user = user
        self._password = password
        self.sender = sender
        self.to = to
        self.timeout = timeout

    def __repr__(self) -> str:  # no password in reprs or tracebacks
        return (
            f"EmailNotifier({self.name!r}, host={self.host!r}, port={self.port}, tls={self.tls!r})"
        )

    def build(self, message: Outgoing, now: datetime | None = None) -> EmailMessage:
        """The email `send` would deliver; `now` sets the Date header (default: the clock)."""
        if isinstance(message, AlertView):
            content = render_email(message)
        else:
            content = render_digest_email(message)
        built = EmailMessage(policy=email.policy.SMTP)
        # From/To were checked for CR/LF in __init__; the policy would refuse them here too.
        built["Subject"] = content.subject
        built["From"] = self.sender
        built["To"] = ", ".join(self.to)
        built["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
        # make_msgid() without a domain asks the resolver for our FQDN, which can hang.
        built["Message-ID"] = email.utils.make_msgid("monitor", domain=self._domain())
        built["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        built.set_content(content.text)
        built.add_alternative(content.html, subtype="html")
        return built

    def _domain(self) -> str:
        domain = email.utils.parseaddr(self.sender)[1].rpartition("@")[2]
        return domain if domain and all(c.isalnum() or c in ".-" for c in domain) else "localhost"

    async def send(self, message: Outgoing, done: Sequence[str] = ()) -> Receipt:
        if done:
            # One part, already delivered (its Message-ID is the part's id): sending it again
            # would be a duplicate, not a resumption.
            return Receipt(external_id=done[0])
        built = self.build(message)
        try:
            replies = await asyncio.to_thread(self._deliver, built)
        except _AfterPayload as wrapped:
            raise Ambiguous(
                f"email {self.name} via {self.host}:{self.port}: the message went out but the "
                f"server's answer did not come back ({type(wrapped.error).__name__}: "
                f"{wrapped.error}); it may have been accepted"
            ) from wrapped.error
        except (smtplib.SMTPException, OSError) as exc:
            raise self._classify(exc) from exc
        # The server's words go to logs and the outbox: one line, no control characters.
        refused = {
            addr: squash(f"{code} {reason.decode('utf-8', 'replace')}").strip()
            for addr, (code, reason) in replies.items()
        }
        if refused:
            logger.warning(
                "email %s: delivered, but the server refused %s",
                self.name,
                ", ".join(f"{addr} ({reply})" for addr, reply in refused.items()),
            )
        return Receipt(external_id=str(built["Message-ID"]), refused=refused)

    async def update(self, external_id: str, message: Outgoing) -> bool:
        # A sent email cannot be edited, and a second email is not an update.
        return False

    def _deliver(self, message: EmailMessage) -> dict[str, tuple[int, bytes]]:
        context = ssl.create_default_context() if self.tls != "none" else None
        smtp: _TrackingSMTP | _TrackingSMTPSSL
        if self.tls == "tls":
            smtp = _TrackingSMTPSSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = _TrackingSMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.tls == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self._password or "")
            try:
                replies = smtp.send_message(message, from_addr=self.sender,
                                            to_addrs=list(self.to))  # fmt: skip
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                # RFC 5321 §4.1.1.4: the message is the server's once it has answered the
                # final ".". Lost before that answer, we cannot know whether it was taken.
                if smtp.payload_sent:
                    raise _AfterPayload(exc) from exc
                raise
            # Accepted. A QUIT that fails now (a 421, a dropped line) changes nothing: the
            # message is delivered, and retrying it would send it twice.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            return replies
        finally:
            smtp.close()

    def _classify(self, exc: smtplib.SMTPException | OSError) -> MonitorError:
        where = f"email {self.name} via {self.host}:{self.port}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = {addr: code for addr, (code, _) in exc.recipients.items()}
            detail = ", ".join(f"{addr} ({code})" for addr, code in codes.items())
            if any(400 <= code < 500 for code in codes.values()):
                return TransientError(f"{where}: every recipient refused, some for now: {detail}")
            # Every recipient for good: every alert would meet the same refusal.
            return Refused(f"{where}: every recipient refused: {detail}")
        if isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPSenderRefused) and (
            exc.smtp_code >= 500
        ):
            # Bad credentials or a sender the server will not relay for: the destination's
            # set-up, not this message, is wrong; it pauses and the operator is told.
            said = exc.smtp_error
            text = said.decode("utf-8", "replace") if isinstance(said, bytes) else said
            return Refused(f"{where}: {exc.smtp_code} {text}")
        if isinstance(exc, smtplib.SMTPResponseException):
            said = exc.smtp_error
            text = said.decode("utf-8", "replace") if isinstance(said, bytes) else said
            reply = f"{exc.smtp_code} {text}"
            if 400 <= exc.smtp_code < 500:
                return TransientError(f"{where}: {reply}")
            return PermanentError(f"{where}: {reply}")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return TransientError(f"{where}: connection lost: {exc}")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return Refused(f"{where}: {exc} (check MONITOR_SMTP_TLS and the credentials)")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return Refused(f"{where}: TLS certificate not trusted: {exc.verify_message}")
        if isinstance(exc, smtplib.SMTPException):
            # What is left: "No suitable authentication method found" and the like.
            return PermanentError(f"{where}: {exc}")
        # Refused, unreachable, timed out, TLS handshake cut short.
        return TransientError(f"{where}: {type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        # One connection per message: a digest hour sends a few, and an idle SMTP session
        # would be dropped by the server long before the next alert anyway.
        return None


class _AfterPayload(Exception):
    """The connection failed after the message's final "." went out (see `_deliver`)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _PayloadTracking:
    """Notes when the end of the message data (CRLF.CRLF, RFC 5321 §4.1.1.4) was written."""

    payload_sent = False

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.payload_sent = True


class _TrackingSMTP(_PayloadTracking, smtplib.SMTP):
    pass


class _TrackingSMTPSSL(_PayloadTracking, smtplib.SMTP_SSL):
    pass
