"""Backtesting watchlists: replay stored articles through them and compare with what happened.

Contract: `select_watchlists(config, ids)` picks the watchlists to replay (every one when `ids`
is empty) or raises `ConfigError` naming each unknown id and the known ones;
`feed_tags_of(config)` maps each configured feed to its tags.
`backtest(replay, watchlists, feed_tags, since=..., samples=...)` matches every article the
replay covers against `watchlists` as they are now (`feed_tags`: feed id -> its configured
tags, for `sources:`) and returns, per watchlist, how many articles would match now, how many
matched and alerted at ingest, how many are gained (match now, did not then) and lost (matched
then, not now), with up to `samples` of each: the most recent ones, newest first, gained ones
with the terms that hit now, lost ones with the terms that hit then and why they miss now.
`progress(done, total)` is called before the first batch and after each one.

Nothing is written: a backtest is safe to run next to the daemon, on edited watchlists that
are not live yet.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from monitor.core.errors import ConfigError, Problem
from monitor.core.match import Matcher
from monitor.core.model import Watchlist
from monitor.edges.config import Config
from monitor.edges.replay import Replay, ReplayBatch, StoredArticle

__all__ = [
    "BacktestReport", "Sample", "WatchlistBacktest", "backtest", "feed_tags_of",
    "select_watchlists",
]  # fmt: skip

#: Called with (articles replayed so far, articles the replay covers).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Sample:
    """One gained or lost article. `terms`: what hit now (gained) or at ingest (lost).

    `reason` says why a lost article misses now, in the matcher's words; empty for gained.
    """

    article_id: int
    title: str
    feed_id: str
    source: str
    url: str | None
    published_at: datetime | None
    fetched_at: datetime
    terms: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True, slots=True)
class WatchlistBacktest:
    watchlist_id: str
    name: str
    would_match: int
    matched_before: int
    alerted_before: int
    gained: int
    lost: int
    gained_samples: tuple[Sample, ...]
    lost_samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class BacktestReport:
    since: datetime | None
    articles: int
    watchlists: tuple[WatchlistBacktest, ...]


def select_watchlists(config: Config, ids: Sequence[str]) -> tuple[Watchlist, ...]:
    """The watchlists named by `ids` (in config order), or all of them when `ids` is empty."""
    by_id = {w.id: w for w in config.watchlists}
    if not ids:
        return config.watchlists
    known = sorted(by_id)
    problems = []
    for wid in dict.fromkeys(ids):
        if wid in by_id:
            continue
        hint = difflib.get_close_matches(wid, known, n=1)
        guess = f"did you mean {hint[0]!r}? " if hint else ""
        message = f"unknown watchlist {wid!r} ({guess}known: {', '.join(known) or 'none'})"
        problems.append(Problem(str(config.dir / "watchlists"), 0, 0, message))
    if problems:
        raise ConfigError(problems)
    wanted = set(ids)
    return tuple(w for w in config.watchlists if w.id in wanted)


def feed_tags_of(config: Config) -> dict[str, tuple[str, ...]]:
    # The database keeps no tags: an article from a feed since removed from the config passes
    # a `sources:` filter only by its feed id.
    return {f.id: f.tags for f in config.feeds}


@dataclass
class _Tally:
    """Counts and bounded samples for one watchlist while the replay runs."""

    watchlist: Watchlist
    limit: int
    would_match: int = 0
    matched_before: int = 0
    alerted_before: int = 0
    gained: int = 0
    lost: int = 0
    # Articles come in id order, so a bounded deque keeps the most recent ones: memory stays
    # at `limit` samples however many articles are gained or lost.
    gained_samples: deque[tuple[StoredArticle, tuple[str, ...]]] = field(init=False)
    lost_samples: deque[tuple[StoredArticle, tuple[str, ...]]] = field(init=False)

    def __post_init__(self) -> None:
        self.gained_samples = deque(maxlen=self.limit)
        self.lost_samples = deque(maxlen=self.limit)


def backtest(
    replay: Replay,
    watchlists: Iterable[Watchlist],
    feed_tags: Mapping[str, Collection[str]],
    *,
    since: datetime | None,
    samples: int = 5,
    progress: Progress | None = None,
) -> BacktestReport:
    if samples < 0:
        raise ValueError("samples must be 0 or more")
    chosen = sorted(watchlists, key=lambda w: w.id)
    matcher = Matcher(chosen)
    tallies = {w.id: _Tally(w, samples) for w in chosen}
    scope = replay.scope(since)
    done = 0
    if progress is not None:
        progress(done, scope.total)
    for batch in replay.batches(scope, list(tallies)):
        _replay_batch(batch, matcher, tallies, feed_tags)
        done += len(batch.articles)
        if progress is not None:
            progress(done, max(done, scope.total))
    results = tuple(_result(t, matcher, feed_tags) for t in tallies.values())
    return BacktestReport(since=since, articles=done, watchlists=results)


def _replay_batch(
    batch: ReplayBatch,
    matcher: Matcher,
    tallies: Mapping[str, _Tally],
    feed_tags: Mapping[str, Collection[str]],
) -> None:
    for stored in batch.articles:
        tags = feed_tags.get(stored.article.feed_id, ())
        now = {m.watchlist_id: m.terms for m in matcher.match(stored.article, feed_tags=tags)}
        before = batch.matched.get(stored.id, {})
        alerted = batch.alerted.get(stored.id, frozenset())
        for wid in now.keys() | before.keys() | alerted:
            tally = tallies[wid]
            tally.would_match += wid in now
            tally.matched_before += wid in before
            tally.alerted_before += wid in alerted
            if wid in now and wid not in before:
                tally.gained += 1
                tally.gained_samples.append((stored, now[wid]))
            elif wid in before and wid not in now:
                tally.lost += 1
                tally.lost_samples.append((stored, before[wid]))


def _result(
    tally: _Tally, matcher: Matcher, feed_tags: Mapping[str, Collection[str]]
) -> WatchlistBacktest:
    wid = tally.watchlist.id
    lost = []
    for stored, terms in reversed(tally.lost_samples):
        # Explaining costs a second scan, so only the few articles shown get one.
        tags = feed_tags.get(stored.article.feed_id, ())
        _, reason = matcher.explain(stored.article, wid, feed_tags=tags)
        lost.append(_sample(stored, terms, reason))
    return WatchlistBacktest(
        watchlist_id=wid,
        name=tally.watchlist.name,
        would_match=tally.would_match,
        matched_before=tally.matched_before,
        alerted_before=tally.alerted_before,
        gained=tally.gained,
        lost=tally.lost,
        gained_samples=tuple(_sample(s, t) for s, t in reversed(tally.gained_samples)),
        lost_samples=tuple(lost),
    )


def _sample(stored: StoredArticle, terms: tuple[str, ...], reason: str = "") -> Sample:
    article = stored.article
    return Sample(
        article_id=stored.id,
        title=article.title,
        feed_id=article.feed_id,
        source=stored.source,
        url=article.url,
        published_at=article.published_at,
        fetched_at=stored.fetched_at,
        terms=terms,
        reason=reason,
    )
