"""A pipeline Runtime for in-process tests: a controllable clock, a hand-written notifier.

`build` (a fixture) makes a Runtime from a config folder written for the test, with the shipped
watchlists, the given feeds and fake destinations, around the test's database.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.core.match import Matcher
from monitor.core.render import AlertView
from monitor.edges.config import Config, load_config
from monitor.edges.fetch import make_client
from monitor.edges.outbox import Outbox
from monitor.edges.settings import settings_from_env
from monitor.edges.store import Store
from monitor.pipeline.runtime import Runtime
from tests.e2e.harness import REPO
from tests.fakes.feed_server import FeedServer

__all__ = ["Build", "Clock", "FakeNotifier", "build", "notifier_of"]


@dataclass
class Clock:
    now: datetime = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class FakeNotifier:
    """Records alerts; `failures` are raised, in order, before sends succeed again."""

    name: str
    sent: list[AlertView] = field(default_factory=list)
    failures: list[Exception] = field(default_factory=list)
    #: When set, each send announces itself on `started` and waits for `gate` to open.
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, view: AlertView) -> str | None:
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(view)
        return str(len(self.sent))

    async def aclose(self) -> None:
        return None


def write_config(
    root: Path, feeds: dict[str, str], destinations: list[str], fetch_timeout: str
) -> Path:
    config = root / "config"
    shutil.copytree(REPO / "config" / "watchlists", config / "watchlists")
    lines = ["feeds:"] + [f"  - {{id: {fid}, url: '{url}'}}" for fid, url in feeds.items()]
    (config / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dests = "\n".join(f"  {d}: {{type: console}}" for d in destinations)
    (config / "monitor.yaml").write_text(
        f"destinations:\n{dests}\ndefaults:\n  fetch_timeout: {fetch_timeout}\n", encoding="utf-8"
    )
    return config


Build = Callable[..., Runtime]


@pytest.fixture
async def build(tmp_path: Path, engine: Engine, feed_server: FeedServer) -> AsyncIterator[Build]:
    client = make_client(user_agent="monitor-tests", timeout=5.0, max_connections=8)
    store = Store(engine)
    outbox = Outbox(engine)

    def make(
        feeds: dict[str, str],
        destinations: tuple[str, ...] = ("desk",),
        clock: Clock | None = None,
        fetch_timeout: str = "20s",
    ) -> Runtime:
        root = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        config_dir = write_config(root, feeds, list(destinations), fetch_timeout)
        config: Config = load_config(config_dir, settings_from_env({}))
        rt = Runtime(
            config=config,
            matcher=Matcher(config.watchlists),
            store=store,
            outbox=outbox,
            client=client,
            notifiers={d: FakeNotifier(d) for d in destinations},
            clock=clock or Clock(),
        )
        store.sync_feeds(rt.feed_defs(), rt.clock())
        return rt

    yield make
    await client.aclose()


def notifier_of(rt: Runtime, name: str = "desk") -> FakeNotifier:
    notifier = rt.notifiers[name]
    assert isinstance(notifier, FakeNotifier)
    return notifier
