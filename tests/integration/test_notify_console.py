"""ConsoleNotifier writes the plain-text alert to its stream."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from monitor.core.errors import PermanentError
from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.core.render import AlertView, render_text, send_test_view
from monitor.edges.notify import Notifier
from monitor.edges.notify.console import ConsoleNotifier


def alert() -> AlertView:
    article = Article(
        feed_id="f",
        guid="g",
        url="https://example.org/a",
        title="Taiwan <b>holds</b> drills\x1b[2J",
        published_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    found = WatchlistMatch(
        "taiwan", "Taiwan", Priority.high, ("Taiwan",), (Hit("Taiwan", "title", 0, 6),)
    )
    return AlertView(article=article, source="Example", matches=(found,))


async def test_writes_text_and_a_blank_line() -> None:
    stream = io.StringIO()
    notifier = ConsoleNotifier("console", stream)
    assert isinstance(notifier, Notifier)

    assert await notifier.send(alert()) is None
    await notifier.send(send_test_view(datetime(2024, 5, 1, tzinfo=UTC)))
    await notifier.aclose()

    out = stream.getvalue()
    first = render_text(alert()) + "\n\n"
    assert out.startswith(first)
    assert out.endswith("\n\n") and "[TEST]" in out[len(first) :]
    assert "[HIGH] Taiwan <b>holds</b> drills" in out  # plain text: shown as written
    assert "\x1b" not in out


async def test_closed_stream_is_permanent() -> None:
    stream = io.StringIO()
    stream.close()
    with pytest.raises(PermanentError):
        await ConsoleNotifier("console", stream).send(alert())
