"""Parsing feed bodies off the event loop: in worker processes when the machine has cores to
spare, in a thread when it has not.

Contract:

- `ParsePool(workers)`; `await pool.parse(body, feed_id=, url=, content_type=, lang_hint=,
  matcher=, feed_tags=)` returns what `parse_worker.prepare` returns (the parsed feed, languages
  guessed, every entry prepared: `ParsedFeed.prepared`) and raises what it raises (`NotAFeed`,
  `PermanentError`). With `workers=0` it runs in a thread of the loop's default executor, and
  leaves the matching to the daemon (`Prepared.matches` None: see `core.prepare`); otherwise
  in one of `workers` processes, which match with `matcher`'s watchlists
  (`python -m monitor.edges.parse_worker`), and the result comes back pickled. A worker is
  sent the watchlists before its first parse with a matcher it has not seen (once per config
  reload, not once per feed). The processes
  start at the first parse (or `start()`); until one has said it is ready (a second or so of
  imports) parses run in a thread, so a short `--once` run never waits for them, and where
  processes cannot start at all threads it is, with a warning. `aclose()` stops them. A pool
  is shared across config reloads (it holds no config) and closed with the HTTP client.
- `default_workers(cpus)`: one process per core, at most MAX_WORKERS; none on one core.

Why processes: a feed's entries cost a few hundred µs each of pure Python (lxml's iterparse
calls back into Python for every element, descriptions become text in Python). A thread shares
the GIL with the event loop, the matcher and the database driver, so a busy daemon used one
core however many it had; parsing is the part that needs nothing but its bytes.

Why not `concurrent.futures.ProcessPoolExecutor`: its `spawn` children import the parent's
`__main__` (for `monitor run`, the whole daemon: about 100 MB each) and `fork` would copy the
locks of the daemon's threads in whatever state they were. A worker here imports the parser
only, and gets an environment without the MONITOR_* variables, secrets among them.

A worker that dies (a crash in a C extension on hostile input, the OOM killer) is replaced and
the parse is tried once more on a fresh one; a body that kills two workers is its feed's
error (`PermanentError`), and the daemon goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import sys
from collections.abc import Collection, Coroutine

from monitor.core.errors import NotAFeed, PermanentError
from monitor.core.match import Matcher
from monitor.edges.parse import ParsedFeed
from monitor.edges.parse_worker import READY, frame, prepare

__all__ = ["MAX_WORKERS", "ParsePool", "default_workers"]

MAX_WORKERS = 4
#: Seconds a worker gets to start (imports), and to exit once its stdin closes.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 5.0
_LENGTH = struct.Struct(">I")
#: The errors a worker reports by name; anything else it reports is a bug.
_ERRORS: dict[str, type[PermanentError]] = {"NotAFeed": NotAFeed, "PermanentError": PermanentError}

log = logging.getLogger("monitor.parse")


def default_workers(cpus: int | None = None) -> int:
    """Processes worth starting on a machine with `cpus` cores (default: this one's).

    One per core, not one per core beyond the daemon's: the daemon spends much of a cycle
    waiting on the network and the database, and a worker only when it has a body. With
    one worker on two cores the bench's cold cycle queued on it and left a tenth of the
    machine idle; two were 10-15 % faster. A one-core machine gains nothing from a process:
    a thread parses there."""
    count = cpus if cpus is not None else (os.cpu_count() or 1)
    return 0 if count <= 1 else min(MAX_WORKERS, count)


class WorkerDied(Exception):
    """The worker process ended (or broke its pipe) before it answered."""


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.version: int | None = None  # of the watchlists it holds

    @classmethod
    async def start(cls) -> _Worker:
        # No MONITOR_* variables: the worker needs none, and they carry the secrets.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
        # A session of its own: Ctrl-C in a terminal signals the daemon, which stops its
        # workers in order, not every worker in the middle of a parse.
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor.edges.parse_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
            start_new_session=True,
        )  # fmt: skip
        worker = cls(process)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                hello = await worker._read()
        except BaseException:
            await worker.stop()
            raise
        if hello != READY:
            await worker.stop()
            raise WorkerDied(f"the parse worker said {hello[:40]!r} instead of ready")
        return worker

    async def _read(self) -> bytes:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            head = await stdout.readexactly(_LENGTH.size)
            (size,) = _LENGTH.unpack(head)
            return await stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise WorkerDied(
                f"the parse worker ended (exit code {self.process.returncode})"
            ) from exc

    async def ask(self, request: bytes) -> tuple[object, ...]:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(frame(request))
            await stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise WorkerDied("the parse worker's pipe is closed") from exc
        reply: tuple[object, ...] = pickle.loads(await self._read())  # noqa: S301 (our child)
        return reply

    async def stop(self) -> None:
        if self.process.returncode is not None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                await self.process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


class ParsePool:
    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError(f"workers must be 0 or more, not {workers}")
        self.workers = workers
        # Idle workers; None is posted when the last one is gone for good: "use a thread".
        self._idle: asyncio.Queue[_Worker | None] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._starts = 0  # workers being started
        self._closed = False
        # The matcher the workers are told about, its version, and the request telling them.
        self._matcher: Matcher | None = None
        self._version = 0
        self._watchlists = b""

    def pids(self) -> list[int]:
        """The worker processes' ids, for measuring them."""
        return sorted(w.process.pid for w in self._all)

    async def start(self, wait: bool = False) -> bool:
        """Start the workers (in the background unless `wait`); whether any is running."""
        if self.workers and not self._started:
            self._started = True
            self._starts += self.workers
            self._spawn(*(self._add_worker() for _ in range(self.workers)))
        if wait:
            await asyncio.gather(*self._tasks)
        return bool(self._all)

    def _spawn(self, *work: Coroutine[None, None, None]) -> None:
        for coro in work:
            task = asyncio.create_task(coro)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _add_worker(self) -> None:
        """Start one worker (`_starts` was counted up for it)."""
        try:
            worker = await _Worker.start()
        except (OSError, WorkerDied, TimeoutError) as exc:
            log.warning("a parse worker could not start (%s: %s)", type(exc).__name__, exc)
            worker = None
        finally:
            self._starts -= 1
        if worker is not None and not self._closed:
            self._all.add(worker)
            self._idle.put_nowait(worker)
            return
        if worker is not None:
            await worker.stop()
        if not self._all and not self._starts:
            # None running and none coming: wake every parse waiting for one, to a thread.
            if not self._closed:
                log.warning("no parse worker is running: parsing in a thread")
            self.workers = 0
            self._idle.put_nowait(None)

    async def parse(
        self, body: bytes, *, feed_id: str, url: str, content_type: str | None,
        lang_hint: str | None, matcher: Matcher | None = None, feed_tags: Collection[str] = (),
    ) -> ParsedFeed:  # fmt: skip
        await self.start()
        version, tell = (None, b"") if matcher is None else self._version_of(matcher)
        request = pickle.dumps(
            ("parse", body, feed_id, url, content_type, lang_hint, version, tuple(feed_tags))
        )
        for attempt in (1, 2):
            worker = await self._take()
            if worker is None:
                # No core to spare: the daemon matches what is new, later (core.prepare).
                return await asyncio.to_thread(prepare, body, feed_id=feed_id, url=url,
                                               content_type=content_type,
                                               lang_hint=lang_hint)  # fmt: skip
            try:
                if version is not None and worker.version != version:
                    await _tell(worker, version, tell)
                reply = await worker.ask(request)
            except WorkerDied as exc:
                log.error("feed %s: %s; starting a new one", feed_id, exc)
                self._lose(worker)
                if attempt == 2:
                    raise PermanentError(
                        f"{url}: the parser process died twice on this body"
                    ) from None
                continue
            except BaseException:
                # Cancelled mid-exchange (the fetch deadline, a stop): the pipe may hold half
                # a request or an answer nobody reads. That worker cannot be trusted again.
                self._lose(worker)
                raise
            self._idle.put_nowait(worker)
            return _result(reply, url)
        raise AssertionError("unreachable")

    def _version_of(self, matcher: Matcher) -> tuple[int, bytes]:
        """The version of `matcher`'s watchlists, and the request that tells a worker them."""
        if matcher is not self._matcher:
            self._matcher = matcher
            self._version += 1
            self._watchlists = pickle.dumps(
                ("watchlists", self._version, matcher.watchlists), protocol=pickle.HIGHEST_PROTOCOL
            )
        return self._version, self._watchlists

    async def _take(self) -> _Worker | None:
        """An idle worker, waiting for one if all are busy; None: parse in a thread (none
        has started yet, or none can run)."""
        while True:
            if not self._all and self._idle.empty():
                return None
            worker = await self._idle.get()
            if worker is None:
                self._idle.put_nowait(None)  # for the next one waiting
                return None
            if worker.process.returncode is None:
                return worker
            self._lose(worker)  # died while idle (the OOM killer): not this body's doing

    def _lose(self, worker: _Worker) -> None:
        self._all.discard(worker)
        self._spawn(worker.stop())
        if not self._closed:
            self._starts += 1
            self._spawn(self._add_worker())

    async def aclose(self) -> None:
        """Stop the workers; parses after this run in a thread."""
        self._closed = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        workers, self._all = list(self._all), set()
        self.workers = 0
        await asyncio.gather(*(w.stop() for w in workers))
        self._idle.put_nowait(None)


async def _tell(worker: _Worker, version: int, request: bytes) -> None:
    """Send `worker` the watchlists of `version`. One that cannot compile them (a bug) is
    said once, and then parses with keys only: the daemon matches in its place."""
    reply = await worker.ask(request)
    if reply[0] != "ok":
        log.error("a parse worker could not compile the watchlists: %s", reply[-1])
    worker.version = version


def _result(reply: tuple[object, ...], url: str) -> ParsedFeed:
    kind = reply[0]
    if kind == "ok" and isinstance(reply[1], ParsedFeed):
        return reply[1]
    if kind == "error":
        raise _ERRORS.get(str(reply[1]), PermanentError)(str(reply[2]))
    raise RuntimeError(f"{url}: the parser failed: {reply[-1]}")
