"""The schema of monitor.yaml and feeds.yaml, declared once: types, defaults, validation.

Destinations, defaults, feeds and durations are pydantic models (the core's `FrozenModel`:
frozen, unknown keys rejected); the watchlist schema is the core's `Watchlist`.
`monitor.edges.config` loads files into these models and adds the checks that span files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from urllib.request import url2pathname
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.core.languages import check_language
from monitor.core.model import NAME_PATTERN, FrozenModel, Priority, Watchlist, priority_by_name
from monitor.core.timing import parse_clock, parse_window
from monitor.edges.settings import Settings
from monitor.edges.yamlsrc import KEY_ERROR

DEFAULT_POLL_INTERVAL = timedelta(minutes=10)
MIN_INTERVAL = timedelta(seconds=1)
MAX_DURATION = timedelta(days=3650)
MAX_INTERVAL = timedelta(days=365)
_DURATION = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
_ADDRESS = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+$")
# Keys that only mean something for one destination type.
_ONLY_FOR = {"chat_id": "telegram", "to": "email"}


def parse_duration(text: str) -> timedelta:
    """`"90s"`, `"10m"`, `"2h"`, `"1d"`, `"1h30m"` or a bare number of seconds → timedelta."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        parts = [0, 0, 0, int(cleaned)]
    else:
        found = _DURATION.match(cleaned)
        if not cleaned or found is None:
            raise ValueError(
                f"{text!r} is not a duration such as '90s', '10m', '2h', '1d' or '1h30m'"
            )
        parts = [int(part) if part else 0 for part in found.groups()]
    days, hours, minutes, seconds = parts
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    # A date computed from a longer duration would overflow; no schedule needs one.
    if total > MAX_DURATION.total_seconds():
        raise ValueError(f"{text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=total)


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    raise ValueError(f"{value!r} is not a duration such as '90s', '10m', '2h', '1d' or '1h30m'")


def _at_least_1s(value: timedelta) -> timedelta:
    if value < MIN_INTERVAL:
        raise ValueError("an interval must be at least 1s")
    if value > MAX_INTERVAL:
        raise ValueError(f"an interval must be at most {MAX_INTERVAL.days}d")
    return value


def _name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a valid name: up to 64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return value


def _clock(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time of day like '07:30'")
    return parse_clock(value).strftime("%H:%M")


def _window(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a window like '22:00-07:00'")
    start, end = parse_window(value)
    return f"{start:%H:%M}-{end:%H:%M}"


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _nonempty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _window_or_off(value: Any) -> Any:
    if value is None:  # inherited from `defaults` where it is off
        return None
    if isinstance(value, str) and value.strip().lower() in ("off", "none", "all"):
        return None
    return _duration(value)


Interval = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_at_least_1s)]
#: A look-back window, or `off` (None): how far back a new feed's items still alert.
Backlog = Annotated[timedelta | None, BeforeValidator(_window_or_off)]
Name = Annotated[str, AfterValidator(_name)]
Clock = Annotated[str, BeforeValidator(_clock)]
Window = Annotated[str, BeforeValidator(_window)]


class DestinationSpec(FrozenModel):
    """Where alerts go (`monitor.yaml` → `destinations:`); credentials come from Settings.

    Times stay text, normalized and checked with the core's parsers: `digest_at` is a sorted
    tuple of `"HH:MM"`, `quiet_hours` a `"HH:MM-HH:MM"` window (`parse_window` reads both).
    """

    type: Literal["telegram", "email", "console"]
    chat_id: int | str | None = None
    to: tuple[Annotated[str, AfterValidator(_address)], ...] | None = None
    mode: Literal["immediate", "digest"] = "immediate"
    digest_at: tuple[Clock, ...] = ()
    timezone: str = "UTC"
    quiet_hours: Window | None = None
    min_priority: Priority = Priority.low
    #: Flood control: at most `burst_limit` messages per `burst_window`; the alerts beyond it
    #: go out together as one summary message. None: the `defaults:` value; 0 turns it off.
    burst_limit: Annotated[int, Field(ge=0, le=10_000)] | None = None
    burst_window: Interval | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="before")
    @classmethod
    def _keys_that_apply(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("type")
        for key, owner in _ONLY_FOR.items():
            if key in data and kind in ("telegram", "email", "console") and kind != owner:
                raise PydanticCustomError(
                    KEY_ERROR,
                    "'{key}' does not apply to {kind} destinations (only to {owner})",
                    {"key": key, "kind": kind, "owner": owner},
                )
        if "digest_at" in data and data.get("mode", "immediate") == "immediate":
            raise PydanticCustomError(
                KEY_ERROR, "'{key}' only applies with 'mode: digest'", {"key": "digest_at"}
            )
        return data

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: Any) -> Any:
        return cls.chat_id_value(value)

    @staticmethod
    def chat_id_value(value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"@[A-Za-z][A-Za-z0-9_]{4,31}", value.strip()):
            return value.strip()
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValueError(f"{value!r} is not a Telegram chat id (a number or @channelname)")

    @field_validator("to", "digest_at", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("to")
    @classmethod
    def _some_address(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("'to' must list at least one address")
        return value

    @field_validator("digest_at")
    @classmethod
    def _sorted_times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(value)))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as 'Europe/Paris')"
            ) from None
        return value

    @field_validator("min_priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return priority_by_name(value, "min_priority")

    @model_validator(mode="after")
    def _required_for_type(self) -> DestinationSpec:
        if self.type == "telegram" and self.chat_id is None:
            raise ValueError("missing required key 'chat_id' (telegram destinations need it)")
        if self.type == "email" and self.to is None:
            raise ValueError("missing required key 'to' (email destinations need it)")
        if self.mode == "digest" and not self.digest_at:
            raise ValueError("missing required key 'digest_at' (mode is digest)")
        return self


class Defaults(FrozenModel):
    """`monitor.yaml` → `defaults:`."""

    poll_interval: Interval = DEFAULT_POLL_INTERVAL
    #: One deadline for a whole feed request: connect, redirects, headers and body.
    fetch_timeout: Interval = timedelta(seconds=30)
    #: A feed's first successful poll alerts only items published within this window; older
    #: ones (and undated ones) are stored and matched but not alerted. `off` alerts them all.
    backlog_window: Backlog = timedelta(hours=24)
    #: How long a story stays open for copies to join it (and edit its alert).
    story_window: Interval = timedelta(hours=72)
    #: Flood control per destination (see DestinationSpec.burst_limit); 0 turns it off.
    burst_limit: Annotated[int, Field(ge=0, le=10_000)] = 20
    burst_window: Interval = timedelta(minutes=10)
    #: The least time between two in-place edits of one alert message (new sources).
    update_interval: Interval = timedelta(minutes=1)
    #: Adaptive polling: a feed's interval starts at its `interval` and moves, with how often
    #: it really publishes, between these bounds (`adapt_intervals: false` keeps it fixed).
    adapt_intervals: StrictBool = True
    min_interval: Interval = timedelta(minutes=2)
    max_interval: Interval = timedelta(hours=2)
    #: Backoff on errors: the interval doubles per error in a row (with jitter) up to this.
    max_backoff: Interval = timedelta(hours=6)
    #: A feed failing without a break for this long is disabled (as is one answering 410), and
    #: the operator told once; `off` keeps retrying forever.
    disable_after: Backlog = timedelta(days=7)
    #: Politeness: feeds fetched at once in all, per host, and the least time between two
    #: requests to one host (seconds).
    concurrency: Annotated[int, Field(ge=1, le=10_000)] = 32
    per_host_concurrency: Annotated[int, Field(ge=1, le=1_000)] = 2
    per_host_spacing: Annotated[float, Field(ge=0, le=60)] = 0.25


class TelegramSpec(FrozenModel):
    """`monitor.yaml` → `telegram:`: who the bot answers. Nobody, when both lists are empty.

    `allowed_chats`: chat ids (or @channelname) whose members may use the bot there;
    `admins`: user ids answered in any chat, including a private chat with the bot.
    """

    allowed_chats: tuple[int | str, ...] = ()
    admins: tuple[int, ...] = ()
    #: Turn the bot (getUpdates long polling) off even when the lists are set.
    commands: StrictBool = True

    @field_validator("allowed_chats", mode="before")
    @classmethod
    def _chats(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value
        return [DestinationSpec.chat_id_value(v) for v in value]

    @property
    def enabled(self) -> bool:
        return self.commands and bool(self.allowed_chats or self.admins)


class MonitorFile(FrozenModel):
    """`monitor.yaml` as written (before the console default applies)."""

    destinations: dict[Name, DestinationSpec] = Field(default_factory=dict)
    defaults: Defaults = Defaults()
    telegram: TelegramSpec = TelegramSpec()

    @model_validator(mode="before")
    @classmethod
    def _blank_sections(cls, data: Any) -> Any:
        # `destinations:` with every entry commented out is YAML null: read it as "none".
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


class FeedSpec(FrozenModel):
    """One feed. `url` is resolved: an http(s) URL, or a `file://` URL for a local file."""

    id: Name
    url: str
    name: str = ""
    lang: str | None = None
    interval: Interval = DEFAULT_POLL_INTERVAL
    tags: tuple[Annotated[str, AfterValidator(_nonempty)], ...] = ()
    enabled: StrictBool = True
    #: Overrides `defaults.backlog_window` for this feed (e.g. `off` for a local demo feed).
    backlog_window: Backlog = timedelta(hours=24)

    @model_validator(mode="before")
    @classmethod
    def _fill_in(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        context = info.context or {}
        if data.get("interval") is None and "default_interval" in context:
            data["interval"] = context["default_interval"]
        if "backlog_window" not in data and "default_backlog" in context:
            data["backlog_window"] = context["default_backlog"]
        return data

    @field_validator("url")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return resolve_feed_url(value, (info.context or {}).get("config_dir", Path()))

    @field_validator("lang")
    @classmethod
    def _lang(cls, value: str | None) -> str | None:
        # Kept as written (e.g. "pt-BR"): it is the operator's hint, passed on to the parser.
        if value is not None:
            check_language(value)
        return value

    @model_validator(mode="after")
    def _default_name(self) -> FeedSpec:
        if not self.name:
            object.__setattr__(self, "name", self.id)
        return self


class FeedsFile(FrozenModel):
    """`feeds.yaml`."""

    feeds: tuple[FeedSpec, ...]

    @field_validator("feeds", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return () if value is None else value


class Config(FrozenModel):
    """The whole validated config. `destinations` is the effective mapping (see load_config)."""

    dir: Path
    settings: Settings
    destinations: Mapping[str, DestinationSpec]
    defaults: Defaults
    feeds: tuple[FeedSpec, ...]
    watchlists: tuple[Watchlist, ...]
    telegram: TelegramSpec = TelegramSpec()


def resolve_feed_url(url: str, config_dir: Path) -> str:
    """An http(s) URL as is; a file path (relative to `config_dir`) or file URL as `file://`."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", url):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if not parts.netloc or re.search(r"\s", url):
                raise ValueError(f"{url!r} is not a valid {scheme} URL")
            return url
        if scheme != "file":
            raise ValueError(f"unsupported URL scheme {scheme!r} (use http, https or a file path)")
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"{url!r}: a file URL needs an absolute path (file:///...)")
        path = Path(url2pathname(parts.path))
    else:
        path = Path(url).expanduser()
    path = (config_dir / path).resolve()
    if not path.is_file():
        raise ValueError(f"feed file {url!r} does not exist (looked for {path})")
    return path.as_uri()
