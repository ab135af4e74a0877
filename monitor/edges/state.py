"""Daemon state that other processes read: one JSON value per key, last write wins.

`monitor run` records here what an operator needs to see from `monitor status` in another
process, such as the outcome of the last config reload and its problems.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from monitor.edges.db import unavailable_as_transient, upsert
from monitor.edges.schema import daemon_state


class State:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, key: str, value: dict[str, Any], now: datetime) -> None:
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            conn.execute(
                upsert(conn, daemon_state, ["key"], {"value": value, "updated_at": now}).values(
                    key=key, value=value, updated_at=now
                )
            )

    def get(self, key: str) -> tuple[dict[str, Any], datetime] | None:
        query = select(daemon_state.c.value, daemon_state.c.updated_at).where(
            daemon_state.c.key == key
        )
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (dict(row.value), row.updated_at)
