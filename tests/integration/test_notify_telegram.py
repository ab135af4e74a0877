"""TelegramNotifier against the fake Bot API, through PTB's real HTTP client."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import httpx
import pytest
import telegram

from monitor.core.errors import Ambiguous, PermanentError, Refused, TransientError
from monitor.core.model import Hit, Priority, WatchlistMatch
from monitor.core.pace import TELEGRAM_LIMITS, Pacer
from monitor.core.render import AlertView, Digest
from monitor.core.render_telegram import render_telegram_html
from monitor.core.telegram_parts import split_html
from monitor.edges.notify import Notifier, Receipt
from monitor.edges.notify.gate import TelegramGate
from monitor.edges.notify.telegram import TelegramNotifier, make_bot
from tests.fakes.alerts import HOSTILE, sample_alert
from tests.fakes.bot_api import Canned, FakeBotApi, unaccepting_url
from tests.fakes.telegram_html import parse_html

CHAT = 1234


def alert(title: str = f"{HOSTILE} Taiwan") -> AlertView:
    return sample_alert(title, f"Source {HOSTILE}")


def long_alert(watchlists: int = 40, **changes: object) -> AlertView:
    """An alert on many watchlists: its HTML runs past 5,000 characters."""
    base = alert()
    start = base.article.summary.index("Taiwan")
    matches = tuple(
        WatchlistMatch(
            f"list-{i}",
            f"Watchlist {i} <&>",
            Priority.high if i == 3 else Priority.normal,
            ("Taiwan", f"term {i}"),
            (Hit("Taiwan", "summary", start, start + 6),),
        )
        for i in range(watchlists)
    )
    view = replace(base, matches=matches, **changes)  # type: ignore[arg-type]
    assert len(render_telegram_html(view)) > 5000
    return view


def fast_gate() -> TelegramGate:
    """A gate whose windows are a thousandth of Telegram's: these tests are not about pacing
    (the fake does not enforce limits unless asked), so they need not wait for it."""
    return TelegramGate(Pacer(TELEGRAM_LIMITS.scaled(0.001), margin=0.0))


def squeezed(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
async def notifier(bot_api: FakeBotApi) -> AsyncIterator[TelegramNotifier]:
    bot = make_bot(bot_api.token, bot_api.root_url, timeout=5.0)
    made = TelegramNotifier("desk", bot, CHAT, gate=fast_gate())
    yield made
    await made.aclose()


async def test_alert_arrives_as_valid_escaped_html(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    assert isinstance(notifier, Notifier)
    receipt = await notifier.send(alert())

    [sent] = bot_api.messages()
    assert receipt == Receipt(external_id=f"{CHAT}:{sent.message_id}")
    assert sent.chat_id == CHAT
    assert sent.parse_mode == "HTML"
    assert sent.text == render_telegram_html(alert())
    assert "&lt;script&gt;" in sent.text and "<script" not in sent.text
    # The fake parsed it as Telegram would: the reader sees the feed's text, once decoded.
    assert f"{HOSTILE} Taiwan" in sent.visible
    assert f"Source {HOSTILE}" in sent.visible
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert "reply_markup" not in sent.params  # not from the outbox: no buttons
    assert {c.token for c in bot_api.calls} == {bot_api.token}
    assert [c.method for c in bot_api.calls] == ["getMe", "sendMessage"]


async def test_a_hostile_title_reads_back_verbatim(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    title = "A & B <script>alert(1)</script>"
    await notifier.send(alert(title))
    [sent] = bot_api.messages()
    assert sent.visible.splitlines()[0] == f"HIGH {title}"
    assert "<script>" not in sent.text


async def test_a_long_alert_arrives_as_ordered_valid_parts(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    view = long_alert()
    receipt = await notifier.send(view)

    sent = bot_api.messages()
    assert len(sent) >= 2
    assert receipt.external_id == f"{CHAT}:{','.join(str(m.message_id) for m in sent)}"
    assert [m.text for m in sent] == split_html(render_telegram_html(view))
    assert all(m.parse_mode == "HTML" and m.chat_id == CHAT for m in sent)
    for message in sent:
        assert parse_html(message.text) == message.visible  # each part parses on its own
    # Together they show everything, in order.
    whole = parse_html(render_telegram_html(view))
    assert squeezed("".join(m.visible for m in sent)) == squeezed(whole)
    assert sent[0].visible.startswith(f"HIGH {HOSTILE} Taiwan")
    assert all(f"Watchlist {i} <&> (list-{i})" in whole for i in range(40))


async def test_a_failed_later_part_reports_what_arrived_and_resumes(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    view = long_alert()
    parts = split_html(render_telegram_html(view))
    assert len(parts) == 2
    bot_api.script("sendMessage", Canned(), Canned.bad_gateway())  # part 1 goes, part 2 fails
    with pytest.raises(TransientError) as caught:
        await notifier.send(view)
    [first] = bot_api.messages()
    assert caught.value.sent == (str(first.message_id),)

    receipt = await notifier.send(view, done=caught.value.sent)
    first_again, second = bot_api.messages()
    assert first_again == first  # not sent twice
    assert second.text == parts[1]
    assert receipt.external_id == f"{CHAT}:{first.message_id},{second.message_id}"
    assert len(bot_api.calls_to("sendMessage")) == 3


async def test_outbox_alerts_carry_buttons_on_their_last_part(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    await notifier.send(replace(alert(), alert_id=17, story_id=9))
    await notifier.send(long_alert(alert_id=18))

    short, *long = bot_api.messages()
    assert short.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "Mute story", "callback_data": "ms:9"},
                {"text": "Not relevant", "callback_data": "nr:17"},
            ],
            [{"text": "Snooze Taiwan 24 h", "callback_data": "sw:taiwan"}],
        ]
    }
    assert len(long) >= 2
    assert all("reply_markup" not in m.params for m in long[:-1])
    assert long[-1].params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Not relevant", "callback_data": "nr:18"}],
            [{"text": "Snooze Watchlist 3 <&> 24 h", "callback_data": "sw:list-3"}],
        ]
    }


async def test_a_digest_arrives(notifier: TelegramNotifier, bot_api: FakeBotApi) -> None:
    digest = Digest("digest", (alert(), long_alert()), datetime(2024, 5, 1, 13, tzinfo=UTC))
    receipt = await notifier.send(digest)
    sent = bot_api.messages()
    assert len(sent) >= 2 and receipt.external_id is not None
    assert receipt.external_id.count(",") == len(sent) - 1
    assert all("reply_markup" not in m.params for m in sent)
    assert squeezed(f"{HOSTILE} Taiwan") in squeezed("".join(m.visible for m in sent))


# --- update -----------------------------------------------------------------------------------


async def test_update_edits_the_first_message_in_place(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    view = replace(alert(), alert_id=17, story_id=9)
    receipt = await notifier.send(view)
    assert receipt.external_id is not None

    assert await notifier.update(receipt.external_id, replace(view, also=("AP", "Reuters")))
    [message] = bot_api.messages()
    assert message.edits == 1
    assert "Also reported by AP, Reuters (3 sources)" in message.visible
    [edit] = bot_api.calls_to("editMessageText")
    assert edit.params["reply_markup"] == message.params["reply_markup"]  # buttons kept
    assert edit.params["parse_mode"] == "HTML"

    # The same text again: Telegram says "not modified", which is what we wanted.
    assert await notifier.update(receipt.external_id, replace(view, also=("AP", "Reuters")))
    assert bot_api.messages()[0].edits == 1


async def test_update_of_a_long_alert_edits_only_its_first_part(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    view = long_alert(alert_id=5)
    receipt = await notifier.send(view)
    assert receipt.external_id is not None

    assert await notifier.update(receipt.external_id, replace(view, also=("AP",)))
    first, *rest = bot_api.messages()
    assert first.edits == 1 and all(m.edits == 0 for m in rest)
    assert "Also reported by AP (2 sources)" in first.visible
    [edit] = bot_api.calls_to("editMessageText")
    assert "reply_markup" not in edit.params  # the buttons are on the last part


async def test_update_of_a_deleted_message_is_false(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    assert await notifier.update(f"{CHAT}:999", alert()) is False
    assert await notifier.update("not an id", alert()) is False
    assert len(bot_api.calls_to("editMessageText")) == 1


async def test_update_failures_are_classified(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    receipt = await notifier.send(alert())
    assert receipt.external_id is not None
    bot_api.script("editMessageText", Canned.bad_gateway(), Canned.forbidden())
    with pytest.raises(TransientError):
        await notifier.update(receipt.external_id, replace(alert(), also=("AP",)))
    with pytest.raises(Refused):
        await notifier.update(receipt.external_id, replace(alert(), also=("AP",)))


# --- classification ---------------------------------------------------------------------------


async def test_flood_control_is_transient_and_holds_the_whole_bot(bot_api: FakeBotApi) -> None:
    now = 1000.0
    gate = TelegramGate(clock=lambda: now)
    notifier = TelegramNotifier("desk", make_bot(bot_api.token, bot_api.root_url), CHAT, gate=gate)
    bot_api.script("sendMessage", Canned.flood(7))
    try:
        with pytest.raises(TransientError) as caught:
            await notifier.send(alert())
    finally:
        await notifier.aclose()
    assert caught.value.retry_after == 7
    assert caught.value.sent == ()
    assert bot_api.messages() == []
    # Every chat of this bot waits out the 7 seconds, not just this one.
    assert gate.pacer.reserve(4321, now) == pytest.approx(7.0)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Canned.bad_request("Bad Request: message text is empty"), PermanentError),
        # A 400 that condemns the chat, not the message: the destination pauses.
        (Canned.bad_request("Bad Request: chat not found"), Refused),
        (Canned.bad_request("Bad Request: not enough rights to send text messages"), Refused),
        (Canned.forbidden("Forbidden: bot was blocked by the user"), Refused),
        (Canned.forbidden("Forbidden: bot is not a member of the channel chat"), Refused),
        (Canned.error(401, "Unauthorized"), Refused),
    ],
    ids=["400", "400-chat-not-found", "400-no-rights", "403-blocked", "403-not-member", "401"],
)
async def test_refusals_are_permanent(
    notifier: TelegramNotifier, bot_api: FakeBotApi, reply: Canned, error: type[Exception]
) -> None:
    bot_api.script("sendMessage", reply)
    with pytest.raises(PermanentError) as caught:
        await notifier.send(alert())
    assert type(caught.value) is error
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
    with pytest.raises(TransientError) as caught:
        await notifier.send(alert())
    assert not isinstance(caught.value, Ambiguous)


async def test_unparsable_html_falls_back_to_plain_text_once(
    notifier: TelegramNotifier, bot_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    bot_api.script(
        "sendMessage",
        Canned.bad_request('Bad Request: can\'t parse entities: Unsupported start tag "x"'),
    )
    receipt = await notifier.send(alert())

    [sent] = bot_api.messages()
    assert receipt.external_id == f"{CHAT}:{sent.message_id}"
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
    receipt = await notifier.send(alert())
    await notifier.send(alert())

    assert [m.chat_id for m in bot_api.messages()] == [-1001234, -1001234]
    assert receipt.external_id == f"-1001234:{bot_api.messages()[0].message_id}"
    assert [c.params["chat_id"] for c in bot_api.calls_to("sendMessage")] == [
        CHAT,
        -1001234,
        -1001234,
    ]
    assert notifier.chat_id == -1001234
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "-1001234" in warning.getMessage() and "monitor.yaml" in warning.getMessage()


async def test_a_scripted_migration_is_followed(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    bot_api.script("sendMessage", Canned.migrated(-1009))
    await notifier.send(alert())
    assert [m.chat_id for m in bot_api.messages()] == [-1009]


async def test_a_second_migration_is_permanent(
    notifier: TelegramNotifier, bot_api: FakeBotApi
) -> None:
    bot_api.script("sendMessage", Canned.migrated(-1001), Canned.migrated(-1002))
    with pytest.raises(PermanentError):
        await notifier.send(alert())


async def test_a_read_timeout_is_ambiguous_and_the_message_did_arrive(
    bot_api: FakeBotApi,
) -> None:
    bot = make_bot(bot_api.token, bot_api.root_url, timeout=0.3)
    notifier = TelegramNotifier("desk", bot, CHAT, gate=fast_gate())
    bot_api.script("sendMessage", Canned.stall(30))
    try:
        with pytest.raises(Ambiguous, match="duplicate"):
            await notifier.send(alert())
    finally:
        await notifier.aclose()
    assert len(bot_api.messages()) == 1  # delivered: a resend would duplicate it


async def test_a_connect_timeout_is_transient_not_ambiguous(bot_api: FakeBotApi) -> None:
    with unaccepting_url() as url:
        notifier = TelegramNotifier("desk", make_bot(bot_api.token, url, timeout=0.3), CHAT)
        try:
            with pytest.raises(TransientError, match=r"nothing was sent|getMe timed out") as caught:
                await notifier.send(alert())
        finally:
            await notifier.aclose()
    assert not isinstance(caught.value, Ambiguous)


async def test_unreachable_api_is_transient(bot_api: FakeBotApi) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    notifier = TelegramNotifier("desk", make_bot(bot_api.token, f"http://127.0.0.1:{port}"), CHAT)
    try:
        with pytest.raises(TransientError) as caught:
            await notifier.send(alert())
    finally:
        await notifier.aclose()
    assert not isinstance(caught.value, Ambiguous)


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

    notifier = TelegramNotifier(
        "desk", make_bot(bot_api.token, bot_api.root_url), CHAT, gate=fast_gate()
    )
    try:
        await notifier.send(alert())
        for reply in (Canned.bad_request(), Canned.forbidden(), Canned.flood(1)):
            bot_api.script("sendMessage", reply)
            with pytest.raises((TransientError, PermanentError)) as caught:
                await notifier.send(alert())
            errors.append(repr(caught.value))
    finally:
        await notifier.aclose()

    wrong = "987654321:AAwrong-token_for-tests_0123456789abcd"
    stranger = TelegramNotifier("desk", make_bot(wrong, bot_api.root_url), CHAT)
    try:
        with pytest.raises(Refused) as refused:
            await stranger.send(alert())
        errors.append(repr(refused.value))
        # PTB's InvalidToken message names the token: it is not chained into tracebacks.
        assert refused.value.__cause__ is None and refused.value.__suppress_context__
    finally:
        await stranger.aclose()

    assert "/bot<token>/sendMessage" in caplog.text  # httpx did log its URLs, redacted
    for secret in (bot_api.token, wrong):
        assert secret not in caplog.text
        assert all(secret not in e for e in errors)
        assert all(secret not in str(r.args) for r in caplog.records)


# --- pacing against Telegram's limits -----------------------------------------------------------


async def test_the_fake_enforces_telegrams_limits(bot_api: FakeBotApi) -> None:
    """The fake answers 429 where Telegram would, so zero 429s below mean the pacing holds."""
    bot_api.enforce_limits()
    frozen = time.monotonic()
    bot_api.clock = lambda: frozen  # all of this "within one second", however slow the machine
    async with make_bot(bot_api.token, bot_api.root_url) as bot:
        await bot.send_message(CHAT, "one")
        with pytest.raises(telegram.error.RetryAfter) as caught:
            await bot.send_message(CHAT, "two, in the same second")
        assert caught.value.retry_after in (1, telegram.error.RetryAfter(1).retry_after)
        # Other chats are free, until 30 messages in a second.
        # One after the other: the clock is frozen, so they still fall in one second, and
        # no burst of connections can overflow the fake server's accept queue.
        for i in range(29):
            await bot.send_message(2000 + i, "x")
        with pytest.raises(telegram.error.RetryAfter):
            await bot.send_message(3000, "the 31st in a second")
    assert bot_api.flood_answers == 2
    assert len(bot_api.messages()) == 30


async def test_a_hundred_alerts_at_once_get_no_flood_answer(bot_api: FakeBotApi) -> None:
    bot_api.enforce_limits()
    bot = make_bot(bot_api.token, bot_api.root_url)
    gate = TelegramGate()  # Telegram's own limits, with the default margin
    chats: list[int | str] = [*range(5001, 5046), -5001, -5002, -1005003, "@desk_channel", -5004]
    notifiers = [TelegramNotifier(f"desk-{c}", bot, c, gate=gate) for c in chats]
    try:
        await bot.initialize()  # as a running daemon has long done
        # Two alerts for each of 50 chats: over 30 a second in all, two in a second per chat.
        receipts = await asyncio.gather(*(n.send(alert()) for n in notifiers for _ in range(2)))
    finally:
        await bot.shutdown()

    assert bot_api.flood_answers == 0
    sent = bot_api.messages()
    assert len(sent) == len({r.external_id for r in receipts}) == 100
    for chat in chats:
        assert sum(1 for m in sent if m.chat_id == chat) == 2


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
