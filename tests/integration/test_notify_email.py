"""EmailNotifier against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest

from monitor.core.errors import PermanentError, TransientError
from monitor.core.render import AlertView
from monitor.edges.notify import Notifier
from monitor.edges.notify.email import EmailNotifier
from tests.fakes.alerts import HOSTILE, sample_alert
from tests.fakes.smtp_sink import SmtpSink

DESK = "desk@example.org"


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
    message_id = await notifier.send(alert())

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
    assert message_id is not None and message_id.endswith("@example.org>")
    assert message["Message-ID"] == message_id
    assert message["Date"] is not None
    assert notifier.last_refused == {}


async def test_injected_header_never_appears(smtp_sink: SmtpSink) -> None:
    title = "Taiwan\r\nBcc: victim@evil.example\r\nX-Injected: yes\n\nfake body"
    await notifier_for(smtp_sink).send(alert(title=title))

    [got] = smtp_sink.messages
    head = got.raw.split(b"\r\n\r\n", 1)[0]
    assert not re.search(rb"(?im)^(bcc|x-injected):", head)
    assert got.message["Bcc"] is None and got.message["X-Injected"] is None
    assert got.rcpt_tos == (DESK,)
    assert "\n" not in got.message["Subject"]
    assert "Bcc: victim@evil.example X-Injected: yes fake body" in got.message["Subject"]


async def test_451_is_transient_and_the_retry_delivers_once(smtp_sink: SmtpSink) -> None:
    smtp_sink.fail_data(1)
    notifier = notifier_for(smtp_sink)
    with pytest.raises(TransientError, match="451"):
        await notifier.send(alert())
    assert smtp_sink.messages == []

    await notifier.send(alert())
    assert len(smtp_sink.messages) == 1


async def test_partial_refusal_delivers_to_the_rest(
    smtp_sink: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    smtp_sink.refuse("gone@example.org")
    to = ("a@example.org", "gone@example.org", "b@example.org")
    notifier = notifier_for(smtp_sink, to=to)

    message_id = await notifier.send(alert())

    [got] = smtp_sink.messages
    assert got.rcpt_tos == ("a@example.org", "b@example.org")
    assert message_id == got.message["Message-ID"]
    assert set(notifier.last_refused) == {"gone@example.org"}
    assert notifier.last_refused["gone@example.org"][0] == 550
    assert "gone@example.org" in caplog.text


async def test_all_refused_is_permanent_with_codes(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse("x@example.org", "y@example.org")
    notifier = notifier_for(smtp_sink, to=("x@example.org", "y@example.org"))
    with pytest.raises(PermanentError) as caught:
        await notifier.send(alert())
    assert "x@example.org (550)" in str(caught.value)
    assert "y@example.org (550)" in str(caught.value)
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
