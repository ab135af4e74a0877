"""Backtests on SQLite and PostgreSQL: articles ingested under one version of the watchlists,
replayed through an edited version; counts, gained and lost articles and samples, exactly.

Articles go in through `Store.ingest` with the matcher and routing the daemon uses, so the
`matches` and `alerts` rows are the ones a poll would have written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.core.errors import ConfigError
from monitor.core.match import Matcher
from monitor.core.model import AlertPlan, Article
from monitor.core.prepare import Prepared, complete, prepare
from monitor.core.route import route
from monitor.edges.config import Config, load_config
from monitor.edges.outcomes import PollRecord
from monitor.edges.replay import Replay
from monitor.edges.settings import settings_from_env
from monitor.edges.store import FeedDef, Store
from monitor.pipeline.backtest import (
    BacktestReport,
    WatchlistBacktest,
    backtest,
    feed_tags_of,
    select_watchlists,
)
from monitor.pipeline.runtime import routes_from

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
RECENT = NOW - timedelta(hours=1)
OLD = NOW - timedelta(days=10)

MONITOR_YAML = """\
destinations:
  desk: {type: console, min_priority: normal}
"""
FEEDS_YAML = """\
feeds:
  - {id: wire, url: "https://wire.example/rss", name: The Wire, tags: [asia]}
  - {id: blog, url: "https://blog.example/rss", name: A Blog}
"""
TAIWAN_BEFORE = "name: Taiwan\nmatch:\n  any: [Taiwan, Taipei]\n"
TAIWAN_AFTER = """\
name: Taiwan
match:
  any: [Taiwan, Formosa]
  none: [Taiwan Semiconductor]
"""
MARKETS = "name: Markets\npriority: low\nmatch:\n  any: [markets]\n"
ASIA = "name: Asia weather\nsources: [asia]\nmatch:\n  any: [typhoon]\n"

# (guid, feed, title, fetched at), in ingest order.
ARTICLES = [
    ("o1", "wire", "Taiwan story from last month", OLD),
    ("a1", "wire", "Taiwan holds drills", RECENT),
    ("a2", "wire", "Taipei markets rally", RECENT),
    ("a3", "blog", "Strait tensions rise off Formosa", RECENT),
    ("a4", "wire", "Typhoon nears the coast", RECENT),
    ("a5", "blog", "Typhoon hits the blog town", RECENT),
    ("a6", "wire", "Taiwan Semiconductor earnings beat forecasts", RECENT),
    ("a7", "blog", "European markets calm", RECENT),
]


def write_config(root: Path, taiwan: str) -> Path:
    (root / "watchlists").mkdir(parents=True, exist_ok=True)
    (root / "monitor.yaml").write_text(MONITOR_YAML, encoding="utf-8")
    (root / "feeds.yaml").write_text(FEEDS_YAML, encoding="utf-8")
    for name, text in (("taiwan", taiwan), ("markets", MARKETS), ("asia", ASIA)):
        (root / "watchlists" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return root


def load(root: Path) -> Config:
    return load_config(root, settings_from_env({}))


def ingest(store: Store, config: Config, guid: str, feed: str, title: str, at: datetime) -> None:
    """Store one article the way a poll does: match, route, write in one transaction."""
    matcher = Matcher(config.watchlists)
    notify = {w.id: w.notify for w in config.watchlists}
    tags = feed_tags_of(config)

    def plan(item: Prepared) -> tuple[Prepared, list[AlertPlan]]:
        item = complete(item, matcher, tags[item.article.feed_id])
        found = item.matches or ()
        return item, route(found, notify, routes_from(config), at) if found else []

    article = Article(feed_id=feed, guid=guid, url=f"https://{feed}.example/{guid}", title=title)
    record = PollRecord(status="200 ok", next_poll_at=at + timedelta(minutes=10))
    assert store.ingest(feed, [prepare(article)], plan, record, at).new == 1


@pytest.fixture
def edited(tmp_path: Path, store: Store) -> Config:
    """Every article ingested under the old Taiwan watchlist; the config as edited since."""
    before = load(write_config(tmp_path / "before", TAIWAN_BEFORE))
    store.sync_feeds([FeedDef("wire", "https://wire.example/rss", "The Wire"),
                      FeedDef("blog", "https://blog.example/rss", "A Blog")], OLD)  # fmt: skip
    for guid, feed, title, at in ARTICLES:
        ingest(store, before, guid, feed, title, at)
    return load(write_config(tmp_path / "after", TAIWAN_AFTER))


def run(
    engine: Engine,
    config: Config,
    *ids: str,
    since: datetime | None = NOW - timedelta(days=7),
    samples: int = 5,
) -> BacktestReport:
    return backtest(
        Replay(engine),
        select_watchlists(config, ids),
        feed_tags_of(config),
        since=since,
        samples=samples,
    )


def by_id(report: BacktestReport) -> dict[str, WatchlistBacktest]:
    return {w.watchlist_id: w for w in report.watchlists}


def counts(w: WatchlistBacktest) -> tuple[int, int, int, int, int]:
    return (w.would_match, w.matched_before, w.alerted_before, w.gained, w.lost)


def test_an_edited_watchlist_gains_and_loses_exactly(engine: Engine, edited: Config) -> None:
    report = run(engine, edited)

    assert report.articles == 7  # o1 is older than the default week
    result = by_id(report)
    assert list(result) == ["asia", "markets", "taiwan"]
    # Taiwan: a1 matches both times; a3 is gained by "Formosa"; a2 is lost with "Taipei",
    # a6 to the new `none` term. Every Taiwan match had alerted the desk.
    assert counts(result["taiwan"]) == (2, 3, 3, 1, 2)
    (gained,) = result["taiwan"].gained_samples
    assert (gained.title, gained.feed_id, gained.source) == (
        "Strait tensions rise off Formosa", "blog", "A Blog"
    )  # fmt: skip
    assert gained.terms == ("Formosa",)
    assert gained.fetched_at == RECENT
    assert gained.url == "https://blog.example/a3"
    lost = result["taiwan"].lost_samples  # newest first
    assert [s.title for s in lost] == [
        "Taiwan Semiconductor earnings beat forecasts",
        "Taipei markets rally",
    ]
    assert [s.terms for s in lost] == [("Taiwan",), ("Taipei",)]
    assert lost[0].reason == "vetoed by 'none' term 'Taiwan Semiconductor'"
    assert lost[1].reason.startswith("no 'any' term occurs")
    assert all(s.source == "The Wire" for s in lost)

    # Markets is low priority: a7 alerted no one, a2 was reported in Taiwan's desk alert.
    assert counts(result["markets"]) == (2, 2, 1, 0, 0)
    # Asia weather takes `sources: [asia]`, a tag of the wire only, from the config's feeds.
    assert counts(result["asia"]) == (1, 1, 1, 0, 0)
    assert result["asia"].gained_samples == result["asia"].lost_samples == ()


def test_since_excludes_older_articles(engine: Engine, edited: Config) -> None:
    everything = by_id(run(engine, edited, since=None))
    assert counts(everything["taiwan"]) == (3, 4, 4, 1, 2)  # o1 matches both times
    assert run(engine, edited, since=None).articles == 8

    just_old = run(engine, edited, since=OLD)
    assert just_old.articles == 8
    assert run(engine, edited, since=RECENT + timedelta(seconds=1)).articles == 0
    nothing = by_id(run(engine, edited, since=NOW))
    assert all(counts(w) == (0, 0, 0, 0, 0) for w in nothing.values())


def test_samples_are_the_most_recent_and_bounded(engine: Engine, edited: Config) -> None:
    one = by_id(run(engine, edited, samples=1))["taiwan"]
    assert [s.title for s in one.lost_samples] == ["Taiwan Semiconductor earnings beat forecasts"]
    assert one.lost == 2  # counts never depend on how many samples are kept
    none = by_id(run(engine, edited, samples=0))["taiwan"]
    assert (none.gained_samples, none.lost_samples, none.gained, none.lost) == ((), (), 1, 2)


def test_only_the_named_watchlists_are_replayed(engine: Engine, edited: Config) -> None:
    report = run(engine, edited, "taiwan", "taiwan")
    assert [w.watchlist_id for w in report.watchlists] == ["taiwan"]
    assert counts(report.watchlists[0]) == (2, 3, 3, 1, 2)


def test_unknown_watchlist_id_is_an_error_naming_the_known_ones(
    engine: Engine, edited: Config
) -> None:
    with pytest.raises(ConfigError) as caught:
        run(engine, edited, "taiwan", "taiwn", "nope")
    messages = [p.message for p in caught.value.problems]
    assert "unknown watchlist 'taiwn' (did you mean 'taiwan'? known: asia, markets, taiwan)" in (
        messages
    )
    assert "unknown watchlist 'nope' (known: asia, markets, taiwan)" in messages
    assert all(p.file == str(edited.dir / "watchlists") for p in caught.value.problems)


def test_small_batches_give_the_same_answer_and_report_progress(
    engine: Engine, edited: Config
) -> None:
    calls: list[tuple[int, int]] = []
    report = backtest(
        Replay(engine, batch_size=3),
        edited.watchlists,
        feed_tags_of(edited),
        since=None,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(0, 8), (3, 8), (6, 8), (8, 8)]
    assert report == run(engine, edited, since=None)


def test_a_replay_covers_what_was_stored_when_it_began(
    engine: Engine, edited: Config, store: Store
) -> None:
    replay = Replay(engine, batch_size=2)
    scope = replay.scope(RECENT)
    ingest(store, edited, "late", "wire", "Taiwan, while the replay runs", RECENT)
    seen = [s.article.guid for b in replay.batches(scope, ["taiwan"]) for s in b.articles]
    assert seen == ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]
    assert scope.total == len(seen)


def test_an_empty_database_replays_nothing(engine: Engine, tmp_path: Path) -> None:
    config = load(write_config(tmp_path / "c", TAIWAN_AFTER))
    report = run(engine, config, since=None)
    assert report.articles == 0
    assert all(counts(w) == (0, 0, 0, 0, 0) for w in report.watchlists)
