"""A sample alert for the notifier tests: hostile text in the title, the summary and the link."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.core.model import Article, Hit, Priority, WatchlistMatch
from monitor.core.render import AlertView

HOSTILE = "A & B <script>alert('x')</script>"


def sample_alert(title: str, source: str) -> AlertView:
    """An alert on the Taiwan watchlist whose hit sits in a summary full of markup."""
    summary = f"Drills near Taiwan & {HOSTILE}"
    start = summary.index("Taiwan")
    article = Article(
        feed_id="f",
        guid="g",
        url="https://example.org/story?a=1&b=2",
        title=title,
        summary=summary,
        published_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    hit = Hit("Taiwan", "summary", start, start + 6)
    found = WatchlistMatch("taiwan", "Taiwan", Priority.high, ("Taiwan",), (hit,))
    return AlertView(article=article, source=source, matches=(found,))
