"""limit_arenas: glibc's arena cap is set, unless the environment already sets it."""

from __future__ import annotations

import ctypes.util

import pytest

from monitor.cli.arenas import ARENAS, limit_arenas


def test_the_environment_wins() -> None:
    assert limit_arenas({"MALLOC_ARENA_MAX": "4"}) is None


def test_the_cap_is_set_on_glibc() -> None:
    if ctypes.util.find_library("c") is None or not hasattr(ctypes.CDLL(None), "mallopt"):
        pytest.skip("not glibc")  # pragma: no cover - this project's machines run glibc
    assert limit_arenas({}, 3) == 3
    assert limit_arenas({}) == ARENAS  # and back to what the daemon sets
