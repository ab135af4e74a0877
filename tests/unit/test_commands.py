"""The bot's commands, buttons, authorisation and answers: pure tables, no Telegram."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.core.commands import (
    MAX_MUTE,
    USAGE,
    Button,
    Command,
    FeedHealth,
    Help,
    Mute,
    MuteStory,
    NotRelevant,
    QueueCounts,
    Recent,
    RecentAlert,
    ShowWatchlists,
    SnoozeWatchlist,
    Status,
    Unknown,
    Unmute,
    Usage,
    WatchlistLine,
    allowed,
    button_data,
    format_duration,
    help_text,
    muted_text,
    parse_button,
    parse_command,
    parse_duration,
    recent_text,
    refusal_text,
    status_text,
    unknown_text,
    unknown_watchlist_text,
    usage_text,
    watchlists_text,
)
from monitor.core.render_telegram import TELEGRAM_LIMIT, utf16_len
from tests.fakes.telegram_html import parse_html

BOT = "Monitor_Test_Bot"
NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
MUTE_USAGE = USAGE["mute"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/help", Help()),
        ("/start", Help()),
        ("/HELP", Help()),
        ("  /help  ", Help()),
        ("/help me please", Help()),
        ("/status", Status()),
        ("/status@monitor_test_bot", Status()),
        ("/status@MONITOR_TEST_BOT", Status()),
        ("/watchlists", ShowWatchlists()),
        ("/recent", Recent()),
        ("/recent taiwan", Recent("taiwan")),
        ("/recent@Monitor_Test_Bot   taiwan", Recent("taiwan")),
        ("/mute taiwan 6h", Mute("taiwan", timedelta(hours=6))),
        ("/mute   taiwan\t\t30m ", Mute("taiwan", timedelta(minutes=30))),
        ("/mute taiwan\n1h30m", Mute("taiwan", timedelta(hours=1, minutes=30))),
        ("/Mute new-start 1D", Mute("new-start", timedelta(days=1))),
        ("/mute taiwan 30d", Mute("taiwan", timedelta(days=30))),
        ("/unmute taiwan", Unmute("taiwan")),
        ("/unmute@monitor_test_bot ukraine", Unmute("ukraine")),
        ("/frobnicate", Unknown("frobnicate")),
        ("/Frobnicate now", Unknown("frobnicate")),
        ("/mute", Usage("mute", MUTE_USAGE)),
        ("/mute taiwan", Usage("mute", MUTE_USAGE)),
        ("/mute taiwan 6h extra", Usage("mute", MUTE_USAGE)),
        ("/unmute", Usage("unmute", USAGE["unmute"])),
        ("/unmute taiwan ukraine", Usage("unmute", USAGE["unmute"])),
    ],
)
def test_parse_command(text: str, expected: Command) -> None:
    assert parse_command(text, BOT) == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "hello bot",
        "taiwan /mute taiwan 6h",
        "/",
        "/ status",
        "/status@OtherBot",
        "/mute@other_bot taiwan 6h",
        "/status@",
    ],
)
def test_not_a_command_for_us(text: str | None) -> None:
    assert parse_command(text, BOT) is None


def test_a_mention_needs_our_name() -> None:
    assert parse_command("/status@monitor_test_bot", "") is None
    assert parse_command("/status", "") == Status()
    assert parse_command("/status@monitor_test_bot", "@monitor_test_bot") == Status()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("/mute taiwan 6", "not a duration"),
        ("/mute taiwan six", "not a duration"),
        ("/mute taiwan 6x", "not a duration"),
        ("/mute taiwan 30m1h", "not a duration"),
        ("/mute taiwan -1h", "not a duration"),
        ("/mute taiwan 1w", "not a duration"),
        ("/mute taiwan 0h", "no time at all"),
        ("/mute taiwan 0d0h0m", "no time at all"),
        ("/mute taiwan 31d", "longer than 30 days"),
        ("/mute taiwan 720h1m", "longer than 30 days"),
        ("/mute taiwan 999999d", "longer than 30 days"),
        ("/mute <b>x</b> 6h", "not a watchlist id"),
        ("/mute -taiwan 6h", "not a watchlist id"),
        ("/recent <script>", "not a watchlist id"),
        ("/recent taiwan ukraine", "one watchlist"),
        ("/unmute tai/wan", "not a watchlist id"),
    ],
)
def test_malformed_arguments_give_usage_and_the_problem(text: str, problem: str) -> None:
    command = parse_command(text, BOT)
    assert isinstance(command, Usage)
    assert command.line == USAGE[command.command]
    assert problem in command.problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d2h3m", timedelta(days=1, hours=2, minutes=3)),
        ("90m", timedelta(minutes=90)),
        (" 6H ", timedelta(hours=6)),
        ("30d", MAX_MUTE),
        ("720h", MAX_MUTE),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "m", "h1", "1.5h", "1 h", "1h 30m", "1s", "PT1H", "1e3m", "١h", "30d1m", "0m"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|no time|longer"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(minutes=30), "30m"),
        (timedelta(hours=6), "6h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=7), "7d"),
        (timedelta(days=1, minutes=5), "1d5m"),
        (timedelta(0), "0m"),
    ],
)
def test_format_duration(span: timedelta, text: str) -> None:
    assert format_duration(span) == text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("ms:17", MuteStory(17)),
        ("sw:taiwan", SnoozeWatchlist("taiwan")),
        ("sw:new-start", SnoozeWatchlist("new-start")),
        ("nr:4242", NotRelevant(4242)),
        ("nr:", None),
        ("ms:abc", None),
        ("ms:-1", None),
        ("ms:1.5", None),
        ("ms:١٢", None),
        ("nr:1234567890123456789", None),
        ("sw:<b>", None),
        ("sw:", None),
        ("xx:1", None),
        ("nr4242", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_button(data: str | None, expected: Button | None) -> None:
    assert parse_button(data) == expected


@pytest.mark.parametrize("button", [MuteStory(9), SnoozeWatchlist("taiwan"), NotRelevant(3)])
def test_button_data_round_trips(button: Button) -> None:
    data = button_data(button)
    assert len(data.encode()) <= 64
    assert parse_button(data) == button


@pytest.mark.parametrize(
    ("chat_id", "user_id", "chats", "admins", "username", "expected"),
    [
        (-100123, 7, (-100123,), (), None, True),
        (-100123, 7, ("-100123",), (), None, True),
        (-100999, 7, (-100123,), (), None, False),
        (-100123, 7, ("@deskchat",), (), "DeskChat", True),
        (-100123, 7, ("@deskchat",), (), None, False),
        (-100123, 7, ("@deskchat",), (), "otherchat", False),
        (7, 7, (), (7,), None, True),  # an admin in a private chat
        (-100999, 7, (-100123,), (7,), None, True),  # an admin in any chat
        (8, 8, (-100123,), (7,), None, False),  # a team member alone with the bot
        (-100123, None, (), (7,), None, False),
        (None, 7, (-100123,), (7,), None, True),
        (None, 8, (-100123,), (7,), None, False),
        (-100123, 7, (), (), None, False),  # nobody, when both lists are empty
    ],
)
def test_allowed(
    chat_id: int | None,
    user_id: int | None,
    chats: tuple[int | str, ...],
    admins: tuple[int, ...],
    username: str | None,
    expected: bool,
) -> None:
    assert allowed(chat_id, user_id, chats, admins, username) is expected


HOSTILE = '<script>alert("x")</script> & <b>'


def _valid_html(text: str) -> str:
    """What a Telegram user sees; raises as the Bot API would on invalid HTML."""
    assert utf16_len(text) <= TELEGRAM_LIMIT
    return parse_html(text)


def test_refusal_names_the_chat() -> None:
    assert refusal_text(-100123) == (
        "This bot answers only its team. Ask an admin to add chat -100123 to monitor.yaml."
    )


def test_help_lists_every_command() -> None:
    seen = _valid_html(help_text())
    for command in ("/status", "/watchlists", "/recent", "/mute", "/unmute", "/help"):
        assert command in seen
    assert "<watchlist>" in seen


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (unknown_text("frob<b>"), "Unknown command /frob<b>. Send /help for the list."),
        (usage_text(Usage("mute", MUTE_USAGE)), MUTE_USAGE),
        (usage_text(Usage("mute", MUTE_USAGE, "'6x' is bad")), f"'6x' is bad\n{MUTE_USAGE}"),
        (
            unknown_watchlist_text("tw<", ["ukraine", "taiwan"]),
            "No watchlist tw<.\nKnown: taiwan, ukraine",
        ),
        (unknown_watchlist_text("x", []), "No watchlist x.\nKnown: none are configured"),
        (
            muted_text("taiwan", NOW + timedelta(hours=6), timedelta(hours=6), "@ann"),
            "Muted taiwan for 6h, until 2026-02-04 18:00 UTC (by @ann). "
            "Send /unmute taiwan to end it sooner.",
        ),
    ],
)
def test_answers_are_escaped_html(text: str, shown: str) -> None:
    assert _valid_html(text) == shown


def test_status_text() -> None:
    feeds = [
        FeedHealth("bbc", False),
        FeedHealth("evil", True, 3, HOSTILE),
        FeedHealth("ap", True, 1, None),
    ]
    queues = [QueueCounts("desk", "telegram", 2, 40, 1, 3), QueueCounts("old", "(not configured)")]
    seen = _valid_html(status_text(feeds, queues, mutes=2))
    assert "Feeds: 1 ok, 2 failing" in seen
    assert f"• evil: 3 error(s) in a row — {HOSTILE}" in seen
    assert "• ap: 1 error(s) in a row" in seen
    assert "• desk (telegram): 2 / 40 / 1 (3 skipped: muted or backlog)" in seen
    assert "• old ((not configured)): 0 / 0 / 0" in seen
    assert "Active mutes: 2" in seen


def test_status_with_thousands_of_failing_feeds_fits_one_message() -> None:
    feeds = [FeedHealth(f"feed-{i}", True, 9, "x" * 300) for i in range(500)]
    seen = _valid_html(status_text(feeds, [QueueCounts("desk", "telegram")]))
    assert "Feeds: 0 ok, 500 failing" in seen
    assert "more" in seen.splitlines()[-4]
    assert "• desk (telegram): 0 / 0 / 0" in seen  # the tail survives the cut


def test_watchlists_text() -> None:
    rows = [
        WatchlistLine("taiwan", "Taiwan", "normal", NOW + timedelta(hours=6)),
        WatchlistLine("ukraine", "ukraine", "high"),
        WatchlistLine("evil", HOSTILE, "low"),
    ]
    seen = _valid_html(watchlists_text(rows)).splitlines()
    assert seen == [
        "Watchlists (3)",
        "• taiwan — Taiwan (normal) — muted until 2026-02-04 18:00 UTC",
        "• ukraine (high)",
        f"• evil — {HOSTILE} (low)",
    ]
    assert _valid_html(watchlists_text([])) == "No watchlists are configured."


def test_recent_text_links_only_http_and_escapes() -> None:
    items = [
        RecentAlert(HOSTILE, 'https://x.example/a?b=1&c="2"', "Feed <A>", ("taiwan",), NOW),
        RecentAlert("Second", "javascript:alert(1)", "B", ("taiwan", "ukraine"), NOW, 5),
    ]
    html = recent_text(items, "taiwan")
    seen = _valid_html(html)
    assert seen.splitlines() == [
        "Last 2 alert(s) for taiwan",
        f"• {HOSTILE}",
        "  Feed <A> · taiwan · 2026-02-04 12:00 UTC",
        "• Second",
        "  B · taiwan, ukraine · 2026-02-04 12:00 UTC",
    ]
    assert '<a href="https://x.example/a?b=1&amp;c=&quot;2&quot;">' in html
    assert "javascript" not in html
    assert _valid_html(recent_text([], None)) == "No alerts sent yet."
    assert _valid_html(recent_text([], "taiwan")) == "No alerts sent for taiwan yet."


def test_recent_text_clips_long_titles() -> None:
    item = RecentAlert("word " * 2000, None, "s" * 500, ("taiwan",), NOW)
    seen = _valid_html(recent_text([item] * 10, None))
    assert seen.count("•") == 10
