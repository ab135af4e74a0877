"""TelegramNotifier against the fake Bot API, through PTB's real HTTP client."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import telegram

from monitor.core.errors import PermanentError, TransientError
from monitor.core.render import AlertView
from monitor.core.render_telegram import render_telegram_html
from monitor.edges.notify import Notifier
from monitor.edges.notify.telegram import TelegramNotifier, make_bot
from tests.fakes.alerts import HOSTILE, sample_alert
from tests.fakes.bot_api import Canned, FakeBotApi

CHAT = 1234


def alert(title: str = f"{HOSTILE} Taiwan") -> AlertView:
    return sample_alert(title, f"Source {HOSTILE}")


@pytest.fixture
async def notifier(bot_api: FakeBotApi) -> AsyncIterator[TelegramNotifier]:
    made = TelegramNotifier("desk", make_bot(bot_api.token, bot_api.root_url, timeout=5.0), CHAT)
    yield made
    await made.aclose()


async def test_alert_arrives_as_valid_escaped_html(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    assert isinstance(notifier, Notifier)
    message_id = await notifier.send(alert())

    [sent] = bot_api.messages()
    assert message_id == str(sent.message_id)
    assert sent.chat_id == CHAT
    assert sent.parse_mode == "HTML"
    assert sent.text == render_telegram_html(alert())
    assert "&lt;script&gt;" in sent.text and "<script" not in sent.text
    # The fake parsed it as Telegram would: the reader sees the feed's text, once decoded.
    assert f"{HOSTILE} Taiwan" in sent.visible
    assert f"Source {HOSTILE}" in sent.visible
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert {c.token for c in bot_api.calls} == {bot_api.token}
    assert [c.method for c in bot_api.calls] == ["getMe", "sendMessage"]


async def test_bot_is_initialised_once(notifier: TelegramNotifier, bot_api: FakeBotApi) -> None:
    await notifier.send(alert())
    await notifier.send(alert())
    assert [c.method for c in bot_api.calls] == ["getMe", "sendMessage", "sendMessage"]


async def test_api_url_with_trailing_slash(bot_api: FakeBotApi) -> None:
    notifier = TelegramNotifier("desk", make_bot(bot_api.token, bot_api.root_url + "/"), CHAT)
    try:
        await notifier.send(alert())
    finally:
        await notifier.aclose()
    assert len(bot_api.messages()) == 1


async def test_flood_control_is_transient_with_retry_after(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    bot_api.script("sendMessage", Canned.flood(7), times=2)
    for _ in range(2):
        with pytest.raises(TransientError) as caught:
            await notifier.send(alert())
        assert caught.value.retry_after == 7
    assert bot_api.messages() == []
    await notifier.send(alert())
    assert len(bot_api.messages()) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Canned.bad_request("Bad Request: chat not found"),
        Canned.forbidden("Forbidden: bot was blocked by the user"),
        Canned.forbidden("Forbidden: bot is not a member of the channel chat"),
        Canned.error(401, "Unauthorized"),
    ],
    ids=["400", "403-blocked", "403-not-member", "401"],
)
async def test_refusals_are_permanent(
    notifier: TelegramNotifier, bot_api: FakeBotApi, reply: Canned
) -> None:
    bot_api.script("sendMessage", reply)
    with pytest.raises(PermanentError):
        await notifier.send(alert())
    assert bot_api.messages() == []
    assert len(bot_api.calls_to("sendMessage")) == 1


@pytest.mark.parametrize(
    "reply",
    [Canned.bad_gateway(), Canned.not_json(), Canned.error(500, "Internal Server Error")],
    ids=["502-html", "200-not-json", "500"],
)
async def test_server_trouble_is_transient(
    notifier: TelegramNotifier, bot_api: FakeBotApi, reply: Canned
) -> None:
    bot_api.script("sendMessage", reply)
    with pytest.raises(TransientError):
        await notifier.send(alert())


async def test_unparsable_html_falls_back_to_plain_text_once(
    notifier: TelegramNotifier, bot_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    bot_api.script(
        "sendMessage",
        Canned.bad_request('Bad Request: can\'t parse entities: Unsupported start tag "x"'),
    )
    message_id = await notifier.send(alert())

    [sent] = bot_api.messages()
    assert message_id == str(sent.message_id)
    assert sent.parse_mode is None
    assert f"{HOSTILE} Taiwan" in sent.text  # plain text: nothing to escape
    assert "«Taiwan»" in sent.text
    assert [c.params.get("parse_mode") for c in bot_api.calls_to("sendMessage")] == ["HTML", None]
    assert "plain text" in caplog.text


async def test_fake_rejects_what_telegram_rejects(bot_api: FakeBotApi) -> None:
    """The fake is strict, so an accepted alert above proves the HTML is valid for Telegram."""
    # PTB only closes its HTTP client on shutdown() after an initialize(): `async with` does both.
    async with make_bot(bot_api.token, bot_api.root_url) as bot:
        await _send_samples(bot)
    assert [m.visible for m in bot_api.messages()] == ["😀" * 2048, "ok <&> ' ' \""]


async def _send_samples(bot: telegram.Bot) -> None:
    for bad in ["<script>x</script>", "<b>open", "a < b", "a & b", "&nbsp;", "<b><i>x</b></i>"]:
        with pytest.raises(telegram.error.BadRequest, match=r"(?i)can.t parse entities"):
            await bot.send_message(CHAT, bad, parse_mode="HTML")
    with pytest.raises(telegram.error.BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "😀" * 2049)
    await bot.send_message(CHAT, "😀" * 2048)
    await bot.send_message(CHAT, "<b>ok</b> &lt;&amp;&gt; &#x27; &#39; &quot;", parse_mode="HTML")


async def test_migrated_chat_is_followed_and_remembered(
    notifier: TelegramNotifier, bot_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    bot_api.migrate_chat(CHAT, -1001234)
    await notifier.send(alert())
    await notifier.send(alert())

    assert [m.chat_id for m in bot_api.messages()] == [-1001234, -1001234]
    assert [c.params["chat_id"] for c in bot_api.calls_to("sendMessage")] == [
        CHAT,
        -1001234,
        -1001234,
    ]
    assert notifier.chat_id == -1001234
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "-1001234" in warning.getMessage() and "monitor.yaml" in warning.getMessage()


async def test_a_second_migration_is_permanent(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    bot_api.script("sendMessage", Canned.migrated(-1001), Canned.migrated(-1002))
    with pytest.raises(PermanentError):
        await notifier.send(alert())


async def test_timeout_is_transient_and_warns_of_duplicates(bot_api: FakeBotApi) -> None:
    notifier = TelegramNotifier(
        "desk", make_bot(bot_api.token, bot_api.root_url, timeout=0.3), CHAT
    )
    bot_api.script("sendMessage", Canned.stall(30))
    try:
        with pytest.raises(TransientError, match="duplicate"):
            await notifier.send(alert())
    finally:
        await notifier.aclose()


async def test_unreachable_api_is_transient(bot_api: FakeBotApi) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = TelegramNotifier("desk", make_bot(bot_api.token, f"http://127.0.0.1:{port}"), CHAT)
    try:
        with pytest.raises(TransientError):
            await notifier.send(alert())
    finally:
        await notifier.aclose()


async def test_get_me_failure_is_transient_and_retried(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    bot_api.script("getMe", Canned.bad_gateway())
    with pytest.raises(TransientError):
        await notifier.send(alert())
    await notifier.send(alert())
    assert [c.method for c in bot_api.calls] == ["getMe", "getMe", "sendMessage"]


async def test_the_token_never_reaches_the_logs_or_errors(
    bot_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("", "httpx", "telegram.Bot", "monitor"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    errors: list[str] = []

    notifier = TelegramNotifier("desk", make_bot(bot_api.token, bot_api.root_url), CHAT)
    try:
        await notifier.send(alert())
        for reply in (Canned.flood(3), Canned.bad_request(), Canned.forbidden()):
            bot_api.script("sendMessage", reply)
            with pytest.raises((TransientError, PermanentError)) as caught:
                await notifier.send(alert())
            errors.append(repr(caught.value))
    finally:
        await notifier.aclose()

    wrong = "987654321:AAwrong-token_for-tests_0123456789abcd"
    stranger = TelegramNotifier("desk", make_bot(wrong, bot_api.root_url), CHAT)
    try:
        with pytest.raises(PermanentError) as caught:
            await stranger.send(alert())
        errors.append(repr(caught.value))
        # PTB's InvalidToken message names the token: it is not chained into tracebacks.
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    finally:
        await stranger.aclose()

    assert "/bot<token>/sendMessage" in caplog.text  # httpx did log its URLs, redacted
    for secret in (bot_api.token, wrong):
        assert secret not in caplog.text
        assert all(secret not in e for e in errors)
        assert all(secret not in str(r.args) for r in caplog.records)


# --- the fake's other routes (for the bot's command handling elsewhere) --------------------------


async def test_fake_serves_updates_edits_and_commands(bot_api: FakeBotApi) -> None:
    async with make_bot(bot_api.token, bot_api.root_url) as bot:
        assert await bot.delete_webhook() is True
        await bot.set_my_commands([("status", "Show the feeds")])
        assert bot_api.commands == [{"command": "status", "description": "Show the feeds"}]

        first = bot_api.push_text(CHAT, "/status")
        [update] = await bot.get_updates(timeout=0)
        assert update.update_id == first and update.message is not None
        assert update.message.text == "/status"
        # Confirming with offset drops it; the long poll then waits its full timeout, empty.
        assert await bot.get_updates(offset=first + 1, timeout=1) == ()

        sent = await bot.send_message(CHAT, "<b>v1</b>", parse_mode="HTML")
        await bot.edit_message_text("<i>v2</i>", CHAT, sent.message_id, parse_mode="HTML")
        with pytest.raises(telegram.error.BadRequest, match="not modified"):
            await bot.edit_message_text("<i>v2</i>", CHAT, sent.message_id, parse_mode="HTML")
        assert await bot.answer_callback_query("cb-1") is True

    [message] = bot_api.messages()
    assert (message.text, message.visible, message.edits) == ("<i>v2</i>", "v2", 1)


async def test_fake_reads_json_and_multipart_bodies(bot_api: FakeBotApi) -> None:
    url = f"{bot_api.root_url}/bot{bot_api.token}/sendMessage"
    async with httpx.AsyncClient() as client:
        as_json = await client.post(url, json={"chat_id": -100, "text": "json"})
        multipart = await client.post(
            url, data={"chat_id": "@channel", "text": "123"}, files={"doc": ("a.txt", b"x")}
        )
        unknown = await client.post(f"{bot_api.root_url}/botWRONG/getMe")
    assert as_json.json()["ok"] and multipart.json()["ok"]
    assert unknown.status_code == 401 and unknown.json()["description"] == "Unauthorized"
    assert [(m.chat_id, m.text) for m in bot_api.messages()] == [
        (-100, "json"),
        ("@channel", "123"),
    ]
