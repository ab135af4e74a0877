"""`monitor run --once` as a subprocess against a feed server, a fake Bot API and an SMTP sink.

Runs on SQLite and on PostgreSQL (the `db_url` fixture). The founding example (the first item of
seeds/demo-feed.xml, a French report on a Xi–Putin call) must alert once per destination naming
all four shipped watchlists; its tracking-parameter copy in a second feed must not alert again;
a rerun sends nothing; one new matching item sends exactly one more alert per destination.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from monitor.edges.db import make_engine
from monitor.edges.schema import alerts
from tests.e2e.harness import CHAT_ID, DEMO_FEED, Monitor, environment, make_config, rss
from tests.fakes.bot_api import DEFAULT_TOKEN, Canned, FakeBotApi
from tests.fakes.feed_server import FeedServer
from tests.fakes.smtp_sink import SmtpSink

FOUNDING_TITLE = "Xi et Poutine affichent un front commun face à Washington"
FOUNDING_LINK = "https://demo.invalid/fr/2026/02/xi-poutine-visio"
WATCHLIST_NAMES = ("New START treaty", "Taiwan", "Greenland", "Ukraine")
MATCHING_DEMO_ITEMS = 4

DESTINATIONS = f"""
destinations:
  desk:
    type: telegram
    chat_id: {CHAT_ID}
  mail:
    type: email
    to: [desk@example.org, analyst@example.org]
  screen:
    type: console
"""


@pytest.fixture
def monitor(
    tmp_path: Path, db_url: str, feed_server: FeedServer, bot_api: FakeBotApi, smtp_sink: SmtpSink
) -> Monitor:
    feed_server.add("/a.xml", DEMO_FEED.read_bytes())
    feed_server.add("/b.xml", rss([], title="Second outlet"))
    feed_server.add("/missing.xml", b"gone", status=404, content_type="text/plain")
    feed_server.add("/page.html", b"<!doctype html><html><body>Hello</body></html>",
                    content_type="text/html")  # fmt: skip
    config = make_config(
        tmp_path,
        feeds={
            "a": feed_server.url("/a.xml"),
            "b": feed_server.url("/b.xml"),
            "missing": feed_server.url("/missing.xml"),
            "page": feed_server.url("/page.html"),
        },
        destinations=DESTINATIONS,
    )
    env = environment(
        db_url,
        MONITOR_TELEGRAM_TOKEN=DEFAULT_TOKEN,
        MONITOR_TELEGRAM_API_URL=bot_api.root_url,
        MONITOR_SMTP_HOST=smtp_sink.host,
        MONITOR_SMTP_PORT=str(smtp_sink.port),
        MONITOR_SMTP_TLS="none",
        MONITOR_SMTP_FROM="monitor@example.org",
    )
    return Monitor(config=config, env=env)


def _founding(texts: list[str]) -> list[str]:
    return [t for t in texts if FOUNDING_TITLE in t]


def _mail_texts(smtp_sink: SmtpSink) -> list[str]:
    out = []
    for delivered in smtp_sink.messages:
        body = delivered.message.get_body(preferencelist=("plain",))
        assert body is not None
        out.append(f"{delivered.message['Subject']}\n{body.get_content()}")
    return out


def test_founding_example_alerts_once_per_destination_then_never_again(
    monitor: Monitor, feed_server: FeedServer, bot_api: FakeBotApi, smtp_sink: SmtpSink
) -> None:
    first = monitor.once()

    telegram = [m.visible for m in bot_api.messages() if m.chat_id == CHAT_ID]
    assert len(telegram) == MATCHING_DEMO_ITEMS
    (tg_alert,) = _founding(telegram)
    for name in WATCHLIST_NAMES:
        assert name in tg_alert
    assert all(m.parse_mode == "HTML" for m in bot_api.messages())

    mails = _mail_texts(smtp_sink)
    assert len(mails) == MATCHING_DEMO_ITEMS
    (mail_alert,) = _founding(mails)
    for name in WATCHLIST_NAMES:
        assert name in mail_alert
    assert set(smtp_sink.messages[0].rcpt_tos) == {"desk@example.org", "analyst@example.org"}

    assert first.stdout.count(FOUNDING_TITLE) == 1
    for name in WATCHLIST_NAMES:
        assert name in first.stdout

    # Failing feeds are reported and do not stop the run (exit 0 was asserted by once()).
    assert "feed missing:" in first.stderr and "404" in first.stderr
    assert "feed page:" in first.stderr

    # The same article in a second feed, with tracking parameters: no new alert anywhere.
    copy = {"title": FOUNDING_TITLE + " (copie)", "guid": "outlet-b-123",
            "link": FOUNDING_LINK + "?utm_source=newsletter&utm_campaign=feb#top",
            "description": "Taïwan, Groenland, Ukraine, New START."}  # fmt: skip
    feed_server.add("/b.xml", rss([copy], title="Second outlet", lang="fr"))
    second = monitor.once()
    assert len(bot_api.messages()) == MATCHING_DEMO_ITEMS
    assert len(smtp_sink.messages) == MATCHING_DEMO_ITEMS
    assert FOUNDING_TITLE not in second.stdout

    # A rerun with nothing new sends nothing.
    third = monitor.once()
    assert len(bot_api.messages()) == MATCHING_DEMO_ITEMS
    assert len(smtp_sink.messages) == MATCHING_DEMO_ITEMS
    assert third.stdout == ""

    # One new matching item: exactly one more alert per destination.
    fresh = {
        "title": "Kyiv and Warsaw sign a grain corridor deal",
        "guid": "b-2",
        "link": "https://outlet-b.example/grain",
        "description": "Ukraine exports resume.",
    }
    feed_server.add("/b.xml", rss([copy, fresh], title="Second outlet"))
    fourth = monitor.once()
    assert len(bot_api.messages()) == MATCHING_DEMO_ITEMS + 1
    assert "Kyiv and Warsaw" in bot_api.messages()[-1].visible
    assert len(smtp_sink.messages) == MATCHING_DEMO_ITEMS + 1
    assert fourth.stdout.count("Kyiv and Warsaw") == 1

    status = monitor.run("status")
    assert status.returncode == 0
    for run in monitor.runs:  # the bot token is a secret: never in any output or log line
        assert DEFAULT_TOKEN not in run.stdout + run.stderr
    missing_row = next(line for line in status.stdout.splitlines() if line.startswith("missing "))
    assert "404" in missing_row and " 4 " in missing_row  # four failed polls so far
    desk_row = next(line for line in status.stdout.splitlines() if line.startswith("desk "))
    assert desk_row.split()[2:5] == ["0", str(MATCHING_DEMO_ITEMS + 1), "0"]


def _make_due(db_url: str) -> None:
    """Stand in for the passing of time: every pending retry becomes due now."""
    engine = make_engine(db_url)
    with engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(seconds=1)
        conn.execute(
            update(alerts).where(alerts.c.status == "pending").values(next_attempt_at=past)
        )
    engine.dispose()


def test_alerts_wait_while_telegram_and_smtp_are_down_then_go_out_once(
    monitor: Monitor, db_url: str, bot_api: FakeBotApi, smtp_sink: SmtpSink
) -> None:
    bot_api.script("sendMessage", Canned.bad_gateway(), times=1)
    smtp_sink.fail_data(times=1)
    first = monitor.once()
    # The first send of each failed; the destination pauses for this round, nothing is lost.
    assert bot_api.messages() == []
    assert smtp_sink.messages == []
    assert "retry later 2" in first.stderr
    assert first.stdout.count("[HIGH]") == 1  # the console destination was not held up

    status = monitor.run("status").stdout
    desk_row = next(line for line in status.splitlines() if line.startswith("desk "))
    assert desk_row.split()[2:5] == [str(MATCHING_DEMO_ITEMS), "0", "0"]

    monitor.once()  # too early: the retry time has not come
    assert bot_api.messages() == []

    _make_due(db_url)
    monitor.once()
    assert len(bot_api.messages()) == MATCHING_DEMO_ITEMS
    assert len(smtp_sink.messages) == MATCHING_DEMO_ITEMS
    assert len(_founding([m.visible for m in bot_api.messages()])) == 1

    _make_due(db_url)
    monitor.once()
    assert len(bot_api.messages()) == MATCHING_DEMO_ITEMS
    assert len(smtp_sink.messages) == MATCHING_DEMO_ITEMS


def test_invalid_config_exits_1_with_location(monitor: Monitor) -> None:
    bad = monitor.config / "watchlists" / "taiwan.yaml"
    bad.write_text("name: Taiwan\nmatch:\n  any: [Taiwan]\n  colour: red\n", encoding="utf-8")
    result = monitor.run("run", "--once")
    assert result.returncode == 1
    assert f"{bad}:4:3: unknown key 'colour'" in result.stderr


def test_unreachable_database_exits_2(monitor: Monitor) -> None:
    monitor.env["MONITOR_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    result = monitor.run("run", "--once")
    assert result.returncode == 2
    assert "database unavailable" in result.stderr
