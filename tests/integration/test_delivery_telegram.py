"""Delivery through the real Telegram notifier: every scripted Bot API failure ends as documented.

The pipeline (`deliver_due`, on SQLite and PostgreSQL, with a controllable clock) sends through
python-telegram-bot to the fake Bot API on 127.0.0.1, which answers each failure the way Telegram
does. Whatever it answers, no alert is lost: each ends sent (once, or at most twice after an
ambiguous timeout), failed with its reason (a 400), or pending for a retry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import Engine, select

from monitor.edges.notify.gate import TelegramGate
from monitor.edges.notify.telegram import TelegramNotifier, make_bot
from monitor.edges.schema import alerts
from monitor.pipeline.deliver import REFUSALS_BEFORE_FAILING, deliver_due
from monitor.pipeline.poll import poll_feeds
from monitor.pipeline.runtime import Runtime
from tests.e2e.harness import CHAT_ID, rss
from tests.fakes.bot_api import Canned, FakeBotApi
from tests.fakes.feed_server import FeedServer
from tests.fakes.runtime import Build, Clock
from tests.integration.test_delivery import OTHER

NEW_CHAT = -1009876543210


@dataclass
class Telegram:
    rt: Runtime
    clock: Clock
    told: list[str]  # what the operator was told


@pytest.fixture
async def telegram_rt(
    build: Build, feed_server: FeedServer, bot_api: FakeBotApi
) -> AsyncIterator[Telegram]:
    feed_server.add("/f.xml", rss([OTHER]))
    clock = Clock()
    desk = f"{{type: telegram, chat_id: {CHAT_ID}}}"
    rt = build({"f": feed_server.url("/f.xml")}, destinations={"desk": desk}, clock=clock,
               env={"MONITOR_TELEGRAM_TOKEN": bot_api.token})  # fmt: skip
    bot = make_bot(bot_api.token, bot_api.root_url, timeout=1.0)
    told: list[str] = []

    async def notice(text: str) -> None:
        told.append(text)

    # The gate paces on the test's clock: a 429's hold ends when the test says time has passed.
    gate = TelegramGate(clock=lambda: clock.now.timestamp())
    notifier = TelegramNotifier("desk", bot, CHAT_ID, gate=gate)
    rt = replace(rt, notifiers={"desk": notifier}, notice=notice)
    await poll_feeds(rt, ["f"])
    yield Telegram(rt, clock, told)
    await notifier.aclose()


def _alert(engine: Engine) -> tuple[str, int, str | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(alerts.c.status, alerts.c.attempts, alerts.c.last_error, alerts.c.external_id)
        ).one()
    return row.status, row.attempts, row.last_error, row.external_id


async def test_429_waits_for_retry_after_then_delivers_once(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine
) -> None:
    rt, clock = telegram_rt.rt, telegram_rt.clock
    bot_api.script("sendMessage", Canned.flood(120))
    assert (await deliver_due(rt)).retried == 1
    clock.advance(119)
    assert (await deliver_due(rt)).sent == 0
    clock.advance(1)
    assert (await deliver_due(rt)).sent == 1
    assert len(bot_api.messages()) == 1 and _alert(engine)[0] == "sent"


@pytest.mark.parametrize("answer", [Canned.bad_gateway(), Canned.not_json()], ids=["502", "html"])
async def test_502_and_non_json_are_retried_then_delivered_once(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine, answer: Canned
) -> None:
    rt, clock = telegram_rt.rt, telegram_rt.clock
    bot_api.script("sendMessage", answer)
    assert (await deliver_due(rt)).retried == 1
    assert _alert(engine)[0] == "pending"
    clock.advance(30)
    assert (await deliver_due(rt)).sent == 1
    assert len(bot_api.messages()) == 1


async def test_400_fails_the_alert_with_the_reason(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine
) -> None:
    rt = telegram_rt.rt
    bot_api.script("sendMessage", Canned.bad_request("Bad Request: message text is empty"))
    assert (await deliver_due(rt)).failed == 1
    status, _, error, _ = _alert(engine)
    assert status == "failed" and error is not None and "text is empty" in error.lower()


async def test_a_400_that_condemns_the_chat_pauses_the_destination_instead(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine
) -> None:
    rt, clock = telegram_rt.rt, telegram_rt.clock
    bot_api.script("sendMessage", Canned.bad_request("Bad Request: chat not found"), times=2)
    assert (await deliver_due(rt)).retried == 1
    status, _, error, _ = _alert(engine)
    assert status == "pending" and error is not None and "chat not found" in error.lower()
    assert rt.destinations is not None and rt.destinations.all()["desk"].failures == 1
    clock.advance(60)
    assert (await deliver_due(rt)).retried == 1
    clock.advance(120)
    assert (await deliver_due(rt)).sent == 1  # the chat_id was fixed: nothing was lost


async def test_403_keeps_the_alert_and_tells_the_operator_once(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine
) -> None:
    rt, clock = telegram_rt.rt, telegram_rt.clock
    refusals = REFUSALS_BEFORE_FAILING + 2
    bot_api.script("sendMessage", Canned.forbidden(), times=refusals)
    for _ in range(refusals):
        assert (await deliver_due(rt)).retried == 1
        clock.advance(3600)
    told = telegram_rt.told
    assert len(told) == 1 and "desk" in told[0]
    assert _alert(engine)[0] == "pending"
    assert (await deliver_due(rt)).sent == 1  # the bot was let back in
    assert len(bot_api.messages()) == 1
    assert rt.destinations is not None and rt.destinations.all()["desk"].failures == 0


async def test_a_migrated_group_is_followed_and_remembered(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine
) -> None:
    rt = telegram_rt.rt
    bot_api.migrate_chat(CHAT_ID, NEW_CHAT)
    assert (await deliver_due(rt)).sent == 1
    [message] = bot_api.messages()
    assert message.chat_id == NEW_CHAT
    assert rt.destinations is not None
    assert rt.destinations.all()["desk"].chat_id == str(NEW_CHAT)


async def test_a_timeout_after_sending_is_retried_once_at_most(
    telegram_rt: Telegram, bot_api: FakeBotApi, engine: Engine
) -> None:
    rt, clock = telegram_rt.rt, telegram_rt.clock
    bot_api.script("sendMessage", Canned.stall(3.0), times=2)  # delivered, answer too late
    assert (await deliver_due(rt)).retried == 1
    clock.advance(30)
    assert (await deliver_due(rt)).sent == 1  # ambiguous twice: counted as sent, unconfirmed
    status, _, error, _ = _alert(engine)
    assert status == "sent" and error is not None and error.startswith("unconfirmed")
    assert len(bot_api.messages()) == 2  # the one duplicate the rule allows, never a third
    clock.advance(3600)
    assert (await deliver_due(rt)).sent == 0
    assert len(bot_api.messages()) == 2
