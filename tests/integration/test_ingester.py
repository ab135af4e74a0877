"""Group commit on SQLite and PostgreSQL: several feeds' ingests in one transaction give what
one ingest each would, and the Ingester batches only what waits, isolating a failing job."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, Table, func, select

from monitor.core.errors import DatabaseUnavailable
from monitor.core.model import AlertPlan, Article, Hit, Priority, WatchlistMatch
from monitor.core.prepare import Prepared, prepare
from monitor.core.story import fingerprint
from monitor.edges.ingest import Ingest, IngestResult, Plan
from monitor.edges.outcomes import PollRecord
from monitor.edges.schema import alerts, articles, feeds, matches
from monitor.edges.store import FeedDef, Store
from monitor.edges.stories import Clustering
from monitor.pipeline.ingester import Ingester

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
FEEDS = ("a", "b", "c", "d")
DEFAULT = Clustering()


def _plan(item: Prepared) -> tuple[Prepared, list[AlertPlan]]:
    """Articles titled with "Taiwan" match and alert one destination; the others do not."""
    if "Taiwan" not in item.article.title:
        return replace(item, matches=()), []
    hit = Hit(term="Taiwan", field="title", start=0, end=6)
    found = (WatchlistMatch("taiwan", "Taiwan", Priority.normal, ("Taiwan",), (hit,)),)
    fp = fingerprint(item.article.title, item.article.summary)
    return replace(item, matches=found, fingerprint=fp), [
        AlertPlan("desk", ("taiwan",), Priority.normal, NOW)
    ]


def _boom(item: Prepared) -> tuple[Prepared, list[AlertPlan]]:
    raise RuntimeError(f"plan bug on {item.article.guid}")


def _job(feed: str, *items: tuple[str, str | None, str], plan: Plan = _plan) -> Ingest:
    articles_ = [
        Article(feed_id=feed, guid=guid, url=url, title=title, summary=f"{title} in detail")
        for guid, url, title in items
    ]
    record = PollRecord(status="200 ok", next_poll_at=LATER, body_hash=f"h-{feed}")
    return Ingest(feed, [prepare(a) for a in articles_], plan, record, NOW)


@pytest.fixture
def fed(store: Store) -> Store:
    store.sync_feeds([FeedDef(f, f"http://x/{f}", f.upper()) for f in FEEDS], NOW)
    return store


def _count(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def test_a_batch_stores_what_one_ingest_per_feed_would(fed: Store, engine: Engine) -> None:
    jobs = [
        _job("a", ("1", "https://x.org/1", "Taiwan drills"), ("2", "https://x.org/2", "Rain")),
        _job("b", ("1", "https://x.org/1?utm_source=b", "Taiwan drills"),  # a's link again
             ("3", "https://y.org/3", "Markets close higher on Friday again")),
        _job("c"),  # a feed that brought nothing
    ]  # fmt: skip
    results = fed.ingest_many(jobs)
    assert results == [IngestResult(seen=2, new=2, matched=1, alerts=1),
                       IngestResult(seen=2, new=1, matched=0, alerts=0),
                       IngestResult(seen=0, new=0, matched=0, alerts=0)]  # fmt: skip
    assert _count(engine, articles) == 3 and _count(engine, matches) == 1
    assert _count(engine, alerts) == 1
    with engine.connect() as conn:
        seen = dict(conn.execute(select(feeds.c.id, feeds.c.articles_seen)).all())
        hashes = dict(conn.execute(select(feeds.c.id, feeds.c.body_hash)).all())
    assert seen == {"a": 2, "b": 1, "c": 0, "d": 0}
    assert hashes == {"a": "h-a", "b": "h-b", "c": "h-c", "d": None}
    # The same batch again: nothing is new, nothing alerts twice.
    again = fed.ingest_many(jobs)
    assert [r.new for r in again] == [0, 0, 0] and _count(engine, alerts) == 1


class HeldStore(Store):
    """The real store, whose first `ingest_many` waits for `release`; records batch sizes."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.batches: list[list[str]] = []

    def ingest_many(
        self, jobs: Sequence[Ingest], clustering: Clustering = DEFAULT
    ) -> list[IngestResult]:
        self.batches.append([job.feed_id for job in jobs])
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(30)
        return super().ingest_many(jobs, clustering)


@pytest.fixture
def held(fed: Store) -> HeldStore:
    return HeldStore(fed.engine)


async def test_jobs_that_wait_for_a_lane_go_together(held: HeldStore, engine: Engine) -> None:
    ingester = Ingester(held, Clustering(), lanes=1, most=2)
    first = asyncio.create_task(ingester.ingest(_job("a", ("1", None, "Taiwan drills"))))
    assert await asyncio.to_thread(held.entered.wait, 30)
    # While the only lane is busy: b and c wait together, d waits for the next batch (most=2),
    # and a second job of a waits for a batch without a's first one.
    later = [asyncio.create_task(ingester.ingest(_job(f, (f"{f}1", None, "Rain")))) for f in "bcd"]
    again = asyncio.create_task(ingester.ingest(_job("a", ("2", None, "Rain again"))))
    held.release.set()
    assert (await first).new == 1
    assert [(await t).new for t in later] == [1, 1, 1] and (await again).new == 1
    assert held.batches == [["a"], ["b", "c"], ["d", "a"]]
    assert _count(engine, articles) == 5


async def test_a_failing_job_fails_alone(fed: Store, engine: Engine) -> None:
    held = HeldStore(fed.engine)
    ingester = Ingester(held, Clustering(), lanes=1)
    first = asyncio.create_task(ingester.ingest(_job("a", ("1", None, "Rain"))))
    assert await asyncio.to_thread(held.entered.wait, 30)
    good = asyncio.create_task(ingester.ingest(_job("b", ("1", None, "Taiwan drills"))))
    bad = asyncio.create_task(ingester.ingest(_job("c", ("1", None, "Rain"), plan=_boom)))
    held.release.set()
    await first
    assert (await good).alerts == 1
    with pytest.raises(RuntimeError, match="plan bug"):
        await bad
    # The batch of b and c failed whole, then each went alone: b is stored, c is not.
    assert held.batches == [["a"], ["b", "c"], ["b"], ["c"]]
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(articles.c.feed_id)).scalars())
    assert stored == ["a", "b"]


class DownStore(Store):
    def ingest_many(
        self, jobs: Sequence[Ingest], clustering: Clustering = DEFAULT
    ) -> list[IngestResult]:
        raise DatabaseUnavailable("database 'x': connection refused")


async def test_the_database_going_away_fails_every_job_of_the_batch(fed: Store) -> None:
    ingester = Ingester(DownStore(fed.engine), Clustering())
    for feed in "ab":
        with pytest.raises(DatabaseUnavailable):
            await ingester.ingest(_job(feed, ("1", None, "Rain")))


def test_an_ingester_needs_a_lane() -> None:
    with pytest.raises(ValueError, match="lane"):
        Ingester(Store.__new__(Store), Clustering(), lanes=0)
