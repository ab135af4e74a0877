"""End-to-end speed of the daemon's own code: `make bench`.

    python -m tests.bench.bench [--feeds F] [--entries E] [--terms T] [--chats C]
                                [--concurrency N] [--pg-url URL] [--json PATH] [--profile DIR]

What runs:

1. A corpus of F feeds x E entries (tests/bench/corpus.py: 13 languages, 1-3 KB HTML
   descriptions, ~7.5% on a topic of the shipped watchlists), served by tests/bench/serve.py in
   a separate process on 127.0.0.1 (ETag / If-None-Match -> 304, or, switched, the same 200
   body with no validators); the fake Telegram Bot API (tests/fakes/bot_api.py) in another.
2. The real daemon code, assembled as `monitor.cli.bootstrap.build_runtime` does: a config
   folder with the shipped watchlists plus one watchlist of T generated terms, C Telegram chats
   (flood control off: `burst_limit: 0`) pointed at the fake Bot API, the feeds on
   127.0.0.1; a fresh PostgreSQL database created (and migrated) for the run, dropped after.
   Politeness is set for a single host: `concurrency`, `per_host_concurrency` = N and
   `per_host_spacing` = 0, since every feed here lives on 127.0.0.1 (the defaults, 2 per host
   0.25 s apart, would make this a bench of the politeness rule). `poll_feeds` is called as
   `monitor run --once` calls it (with `concurrency=N` when it takes one).
3. Measured, each as wall-clock rate (and CPU-seconds of this process beside it):
   - cold cycle: every feed new; articles/s from fetch to stored article, matches, stories and
     queued alerts;
   - warm cycle, every feed answering 304: feeds/s (best of --rounds);
   - warm cycle, every feed resending the same 200 body without validators: feeds/s;
   - delivery: alerts/s through `deliver_due` to the fake Bot API, once with Telegram's pacing
     lifted (the pipeline's own cost: outbox, rendering, PTB, HTTP) and once paced as
     shipped (one bot may send about 30 messages/s in all, whatever the number of chats:
     that rate is the pacer's, not the code's);
   - peak memory: this process's RSS high-water mark (getrusage) once the daemon phases are
     done, plus each parse process's (VmHWM; MONITOR_PARSE_WORKERS, by default one per core,
     at most 4), which the bench starts before the cold cycle as the daemon would
     have by then (the corpus lives in the server process; the baselines run after the
     reading);
   - the naive pipeline (tests/bench/naive.py) on the same feeds, shipped watchlists only, and
     `feedparser.parse` with its defaults alone on the same bodies.
4. A table, JSON (--json, default data/bench.json) and one last line:
   `bench: cold <r1>x naive, <r2>x feedparser-alone, warm-304 <n> feeds/s, peak <m> MB`.

`--profile DIR` writes cProfile stats of the cold and warm cycles and of delivery there (the
event loop and the worker threads together; `--profile-clock cpu` counts each thread's CPU
time instead of wall time, which hides lock and commit waits); read them with `python -m pstats`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import inspect
import json
import logging
import os
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy import Engine, func, select, update

from monitor.cli import bootstrap
from monitor.core.pace import Limits, Pacer, Window
from monitor.edges.config import Config, load_config
from monitor.edges.db import make_engine
from monitor.edges.migrate import upgrade
from monitor.edges.notify.gate import TelegramGate
from monitor.edges.notify.telegram import TelegramNotifier, make_bot
from monitor.edges.schema import PENDING, SENT, alerts, articles, matches
from monitor.edges.settings import settings_from_env
from monitor.pipeline.deliver import deliver_due
from monitor.pipeline.poll import PollReport, poll_feeds
from monitor.pipeline.runtime import Runtime, close_notifiers
from tests.bench.bench_match import generated_terms
from tests.bench.corpus import TOPICAL_SHARE
from tests.bench.naive import run_feedparser_alone, run_naive
from tests.bench.procs import ROOT, BotApiProcess, FeedServerProcess
from tests.fakes.databases import scratch_database

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")
log = logging.getLogger("bench")


@dataclass(frozen=True)
class Timed:
    seconds: float
    cpu_seconds: float


@contextmanager
def timed(box: list[Timed]) -> Iterator[None]:
    start, cpu = time.perf_counter(), time.process_time()
    yield
    box.append(Timed(time.perf_counter() - start, time.process_time() - cpu))


def tree_state() -> dict[str, Any]:
    """Which code was measured: HEAD and a digest of the uncommitted changes on top of it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else ""

    diff = git("diff", "HEAD")
    changed = [line[3:] for line in git("status", "--short").splitlines()]
    return {"head": git("rev-parse", "--short", "HEAD").strip(), "changed_files": len(changed),
            "diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12]}  # fmt: skip


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the live processes `pids` used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores, every process: /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def worker_peak_mb(pid: int) -> float:
    """A live child's RSS high-water mark (VmHWM), in MB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# --- set-up ---------------------------------------------------------------------------------


def fresh_database(admin_url: str) -> AbstractContextManager[str]:
    return scratch_database(admin_url, "monitor_bench")


def write_config(
    root: Path, server: FeedServerProcess, feeds: int, terms: int, chats: int, concurrency: int
) -> Path:
    """The config folder: monitor.yaml, feeds.yaml, the shipped watchlists and bench-terms."""
    (root / "watchlists").mkdir(parents=True)
    for path in sorted((ROOT / "config" / "watchlists").glob("*.yaml")):
        shutil.copy(path, root / "watchlists" / path.name)
    extra = generated_terms(terms, random.Random(20260204))
    (root / "watchlists" / "bench-terms.yaml").write_text(
        yaml.safe_dump({"name": "Bench terms", "match": {"any": extra}}, allow_unicode=True)
    )
    monitor = {
        "destinations": {
            f"chat-{k}": {"type": "telegram", "chat_id": 1000 + k, "burst_limit": 0}
            for k in range(chats)
        },
        "defaults": {
            "poll_interval": "10m",
            "concurrency": concurrency,
            "per_host_concurrency": concurrency,
            "per_host_spacing": 0,
        },
    }
    (root / "monitor.yaml").write_text(yaml.safe_dump(monitor))
    rows = [{"id": f"f{i}", "url": server.feed_url(i)} for i in range(feeds)]
    (root / "feeds.yaml").write_text(yaml.safe_dump({"feeds": rows}, width=200))
    return root


def unpaced_notifiers(rt: Runtime, settings_token: str, api_root: str) -> dict[str, Any]:
    """Telegram notifiers whose gate lets every call through at once (1 µs windows)."""
    free = Limits(overall=(Window(1, 1e-6),), chat=Window(1, 1e-6), group=Window(1, 1e-6))
    gate = TelegramGate(Pacer(free, margin=0))
    bot = make_bot(settings_token, api_root)
    out: dict[str, Any] = {}
    for name, spec in rt.config.destinations.items():
        assert spec.chat_id is not None
        out[name] = TelegramNotifier(name, bot, spec.chat_id, gate=gate)
    return out


async def poll(rt: Runtime, ids: list[str], concurrency: int) -> list[PollReport]:
    """poll_feeds as the tree holds it: with `concurrency=` when it takes one."""
    if "concurrency" in inspect.signature(poll_feeds).parameters:
        return await poll_feeds(rt, ids, concurrency=concurrency)
    return await poll_feeds(rt, ids)


class _ProfilingExecutor(ThreadPoolExecutor):
    """The loop's default executor, sized as asyncio sizes it, each worker thread profiled
    (cProfile sees one thread only: parsing, matching and storing run in `to_thread`)."""

    def __init__(self, timer: Callable[[], float]) -> None:
        self.timer = timer
        self.profiles: list[cProfile.Profile] = []
        super().__init__(max_workers=min(32, (os.cpu_count() or 1) + 4),
                         initializer=self._start)  # fmt: skip

    def _start(self) -> None:
        profile = cProfile.Profile(self.timer)
        self.profiles.append(profile)
        profile.enable()


#: What the profiles count: "wall" (waits included: locks, commits) or "cpu" (each thread's).
PROFILE_CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}
_profile_clock = ["wall"]


async def profiled(path: Path | None, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work`; with a path, profile it (event loop and worker threads) into that file."""
    if path is None:
        return await work()
    loop = asyncio.get_running_loop()
    timer = PROFILE_CLOCK[_profile_clock[0]]
    executor = _ProfilingExecutor(timer)
    loop.set_default_executor(executor)
    profile = cProfile.Profile(timer)
    profile.enable()
    try:
        return await work()
    finally:
        profile.disable()
        loop.set_default_executor(ThreadPoolExecutor())
        await asyncio.to_thread(executor.shutdown, wait=True)
        stats = pstats.Stats(profile)
        for worker in executor.profiles:
            worker.disable()
            stats.add(worker)
        path.parent.mkdir(parents=True, exist_ok=True)
        stats.dump_stats(path)


# --- the daemon phases --------------------------------------------------------------------


async def daemon_phases(
    args: argparse.Namespace, config: Config, server: FeedServerProcess, bot_api: BotApiProcess
) -> dict[str, Any]:
    engine = make_engine(config.settings.database_url.get_secret_value())
    upgrade(engine)
    rt = bootstrap.build_runtime(config, engine, StringIO())
    out: dict[str, Any] = {"poll_feeds_concurrency": (
        args.concurrency if "concurrency" in inspect.signature(poll_feeds).parameters
        else "its default")}  # fmt: skip
    # The daemon starts its parse processes at the first parse and parses in a thread until
    # they are up; a measured cycle starts with them up.
    out["parse_workers"] = rt.parser.workers
    out["parse_processes"] = await rt.parser.start(wait=True)
    try:
        now = datetime.now(UTC)
        await asyncio.to_thread(rt.store.sync_feeds, rt.feed_defs(), now)
        ids = [f.id for f in config.feeds]
        prof = args.profile

        box: list[Timed] = []
        workers, machine = cpu_seconds(rt.parser.pids()), machine_cpu_seconds()
        with timed(box):
            reports = await profiled(
                prof and prof / "cold.prof", lambda: poll(rt, ids, args.concurrency)
            )
        # The rest of the machine's CPU: PostgreSQL, the feed server, anything else running.
        elsewhere = {"parse processes": cpu_seconds(rt.parser.pids()) - workers,
                     "whole machine": machine_cpu_seconds() - machine}  # fmt: skip
        errors = [r for r in reports if r.error]
        if errors:
            log.warning("cold cycle: %d feeds failed, first: %s", len(errors), errors[0].error)
        new = sum(r.new for r in reports)
        out["cold"] = {
            "feeds": len(reports), "errors": len(errors), "articles": new,
            "matched": sum(r.matched for r in reports), "alerts": sum(r.alerts for r in reports),
            "seconds": box[-1].seconds, "cpu_seconds": box[-1].cpu_seconds,
            "articles_per_s": new / box[-1].seconds, "cpu_seconds_elsewhere": elsewhere,
        }  # fmt: skip
        out["rss_after_cold_mb"] = peak_rss_mb()

        for phase, validators in (("warm_304", True), ("warm_200", False)):
            server.validators(validators)
            best: Timed | None = None
            statuses: dict[str, int] = {}
            for round_ in range(args.rounds):
                box = []
                with timed(box):
                    path = prof / f"{phase}.prof" if prof and round_ == 0 else None
                    reports = await profiled(path, lambda: poll(rt, ids, args.concurrency))
                statuses = {}
                for r in reports:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                if best is None or box[-1].seconds < best.seconds:
                    best = box[-1]
            assert best is not None
            out[phase] = {
                "feeds": len(ids), "statuses": statuses, "rounds": args.rounds,
                "seconds": best.seconds, "cpu_seconds": best.cpu_seconds,
                "feeds_per_s": len(ids) / best.seconds,
            }  # fmt: skip
        server.validators(True)
        out["rss_after_polling_mb"] = peak_rss_mb()

        if not args.no_delivery:
            out |= await delivery_phases(args, rt, engine, bot_api)
        out["peak_rss_mb"] = peak_rss_mb()
        # The parse processes' own high-water marks count too: memory is the daemon's, whole.
        out["workers_peak_rss_mb"] = [worker_peak_mb(pid) for pid in rt.parser.pids()]

        with engine.connect() as conn:
            out["database"] = {
                "articles": conn.scalar(select(func.count()).select_from(articles)),
                "matches": conn.scalar(select(func.count()).select_from(matches)),
                "alerts": conn.scalar(select(func.count()).select_from(alerts)),
            }
    finally:
        await bootstrap.close_runtime(rt)
        engine.dispose()
    return out


async def delivery_phases(
    args: argparse.Namespace, rt: Runtime, engine: Engine, bot_api: BotApiProcess
) -> dict[str, Any]:
    """alerts/s through deliver_due: with Telegram's pacing lifted, then as shipped."""
    out: dict[str, Any] = {}
    config = rt.config
    # Delivery, the pipeline's own cost: Telegram's pacing lifted.
    token = config.settings.telegram_token
    assert token is not None
    fast = replace(rt, notifiers=unpaced_notifiers(rt, token.get_secret_value(),
                                                   config.settings.telegram_api_url))  # fmt: skip
    before = bot_api.messages()
    box = []
    with timed(box):
        path = args.profile / "deliver.prof" if args.profile else None
        report = await profiled(path, lambda: deliver_due(fast))
    delivered = bot_api.messages() - before
    out["deliver_unpaced"] = {
        "alerts_sent": report.sent, "messages_at_fake": delivered, "retried": report.retried,
        "failed": report.failed, "seconds": box[-1].seconds,
        "cpu_seconds": box[-1].cpu_seconds, "alerts_per_s": report.sent / box[-1].seconds,
    }  # fmt: skip
    await close_notifiers(fast)

    # Delivery as shipped: the same Telegram pacing the daemon uses (one gate per token).
    with engine.begin() as conn:
        again = select(alerts.c.id).where(alerts.c.status == SENT).order_by(alerts.c.id)
        conn.execute(
            update(alerts)
            .where(alerts.c.id.in_(again.limit(args.paced_alerts).scalar_subquery()))
            .values(status=PENDING, sent_at=None, external_id=None, attempts=0,
                    delivered_as=None, next_attempt_at=datetime.now(UTC) - timedelta(1))
        )  # fmt: skip
    before = bot_api.messages()
    box = []
    with timed(box):
        report = await deliver_due(rt)
    out["deliver_paced"] = {
        "alerts_sent": report.sent, "messages_at_fake": bot_api.messages() - before,
        "chats": args.chats, "seconds": box[-1].seconds,
        "alerts_per_s": report.sent / box[-1].seconds,
    }  # fmt: skip
    return out


# --- report -------------------------------------------------------------------------------


def table(result: dict[str, Any]) -> list[str]:
    d, n, f = result["daemon"], result.get("naive"), result.get("feedparser_alone")
    c = d["cold"]
    rows = [
        ("cold cycle (all new)", f"{c['articles_per_s']:.0f} articles/s",
         f"{c['articles']} articles, {c['matched']} matched, {c['alerts']} alerts queued, "
         f"{c['seconds']:.1f} s ({c['cpu_seconds']:.1f} CPU s"
         + "".join(f", {k} {v:.1f}" for k, v in c.get("cpu_seconds_elsewhere", {}).items())
         + f"), {c['errors']} errors"),
    ]  # fmt: skip
    for key, label in (("warm_304", "warm cycle, all 304"),
                       ("warm_200", "warm cycle, same 200 body")):  # fmt: skip
        w = d[key]
        rows.append((label, f"{w['feeds_per_s']:.0f} feeds/s",
                     f"best of {w['rounds']}: {w['seconds']:.2f} s ({w['cpu_seconds']:.2f} CPU s)"
                     f", {w['statuses']}"))  # fmt: skip
    if "deliver_unpaced" in d:
        u, p = d["deliver_unpaced"], d["deliver_paced"]
        rows.append(("delivery, pacing lifted", f"{u['alerts_per_s']:.0f} alerts/s",
                     f"{u['alerts_sent']} sent ({u['messages_at_fake']} at the fake), "
                     f"{u['seconds']:.1f} s ({u['cpu_seconds']:.1f} CPU s)"))  # fmt: skip
        rows.append(("delivery, Telegram pacing", f"{p['alerts_per_s']:.1f} alerts/s",
                     f"{p['alerts_sent']} sent to {p['chats']} chats in {p['seconds']:.1f} s "
                     "(paced: 1 per 1.1 s a chat, ~27/s a bot)"))  # fmt: skip
    workers = d.get("workers_peak_rss_mb", [])
    rows.append(("peak memory (RSS)", f"{total_peak_mb(d):.0f} MB",
                 f"daemon process {d['peak_rss_mb']:.0f} MB (after cold "
                 f"{d['rss_after_cold_mb']:.0f}, after polling {d['rss_after_polling_mb']:.0f})"
                 + "".join(f" + parse process {w:.0f} MB" for w in workers)))  # fmt: skip
    if n:
        rows.append(("naive pipeline", f"{n['articles_per_s']:.0f} articles/s",
                     f"{n['stored']} stored, {n['matched']} matched, {n['feeds']} feeds, "
                     f"{n['seconds']:.1f} s"))  # fmt: skip
    if f:
        rows.append(
            (
                "feedparser.parse alone",
                f"{f['entries_per_s']:.0f} entries/s",
                f"{f['entries']} entries, {f['feeds']} feeds, {f['seconds']:.1f} s",
            )
        )
    width = max(len(r[0]) for r in rows)
    return [f"{a:<{width}}  {b:>16}  {c}" for a, b, c in rows]


def total_peak_mb(d: dict[str, Any]) -> float:
    return float(d["peak_rss_mb"] + sum(d.get("workers_peak_rss_mb", [])))


def final_line(result: dict[str, Any]) -> str:
    d = result["daemon"]
    cold = d["cold"]["articles_per_s"]
    naive = result.get("naive", {}).get("articles_per_s")
    alone = result.get("feedparser_alone", {}).get("entries_per_s")
    r1 = f"{cold / naive:.1f}" if naive else "n/a"
    r2 = f"{cold / alone:.2f}" if alone else "n/a"
    return (
        f"bench: cold {r1}x naive, {r2}x feedparser-alone, "
        f"warm-304 {d['warm_304']['feeds_per_s']:.0f} feeds/s, peak {total_peak_mb(d):.0f} MB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=500)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--terms", type=int, default=1000, help="generated terms, extra list")
    parser.add_argument("--chats", type=int, default=4, help="Telegram destinations")
    parser.add_argument("--concurrency", type=int, default=64, help="feeds fetched at once")
    parser.add_argument("--rounds", type=int, default=3, help="warm cycles, best counts")
    parser.add_argument("--paced-alerts", type=int, default=30)
    parser.add_argument(
        "--baseline-feeds",
        type=int,
        default=100,
        help="feeds the naive and feedparser-alone runs take (the first ones)",
    )
    parser.add_argument("--parse-workers", help="MONITOR_PARSE_WORKERS (default: auto)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-delivery", action="store_true")
    parser.add_argument("--seed", type=int, default=20260204)
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="admin URL; a database is made")
    parser.add_argument("--json", type=Path, default=Path("data/bench.json"))
    parser.add_argument("--profile", type=Path, help="folder for cProfile stats")
    parser.add_argument("--profile-clock", choices=sorted(PROFILE_CLOCK), default="wall")
    args = parser.parse_args(argv)  # fmt: skip
    _profile_clock[0] = args.profile_clock
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = time.perf_counter()
    result: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                              "topical_share": TOPICAL_SHARE, "tree": tree_state(),
                              "load_before": os.getloadavg()}  # fmt: skip
    with (
        FeedServerProcess(args.feeds, args.entries, args.seed) as server,
        BotApiProcess() as bot_api,
        fresh_database(args.pg_url) as db_url,
        tempfile.TemporaryDirectory(prefix="monitor-bench-") as tmp,
    ):
        result["corpus"] = {"feeds": args.feeds, "entries": args.entries,
                            "bytes": server.corpus_bytes,
                            "generated_s": server.startup_s}  # fmt: skip
        print(f"corpus: {args.feeds} feeds x {args.entries} entries, "
              f"{server.corpus_bytes / 2**20:.0f} MiB of XML, served from {server.root} "
              f"(generated in {server.startup_s:.0f} s)", file=sys.stderr)  # fmt: skip
        root = write_config(Path(tmp) / "config", server, args.feeds, args.terms, args.chats,
                            args.concurrency)  # fmt: skip
        settings = settings_from_env({
            "MONITOR_DATABASE_URL": db_url, "MONITOR_TELEGRAM_TOKEN": bot_api.token,
            "MONITOR_TELEGRAM_API_URL": bot_api.root,
            **({"MONITOR_PARSE_WORKERS": args.parse_workers} if args.parse_workers else {}),
        })  # fmt: skip
        config = load_config(root, settings)
        result["watchlists"] = {w.id: len(w.all_terms) for w in config.watchlists}
        result["daemon"] = asyncio.run(daemon_phases(args, config, server, bot_api))
        if not args.no_baselines:
            urls = [server.feed_url(i) for i in range(min(args.feeds, args.baseline_feeds))]
            shipped = [w for w in config.watchlists if w.id != "bench-terms"]
            engine = make_engine(db_url)
            try:
                naive = run_naive(urls, shipped, engine)
            finally:
                engine.dispose()
            result["naive"] = {
                "feeds": naive.feeds, "entries": naive.entries, "stored": naive.stored,
                "matched": naive.matched, "seconds": naive.seconds,
                "cpu_seconds": naive.cpu_seconds, "articles_per_s": naive.rate,
            }  # fmt: skip
            alone = run_feedparser_alone(urls)
            result["feedparser_alone"] = {"feeds": alone.feeds, "entries": alone.entries,
                                          "seconds": alone.seconds,
                                          "entries_per_s": alone.rate}  # fmt: skip
    result["total_seconds"] = time.perf_counter() - started
    result["load_after"] = os.getloadavg()
    tree = result["tree"]
    print(f"tree {tree['head']} + {tree['changed_files']} changed files "
          f"(diff {tree['diff_sha1']}); {args.feeds} feeds x {args.entries} entries, "
          f"{sum(result['watchlists'].values())} terms in {len(result['watchlists'])} watchlists, "
          f"{args.chats} Telegram chats; concurrency = per_host_concurrency = {args.concurrency}, "
          f"per_host_spacing 0 (every feed is on 127.0.0.1); poll_feeds(concurrency="
          f"{result['daemon']['poll_feeds_concurrency']}); load average "
          f"{result['load_before'][0]:.1f} before, {result['load_after'][0]:.1f} after "
          f"({os.cpu_count()} cores)")  # fmt: skip
    for line in table(result):
        print(line)
    line = final_line(result)
    result["summary"] = line
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
