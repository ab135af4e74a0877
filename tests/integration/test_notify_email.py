"""EmailNotifier against a real SMTP server (aiosmtpd) on 127.0.0.1: alerts and digests arrive
as text + escaped HTML, feed text never adds a header, SMTP replies are classified."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from monitor.core.errors import Ambiguous, PermanentError, Refused, TransientError
from monitor.core.model import Priority, WatchlistMatch
from monitor.core.render import AlertView, Digest, render_email
from monitor.edges.notify import Notifier, Receipt
from monitor.edges.notify.email import EmailNotifier
from tests.fakes.alerts import HOSTILE, sample_alert
from tests.fakes.smtp_sink import REFUSALS, SmtpSink

DESK = "desk@example.org"
#: Every header an email from us carries: nothing more may ever arrive.
HEADERS = {
    "subject", "from", "to", "date", "message-id", "auto-submitted", "mime-version",
    "content-type",
}  # fmt: skip


def alert(title: str = f"{HOSTILE} Тайвань Taiwan") -> AlertView:
    return sample_alert(title, "Example News")


def notifier_for(sink: SmtpSink, **overrides: Any) -> EmailNotifier:
    settings: dict[str, Any] = {
        "host": sink.host,
        "port": sink.port,
        "tls": "none",
        "user": None,
        "password": None,
        "sender": "Monitor <monitor@example.org>",
        "to": (DESK,),
        "timeout": 5.0,
    }
    settings.update(overrides)
    return EmailNotifier("mail", **settings)


def parts(message: EmailMessage) -> dict[str, str]:
    return {part.get_content_type(): part.get_content() for part in message.iter_parts()}


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    yield port


async def test_alert_arrives_as_text_and_escaped_html(smtp_sink: SmtpSink) -> None:
    notifier = notifier_for(smtp_sink)
    assert isinstance(notifier, Notifier)
    receipt = await notifier.send(alert())

    [got] = smtp_sink.messages
    assert got.rcpt_tos == (DESK,)
    assert got.mail_from == "monitor@example.org"
    message = got.message
    assert message.get_content_type() == "multipart/alternative"
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}
    assert f"{HOSTILE} Тайвань Taiwan" in body["text/plain"]
    assert "«Taiwan»" in body["text/plain"]
    assert "&lt;script&gt;" in body["text/html"] and "<script" not in body["text/html"]
    assert '<a href="https://example.org/story?a=1&amp;b=2">' in body["text/html"]
    assert message["Subject"] == f"[HIGH] Taiwan: {HOSTILE} Тайвань Taiwan"
    assert message["From"] == "Monitor <monitor@example.org>"
    assert message["To"] == DESK
    assert receipt.external_id is not None and receipt.external_id.endswith("@example.org>")
    assert message["Message-ID"] == receipt.external_id
    assert message["Date"] is not None
    assert receipt.refused == {}
    assert {k.lower() for k in message} == HEADERS


@pytest.mark.parametrize(
    "title",
    [
        "Hello\r\nBcc: evil@example.org",
        "Taiwan\r\nBcc: victim@evil.example\r\nX-Injected: yes\n\nfake body",
        "Hello\rBcc: evil@example.org",
        "Hello\nBcc: evil@example.org",
        "Hello\u2028Bcc: evil@example.org",
        "Hello\u2029Bcc: evil@example.org",
        "Hello\x85Bcc: evil@example.org",
        "Hello\x00\x0bBcc: evil@example.org",
        # RFC 2047 encoded words hiding CR LF: Python's email package decodes a header value
        # assigned as a string, and would write the CR LF out.
        "=?utf-8?q?Hello=0D=0ABcc:_evil@example.org?=",
        "News =?utf-8?Q?Hello=0D=0ABcc=3A_evil=40example=2Eorg?= today",
        "=?utf-8?b?SGVsbG8NCkJjYzogZXZpbEBleGFtcGxlLm9yZw==?=",
        "=?iso-8859-1?q?Hello=0ABcc:_evil@example.org?=x",
    ],
    ids=[
        "crlf", "crlf-body", "cr", "lf", "u2028", "u2029", "nel", "nul-vt", "ew-q", "ew-q-mid",
        "ew-b", "ew-latin1",
    ],
)  # fmt: skip
async def test_feed_text_never_adds_a_header(smtp_sink: SmtpSink, title: str) -> None:
    await notifier_for(smtp_sink).send(alert(title=title))

    [got] = smtp_sink.messages
    assert {k.lower() for k in got.message} == HEADERS
    assert len(got.message.get_all("Subject") or []) == 1
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^(bcc|x-injected):", head)
    assert got.rcpt_tos == (DESK,)
    subject = str(got.message["Subject"])
    assert subject.isprintable(), repr(subject)  # decoded: no CR, LF or other control
    # What arrives is what was rendered, on one line: nothing was decoded on the way. (strip:
    # the email package folds a long first word onto a continuation line, read back as a space.)
    assert subject.strip() == render_email(alert(title=title)).subject


async def test_451_is_transient_and_the_retry_delivers_once(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_data(1)
    notifier = notifier_for(smtp_sink)
    with pytest.raises(TransientError, match="451"):
        await notifier.send(alert())
    assert smtp_sink.messages == []

    receipt = await notifier.send(alert())
    [got] = smtp_sink.messages
    assert receipt.external_id == got.message["Message-ID"]


async def test_partial_refusal_delivers_to_the_rest(
    smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_sink.refuse("gone@example.org")
    to = ("a@example.org", "gone@example.org", "b@example.org")
    notifier = notifier_for(smtp_sink, to=to)

    receipt = await notifier.send(alert())

    [got] = smtp_sink.messages
    assert got.rcpt_tos == ("a@example.org", "b@example.org")
    assert receipt.external_id == got.message["Message-ID"]
    assert receipt.refused == {"gone@example.org": REFUSALS[550].format(address="gone@example.org")}
    assert receipt.refused["gone@example.org"].startswith("550 5.1.1 ")
    assert "gone@example.org" in caplog.text


async def test_all_refused_is_permanent_with_codes(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse("x@example.org", "y@example.org")
    notifier = notifier_for(smtp_sink, to=("x@example.org", "y@example.org"))
    with pytest.raises(PermanentError) as caught:
        await notifier.send(alert())
    assert "x@example.org (550)" in str(caught.value)
    assert "y@example.org (550)" in str(caught.value)
    assert smtp_sink.messages == []


async def test_all_refused_with_a_4xx_is_transient(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse("x@example.org")
    smtp_sink.refuse("y@example.org", code=450)  # greylisted: may work later
    notifier = notifier_for(smtp_sink, to=("x@example.org", "y@example.org"))
    with pytest.raises(TransientError) as caught:
        await notifier.send(alert())
    assert "y@example.org (450)" in str(caught.value)
    assert smtp_sink.messages == []


async def test_server_down_is_transient(closed_port: int) -> None:
    notifier = EmailNotifier(
        "mail",
        host="127.0.0.1",
        port=closed_port,
        tls="none",
        user=None,
        password=None,
        sender="monitor@example.org",
        to=(DESK,),
    )
    with pytest.raises(TransientError, match="ConnectionRefused"):
        await notifier.send(alert())


async def test_silent_server_times_out_as_transient() -> None:
    # A listening socket that never accepts: the TCP handshake completes, no greeting comes.
    with socket.create_server(("127.0.0.1", 0)) as mute:
        notifier = EmailNotifier(
            "mail",
            host="127.0.0.1",
            port=mute.getsockname()[1],
            tls="none",
            user=None,
            password=None,
            sender="monitor@example.org",
            to=(DESK,),
            timeout=0.3,
        )
        with pytest.raises(TransientError, match=r"[Tt]imeout|timed out"):
            await notifier.send(alert())


async def test_starttls_required_but_not_offered_is_permanent(smtp_sink: SmtpSink) -> None:
    with pytest.raises(PermanentError, match="STARTTLS"):
        await notifier_for(smtp_sink, tls="starttls").send(alert())
    assert smtp_sink.messages == []


async def test_login_when_user_is_set() -> None:
    with SmtpSink(credentials=("alice", "s3cret")) as sink:
        await notifier_for(sink, user="alice", password="s3cret").send(alert())
        assert len(sink.messages) == 1

        wrong = notifier_for(sink, user="alice", password="nope")
        with pytest.raises(PermanentError, match="535"):
            await wrong.send(alert())
        assert "nope" not in repr(wrong)
        assert len(sink.messages) == 1


def test_a_newline_in_the_configured_addresses_is_refused_up_front(smtp_sink: SmtpSink) -> None:
    with pytest.raises(ValueError, match="not an email address"):
        notifier_for(smtp_sink, sender="monitor@example.org\r\nBcc: x@evil.example")
    with pytest.raises(ValueError, match="not an email address"):
        notifier_for(smtp_sink, to=(DESK, "a@b\nBcc: x@evil.example"))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="tls"):
        EmailNotifier(
            "mail", host="h", port=25, tls="ssl",  # type: ignore[arg-type]
            user=None, password=None, sender="a@b", to=(DESK,),
        )  # fmt: skip
    with pytest.raises(ValueError, match="recipient"):
        EmailNotifier(
            "mail", host="h", port=25, tls="none", user=None, password=None, sender="a@b", to=()
        )


# --- the rest of the protocol ----------------------------------------------------------------


async def test_a_send_already_done_is_not_repeated(smtp_sink: SmtpSink) -> None:
    notifier = notifier_for(smtp_sink)
    first = await notifier.send(alert())
    assert first.external_id is not None

    again = await notifier.send(alert(), done=(first.external_id,))

    assert again == Receipt(external_id=first.external_id)
    assert len(smtp_sink.messages) == 1


async def test_update_cannot_edit_an_email(smtp_sink: SmtpSink) -> None:
    notifier = notifier_for(smtp_sink)
    receipt = await notifier.send(alert())
    assert receipt.external_id is not None
    grown = dataclasses.replace(alert(), also=("Reuters",))
    assert await notifier.update(receipt.external_id, grown) is False
    assert len(smtp_sink.messages) == 1


async def test_other_sources_are_named(smtp_sink: SmtpSink) -> None:
    await notifier_for(smtp_sink).send(dataclasses.replace(alert(), also=("Reuters", "AP")))
    [got] = smtp_sink.messages
    body = parts(got.message)
    assert "Also reported by Reuters, AP (3 sources)" in body["text/plain"]
    assert "<p>Also reported by Reuters, AP (3 sources)</p>" in body["text/html"]


# --- digests ---------------------------------------------------------------------------------

AT = datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def on(view: AlertView, *lists: tuple[str, str, Priority], title: str) -> AlertView:
    """`view` retitled and matched to these (id, name, priority) watchlists."""
    [found] = view.matches
    matches = tuple(
        WatchlistMatch(wid, name, priority, found.terms, found.hits)
        for wid, name, priority in lists
    )
    article = dataclasses.replace(view.article, title=title, guid=title)
    return dataclasses.replace(view, article=article, matches=matches)


def digest_items() -> tuple[AlertView, ...]:
    base = alert()
    taiwan = ("taiwan", "Taiwan", Priority.high)
    ship = ("ship", "Shipping", Priority.normal)
    energy = ("energy", "Energy", Priority.critical)
    return (
        on(base, taiwan, ship, title=f"Story one {HOSTILE}"),
        on(base, ship, title="Story two"),
        on(base, energy, title="Story three"),
        on(base, taiwan, title="Story four"),
    )


def positions(text: str, needles: list[str]) -> list[int]:
    found = [text.find(n) for n in needles]
    assert -1 not in found, dict(zip(needles, found, strict=True))
    return found


async def test_digest_is_text_and_html_grouped_by_watchlist(smtp_sink: SmtpSink) -> None:
    digest = Digest("digest", digest_items(), AT)
    receipt = await notifier_for(smtp_sink).send(digest)

    [got] = smtp_sink.messages
    message = got.message
    assert receipt.external_id == message["Message-ID"] and receipt.refused == {}
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "[monitor] Digest: 4 stories in 3 watchlists"
    assert {k.lower() for k in message} == HEADERS
    body = parts(message)
    assert set(body) == {"text/plain", "text/html"}

    # Both parts: the watchlists most urgent first, every story under each list it matched.
    html, text = body["text/html"], body["text/plain"]
    escaped_one = "Story one A &amp; B &lt;script&gt;"
    for part, one, heading in (
        (text, f"Story one {HOSTILE}", "== {} "),
        (html, escaped_one, "<h3>{} "),
    ):
        names = ["Energy (energy)", "Taiwan (taiwan)", "Shipping (ship)"]
        heads = positions(part, [heading.format(n) for n in names])
        assert heads == sorted(heads)
        energy, taiwan, ship = (
            part[heads[0] : heads[1]], part[heads[1] : heads[2]], part[heads[2] :],
        )  # fmt: skip
        assert re.findall(r"Story \w+", energy) == ["Story three"]
        assert re.findall(r"Story \w+", taiwan) == ["Story one", "Story four"]
        assert re.findall(r"Story \w+", ship) == ["Story one", "Story two"]
        assert one in taiwan and one in ship
    assert "<script" not in html
    assert html.count('<a href="https://example.org/story?a=1&amp;b=2">') == 5


async def test_flood_control_summary_email(smtp_sink: SmtpSink) -> None:
    digest = Digest("summary", digest_items(), AT)
    await notifier_for(smtp_sink).send(digest)

    [got] = smtp_sink.messages
    assert got.message["Subject"] == "[monitor] 4 more alerts (flood control)"
    assert got.message.get_content_type() == "multipart/alternative"
    body = parts(got.message)
    for part in body.values():
        assert "flood control collapsed them into this summary" in part
        stories = positions(part, ["Story three", "Story one", "Story four", "Story two"])
        assert stories == sorted(stories)  # most urgent first
    assert "<script" not in body["text/html"]


class _Scripted:
    """A minimal SMTP server on 127.0.0.1 that accepts one message and then misbehaves:
    `after_data` is "quit-421" (the message is accepted, QUIT answered 421) or "silent" (the
    final "." is never answered). `accepted` counts messages whose data fully arrived."""

    def __init__(self, after_data: str) -> None:
        self.after_data = after_data
        self.accepted = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 scripted ESMTP\r\n")
            for raw in lines:
                verb = raw.split(b" ", 1)[0].strip().upper()
                if verb in (b"EHLO", b"HELO"):
                    conn.sendall(b"250 scripted\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    conn.sendall(b"250 ok\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    for body in lines:
                        if body == b".\r\n":
                            break
                    self.accepted += 1
                    if self.after_data == "silent":
                        lines.read()  # never answer: wait for the client to hang up
                        return
                    conn.sendall(b"250 queued as 1\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"421 going down\r\n")
                    return

    def close(self) -> None:
        self.server.close()
        self.thread.join(timeout=5)


def _to(server: _Scripted) -> EmailNotifier:
    return EmailNotifier("mail", host="127.0.0.1", port=server.port, tls="none", user=None,
                         password=None, sender="monitor@example.org", to=(DESK,),
                         timeout=0.5)  # fmt: skip


async def test_a_failed_quit_after_the_message_was_accepted_is_a_success() -> None:
    server = _Scripted("quit-421")
    try:
        receipt = await _to(server).send(alert())
    finally:
        server.close()
    assert receipt.external_id and server.accepted == 1  # delivered, and not to be resent


async def test_no_answer_to_the_final_dot_is_ambiguous() -> None:
    server = _Scripted("silent")
    try:
        with pytest.raises(Ambiguous, match="may have been accepted"):
            await _to(server).send(alert())
    finally:
        server.close()
    assert server.accepted == 1  # it did arrive: a retry would be a duplicate


async def test_bad_credentials_pause_the_destination(smtp_sink: SmtpSink) -> None:
    # The sink offers no AUTH: logging in fails the same way for every alert.
    with pytest.raises(Refused):
        await notifier_for(smtp_sink, user="desk", password="wrong").send(alert())
