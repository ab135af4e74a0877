"""Settings that come from the environment: the database, Telegram and SMTP connections.

Contract: `settings_from_env(env)` reads only the mapping it is given (never `os.environ`) and
returns frozen `Settings`, or raises `ConfigError` listing every bad variable as a problem in the
file `environment`. Secrets (and the values that may carry them: the database URL, the SMTP
user) may instead come from `<NAME>_FILE`, a file whose stripped content is the value; setting
both is a problem. An empty variable counts as unset, as `docker run -e NAME=` produces one.
Secret values are `SecretStr`: they never show in `repr`, `str`, or a problem message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from monitor.core.errors import ConfigError, Problem

ENV_FILE = "environment"
DEFAULT_DATABASE_URL = "sqlite:///./data/monitor.db"
DEFAULT_TELEGRAM_API_URL = "https://api.telegram.org"

#: Settings field → environment variable.
ENV_NAMES: Mapping[str, str] = {
    "database_url": "MONITOR_DATABASE_URL",
    "telegram_token": "MONITOR_TELEGRAM_TOKEN",
    "telegram_api_url": "MONITOR_TELEGRAM_API_URL",
    "smtp_host": "MONITOR_SMTP_HOST",
    "smtp_port": "MONITOR_SMTP_PORT",
    "smtp_user": "MONITOR_SMTP_USER",
    "smtp_password": "MONITOR_SMTP_PASSWORD",
    "smtp_from": "MONITOR_SMTP_FROM",
    "smtp_tls": "MONITOR_SMTP_TLS",
    "auto_migrate": "MONITOR_AUTO_MIGRATE",
    "parse_workers": "MONITOR_PARSE_WORKERS",
}
#: The fields whose value may come from a `<NAME>_FILE` variable; their values are never echoed.
FILE_FIELDS = frozenset({"database_url", "telegram_token", "smtp_user", "smtp_password"})

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class Settings(BaseModel):
    """Connections and switches, declared once; build it with `settings_from_env`."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    telegram_token: SecretStr | None = None
    telegram_api_url: str = DEFAULT_TELEGRAM_API_URL
    smtp_host: str | None = None
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = None
    smtp_tls: Literal["starttls", "tls", "none"] = "starttls"
    auto_migrate: bool = True
    #: Processes that parse feed bodies; None ("auto"): one per core (none on one core), at
    #: most 4 (monitor.edges.parse_pool.default_workers); 0 parses in a thread.
    parse_workers: Annotated[int, Field(ge=0, le=64)] | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr) -> SecretStr:
        if "://" not in value.get_secret_value():
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///./data/monitor.db")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and re.search(r"\s|/", value.get_secret_value()):
            raise ValueError("does not look like a bot token (it contains spaces or '/')")
        return value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("smtp_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None and "@" not in value:
            raise ValueError(f"{value!r} is not an email address")
        return value

    @field_validator("smtp_port", mode="before")
    @classmethod
    def _port(cls, value: object) -> object:
        if isinstance(value, str) and not (value.isdigit() and 1 <= int(value) <= 65535):
            raise ValueError("must be a port number from 1 to 65535")
        return value

    @field_validator("smtp_tls", mode="before")
    @classmethod
    def _tls_case(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("parse_workers", mode="before")
    @classmethod
    def _workers(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip().lower()
            if word == "auto":
                return None
            if not (word.isdigit() and int(word) <= 64):
                raise ValueError("must be 'auto' or a number of processes from 0 to 64")
        return value

    @field_validator("auto_migrate", mode="before")
    @classmethod
    def _switch(cls, value: object) -> object:
        if isinstance(value, str):
            word = value.strip().lower()
            if word in _TRUE or word in _FALSE:
                return word in _TRUE
            raise ValueError("must be 0 or 1")
        return value


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Build Settings from `env` (pass `os.environ`); raise ConfigError on bad variables."""
    problems: list[Problem] = []
    raw: dict[str, str] = {}
    for field, name in ENV_NAMES.items():
        value = _value(env, name, field in FILE_FIELDS, problems)
        if value is not None:
            raw[field] = value
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            field = str(err["loc"][0]) if err["loc"] else ""
            name = ENV_NAMES.get(field, field)
            message = err["msg"].removeprefix("Value error, ").replace("Input should", "should")
            if field in FILE_FIELDS and err["type"] != "value_error":
                message = "is not valid"
            problems.append(Problem(ENV_FILE, 0, 0, f"{name}: {message}"))
    if problems:
        raise ConfigError(problems)
    return settings


def _value(
    env: Mapping[str, str], name: str, may_be_file: bool, problems: list[Problem]
) -> str | None:
    value = env.get(name, "").strip() or None
    file_name = (env.get(f"{name}_FILE", "").strip() or None) if may_be_file else None
    if file_name is None:
        return value
    if value is not None:
        problems.append(Problem(ENV_FILE, 0, 0, f"set {name} or {name}_FILE, not both"))
        return None
    try:
        content = Path(file_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        problems.append(Problem(ENV_FILE, 0, 0, f"{name}_FILE: cannot read {file_name}: {reason}"))
        return None
    except UnicodeDecodeError:
        problems.append(Problem(ENV_FILE, 0, 0, f"{name}_FILE: {file_name} is not UTF-8 text"))
        return None
    if not content:
        problems.append(Problem(ENV_FILE, 0, 0, f"{name}_FILE: {file_name} is empty"))
        return None
    return content
