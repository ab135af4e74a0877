"""The composition root: the one place that reads the environment and builds the edges.

Everything below the CLI receives its clients as arguments; this module creates them (engine,
store, outbox, HTTP client, notifiers, matcher) from the validated config and closes them again.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import telegram
from sqlalchemy import Engine

from monitor import __version__
from monitor.core.match import Matcher
from monitor.edges.config import Config, DestinationSpec, load_config
from monitor.edges.db import make_engine
from monitor.edges.fetch import make_client
from monitor.edges.notify import Notifier
from monitor.edges.notify.console import ConsoleNotifier
from monitor.edges.notify.email import EmailNotifier
from monitor.edges.notify.telegram import TelegramNotifier, TokenRedactor, make_bot
from monitor.edges.outbox import Outbox
from monitor.edges.settings import Settings, settings_from_env
from monitor.edges.store import Store
from monitor.pipeline.runtime import Runtime, close_notifiers

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


def build_notifier(
    name: str,
    spec: DestinationSpec,
    settings: Settings,
    stdout: TextIO,
    bots: dict[str, telegram.Bot],
) -> Notifier:
    if spec.type == "telegram":
        assert settings.telegram_token is not None  # load_config checked it
        token = settings.telegram_token.get_secret_value()
        bot = bots.get(token)
        if bot is None:
            bot = bots[token] = make_bot(token, settings.telegram_api_url)
        assert spec.chat_id is not None
        return TelegramNotifier(name, bot, spec.chat_id)
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


def build_notifiers(config: Config, stdout: TextIO) -> dict[str, Notifier]:
    bots: dict[str, telegram.Bot] = {}
    return {
        name: build_notifier(name, spec, config.settings, stdout, bots)
        for name, spec in config.destinations.items()
    }


def build_runtime(config: Config, engine: Engine, stdout: TextIO) -> Runtime:
    return Runtime(
        config=config,
        matcher=Matcher(config.watchlists),
        store=Store(engine),
        outbox=Outbox(engine),
        client=make_client(user_agent=USER_AGENT, timeout=30.0, max_connections=32),
        notifiers=build_notifiers(config, stdout),
    )


def rebuild_runtime(rt: Runtime, stdout: TextIO) -> Runtime:
    """The config as it is on disk now, around `rt`'s store, outbox and HTTP client.

    Raises ConfigError (nothing is built) when the config is invalid. Environment settings are
    those the process started with: the environment of a running process does not change.
    """
    config = load_config(rt.config.dir, rt.config.settings)
    return Runtime(
        config=config,
        matcher=Matcher(config.watchlists),
        store=rt.store,
        outbox=rt.outbox,
        client=rt.client,
        notifiers=build_notifiers(config, stdout),
        clock=rt.clock,
    )


async def close_runtime(rt: Runtime) -> None:
    await close_notifiers(rt)
    await rt.client.aclose()
