"""The daemon (`monitor run` as a subprocess) delivering 600 alerts to 30 Telegram chats.

The fake Bot API enforces Telegram's limits to the letter (1 message per second per chat, 20 per
minute per group, 30 per second per bot) and answers 429 with `retry_after` beyond them. With
flood control off, every alert must arrive exactly once, with not a single 429, while `monitor
status`, run from another process meanwhile, shows the queue draining.

This is the slowest test of the suite on purpose (Telegram's own pace: 600 messages at 30/s
take at least 20 s); it runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.harness import Monitor, environment, make_config, rss, word
from tests.fakes.bot_api import DEFAULT_TOKEN, FakeBotApi
from tests.fakes.feed_server import FeedServer

CHATS = 30
STORIES = 20


def _stories() -> list[dict[str, str]]:
    """20 items about Taiwan that share no other word: 20 stories, not one."""
    items = []
    for i in range(STORIES):
        words = " ".join(word(i * 8 + k) for k in range(8))
        items.append({"title": f"Taiwan {words}", "link": f"https://n.example/{i}",
                      "guid": f"story-{i}", "description": f"Taiwan report {words}"})  # fmt: skip
    return items


def _queued(status_output: str) -> int:
    """The sum of the QUEUED column of `monitor status`'s ALERTS table."""
    table = status_output.split("ALERTS\n", 1)[1].splitlines()[2:]
    return sum(int(re.split(r"\s+", line.strip())[2]) for line in table if line.strip())


@pytest.mark.timeout(180)
def test_600_alerts_to_30_chats_arrive_once_each_without_a_single_429(
    tmp_path: Path, db_url: str, feed_server: FeedServer, bot_api: FakeBotApi
) -> None:
    bot_api.enforce_limits()
    feed_server.add("/f.xml", rss(_stories()))
    chats = [-1001000000000 - i for i in range(CHATS)]
    destinations = "destinations:\n" + "".join(
        f"  c{i}: {{type: telegram, chat_id: {chat}}}\n" for i, chat in enumerate(chats)
    )
    defaults = "defaults:\n  backlog_window: 'off'\n  burst_limit: 0\n  poll_interval: 1h\n"
    config = make_config(tmp_path, feeds={"f": feed_server.url("/f.xml")},
                         destinations=destinations + defaults)  # fmt: skip
    env = environment(db_url, MONITOR_TELEGRAM_TOKEN=DEFAULT_TOKEN,
                      MONITOR_TELEGRAM_API_URL=bot_api.root_url)  # fmt: skip
    status = Monitor(config=config, env=env)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run", "--config", str(config)],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    queued_seen: list[int] = []
    try:
        while len(bot_api.messages()) < CHATS * STORIES:
            assert daemon.poll() is None, daemon.communicate()[1]
            result = status.run("status", timeout=60)
            if result.returncode == 0 and "ALERTS\n" in result.stdout:
                queued_seen.append(_queued(result.stdout))
        final = status.run("status", timeout=60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=60)

    assert daemon.returncode == 0, stderr
    messages = bot_api.messages()
    assert bot_api.flood_answers == 0
    per_chat = Counter(m.chat_id for m in messages)
    assert per_chat == dict.fromkeys(chats, STORIES)  # none lost
    pairs = Counter((m.chat_id, m.visible.split("\n", 2)[0]) for m in messages)
    assert max(pairs.values()) == 1  # none duplicated
    assert _queued(final.stdout) == 0
    draining = [q for q in queued_seen if 0 < q < CHATS * STORIES]
    assert draining, f"status never showed a partly drained queue: {queued_seen}"
    # Once the poll queued them, the queue only ever goes down.
    since_poll = queued_seen[next(i for i, q in enumerate(queued_seen) if q > 0) :]
    assert since_poll == sorted(since_poll, reverse=True)
