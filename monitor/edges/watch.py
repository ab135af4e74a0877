"""Noticing edits to the config folder (watchfiles: inotify on Linux, polling elsewhere).

`config_changes(folder, stop)` yields once per burst of changes to YAML files under `folder`;
bursts are debounced (200 ms) so that an editor's write-rename-chmod sequence is one change.
`fingerprint(folder)` identifies the state of those files, so that a reload can check the
files did not change again while it was reading them (a half-written file must never take
effect: if the fingerprint moved during the load, the load is done again).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import watchfiles

DEBOUNCE_MS = 200
_SUFFIXES = (".yaml", ".yml")


def _is_config(_change: watchfiles.Change, path: str) -> bool:
    name = Path(path).name
    # Editors' swap and backup files (.x.yaml.swp, x.yaml~) never match the suffixes.
    return name.endswith(_SUFFIXES) and not name.startswith(".")


async def config_changes(folder: Path, stop: asyncio.Event) -> AsyncIterator[set[str]]:
    """The paths changed in each debounced burst, until `stop` is set."""
    async for changes in watchfiles.awatch(
        folder,
        watch_filter=_is_config,
        debounce=DEBOUNCE_MS,
        step=50,
        stop_event=stop,
        recursive=True,
    ):
        yield {path for _, path in changes}


Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folder: Path) -> Fingerprint:
    """(path, size, mtime in ns) of every config file under `folder`, sorted."""
    entries = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.endswith(_SUFFIXES) and not path.name.startswith("."):
            stat = path.stat()
            entries.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(entries)
