"""Where the shared real-world and hostile feed corpus lives, when it is there at all.

The corpus is publishers' text: it is read at test time from ../shared (or MONITOR_SHARED_DIR)
and never copied into this repository. Tests that need it skip when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    candidates = [os.environ.get("MONITOR_SHARED_DIR"), str(_REPO.parent / "shared")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "corpus").is_dir():
            return Path(candidate)
    return None


def corpus_files(kind: str) -> list[Path]:
    """Every file under corpus/<kind> ('real' or 'hostile'), sorted; [] when absent."""
    base = shared_dir()
    if base is None:
        return []
    return sorted(p for p in (base / "corpus" / kind).rglob("*") if p.is_file())


needs_corpus = pytest.mark.skipif(shared_dir() is None, reason="../shared/corpus is not here")
