"""Loading the config folder (monitor.yaml, feeds.yaml, watchlists/) with located problems.

Contract: `load_config(config_dir, settings)` returns a frozen `Config`, or raises `ConfigError`
with every problem found in every file (YAML, schema and cross-file checks), each located as
`FILE:LINE:COL` where `FILE` is `str(config_dir / relative path)`. `load_watchlists(config_dir)`
does the same for watchlists/ alone (what `monitor match` needs). The watchlist schema is the
core's `Watchlist`, the rest is in `monitor.edges.configschema` (re-exported here).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from monitor.core.errors import ConfigError, Problem
from monitor.core.model import NAME_PATTERN, Watchlist
from monitor.edges.configschema import (
    Config,
    Defaults,
    DestinationSpec,
    FeedsFile,
    FeedSpec,
    MonitorFile,
    TelegramSpec,
    parse_duration,
    resolve_feed_url,
)
from monitor.edges.examples import example_problems, redundancy_problems
from monitor.edges.settings import Settings
from monitor.edges.yamlsrc import YamlDoc, load_yaml, problems_from_validation

__all__ = [
    "Config", "Defaults", "DestinationSpec", "FeedSpec", "FeedsFile", "MonitorFile",
    "TelegramSpec", "load_config", "load_watchlists", "parse_duration", "resolve_feed_url",
]  # fmt: skip

M = TypeVar("M", bound=BaseModel)


def load_config(config_dir: Path, settings: Settings) -> Config:
    """Load and check the whole config folder; raise ConfigError with every problem found.

    When monitor.yaml is absent or declares no destination, the effective destinations are
    `{"console": DestinationSpec(type="console")}`, so a fresh install prints its alerts.
    """
    _require_folder(config_dir)
    problems: list[Problem] = []
    monitor_doc, monitor = _load_monitor(config_dir, problems)
    known: set[str] | None = None
    if monitor_doc is not None or not (config_dir / "monitor.yaml").exists():
        raw = _section(monitor_doc, "destinations")
        known = set(raw) if isinstance(raw, dict) and raw else {"console"}
    if monitor_doc is not None:
        problems += _env_problems(monitor_doc, settings)

    defaults = monitor.defaults if monitor is not None else Defaults()
    feeds_doc = _load(config_dir, "feeds.yaml", problems)
    context = {"config_dir": config_dir, "default_interval": defaults.poll_interval,
               "default_backlog": defaults.backlog_window}  # fmt: skip
    feeds = _validate(FeedsFile, feeds_doc, problems, context) if feeds_doc else None
    sources = _feed_names(feeds_doc, problems) if feeds_doc else None

    watchlists = _load_watchlist_docs(config_dir, problems)
    for doc, _ in watchlists:
        problems += _reference_problems(doc, "notify", known, "destination")
        problems += _reference_problems(doc, "sources", sources, "source")
    if problems or monitor is None or feeds is None:
        raise ConfigError(problems)
    destinations = monitor.destinations or {"console": DestinationSpec(type="console")}
    return Config(
        dir=config_dir,
        settings=settings,
        destinations=destinations,
        defaults=defaults,
        feeds=feeds.feeds,
        watchlists=tuple(sorted((w for _, w in watchlists if w), key=lambda w: w.id)),
        telegram=monitor.telegram,
    )


def load_watchlists(config_dir: Path) -> tuple[Watchlist, ...]:
    """Load watchlists/*.yaml and *.yml alone, sorted by id; raise ConfigError on problems.

    A missing or empty watchlists/ folder means no watchlists (a missing config folder is a
    problem).
    """
    _require_folder(config_dir)
    problems: list[Problem] = []
    loaded = _load_watchlist_docs(config_dir, problems)
    if problems:
        raise ConfigError(problems)
    return tuple(sorted((w for _, w in loaded if w), key=lambda w: w.id))


def _require_folder(config_dir: Path) -> None:
    if not config_dir.is_dir():
        raise ConfigError([Problem(str(config_dir), 0, 0, "config folder not found")])


def _load_monitor(
    config_dir: Path, problems: list[Problem]
) -> tuple[YamlDoc | None, MonitorFile | None]:
    if not (config_dir / "monitor.yaml").exists():
        return None, MonitorFile()
    doc = _load(config_dir, "monitor.yaml", problems)
    return doc, _validate(MonitorFile, doc, problems) if doc else None


def _load(config_dir: Path, relative: str, problems: list[Problem]) -> YamlDoc | None:
    try:
        return load_yaml(config_dir / relative, str(config_dir / relative))
    except ConfigError as exc:
        problems += exc.problems
        return None


def _validate(
    model: type[M],
    doc: YamlDoc,
    problems: list[Problem],
    context: dict[str, Any] | None = None,
    data: Any = None,
) -> M | None:
    data = doc.data if data is None else data
    if not isinstance(data, dict):
        problems.append(doc.problem((), "expected a mapping of keys, like `key: value`"))
        return None
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        problems += problems_from_validation(exc, doc, model)
        return None


def _section(doc: YamlDoc | None, key: str) -> Any:
    return doc.data.get(key) if doc is not None and isinstance(doc.data, dict) else None


def _env_problems(doc: YamlDoc, settings: Settings) -> list[Problem]:
    """A destination the environment gives no credentials for cannot deliver anything."""
    raw = _section(doc, "destinations")
    problems = []
    for name, spec in raw.items() if isinstance(raw, dict) else ():
        kind = spec.get("type") if isinstance(spec, dict) else None
        missing = []
        if kind == "telegram" and settings.telegram_token is None:
            missing = ["MONITOR_TELEGRAM_TOKEN (or MONITOR_TELEGRAM_TOKEN_FILE)"]
        if kind == "email":
            missing += ["MONITOR_SMTP_HOST"] if settings.smtp_host is None else []
            missing += ["MONITOR_SMTP_FROM"] if settings.smtp_from is None else []
        if missing:
            needs = " and ".join(missing)
            message = f"{kind} destination {name!r} needs {needs} in the environment"
            problems.append(doc.problem(("destinations", name, "type"), message))
    return problems


def _feed_names(doc: YamlDoc, problems: list[Problem]) -> set[str]:
    """Feed ids and tags as written (a `sources:` entry may name either); flags duplicate ids."""
    raw = _section(doc, "feeds")
    names: set[str] = set()
    first: dict[str, int] = {}
    for i, feed in enumerate(raw if isinstance(raw, list) else ()):
        if not isinstance(feed, dict):
            continue
        feed_id = feed.get("id")
        if isinstance(feed_id, str):
            if feed_id in first:
                message = f"duplicate feed id {feed_id!r} (first on line {first[feed_id]})"
                problems.append(doc.problem(("feeds", i, "id"), message))
            else:
                first[feed_id] = doc.value_pos(("feeds", i, "id"))[0]
            names.add(feed_id)
        tags = feed.get("tags")
        if isinstance(tags, list):
            names.update(t for t in tags if isinstance(t, str))
    return names


def _reference_problems(doc: YamlDoc, key: str, known: set[str] | None, what: str) -> list[Problem]:
    """Names in a watchlist's `key:` list that nothing declares (skipped if `known` is None)."""
    raw = _section(doc, key)
    if known is None or not isinstance(raw, list):
        return []
    problems = []
    for i, name in enumerate(raw):
        if isinstance(name, str) and name.strip() not in known:
            problems.append(doc.problem((key, i), _unknown(name.strip(), known, what)))
    return problems


def _unknown(name: str, known: set[str], what: str) -> str:
    names = sorted(known)
    hint = difflib.get_close_matches(name, names, n=1)
    guess = f"did you mean {hint[0]!r}? " if hint else ""
    if what == "destination":
        return f"unknown destination {name!r} ({guess}known: {', '.join(names)})"
    return f"unknown source {name!r} ({guess}not a feed id or feed tag)"


def _load_watchlist_docs(
    config_dir: Path, problems: list[Problem]
) -> list[tuple[YamlDoc, Watchlist | None]]:
    folder = config_dir / "watchlists"
    if not folder.is_dir():
        if folder.exists():
            problems.append(Problem(str(folder), 0, 0, "must be a folder of watchlist files"))
        return []
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )
    out: list[tuple[YamlDoc, Watchlist | None]] = []
    first: dict[str, str] = {}
    for path in files:
        doc = _load(config_dir, str(path.relative_to(config_dir)), problems)
        if doc is None:
            continue
        watchlist = _watchlist(doc, path.stem, problems)
        if watchlist is not None:
            problems.extend(redundancy_problems(watchlist, doc))
            problems.extend(example_problems(watchlist, doc))
        wid = doc.data.get("id", path.stem) if isinstance(doc.data, dict) else None
        if isinstance(wid, str):
            if wid in first:
                message = f"duplicate watchlist id {wid!r} (also in {first[wid]})"
                explicit = "id" in doc.data
                problems.append(
                    doc.problem(("id",), message) if explicit else Problem(doc.file, 0, 0, message)
                )
                watchlist = None
            else:
                first[wid] = doc.file
        out.append((doc, watchlist))
    return out


def _watchlist(doc: YamlDoc, stem: str, problems: list[Problem]) -> Watchlist | None:
    if not isinstance(doc.data, dict) or "id" in doc.data:
        return _validate(Watchlist, doc, problems)
    if NAME_PATTERN.match(stem):
        return _validate(Watchlist, doc, problems, data={**doc.data, "id": stem})
    message = f"the file name {stem!r} is not a valid watchlist id; rename it or add an 'id:' key"
    problems.append(Problem(doc.file, 0, 0, message))
    # Still validate the rest (under a stand-in id) so that every problem is reported at once.
    _validate(Watchlist, doc, problems, data={**doc.data, "id": "file-name"})
    return None
