"""A pipeline Runtime for in-process tests: a controllable clock, a hand-written notifier.

`build` (a fixture) makes a Runtime from a config folder written for the test, with the shipped
watchlists, the given feeds and fake destinations, around the test's database.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from monitor.core.match import Matcher
from monitor.core.render import AlertView, Digest, Outgoing
from monitor.edges.config import Config, load_config
from monitor.edges.destinations import Destinations
from monitor.edges.fetch import make_client
from monitor.edges.notify import Receipt
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
    """Records what it is sent; `failures` are raised, in order, before sends succeed again.

    `sent` holds the single alerts, `digests` the digests and summaries, `updates` the edits
    (external id, view); `messages` counts every message in order, whatever its kind.
    """

    name: str
    sent: list[AlertView] = field(default_factory=list)
    digests: list[Digest] = field(default_factory=list)
    updates: list[tuple[str, AlertView]] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)
    dones: list[tuple[str, ...]] = field(default_factory=list)  # `done` of every send tried
    failures: list[Exception] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    can_edit: bool = True
    #: When set, each send announces itself on `started` and waits for `gate` to open.
    gate: asyncio.Event | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, message: Outgoing, done: Sequence[str] = ()) -> Receipt:
        self.started.set()
        self.dones.append(tuple(done))
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        self.messages.append(message)
        if isinstance(message, Digest):
            self.digests.append(message)
        else:
            self.sent.append(message)
        return Receipt(f"{self.name}:{len(self.messages)}", dict(self.refused))

    async def update(self, external_id: str, message: Outgoing) -> bool:
        if not self.can_edit:
            return False
        assert isinstance(message, AlertView)
        self.updates.append((external_id, message))
        return True

    async def aclose(self) -> None:
        return None


#: Test configs alert a new feed's whole first poll unless a test says otherwise: the served
#: items have fixed dates, and most tests are about something else than the backlog rule.
TEST_DEFAULTS = {"backlog_window": "'off'"}


def write_config(
    root: Path,
    feeds: dict[str, str],
    destinations: list[str] | dict[str, str],
    fetch_timeout: str,
    defaults: dict[str, str] | None = None,
) -> Path:
    """A config folder: the shipped watchlists, `feeds` (id → URL), and console destinations
    (or, given a dict, name → inline YAML mapping such as "{type: console, mode: digest, …}")."""
    config = root / "config"
    shutil.copytree(REPO / "config" / "watchlists", config / "watchlists")
    lines = ["feeds:"] + [f"  - {{id: {fid}, url: '{url}'}}" for fid, url in feeds.items()]
    (config / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    specs = destinations if isinstance(destinations, dict) else dict.fromkeys(destinations, "")
    dests = "\n".join(f"  {d}: {spec or '{type: console}'}" for d, spec in specs.items())
    settings = {"fetch_timeout": fetch_timeout} | TEST_DEFAULTS | (defaults or {})
    lines = ["destinations:", dests, "defaults:"] + [f"  {k}: {v}" for k, v in settings.items()]
    (config / "monitor.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


Build = Callable[..., Runtime]


@pytest.fixture
async def build(tmp_path: Path, engine: Engine, feed_server: FeedServer) -> AsyncIterator[Build]:
    client = make_client(user_agent="monitor-tests", timeout=5.0, max_connections=8)
    store = Store(engine)
    outbox = Outbox(engine)

    def make(
        feeds: dict[str, str],
        destinations: tuple[str, ...] | dict[str, str] = ("desk",),
        clock: Clock | None = None,
        fetch_timeout: str = "20s",
        defaults: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Runtime:
        root = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
        specs = destinations if isinstance(destinations, dict) else list(destinations)
        config_dir = write_config(root, feeds, specs, fetch_timeout, defaults)
        config: Config = load_config(config_dir, settings_from_env(env or {}))
        rt = Runtime(
            config=config,
            matcher=Matcher(config.watchlists),
            store=store,
            outbox=outbox,
            client=client,
            notifiers={d: FakeNotifier(d) for d in destinations},
            clock=clock or Clock(),
            destinations=Destinations(engine),
        )
        store.sync_feeds(rt.feed_defs(), rt.clock())
        return rt

    yield make
    await client.aclose()


def notifier_of(rt: Runtime, name: str = "desk") -> FakeNotifier:
    notifier = rt.notifiers[name]
    assert isinstance(notifier, FakeNotifier)
    return notifier
