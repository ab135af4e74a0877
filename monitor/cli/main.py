"""The `monitor` command line, as specified in CONTRACT.md.

Exit codes: 0 success; 1 invalid config (or a failed `send-test`, or bad `match` input);
2 the database cannot be reached, or, for `monitor run` (with or without --once) on SQLite,
another `monitor run` holds the database file (the message names it). Command output goes to
stdout, logs and problems to stderr.

`monitor run` on SQLite holds an exclusive lock on `<database file>.lock` for its whole life
(SQLite serves one worker); on PostgreSQL any number of `monitor run` workers may share the
database, each with its own identity (monitor.scheduler, monitor.edges.claims and .leases).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from monitor import __version__
from monitor.cli import backtest as backtest_cli
from monitor.cli import bootstrap
from monitor.cli.status import print_status
from monitor.core.errors import ConfigError, DatabaseUnavailable, PermanentError
from monitor.core.match import Matcher
from monitor.core.model import Article, Hit
from monitor.core.render import send_test_view, snippet
from monitor.edges import migrate
from monitor.edges.config import Config, load_config, load_watchlists
from monitor.edges.db import DatabaseInUse, make_engine
from monitor.edges.destinations import Destinations
from monitor.edges.leases import Leases
from monitor.edges.outbox import Outbox
from monitor.edges.settings import settings_from_env
from monitor.edges.state import State
from monitor.edges.store import Store
from monitor.pipeline.runtime import utc_now
from monitor.scheduler import Daemon

log = logging.getLogger("monitor")

EXIT_OK, EXIT_CONFIG, EXIT_DATABASE = 0, 1, 2


def _config_dir(args: argparse.Namespace) -> Path:
    value = getattr(args, "config", None) or os.environ.get("MONITOR_CONFIG") or "config"
    return Path(value)


def _problems(exc: ConfigError) -> int:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return EXIT_CONFIG


def cmd_check(args: argparse.Namespace) -> int:
    config = bootstrap.load(_config_dir(args), os.environ)
    print(
        f"OK: {len(config.feeds)} feeds, {len(config.watchlists)} watchlists, "
        f"{len(config.destinations)} destinations"
    )
    return EXIT_OK


def _prepare_database(config: Config) -> Store:
    engine = bootstrap.engine_for(config)
    if config.settings.auto_migrate:
        migrate.upgrade(engine)
    else:
        missing = migrate.pending(engine)
        if missing:
            raise DatabaseUnavailable(
                f"the schema is behind by {len(missing)} migration(s) and MONITOR_AUTO_MIGRATE=0:"
                " run `monitor db upgrade`"
            )
    return Store(engine)


async def _run(
    config: Config, once: bool, stdout: TextIO, *, alone: bool, lease: timedelta | None
) -> int:
    store = _prepare_database(config)
    if alone:
        await asyncio.to_thread(bootstrap.forget_leases, store.engine)
    leases = Leases(store.engine, bootstrap.worker_id())
    log.info("worker %s", leases.owner)
    notice, notice_bot = bootstrap.operator_notice(config)
    rt = bootstrap.build_runtime(config, store.engine, stdout, notice)
    try:
        await asyncio.to_thread(store.sync_feeds, rt.feed_defs(), utc_now())
        if once:
            return await _once(Daemon(rt, leases=leases, lease=lease))
        state = State(store.engine)
        daemon = Daemon(
            rt,
            leases=leases,
            lease=lease,
            rebuild=lambda current: bootstrap.rebuild_runtime(current, stdout),
            state=state,
            companions=bootstrap.companions(config, store.engine, state, leases, lease),
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, daemon.stop)
        try:
            await daemon.run()
        finally:
            rt = daemon.runtime  # the config in force at the end, reloads included
        return EXIT_OK
    finally:
        await bootstrap.close_runtime(rt)
        if notice_bot is not None:
            await bootstrap.shutdown_bot(notice_bot)
        store.engine.dispose()


async def _once(daemon: Daemon) -> int:
    reports, delivered = await daemon.once()
    failed = [r for r in reports if r.error]
    for r in failed:
        print(f"feed {r.feed_id}: {r.error}", file=sys.stderr)
    print(
        f"polled {len(reports)} feeds ({len(failed)} failed): "
        f"{sum(r.new for r in reports)} new articles, "
        f"{sum(r.alerts for r in reports)} alerts queued; "
        f"sent {delivered.sent}, retry later {delivered.retried}, "
        f"failed {delivered.failed}",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    config = bootstrap.load(_config_dir(args), os.environ)
    lease = bootstrap.lease_override(os.environ)
    bootstrap.configure_logging(args.log_level, config.settings)
    with bootstrap.sole_worker(config) as alone:  # held until the process ends
        return asyncio.run(_run(config, args.once, sys.stdout, alone=alone, lease=lease))


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    config = bootstrap.load(_config_dir(args), os.environ)
    engine = bootstrap.engine_for(config)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    print(f"database is up to date: {engine.url.render_as_string(hide_password=True)}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    # Status must work while the config on disk is broken: that is when it is needed most.
    settings = settings_from_env(os.environ)
    config: Config | None
    try:
        config = load_config(_config_dir(args), settings)
    except ConfigError as exc:
        config = None
        for problem in exc.problems:
            print(f"config on disk is invalid: {problem}", file=sys.stderr)
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        missing = migrate.pending(engine)
        if missing:
            print("the database has no current schema yet: run `monitor db upgrade` or "
                  "`monitor run`", file=sys.stderr)  # fmt: skip
            return EXIT_DATABASE
        print_status(Store(engine), Outbox(engine), State(engine), config, utc_now(), sys.stdout,
                     Destinations(engine))  # fmt: skip
    finally:
        engine.dispose()
    return EXIT_OK


def _match_lines(lines: Sequence[str], matcher: Matcher, out: TextIO) -> int:
    status = EXIT_OK
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError("each line must be a JSON object")
            for key in ("title", "summary", "lang", "url", "source"):
                if item.get(key) is not None and not isinstance(item[key], str):
                    raise ValueError(f"{key!r} must be a string")
            article = Article(
                feed_id=str(item.get("source") or ""),
                guid=str(item.get("id")),
                url=item.get("url"),
                title=str(item.get("title") or ""),
                summary=str(item.get("summary") or ""),
                lang=item.get("lang"),
            )
        except ValueError as exc:
            print(f"line {number}: {exc}", file=sys.stderr)
            out.write(json.dumps({"line": number, "error": str(exc)}) + "\n")
            status = EXIT_CONFIG
            continue
        found = matcher.match(article)
        out.write(
            json.dumps(
                {
                    "id": item.get("id"),
                    "watchlists": sorted(m.watchlist_id for m in found),
                    "hits": {m.watchlist_id: list(m.terms) for m in found},
                    "why": {m.watchlist_id: _why(article, m.hits) for m in found},
                },
                ensure_ascii=False,
            )
            + "\n"
        )
    return status


def _why(article: Article, hits: Sequence[Hit]) -> list[dict[str, str]]:
    """Each hit with its field and a short snippet, the hit marked «like this»."""
    out = []
    for hit in hits:
        before, text, after = snippet(article.text(hit.field), hit.start, hit.end, width=80)
        out.append({"term": hit.term, "field": hit.field, "snippet": f"{before}«{text}»{after}"})
    return out


def cmd_match(args: argparse.Namespace) -> int:
    matcher = Matcher(load_watchlists(_config_dir(args)))
    if args.file in (None, "-"):
        lines = sys.stdin.read().splitlines()
    else:
        lines = Path(args.file).read_text(encoding="utf-8").splitlines()
    return _match_lines(lines, matcher, sys.stdout)


def cmd_backtest(args: argparse.Namespace) -> int:
    config = bootstrap.load(_config_dir(args), os.environ)
    return backtest_cli.run_backtest(config, args, sys.stdout, sys.stderr)


async def _send_test(config: Config, name: str) -> int:
    spec = config.destinations.get(name)
    if spec is None:
        known = ", ".join(sorted(config.destinations)) or "none"
        print(f"unknown destination {name!r} (known: {known})", file=sys.stderr)
        return EXIT_CONFIG
    notifier = bootstrap.build_notifier(name, spec, config.settings, sys.stdout, {})
    try:
        external_id = await notifier.send(send_test_view(utc_now()))
    except Exception as exc:
        kind = "permanent" if isinstance(exc, PermanentError) else "temporary"
        print(f"send-test {name}: FAILED ({kind}): {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        await notifier.aclose()
    suffix = f" (id {external_id})" if external_id else ""
    print(f"send-test {name}: delivered{suffix}", file=sys.stderr)
    return EXIT_OK


def cmd_send_test(args: argparse.Namespace) -> int:
    config = bootstrap.load(_config_dir(args), os.environ)
    bootstrap.configure_logging(args.log_level, config.settings)
    return asyncio.run(_send_test(config, args.destination))


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="config folder (default: $MONITOR_CONFIG, else ./config)",
    )
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        type=lambda v: logging.getLevelName(v.upper()),
        help="DEBUG, INFO (default), WARNING or ERROR",
    )
    parser = argparse.ArgumentParser(
        prog="monitor", description="Media-monitoring alert daemon.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, func: Callable[[argparse.Namespace], int], text: str
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=text, description=text)
        p.set_defaults(func=func)
        return p

    run = add("run", cmd_run, "run the daemon (poll, match, alert) until SIGTERM/SIGINT")
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, exit")
    add("check", cmd_check, "validate the config folder")
    match = add("match", cmd_match, "dry-run the watchlists on JSON lines (no database)")
    match.add_argument("file", nargs="?", metavar="FILE|-", help="JSON lines (default: stdin)")
    add("status", cmd_status, "feeds and alert queues, as tables")
    backtest = add("backtest", cmd_backtest, "replay stored articles through the watchlists")
    backtest_cli.add_arguments(backtest)
    db = add("db", lambda _a: 0, "database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply the migrations")
    upgrade.set_defaults(func=cmd_db_upgrade)
    send = add("send-test", cmd_send_test, "send a test alert to one destination")
    send.add_argument("destination")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not hasattr(args, "log_level"):
        args.log_level = logging.INFO
    if args.command not in ("run", "send-test"):
        bootstrap.configure_logging(logging.WARNING)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        return _problems(exc)
    except DatabaseInUse as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except DatabaseUnavailable as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return EXIT_DATABASE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `monitor status | head`: the reader left; say nothing more, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code
