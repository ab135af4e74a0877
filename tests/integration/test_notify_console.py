"""ConsoleNotifier writes the plain-text alert or digest to its stream; it cannot update."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, datetime

import pytest

from monitor.core.errors import PermanentError
from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.core.render import AlertView, Digest, render_text, send_test_view
from monitor.core.render_digest import render_digest_text
from monitor.edges.notify import Notifier, Receipt
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

    assert await notifier.send(alert()) == Receipt()
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


@pytest.mark.parametrize("kind", ["digest", "summary"])
async def test_digests_are_written_as_text(kind: str) -> None:
    stream = io.StringIO()
    other = dataclasses.replace(alert(), also=("Reuters",))
    digest = Digest(kind, (alert(), other), datetime(2024, 5, 1, 13, tzinfo=UTC))  # type: ignore[arg-type]

    assert await ConsoleNotifier("console", stream).send(digest) == Receipt()

    out = stream.getvalue()
    assert out == render_digest_text(digest) + "\n\n"
    assert out.count("[HIGH] Taiwan <b>holds</b> drills") == 2
    assert "Reuters (2 sources)" in out
    assert "\x1b" not in out


async def test_update_writes_nothing_and_says_so() -> None:
    stream = io.StringIO()
    notifier = ConsoleNotifier("console", stream)
    grown = dataclasses.replace(alert(), also=("Reuters", "AP"))
    assert await notifier.update("anything", grown) is False
    assert stream.getvalue() == ""
