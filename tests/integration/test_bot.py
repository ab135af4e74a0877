"""The team's bot end to end: the real python-telegram-bot long-polls the fake Bot API, the
assistant answers from a real config and database (SQLite and PostgreSQL).

Every test synchronises on what the fake recorded: an update counts as handled once the loop
asks getUpdates for the updates after it (it does so only after saving the offset and
sending its replies).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import telegram
from sqlalchemy import Engine, select

from monitor.core.commands import USAGE
from monitor.core.match import Matcher
from monitor.edges.bot import Backoff, Incoming
from monitor.edges.config import load_config
from monitor.edges.mutes import MuteEntry, Mutes
from monitor.edges.notify.telegram import make_bot
from monitor.edges.outbox import Outbox
from monitor.edges.schema import feedback
from monitor.edges.settings import settings_from_env
from monitor.edges.state import State
from monitor.edges.store import FeedDef, Store
from monitor.pipeline.assistant import handle, run_bot
from monitor.pipeline.runtime import Runtime
from tests.e2e.harness import REPO
from tests.fakes.bot_api import Canned, FakeBotApi, SentMessage
from tests.fakes.runtime import Clock
from tests.integration.test_mutes import seed_alert

GROUP = -100123  # in allowed_chats
STRANGERS = -100999  # not
ADMIN = 7
MEMBER = 42  # push_text's default user
FAST = Backoff(first=0.01, cap=0.02, conflict=0.02)
HOUR = timedelta(hours=1)
MONITOR_YAML = f"""
destinations:
  desk: {{type: telegram, chat_id: {GROUP}}}
  screen: {{type: console}}
telegram:
  allowed_chats: [{GROUP}, "@deskchannel"]
  admins: [{ADMIN}]
"""


@pytest.fixture
async def rt(tmp_path: Path, engine: Engine, bot_api: FakeBotApi) -> AsyncIterator[Runtime]:
    config_dir = tmp_path / "config"
    shutil.copytree(REPO / "config" / "watchlists", config_dir / "watchlists")
    (config_dir / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    (config_dir / "monitor.yaml").write_text(MONITOR_YAML, encoding="utf-8")
    env = {"MONITOR_TELEGRAM_TOKEN": bot_api.token, "MONITOR_TELEGRAM_API_URL": bot_api.root_url}
    config = load_config(config_dir, settings_from_env(env))
    store = Store(engine)
    store.sync_feeds([FeedDef("a", "http://x/a", "Feed <A>")], Clock()())
    async with httpx.AsyncClient() as client:
        yield Runtime(config=config, matcher=Matcher(config.watchlists), store=store,
                      outbox=Outbox(engine), client=client, notifiers={},
                      clock=Clock())  # fmt: skip


@pytest.fixture
def mutes(engine: Engine) -> Mutes:
    return Mutes(engine)


@pytest.fixture
def state(engine: Engine) -> State:
    return State(engine)


@contextlib.asynccontextmanager
async def new_bot(api: FakeBotApi, token: str | None = None) -> AsyncIterator[telegram.Bot]:
    bot = make_bot(token or api.token, api.root_url, timeout=5.0)
    try:
        yield bot
    finally:
        await bot.shutdown()


@contextlib.asynccontextmanager
async def answering(
    rt: Runtime, mutes: Mutes, state: State, api: FakeBotApi, *, poll_timeout: int = 10
) -> AsyncIterator[asyncio.Task[None]]:
    """The bot loop running in the background; stopped (and awaited) on the way out."""
    stop = asyncio.Event()
    async with new_bot(api) as bot:
        task = asyncio.create_task(
            run_bot(lambda: rt, mutes, state, bot, stop, poll_timeout=poll_timeout, backoff=FAST)
        )
        try:
            yield task
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)


async def until(api: FakeBotApi, predicate: Any) -> None:
    assert await asyncio.to_thread(api.wait_for, predicate, 10.0)


async def handled(api: FakeBotApi, *update_ids: int) -> None:
    """Until the loop has asked for the updates after the last of `update_ids`."""
    last = max(update_ids)

    def done(fake: FakeBotApi) -> bool:
        return any(c.method == "getUpdates" and int(c.params.get("offset") or 0) > last
                   for c in fake.calls)  # fmt: skip

    await until(api, done)


def replies_to(api: FakeBotApi, chat_id: int) -> list[SentMessage]:
    return [m for m in api.messages() if m.chat_id == chat_id]


def push_press(
    api: FakeBotApi, data: str, *, message_id: int, callback_id: str, user_id: int = MEMBER
) -> int:
    return api.push_update({
        "callback_query": {
            "id": callback_id,
            "from": {"id": user_id, "is_bot": False, "first_name": "Tester", "username": "ann"},
            "chat_instance": "desk",
            "data": data,
            "message": {"message_id": message_id, "date": 1770000000, "text": "an alert",
                        "chat": {"id": GROUP, "type": "supergroup", "title": "Desk"}},
        }
    })  # fmt: skip


def feedback_rows(engine: Engine) -> list[tuple[Any, ...]]:
    query = select(feedback.c.alert_id, feedback.c.story_id, feedback.c.action,
                   feedback.c.user_id, feedback.c.chat_id).order_by(feedback.c.id)  # fmt: skip
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query)]


async def test_allowed_chat_mutes_a_watchlist(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    now = rt.clock()
    async with answering(rt, mutes, state, bot_api):
        update = bot_api.push_text(GROUP, "/mute taiwan 6h")
        await handled(bot_api, update)

    assert mutes.listing(now) == [
        MuteEntry("watchlist", "taiwan", now + 6 * HOUR, "telegram:42 (Tester)")
    ]
    [reply] = replies_to(bot_api, GROUP)
    assert reply.visible == (
        "Muted taiwan for 6h, until 2026-02-04 18:00 UTC (by Tester). "
        "Send /unmute taiwan to end it sooner."
    )
    assert reply.parse_mode == "HTML"
    assert reply.params["link_preview_options"] == {"is_disabled": True}
    assert reply.params["reply_parameters"]["allow_sending_without_reply"] is True
    methods = [c.method for c in bot_api.calls]
    # A webhook set elsewhere would make every getUpdates fail: it goes first.
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    first_poll = bot_api.calls_to("getUpdates")[0].params
    assert first_poll["allowed_updates"] == ["message", "callback_query"]
    assert first_poll["timeout"] == 10
    assert [c["command"] for c in bot_api.commands] == [
        "status", "watchlists", "recent", "mute", "unmute", "help"
    ]  # fmt: skip


async def test_unmute_ends_the_mute(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    now = rt.clock()
    mutes.mute("watchlist", "taiwan", now + HOUR, None, now)
    async with answering(rt, mutes, state, bot_api):
        first = bot_api.push_text(GROUP, "/unmute Taiwan")
        second = bot_api.push_text(GROUP, "/unmute taiwan")
        third = bot_api.push_text(GROUP, "/unmute nowhere")
        await handled(bot_api, first, second, third)
    assert mutes.listing(now) == []
    assert [m.visible.splitlines()[0] for m in replies_to(bot_api, GROUP)] == [
        "Unmuted taiwan: its alerts go out again.",
        "taiwan was not muted.",
        "No watchlist nowhere.",
    ]


async def test_malformed_mute_gets_usage_and_changes_nothing(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    async with answering(rt, mutes, state, bot_api):
        first = bot_api.push_text(GROUP, "/mute taiwan")
        second = bot_api.push_text(GROUP, "/mute atlantis 6h")
        await handled(bot_api, first, second)
    assert mutes.listing(rt.clock()) == []
    usage, unknown = replies_to(bot_api, GROUP)
    assert usage.visible == USAGE["mute"]
    assert usage.visible == "Usage: /mute <watchlist> <duration>, e.g. /mute taiwan 6h"
    assert unknown.visible.splitlines() == [
        "No watchlist atlantis.",
        "Known: greenland, new-start, taiwan, ukraine",
    ]


async def test_stranger_chat_is_refused_and_changes_nothing(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    async with answering(rt, mutes, state, bot_api):
        chatter = bot_api.push_text(STRANGERS, "hello bot")
        command = bot_api.push_text(STRANGERS, "/mute taiwan 6h")
        private = bot_api.push_text(MEMBER, "/status", user_id=MEMBER)  # a member, alone
        await handled(bot_api, chatter, command, private)
    assert mutes.listing(rt.clock()) == []
    [refusal] = replies_to(bot_api, STRANGERS)  # the chatter got no answer at all
    assert refusal.visible == (
        "This bot answers only its team. Ask an admin to add chat -100999 to monitor.yaml."
    )
    [private_refusal] = replies_to(bot_api, MEMBER)
    assert "add chat 42 to monitor.yaml" in private_refusal.visible


async def test_admin_is_answered_in_a_private_chat(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    now = rt.clock()
    mutes.mute("watchlist", "ukraine", now + 2 * HOUR, None, now)
    async with answering(rt, mutes, state, bot_api):
        update = bot_api.push_text(ADMIN, "/watchlists", user_id=ADMIN)
        await handled(bot_api, update)
    [reply] = replies_to(bot_api, ADMIN)
    lines = reply.visible.splitlines()
    assert lines[0] == "Watchlists (4)"
    assert "• taiwan — Taiwan (normal)" in lines
    assert any(
        line.startswith("• ukraine") and line.endswith("muted until 2026-02-04 14:00 UTC")
        for line in lines
    )


async def test_commands_for_another_bot_are_ignored(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    async with answering(rt, mutes, state, bot_api):
        other = bot_api.push_text(GROUP, "/help@SomeOtherBot")
        ours = bot_api.push_text(GROUP, "/help@Monitor_Test_Bot")
        unknown = bot_api.push_text(GROUP, "/frobnicate")
        await handled(bot_api, other, ours, unknown)
    help_reply, unknown_reply = replies_to(bot_api, GROUP)
    assert help_reply.visible.startswith("Monitor bot\n/status — feeds and alert queues")
    assert unknown_reply.visible == "Unknown command /frobnicate. Send /help for the list."


async def test_status_and_recent(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, engine: Engine
) -> None:
    now = rt.clock()
    seed_alert(engine, title="<b>Strait</b> & drills", sent_at=now - HOUR)
    seed_alert(engine, title="Kyiv", watchlists=("ukraine",), sent_at=now)
    seed_alert(engine, title="Queued", status="pending", sent_at=None)
    seed_alert(engine, title="Muted", status="skipped", sent_at=None)
    async with answering(rt, mutes, state, bot_api):
        status = bot_api.push_text(GROUP, "/status")
        recent = bot_api.push_text(GROUP, "/recent   TAIWAN")
        everything = bot_api.push_text(GROUP, "/recent")
        await handled(bot_api, status, recent, everything)
    status_reply, recent_reply, all_reply = replies_to(bot_api, GROUP)
    assert status_reply.visible.splitlines() == [
        "Status",
        "Feeds: 1 ok, 0 failing",
        "Alerts (queued / sent / failed):",
        "• desk (telegram): 1 / 2 / 0 (1 skipped: muted or backlog)",
        "• screen (console): 0 / 0 / 0",
        "Active mutes: 0",
    ]
    assert recent_reply.visible.splitlines() == [
        "Last 1 alert(s) for taiwan",
        "• <b>Strait</b> & drills",
        "  Feed <A> · taiwan · 2026-02-04 11:00 UTC",
    ]
    assert "&lt;b&gt;Strait&lt;/b&gt; &amp; drills</a>" in recent_reply.text
    assert [line for line in all_reply.visible.splitlines() if line.startswith("•")] == [
        "• Kyiv",
        "• <b>Strait</b> & drills",
    ]


async def test_not_relevant_is_recorded_once_and_answered(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, engine: Engine
) -> None:
    alert, story, _ = seed_alert(engine, external_id=f"{GROUP}:500")
    async with answering(rt, mutes, state, bot_api):
        first = push_press(bot_api, f"nr:{alert}", message_id=500, callback_id="cb-1")
        again = push_press(bot_api, f"nr:{alert}", message_id=500, callback_id="cb-2")
        await handled(bot_api, first, again)
    assert feedback_rows(engine) == [(alert, story, "not_relevant", MEMBER, str(GROUP))]
    answers = [(c.params["callback_query_id"], c.params.get("text"))
               for c in bot_api.calls_to("answerCallbackQuery")]  # fmt: skip
    assert answers == [("cb-1", "Noted: not relevant. Thank you."), ("cb-2", "Already noted.")]
    assert bot_api.messages() == []  # the answers are toasts, not chat messages


async def test_snooze_and_mute_story_buttons(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, engine: Engine
) -> None:
    now = rt.clock()
    alert, story, _ = seed_alert(
        engine, external_id=f"{GROUP}:600", watchlists=("taiwan", "ukraine")
    )
    async with answering(rt, mutes, state, bot_api):
        snooze = push_press(bot_api, "sw:taiwan", message_id=600, callback_id="cb-sw")
        mute = push_press(bot_api, f"ms:{story}", message_id=600, callback_id="cb-ms")
        stale = push_press(bot_api, "zz:1", message_id=600, callback_id="cb-zz")
        await handled(bot_api, snooze, mute, stale)
    assert [(m.scope, m.target, m.until, m.by) for m in mutes.listing(now)] == [
        ("watchlist", "taiwan", now + 24 * HOUR, "telegram:42 (@ann)"),
        ("story", str(story), now + 7 * 24 * HOUR, "telegram:42 (@ann)"),
    ]
    assert feedback_rows(engine) == [
        (alert, story, "snooze_watchlist", MEMBER, str(GROUP)),
        (alert, story, "mute_story", MEMBER, str(GROUP)),
    ]
    answers = [c.params.get("text") for c in bot_api.calls_to("answerCallbackQuery")]
    assert answers == [
        "Snoozed taiwan until 2026-02-05 12:00 UTC.",
        "Story muted until 2026-02-11 12:00 UTC.",
        "This button is no longer supported.",
    ]


async def test_stranger_button_press_is_refused(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, engine: Engine
) -> None:
    alert, _, _ = seed_alert(engine)
    incoming = Incoming(1, STRANGERS, None, MEMBER, "x", callback_id="cb", message_id=1,
                        callback_data=f"nr:{alert}")  # fmt: skip
    [reply] = await handle(rt, mutes, incoming)
    assert reply.to_button and reply.text.startswith("This bot answers only its team.")
    assert feedback_rows(engine) == []


async def test_offset_survives_a_restart(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    async with answering(rt, mutes, state, bot_api):
        first = bot_api.push_text(GROUP, "/mute taiwan 1h")
        await handled(bot_api, first)
    saved = state.get("telegram_offset")
    assert saved is not None and saved[0]["offset"] == first + 1

    # Telegram sends an update again until a getUpdates confirms it; say this one was not.
    bot_api.push_update({**_mute_again(), "update_id": first})
    later = bot_api.push_text(GROUP, "/unmute taiwan")
    async with answering(rt, mutes, state, bot_api):
        await handled(bot_api, later)
    visible = [m.visible.split(" ")[0] for m in replies_to(bot_api, GROUP)]
    assert visible == ["Muted", "Unmuted"]  # the mute was not handled twice
    restarted = bot_api.calls_to("getUpdates")
    assert any(c.params.get("offset") == first + 1 for c in restarted)


def _mute_again() -> dict[str, Any]:
    # The fake has confirmed (dropped) it by now: rebuild the same message.
    return {"message": {"message_id": 1, "date": 1770000000, "text": "/mute taiwan 1h",
                        "chat": {"id": GROUP, "type": "supergroup", "title": "Desk"},
                        "from": {"id": MEMBER, "is_bot": False, "first_name": "Tester"},
                        "entities": [{"type": "bot_command", "offset": 0,
                                      "length": 5}]}}  # fmt: skip


@pytest.fixture
def bot_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="monitor.bot")
    yield caplog


async def test_network_trouble_backs_off_and_goes_on(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, bot_log: Any
) -> None:
    bot_api.script("getUpdates", Canned.bad_gateway(), Canned.not_json(), Canned.flood(1))
    async with answering(rt, mutes, state, bot_api):
        update = bot_api.push_text(GROUP, "/help")
        await handled(bot_api, update)
    assert len(replies_to(bot_api, GROUP)) == 1
    warnings = [r.getMessage() for r in bot_log.records if r.levelno == logging.WARNING]
    assert [w.split(":")[1].strip() for w in warnings] == [
        "getUpdates failed", "getUpdates failed", "getUpdates"
    ]  # fmt: skip
    assert "flood control, waiting 1s" in warnings[2]
    assert bot_api.token not in bot_log.text


async def test_conflict_is_logged_once_and_retried(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, bot_log: Any
) -> None:
    conflict = Canned.error(
        409, "Conflict: terminated by other getUpdates request; make sure that only one bot "
        "instance is running"
    )  # fmt: skip
    bot_api.script("getUpdates", conflict, times=3)
    async with answering(rt, mutes, state, bot_api):
        update = bot_api.push_text(GROUP, "/help")
        await handled(bot_api, update)
    assert len(bot_api.calls_to("getUpdates")) >= 4
    errors = [r.getMessage() for r in bot_log.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "409 Conflict" in errors[0]
    assert len(replies_to(bot_api, GROUP)) == 1


async def test_refused_token_ends_the_loop(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi, bot_log: Any
) -> None:
    wrong = "987654321:AAWrong-token_for-tests_0123456789abcd"
    async with new_bot(bot_api, wrong) as bot:
        await asyncio.wait_for(run_bot(lambda: rt, mutes, state, bot, asyncio.Event()), 10)
    [error] = [r.getMessage() for r in bot_log.records if r.levelno == logging.ERROR]
    assert "token was refused" in error
    assert wrong not in bot_log.text
    assert bot_api.calls_to("getUpdates") == []


async def test_stop_abandons_a_long_poll(
    rt: Runtime, mutes: Mutes, state: State, bot_api: FakeBotApi
) -> None:
    # The long poll would hold for 50 s; leaving `answering` sets stop and awaits the loop.
    async with answering(rt, mutes, state, bot_api, poll_timeout=50) as task:
        await until(bot_api, lambda api: len(api.calls_to("getUpdates")) == 1)
    assert task.done() and task.exception() is None
