"""Feed claims, named leases and the SQLite single-process lock, on real databases.

Claims and leases run on SQLite and PostgreSQL; the SKIP LOCKED test needs PostgreSQL's row
locks. Concurrency is real: threads with their own connections, started together on a barrier.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, select, text, update

from monitor.edges.claims import claim_due_feeds, claim_feeds, release, renew
from monitor.edges.config import load_config
from monitor.edges.db import DatabaseInUse, make_engine, single_process
from monitor.edges.leases import Leases, destination_leases, while_held
from monitor.edges.schema import feeds, leases
from monitor.edges.settings import settings_from_env
from monitor.edges.store import FeedDef, Store
from tests.fakes.bot_api import DEFAULT_TOKEN
from tests.fakes.databases import truncate_all
from tests.fakes.runtime import write_config

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
T = TypeVar("T")


def _feeds(store: Store, count: int) -> list[str]:
    ids = [f"f{i:03d}" for i in range(count)]
    store.sync_feeds([FeedDef(i, f"https://x.example/{i}", i) for i in ids], NOW)
    return ids


def _together(workers: int, job: Callable[[int], T]) -> list[T]:
    """Run `job(i)` in `workers` threads released at once by a barrier."""
    barrier = threading.Barrier(workers)

    def run(i: int) -> T:
        barrier.wait()
        return job(i)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


# -- feed claims -----------------------------------------------------------------------------


def test_claims_at_once_never_return_the_same_feed(engine: Engine, store: Store) -> None:
    ids = _feeds(store, 300)

    def drain(worker: int) -> list[str]:
        got: list[str] = []
        while batch := claim_due_feeds(engine, f"w{worker}", NOW, LEASE, 7):
            got += batch
        return got

    claimed = _together(6, drain)
    counts = Counter(f for batch in claimed for f in batch)
    assert max(counts.values()) == 1
    assert sorted(counts) == ids
    assert claim_due_feeds(engine, "late", NOW, LEASE, 10) == []


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    truncate_all(engine)
    yield engine
    engine.dispose()


@pytest.mark.postgres
def test_a_claim_skips_feeds_another_transaction_has_locked_without_waiting(
    pg_engine: Engine,
) -> None:
    _feeds(Store(pg_engine), 3)
    with pg_engine.connect() as other:
        # Another worker's claim, caught between locking f000 and committing.
        other.execute(text("SELECT id FROM feeds WHERE id = 'f000' FOR UPDATE"))
        assert claim_due_feeds(pg_engine, "me", NOW, LEASE, 10) == ["f001", "f002"]
        other.rollback()
    assert claim_due_feeds(pg_engine, "me", NOW, LEASE, 10) == ["f000"]


def test_a_live_claim_is_not_taken_over_and_an_expired_one_is(engine: Engine, store: Store) -> None:
    _feeds(store, 1)
    assert claim_due_feeds(engine, "dead", NOW, LEASE, 10) == ["f000"]
    assert claim_due_feeds(engine, "other", NOW + LEASE - timedelta(seconds=1), LEASE, 10) == []
    later = NOW + LEASE + timedelta(seconds=1)
    assert claim_due_feeds(engine, "other", later, LEASE, 10) == ["f000"]
    with engine.connect() as conn:
        row = conn.execute(select(feeds.c.lease_owner, feeds.c.lease_until)).one()
    assert (row.lease_owner, row.lease_until) == ("other", later + LEASE)


def test_renew_and_release_touch_only_the_owners_claims(engine: Engine, store: Store) -> None:
    _feeds(store, 2)
    assert claim_due_feeds(engine, "a", NOW, LEASE, 1) == ["f000"]
    assert claim_due_feeds(engine, "b", NOW, LEASE, 1) == ["f001"]
    renew(engine, "a", ["f000", "f001"], NOW + LEASE, LEASE)
    release(engine, "a", ["f001"])  # b's: stays
    with engine.connect() as conn:
        rows = {r.id: (r.lease_owner, r.lease_until) for r in conn.execute(select(feeds))}
    assert rows == {"f000": ("a", NOW + 2 * LEASE), "f001": ("b", NOW + LEASE)}
    release(engine, "a", ["f000"])
    assert claim_due_feeds(engine, "c", NOW, LEASE, 10) == ["f000"]


def test_claims_take_only_due_feeds_in_the_rotation(engine: Engine, store: Store) -> None:
    _feeds(store, 5)
    changes = {
        "f001": {"next_poll_at": NOW + timedelta(minutes=1)},
        "f002": {"disabled_at": NOW},
        "f003": {"in_config": False},
        "f004": {"enabled": False},
    }
    with engine.begin() as conn:
        for feed_id, values in changes.items():
            conn.execute(update(feeds).where(feeds.c.id == feed_id).values(**values))
    assert claim_due_feeds(engine, "me", NOW, LEASE, 10) == ["f000"]


def test_claim_feeds_takes_the_given_feeds_due_or_not_except_anothers(
    engine: Engine, store: Store
) -> None:
    _feeds(store, 3)
    with engine.begin() as conn:
        conn.execute(update(feeds).values(next_poll_at=NOW + timedelta(hours=1)))
    assert claim_feeds(engine, "daemon", ["f000"], NOW, LEASE) == ["f000"]
    assert claim_feeds(engine, "once", ["f000", "f001", "f002"], NOW, LEASE) == ["f001", "f002"]


# -- named leases ----------------------------------------------------------------------------


def test_a_lease_is_acquired_renewed_and_taken_over_once_expired(engine: Engine) -> None:
    a, b = Leases(engine, "a"), Leases(engine, "b")
    ttl = timedelta(seconds=60)
    assert a.acquire("destination:desk", NOW, ttl)
    assert not b.acquire("destination:desk", NOW + timedelta(seconds=30), ttl)
    assert a.acquire("destination:desk", NOW + timedelta(seconds=30), ttl)  # renewed
    # Still a's at NOW + 61 s, thanks to the renewal; b takes it once that has run out.
    assert not b.acquire("destination:desk", NOW + timedelta(seconds=61), ttl)
    assert a.held(["destination:desk"], NOW + timedelta(seconds=89)) == {"destination:desk"}
    assert b.acquire("destination:desk", NOW + timedelta(seconds=91), ttl)
    assert a.held(["destination:desk"], NOW + timedelta(seconds=91)) == set()
    with engine.connect() as conn:
        row = conn.execute(select(leases)).one()
    assert (row.owner, row.acquired_at) == ("b", NOW + timedelta(seconds=91))


def test_a_renewal_keeps_when_the_tenure_began(engine: Engine) -> None:
    a = Leases(engine, "a")
    a.acquire("job:prune", NOW, timedelta(seconds=60))
    a.acquire("job:prune", NOW + timedelta(seconds=20), timedelta(seconds=60))
    with engine.connect() as conn:
        row = conn.execute(select(leases)).one()
    assert (row.acquired_at, row.until) == (NOW, NOW + timedelta(seconds=80))


def test_acquire_many_returns_the_leases_held_and_release_frees_only_ones_own(
    engine: Engine,
) -> None:
    a, b = Leases(engine, "a"), Leases(engine, "b")
    ttl = timedelta(seconds=60)
    assert a.acquire_many(["x", "y"], NOW, ttl) == {"x", "y"}
    assert b.acquire_many(["y", "z", "z"], NOW, ttl) == {"z"}
    b.release(["x", "y", "z"])
    assert a.held(["x", "y", "z"], NOW) == {"x", "y"}
    assert a.acquire_many(["x", "y", "z"], NOW, ttl) == {"x", "y", "z"}
    a.release_mine()
    assert b.acquire_many(["x", "y", "z"], NOW, ttl) == {"x", "y", "z"}


def test_of_workers_racing_for_a_free_lease_exactly_one_gets_it(engine: Engine) -> None:
    ttl = timedelta(seconds=60)
    got = _together(6, lambda i: Leases(engine, f"w{i}").acquire("destination:desk", NOW, ttl))
    assert sorted(got) == [False] * 5 + [True]


def test_telegram_destinations_share_one_lease_per_bot_token(tmp_path: Path) -> None:
    config_dir = write_config(
        tmp_path,
        {"a": "https://x.example/a"},
        {
            "desk": "{type: telegram, chat_id: -100123}",
            "room": "{type: telegram, chat_id: -100456}",
            "screen": "{type: console}",
            "log": "{type: console}",
        },
        "20s",
    )
    config = load_config(config_dir, settings_from_env({"MONITOR_TELEGRAM_TOKEN": DEFAULT_TOKEN}))
    keys = destination_leases(config)
    assert keys["desk"] == keys["room"]
    assert keys["desk"].startswith("telegram:") and DEFAULT_TOKEN not in keys["desk"]
    assert (keys["screen"], keys["log"]) == ("destination:screen", "destination:log")


async def test_while_held_runs_the_task_on_one_worker_and_hands_it_over_on_stop(
    engine: Engine,
) -> None:
    ttl = timedelta(seconds=3)
    clock = lambda: NOW  # noqa: E731 - the lease never runs out by itself here
    started = {"a": asyncio.Event(), "b": asyncio.Event()}
    b_tried = asyncio.Event()

    class Watched(Leases):
        def acquire(self, name: str, now: datetime, ttl: timedelta) -> bool:
            held = super().acquire(name, now, ttl)
            if not held:
                b_tried.set()
            return held

    def task(name: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        async def run(halt: asyncio.Event) -> None:
            started[name].set()
            await halt.wait()

        return run

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    a = asyncio.create_task(while_held(Leases(engine, "a"), "bot:x", ttl, stop_a, task("a"), clock))
    await started["a"].wait()
    b = asyncio.create_task(
        while_held(Watched(engine, "b"), "bot:x", ttl, stop_b, task("b"), clock)
    )
    await b_tried.wait()
    assert not started["b"].is_set()
    stop_a.set()
    await a  # stopped: its task halted, the lease released
    await started["b"].wait()
    stop_b.set()
    await b


# -- the SQLite single-process lock ----------------------------------------------------------


def test_the_sqlite_lock_refuses_a_second_holder_naming_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'monitor.db'}"
    with single_process(url) as path:
        assert path == tmp_path / "data" / "monitor.db"
        refused = pytest.raises(DatabaseInUse, match="in use by another monitor process")
        with refused as caught, single_process(url):
            pass
        assert str(path) in str(caught.value)
    with single_process(url) as again:  # released with its holder
        assert again == path


def test_only_a_sqlite_file_takes_the_lock(tmp_path: Path) -> None:
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://u@127.0.0.1/db"):
        with single_process(url) as path, single_process(url) as twice:
            assert path is None and twice is None
