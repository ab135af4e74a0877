"""`monitor status`: the feeds' polling state and the alert queues, as plain-text tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TextIO

from monitor.edges.config import Config
from monitor.edges.destinations import Destinations, DestinationState
from monitor.edges.outbox import Outbox
from monitor.edges.schema import FAILED, PENDING, SENT, SKIPPED
from monitor.edges.state import State
from monitor.edges.store import FeedRow, Store
from monitor.scheduler import STATE_KEY


def _span(span: int) -> str:
    if span < 90:
        return f"{span}s"
    if span < 90 * 60:
        return f"{round(span / 60)}m"
    if span < 36 * 3600:
        return f"{round(span / 3600)}h"
    return f"{round(span / 86400)}d"


def _ago(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    seconds = int((moment - now).total_seconds())
    text = _span(abs(seconds))
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _feed_row(feed: FeedRow, now: datetime) -> list[str]:
    """One line of the FEEDS table: the interval in force (the adaptive schedule's, or the
    backoff's while failing), how long it has been failing, and why the daemon disabled it."""
    if not feed.in_config:
        mode = "removed"
    elif not feed.enabled:
        mode = "off"  # by the config
    elif feed.disabled_at is not None:
        mode = "DISABLED"  # by the daemon
    else:
        mode = "on"
    errors = str(feed.error_count)
    if feed.error_count and feed.failing_since is not None:
        errors += f" since {_ago(feed.failing_since, now)}"
    interval = "-" if feed.interval_s is None or mode != "on" else _span(feed.interval_s)
    if feed.error_count and feed.last_polled_at and feed.next_poll_at and mode == "on":
        interval = (
            f"backoff {_span(int((feed.next_poll_at - feed.last_polled_at).total_seconds()))}"
        )
    problem = (feed.last_error or "").replace("\n", " ")
    if feed.disabled_at is not None:
        told = "; operator told" if feed.operator_told_at else ""
        problem = f"disabled {_ago(feed.disabled_at, now)}{told}: {feed.disabled_reason or '?'}"
    return [
        feed.id,
        mode,
        _ago(feed.last_polled_at, now),
        feed.last_status or "-",
        errors,
        interval,
        _ago(feed.next_poll_at, now) if mode == "on" else "-",
        str(feed.articles_seen),
        problem[:80] + ("…" if len(problem) > 80 else ""),
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def config_lines(state: State, now: datetime) -> list[str]:
    """What the running daemon last said about its config (reloads included)."""
    recorded = state.get(STATE_KEY)
    if recorded is None:
        return ["no daemon has recorded its config yet"]
    value, at = recorded
    when = f"{at.isoformat(timespec='seconds')} ({_ago(at, now)})"
    if value.get("ok"):
        return [
            f"in force since {when}: {value.get('feeds')} feeds, {value.get('watchlists')}"
            f" watchlists, {value.get('destinations')} destinations"
        ]
    lines = [f"LAST RELOAD FAILED at {when}; the daemon kept its previous config:"]
    lines += [f"  {problem}" for problem in value.get("problems", [])]
    return lines


def print_status(
    store: Store,
    outbox: Outbox,
    state: State,
    config: Config | None,
    now: datetime,
    out: TextIO,
    health: Destinations | None = None,
) -> None:
    out.write("CONFIG\n" + "\n".join(config_lines(state, now)) + "\n\n")
    rows = [_feed_row(feed, now) for feed in store.feeds()]
    out.write("FEEDS\n")
    out.write(table(["FEED", "STATE", "LAST POLL", "RESULT", "ERRORS", "INTERVAL", "NEXT POLL",
                     "ARTICLES", "LAST ERROR"], rows) + "\n\n")  # fmt: skip
    counts = outbox.alert_counts()
    destinations = config.destinations if config is not None else {}
    names = sorted(set(destinations) | set(counts))
    learnt = health.all() if health is not None else {}
    alert_rows = []
    for name in names:
        by_status = counts.get(name, {})
        spec = destinations.get(name)
        kind = spec.type if spec is not None else "(not configured)"
        alert_rows.append(
            [
                name,
                kind,
                str(by_status.get(PENDING, 0)),
                str(by_status.get(SENT, 0)),
                str(by_status.get(FAILED, 0)),
                str(by_status.get(SKIPPED, 0)),
                _health(learnt.get(name), now),
            ]
        )
    out.write("ALERTS\n")
    headers = ["DESTINATION", "TYPE", "QUEUED", "SENT", "FAILED", "SKIPPED", "HEALTH"]
    out.write(table(headers, alert_rows) + "\n")


def _health(known: DestinationState | None, now: datetime) -> str:
    """What delivery learnt: a failing streak (and whether the operator was told), a move."""
    if known is None:
        return "ok"
    parts = []
    if known.failures:
        since = _ago(known.failing_since, now)
        told = ", operator told" if known.operator_told_at else ""
        error = (known.last_error or "").replace("\n", " ")[:80]
        parts.append(f"FAILING: {known.failures} refusals since {since}{told}: {error}")
    if known.chat_id:
        parts.append(f"chat moved to {known.chat_id}: update monitor.yaml")
    return "; ".join(parts) or "ok"
