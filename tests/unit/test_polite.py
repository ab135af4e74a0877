"""Politeness: the spacing of starts to one host, and `run`: every item once, results in
order, within the limits in all and per host, a busy host holding no slot that another
could use, and no task per waiting item."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from monitor.pipeline.polite import Politeness


class Probe:
    """Work that records how many items run at once, in all and per host, and can be held."""

    def __init__(self) -> None:
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.started: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.tasks_seen = 0
        self.changed = asyncio.Event()  # set at every start

    async def until_started(self, count: int) -> None:
        while len(self.started) < count:
            await self.changed.wait()
            self.changed.clear()

    def gate(self, url: str) -> asyncio.Event:
        return self.gates.setdefault(url, asyncio.Event())

    async def work(self, url: str) -> str:
        host = url.split("/")[2] if "://" in url and not url.startswith("file:") else "file"
        self.started.append(url)
        self.changed.set()
        self.tasks_seen = max(self.tasks_seen, len(asyncio.all_tasks()))
        for key in (host, "*"):
            self.now[key] += 1
            self.peak[key] = max(self.peak[key], self.now[key])
        try:
            if url.endswith("/boom"):
                raise ValueError(url)
            if url in self.gates:
                await self.gates[url].wait()
            await asyncio.sleep(0)  # let the others start, if the limits allow
            return url.upper()
        finally:
            for key in (host, "*"):
                self.now[key] -= 1


def _same(url: str) -> str:
    return url


async def test_every_item_runs_once_and_results_keep_the_input_order() -> None:
    urls = [f"http://h{n % 7}.example/{n}" for n in range(200)] + ["file:///x.xml"]
    probe = Probe()
    got = await Politeness(16, 3, 0).run(urls, _same, probe.work)
    assert got == [u.upper() for u in urls]
    assert sorted(probe.started) == sorted(urls)
    assert probe.peak["*"] <= 16
    assert all(probe.peak[f"h{n}.example"] <= 3 for n in range(7))


async def test_a_failure_is_returned_in_its_place_and_the_rest_go_on() -> None:
    urls = ["http://a.example/1", "http://a.example/boom", "http://b.example/3"]
    got = await Politeness(2, 1, 0).run(urls, _same, Probe().work)
    assert got[0] == "HTTP://A.EXAMPLE/1" and got[2] == "HTTP://B.EXAMPLE/3"
    assert isinstance(got[1], ValueError)


async def test_waiting_items_are_not_tasks() -> None:
    # Ten thousand feeds, sixteen at a time: never more than sixteen tasks of the run.
    urls = [f"http://h{n % 50}.example/{n}" for n in range(10_000)]
    probe = Probe()
    await Politeness(16, 16, 0).run(urls, _same, probe.work)
    assert probe.tasks_seen <= 16 + 1  # the test's own task, and the run's
    assert len(probe.started) == 10_000


async def test_a_busy_host_holds_no_slot_another_host_could_use() -> None:
    # Host a has one slot and three feeds, the first of them held; b's feed must not wait
    # behind a's queue, though a's feeds come first.
    urls = ["http://a.example/1", "http://a.example/2", "http://a.example/3",
            "http://b.example/1"]  # fmt: skip
    probe = Probe()
    held = probe.gate("http://a.example/1")
    run = asyncio.create_task(Politeness(2, 1, 0).run(urls, _same, probe.work))
    await probe.until_started(2)
    assert probe.started == ["http://a.example/1", "http://b.example/1"]
    held.set()
    assert len(await run) == 4
    assert probe.started[2:] == ["http://a.example/2", "http://a.example/3"]
    assert probe.peak["a.example"] == 1


class FakeClock:
    """The clock and sleep of a Politeness: sleeping moves the clock, and is recorded."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


async def test_requests_to_one_host_are_spaced() -> None:
    time = FakeClock()
    polite = Politeness(8, 2, 0.25, clock=time.clock, sleep=time.sleep)
    starts = []
    urls = ["http://a.example/1", "http://a.example/2", "http://B.example/1",
            "file:///feeds/x.xml", "http://a.example/3", "https://a.example:8443/4"]  # fmt: skip
    for url in urls:
        async with polite.slot(url):
            starts.append((url, time.now))
    assert time.waits == [0.25, 0.25, 0.25]
    assert [t for _, t in starts] == [0.0, 0.25, 0.25, 0.25, 0.5, 0.75]
    time.now += 10  # a quiet spell: no wait
    async with polite.slot("http://a.example/5"):
        assert time.waits == [0.25, 0.25, 0.25]


async def test_requests_to_one_host_are_spaced_in_a_run() -> None:
    time = FakeClock()
    urls = ["http://a.example/1", "http://a.example/2", "http://b.example/1"]
    starts: dict[str, float] = {}

    async def work(url: str) -> None:
        starts[url] = time.now

    polite = Politeness(8, 1, 0.25, clock=time.clock, sleep=time.sleep)
    await polite.run(urls, _same, work)
    assert starts == {"http://a.example/1": 0.0, "http://b.example/1": 0.0,
                      "http://a.example/2": 0.25}  # fmt: skip


async def test_slots_held_outside_the_run_are_waited_for() -> None:
    polite = Politeness(1, 1, 0)
    probe = Probe()
    inside = asyncio.Event()
    leave = asyncio.Event()

    async def outside() -> None:
        async with polite.slot("http://a.example/0"):
            inside.set()
            await leave.wait()

    holder = asyncio.create_task(outside())
    await inside.wait()
    run = asyncio.create_task(polite.run(["http://a.example/1"], _same, probe.work))
    # A few turns of the loop: the run's task reaches the slot it waits for, and no further.
    for _ in range(5):
        await asyncio.sleep(0)
    assert probe.started == [] and not run.done()  # the only slot in all is taken
    leave.set()
    assert await run == ["HTTP://A.EXAMPLE/1"]
    await holder


async def test_cancelling_the_run_cancels_what_runs() -> None:
    probe = Probe()
    urls = ["http://a.example/1", "http://b.example/1", "http://c.example/1"]
    for url in urls:
        probe.gate(url)
    run = asyncio.create_task(Politeness(2, 1, 0).run(urls, _same, probe.work))
    await probe.until_started(2)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert probe.now["*"] == 0  # both running items were unwound
    assert probe.started == urls[:2]
