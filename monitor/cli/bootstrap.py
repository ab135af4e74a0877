"""The composition root: the one place that reads the environment and builds the edges.

Everything below the CLI receives its clients as arguments; this module creates them (engine,
store, outbox, HTTP client, notifiers, matcher) from the validated config and closes them again.

It also makes the worker's identity, `host:pid:random`, once per process (`worker_id`): the
owner of its feed claims and leases, unique even when a restarted container reuses host and
pid. `MONITOR_LEASE_SECONDS` (`lease_override`), when set, replaces both lease lengths
(claimed feeds, named leases): short leases make a killed worker's share be taken over sooner,
at the risk of a slow poll being taken over too; tests use it, deployments rarely need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import telegram
from sqlalchemy import Engine

from monitor import __version__
from monitor.cli.arenas import limit_arenas
from monitor.core.errors import ConfigError, Problem
from monitor.core.match import Matcher
from monitor.edges import claims
from monitor.edges import leases as named_leases
from monitor.edges.config import Config, DestinationSpec, load_config
from monitor.edges.db import make_engine, single_process
from monitor.edges.destinations import Destinations
from monitor.edges.fetch import make_client
from monitor.edges.leases import LEASE_TTL, Leases, bot_lease, while_held
from monitor.edges.mutes import Mutes
from monitor.edges.notify import Notifier
from monitor.edges.notify.console import ConsoleNotifier
from monitor.edges.notify.email import EmailNotifier
from monitor.edges.notify.gate import TelegramGate
from monitor.edges.notify.telegram import TelegramNotifier, TokenRedactor, make_bot
from monitor.edges.outbox import Outbox
from monitor.edges.parse_pool import ParsePool, default_workers
from monitor.edges.settings import Settings, settings_from_env
from monitor.edges.state import State
from monitor.edges.store import Store
from monitor.pipeline.assistant import run_bot
from monitor.pipeline.runtime import Notice, Runtime, close_notifiers
from monitor.scheduler import Companion

log = logging.getLogger("monitor.bootstrap")
USER_AGENT = f"monitor/{__version__} (+https://github.com/monitor-alerts/monitor; feed alerts)"


def configure_logging(level: int, settings: Settings | None = None) -> None:
    """Log lines to stderr (stdout is for alerts and command output), secrets redacted."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if settings is not None and settings.telegram_token is not None:
        handler.addFilter(TokenRedactor({settings.telegram_token.get_secret_value()}))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; Bot API URLs carry the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # APScheduler warns each tick that a still-running job was skipped: that is by design here
    # (max_instances=1), not news.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def load(config_dir: Path, env: Mapping[str, str]) -> Config:
    """Settings from the environment and the config folder, validated (raises ConfigError)."""
    return load_config(config_dir, settings_from_env(env))


def engine_for(config: Config) -> Engine:
    return make_engine(config.settings.database_url.get_secret_value())


def worker_id() -> str:
    """This process's identity as a worker: `host:pid:random` (see the module docstring)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


LEASE_ENV = "MONITOR_LEASE_SECONDS"


def lease_override(env: Mapping[str, str]) -> timedelta | None:
    """MONITOR_LEASE_SECONDS as a duration; None when unset (raises ConfigError when bad)."""
    value = env.get(LEASE_ENV, "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 1 <= seconds <= 86_400:  # NaN fails too
        problem = f"{LEASE_ENV}: must be a number of seconds from 1 to 86400"
        raise ConfigError([Problem("environment", 0, 0, problem)])
    return timedelta(seconds=seconds)


@contextlib.contextmanager
def sole_worker(config: Config) -> Iterator[bool]:
    """For `monitor run`: hold a SQLite database for this process alone (raises DatabaseInUse
    if another process holds it). Yields whether this process is then known to be the only
    worker, which it is on SQLite; on PostgreSQL others may run beside it."""
    with single_process(config.settings.database_url.get_secret_value()) as path:
        yield path is not None


def forget_leases(engine: Engine) -> None:
    """Clear every feed claim and named lease: for the sole worker, whose predecessor may have
    died holding some (on SQLite no other process can hold any)."""
    claims.release_all(engine)
    named_leases.release_all(engine)


def build_notifier(
    name: str,
    spec: DestinationSpec,
    settings: Settings,
    stdout: TextIO,
    bots: dict[str, telegram.Bot],
    moved: Mapping[str, tuple[str, str]] | None = None,
) -> Notifier:
    """The notifier of one destination; `moved` maps destinations to (old, new): the chat their
    Telegram group became (ChatMigrated, remembered in the database), which wins over
    monitor.yaml while monitor.yaml still names the old one."""
    if spec.type == "telegram":
        assert settings.telegram_token is not None  # load_config checked it
        bot = telegram_bot(settings, bots)
        assert spec.chat_id is not None
        chat: int | str = spec.chat_id
        if moved and name in moved and moved[name][0] == str(spec.chat_id):
            to = moved[name][1]
            chat = int(to) if to.lstrip("-").isdigit() else to
        return TelegramNotifier(name, bot, chat, gate=telegram_gate(settings))
    if spec.type == "email":
        assert settings.smtp_host is not None and settings.smtp_from is not None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return EmailNotifier(
            name,
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=password,
            sender=settings.smtp_from,
            to=tuple(spec.to or ()),
        )
    return ConsoleNotifier(name, stdout)


# One pacing gate per bot token for the life of the process: a config reload builds new Bots,
# but Telegram's limits are the token's, and a reload must not reset what was sent this minute.
_GATES: dict[str, TelegramGate] = {}


def telegram_gate(settings: Settings) -> TelegramGate:
    assert settings.telegram_token is not None
    token = settings.telegram_token.get_secret_value()
    return _GATES.setdefault(token, TelegramGate())


def telegram_bot(settings: Settings, bots: dict[str, telegram.Bot]) -> telegram.Bot:
    """The one Bot per token (its HTTP pool and pacing are shared by every chat it serves)."""
    assert settings.telegram_token is not None
    token = settings.telegram_token.get_secret_value()
    bot = bots.get(token)
    if bot is None:
        bot = bots[token] = make_bot(token, settings.telegram_api_url)
    return bot


def build_notifiers(
    config: Config, stdout: TextIO, moved: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, Notifier]:
    bots: dict[str, telegram.Bot] = {}
    return {
        name: build_notifier(name, spec, config.settings, stdout, bots, moved)
        for name, spec in config.destinations.items()
    }


def _moved_chats(destinations: Destinations) -> dict[str, tuple[str, str]]:
    return {
        n: (s.moved_from, s.chat_id)
        for n, s in destinations.all().items()
        if s.chat_id is not None and s.moved_from is not None
    }


def operator_notice(config: Config) -> tuple[Notice | None, telegram.Bot | None]:
    """Tells the Telegram admins (monitor.yaml `telegram.admins`) what the operator must know,
    through a Bot of its own; (None, None) without admins or a token. The caller shuts the Bot
    down. Failures are logged, never raised: a notice must not stop delivery."""
    settings = config.settings
    if not config.telegram.admins or settings.telegram_token is None:
        return None, None
    bot = make_bot(settings.telegram_token.get_secret_value(), settings.telegram_api_url)
    admins = config.telegram.admins

    async def notice(text: str) -> None:
        for admin in admins:
            try:
                await bot.initialize()  # a no-op once done; lets shutdown() close its client
                await bot.send_message(admin, f"monitor: {text}")
            except Exception as exc:  # a notice must never stop delivery
                log.warning("could not tell admin %s: %s", admin, type(exc).__name__)

    return notice, bot


def build_runtime(
    config: Config, engine: Engine, stdout: TextIO, notice: Notice | None = None
) -> Runtime:
    # Before the daemon's threads exist: see arenas.py.
    limit_arenas(os.environ)
    destinations = Destinations(engine)
    return Runtime(
        config=config,
        matcher=Matcher(config.watchlists),
        store=Store(engine),
        outbox=Outbox(engine),
        client=make_client(user_agent=USER_AGENT, timeout=30.0, max_connections=32),
        parser=ParsePool(_parse_workers(config)),
        notifiers=build_notifiers(config, stdout, _moved_chats(destinations)),
        destinations=destinations,
        mutes=Mutes(engine),
        notice=notice,
    )


def rebuild_runtime(rt: Runtime, stdout: TextIO) -> Runtime:
    """The config as it is on disk now, around `rt`'s store, outbox, HTTP client and parsers.

    Raises ConfigError (nothing is built) when the config is invalid. Environment settings are
    those the process started with: the environment of a running process does not change.
    """
    config = load_config(rt.config.dir, rt.config.settings)
    moved = _moved_chats(rt.destinations) if rt.destinations is not None else None
    return Runtime(
        config=config,
        matcher=Matcher(config.watchlists),
        store=rt.store,
        outbox=rt.outbox,
        client=rt.client,
        parser=rt.parser,
        notifiers=build_notifiers(config, stdout, moved),
        clock=rt.clock,
        destinations=rt.destinations,
        mutes=rt.mutes,
        notice=rt.notice,
    )


async def close_runtime(rt: Runtime) -> None:
    await close_notifiers(rt)
    await rt.client.aclose()
    await rt.parser.aclose()


def _parse_workers(config: Config) -> int:
    workers = config.settings.parse_workers
    return default_workers() if workers is None else workers


def companions(
    config: Config, engine: Engine, state: State, leases: Leases, lease: timedelta | None = None
) -> list[Companion]:
    """What runs beside the daemon's jobs: the Telegram bot, when monitor.yaml names who it
    answers (`telegram:`) and a token is set. The bot gets a Bot of its own, since a config
    reload closes the notifiers' Bot and would break its long poll in flight. Telegram lets one
    client poll a bot's updates, so of several workers only the one holding the bot's lease
    runs it (another takes over if that one dies)."""
    settings = config.settings
    if not config.telegram.enabled or settings.telegram_token is None:
        return []
    token = settings.telegram_token.get_secret_value()

    async def bot_companion(runtime: Callable[[], Runtime], stop: asyncio.Event) -> None:
        async def answer(halt: asyncio.Event) -> None:
            bot = make_bot(token, settings.telegram_api_url)
            try:
                await run_bot(runtime, Mutes(engine), state, bot, halt)
            finally:
                await shutdown_bot(bot)

        await while_held(leases, bot_lease(token), lease or LEASE_TTL, stop, answer)

    return [bot_companion]


async def shutdown_bot(bot: telegram.Bot) -> None:
    try:
        await bot.shutdown()
    except telegram.error.TelegramError as exc:
        log.warning("closing a Telegram bot: %s", type(exc).__name__)
