"""Group commit: the polls of a cycle hand their ingests to one `Ingester`, which stores those
that wait together in one transaction (`Store.ingest_many`).

Contract: `Ingester(store, clustering, lanes=, most=)`; `await ingester.ingest(job)` returns
the job's `IngestResult` once it is committed, or raises what storing it raised. At most
`lanes` transactions run at once (each in a thread); while they do, new jobs queue, and the
next transaction takes up to `most` of them, one per feed, in the order they came. A job that
arrives when a lane is free is stored at once, alone: batching costs no latency, it only
happens when the database is the bottleneck, which is when it pays.

Failures: `DatabaseUnavailable` fails every job of the batch (each poll reports it, and the
cycle stops as it would for one). Anything else (the database refusing one feed's rows, a bug
in a plan) is retried job by job, so it fails only the job that causes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from monitor.core.errors import DatabaseUnavailable
from monitor.edges.ingest import Ingest, IngestResult
from monitor.edges.store import Store
from monitor.edges.stories import Clustering

__all__ = ["Ingester"]

log = logging.getLogger("monitor.poll")

_Waiting = tuple[Ingest, "asyncio.Future[IngestResult]"]


class Ingester:
    def __init__(
        self, store: Store, clustering: Clustering, *, lanes: int = 2, most: int = 8
    ) -> None:
        if lanes < 1 or most < 1:
            raise ValueError("an ingester needs at least one lane and one job a batch")
        self.store = store
        self.clustering = clustering
        self.lanes = lanes
        self.most = most
        self._waiting: list[_Waiting] = []
        self._running: set[asyncio.Task[None]] = set()

    async def ingest(self, job: Ingest) -> IngestResult:
        done: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._waiting.append((job, done))
        self._start()
        return await done

    def _start(self) -> None:
        while self._waiting and len(self._running) < self.lanes:
            batch: list[_Waiting] = []
            later: list[_Waiting] = []
            feeds: set[str] = set()
            for waiting in self._waiting:
                job = waiting[0]
                # One job per feed in a transaction: a batch counts "new" per feed.
                if len(batch) < self.most and job.feed_id not in feeds:
                    batch.append(waiting)
                    feeds.add(job.feed_id)
                else:
                    later.append(waiting)
            self._waiting = later
            task = asyncio.create_task(self._store(batch))
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._start()

    async def _store(self, batch: Sequence[_Waiting]) -> None:
        jobs = [job for job, _ in batch]
        try:
            results = await asyncio.to_thread(self.store.ingest_many, jobs, self.clustering)
        except DatabaseUnavailable as exc:
            for _, done in batch:
                _fail(done, exc)
            return
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            log.info("a batch of %d ingests failed (%s); storing them one by one",
                     len(batch), type(exc).__name__)  # fmt: skip
            for job, done in batch:
                try:
                    (result,) = await asyncio.to_thread(
                        self.store.ingest_many, [job], self.clustering
                    )
                except Exception as alone:
                    _fail(done, alone)
                else:
                    _succeed(done, result)
            return
        for (_, done), result in zip(batch, results, strict=True):
            _succeed(done, result)


def _succeed(done: asyncio.Future[IngestResult], result: IngestResult) -> None:
    if not done.done():  # its poll may have been cancelled meanwhile
        done.set_result(result)


def _fail(done: asyncio.Future[IngestResult], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
