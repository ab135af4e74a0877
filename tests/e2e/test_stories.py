"""The daemon (`monitor run` as a subprocess) against feed servers and the fake Bot API.

A syndicated copy with an edited headline, arriving in a second feed, edits the first Telegram
message in place ("Also reported by …") instead of sending a second one. The bot, running inside
the daemon, answers its team and refuses a chat that is not on the list. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import CHAT_ID, environment, make_config, rss
from tests.fakes.bot_api import DEFAULT_TOKEN, FakeBotApi
from tests.fakes.feed_server import FeedServer
from tests.integration.test_delivery import COPY, STORY

STRANGER = -100999


@pytest.fixture
def daemon(
    tmp_path: Path, db_url: str, feed_server: FeedServer, bot_api: FakeBotApi
) -> Iterator[subprocess.Popen[str]]:
    feed_server.add("/a.xml", rss([STORY]))
    feed_server.add("/b.xml", rss([]))
    monitor_yaml = f"""
destinations:
  desk: {{type: telegram, chat_id: {CHAT_ID}}}
telegram:
  allowed_chats: [{CHAT_ID}]
defaults:
  poll_interval: 1s
  update_interval: 1s
"""
    config = make_config(tmp_path, feeds={"a": feed_server.url("/a.xml"),
                                          "b": feed_server.url("/b.xml")},
                         destinations=monitor_yaml)  # fmt: skip
    env = environment(db_url, MONITOR_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                      MONITOR_TELEGRAM_API_URL=bot_api.root_url)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert DEFAULT_TOKEN not in stderr


def test_a_copy_in_a_second_feed_edits_the_first_message(
    daemon: subprocess.Popen[str], feed_server: FeedServer, bot_api: FakeBotApi
) -> None:
    assert bot_api.wait_for(lambda api: len(api.messages()) == 1, timeout=30)
    [first] = bot_api.messages()
    assert first.visible.startswith("NORMAL") and STORY["title"] in first.visible

    feed_server.add("/b.xml", rss([COPY]))

    assert bot_api.wait_for(lambda api: api.messages()[0].edits == 1, timeout=30)
    [edited] = bot_api.messages()  # still one message: edited, not sent again
    assert edited.message_id == first.message_id
    assert "Also reported by Feed B (2 sources)" in edited.visible
    assert len(bot_api.calls_to("sendMessage")) == 1


def test_the_bot_answers_its_team_and_refuses_strangers(
    daemon: subprocess.Popen[str], bot_api: FakeBotApi
) -> None:
    bot_api.push_text(STRANGER, "/mute taiwan 6h")
    bot_api.push_text(CHAT_ID, "/mute taiwan")
    bot_api.push_text(CHAT_ID, "/mute taiwan 6h")

    def replies(api: FakeBotApi) -> list[tuple[int | str, str]]:
        return [(m.chat_id, m.visible) for m in api.messages() if m.chat_id != CHAT_ID
                or "Usage" in m.visible or "Muted" in m.visible]  # fmt: skip

    assert bot_api.wait_for(lambda api: len(replies(api)) >= 3, timeout=30)
    answers = replies(bot_api)
    assert answers[0][0] == STRANGER and "only its team" in answers[0][1]
    assert "Usage: /mute" in answers[1][1]
    assert "Muted" in answers[2][1] and "taiwan" in answers[2][1].lower()
