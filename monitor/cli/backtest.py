"""`monitor backtest [WATCHLIST ...] [--since 7d]`: what the current watchlists would have matched.

Replays the articles stored in the last `--since` (default 7d, `all` for every one) through
the watchlists as they are in the config folder now, edited or not yet live, and prints per
watchlist how many would match, how many matched and alerted at ingest, and samples of the
articles gained and lost. `--json` prints the same as one JSON document. A progress bar goes to
stderr when stderr is a terminal, or with `--progress`.

Exit codes, as for the other commands: 0 done; 1 invalid config or unknown watchlist id (raised
as `ConfigError`); 2 the database cannot be reached (`DatabaseUnavailable`) or has no schema.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from monitor.cli import bootstrap
from monitor.cli.progress import ProgressBar
from monitor.cli.status import table
from monitor.edges import migrate
from monitor.edges.config import Config, parse_duration
from monitor.edges.replay import Replay
from monitor.pipeline.backtest import (
    BacktestReport,
    Sample,
    WatchlistBacktest,
    backtest,
    feed_tags_of,
    select_watchlists,
)

__all__ = ["add_arguments", "report_json", "report_text", "run_backtest", "since_arg"]

EXIT_OK, EXIT_DATABASE = 0, 2


def since_arg(text: str) -> timedelta | None:
    """`--since`: a duration such as 7d, 36h, 90m, 1h30m; `all` (None) for no lower bound."""
    if text.strip().lower() == "all":
        return None
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or 'all'") from None
    if value <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r}: the duration must be more than zero")
    return value


def _samples_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of samples (0 or more)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "watchlists", nargs="*", metavar="WATCHLIST", help="watchlist ids (default: every one)"
    )
    parser.add_argument(
        "--since",
        type=since_arg,
        default=timedelta(days=7),
        metavar="DURATION",
        help="replay articles fetched this long ago or later: 7d (default), 36h, 90m, or all",
    )
    parser.add_argument(
        "--samples",
        type=_samples_arg,
        default=5,
        metavar="N",
        help="gained and lost articles to show per watchlist, most recent first (default 5)",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress on stderr even when it is not a terminal",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run_backtest(config: Config, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """The command, on the arguments `add_arguments` declares; returns the exit code."""
    watchlists = select_watchlists(config, args.watchlists)
    since = None if args.since is None else datetime.now(UTC) - args.since
    engine = bootstrap.engine_for(config)
    try:
        if migrate.pending(engine):
            print("the database has no current schema yet: run `monitor db upgrade` or "
                  "`monitor run`", file=err)  # fmt: skip
            return EXIT_DATABASE
        bar = ProgressBar(err, "backtest") if args.progress or err.isatty() else None
        try:
            report = backtest(
                Replay(engine),
                watchlists,
                feed_tags_of(config),
                since=since,
                samples=args.samples,
                progress=bar,
            )
        finally:
            if bar is not None:  # also on failure: an error message starts on a line of its own
                bar.finish()
    finally:
        engine.dispose()
    if args.json:
        out.write(json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n")
    else:
        out.write(report_text(report))
    return EXIT_OK


# -- output ----------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _sample_json(sample: Sample, lost: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "article_id": sample.article_id,
        "title": sample.title,
        "feed": sample.feed_id,
        "source": sample.source,
        "url": sample.url,
        "published_at": _iso(sample.published_at),
        "fetched_at": _iso(sample.fetched_at),
        "terms": list(sample.terms),
    }
    if lost:
        out["reason"] = sample.reason
    return out


def report_json(report: BacktestReport) -> dict[str, Any]:
    """The report as JSON-ready data; `terms` are the terms that hit now (gained) or then."""
    return {
        "since": _iso(report.since),
        "articles": report.articles,
        "watchlists": {
            w.watchlist_id: {
                "name": w.name,
                "would_match": w.would_match,
                "matched_before": w.matched_before,
                "alerted_before": w.alerted_before,
                "gained": w.gained,
                "lost": w.lost,
                "gained_samples": [_sample_json(s, lost=False) for s in w.gained_samples],
                "lost_samples": [_sample_json(s, lost=True) for s in w.lost_samples],
            }
            for w in report.watchlists
        },
    }


def _when(sample: Sample) -> str:
    return f"{sample.published_at or sample.fetched_at:%Y-%m-%d %H:%M}"


def _one_line(text: str, limit: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _samples_text(w: WatchlistBacktest, lost: bool) -> list[str]:
    count, samples = (w.lost, w.lost_samples) if lost else (w.gained, w.gained_samples)
    if not count:
        return []
    what = "lost (matched before, not now)" if lost else "gained (match now, did not before)"
    shown = f"; the {len(samples)} most recent:" if samples else ""
    lines = [f"{w.watchlist_id}: {count:,} {what}{shown}"]
    for s in samples:
        lines.append(f"  {_when(s)}  {s.source}  {_one_line(s.title)}")
        terms = ", ".join(s.terms)
        lines.append(
            f"      hit then: {terms}; now: {s.reason}" if lost else f"      hits: {terms}"
        )
        if s.url:
            lines.append(f"      {s.url}")
    return lines


def report_text(report: BacktestReport) -> str:
    since = f"since {report.since:%Y-%m-%d %H:%M} UTC" if report.since else "at any time"
    names = "watchlist" if len(report.watchlists) == 1 else "watchlists"
    lines = [
        f"Replayed {report.articles:,} stored articles fetched {since} "
        f"through {len(report.watchlists)} {names}.",
        "",
    ]
    rows = [
        [w.watchlist_id, w.name, f"{w.would_match:,}", f"{w.matched_before:,}",
         f"{w.alerted_before:,}", f"+{w.gained:,}" if w.gained else "0",
         f"-{w.lost:,}" if w.lost else "0"]
        for w in report.watchlists
    ]  # fmt: skip
    headers = ["WATCHLIST", "NAME", "WOULD MATCH", "MATCHED BEFORE", "ALERTED BEFORE",
               "GAINED", "LOST"]  # fmt: skip
    lines.append(table(headers, rows))
    changed = [w for w in report.watchlists if w.gained or w.lost]
    for w in changed:
        lines += ["", *_samples_text(w, lost=False), *_samples_text(w, lost=True)]
    if report.articles and not changed:
        lines += ["", "No watchlist gains or loses an article."]
    return "\n".join(lines) + "\n"
