"""What delivery learnt about each destination, kept across restarts and config reloads.

Contract: `Destinations(engine)` over the `destination_state` table. `all()` reads every row as
a `DestinationState`; `refused(name, error, now)` counts one more refusal in a row (a Telegram
403: the bot was blocked or removed) and returns the new state; `succeeded(name, now)` clears
the count; `told(name, now)` records that the operator was told, so they are told once per
outage; `moved(name, chat_id, now, moved_from)` records the supergroup a Telegram group became
(ChatMigrated), which then overrides the chat id in monitor.yaml as long as monitor.yaml still
names the old chat (`moved_from`): an edit that points the destination elsewhere wins. One
short transaction each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from monitor.edges.db import insert_ignore, unavailable_as_transient
from monitor.edges.schema import destination_state


@dataclass(frozen=True, slots=True)
class DestinationState:
    name: str
    chat_id: str | None = None
    moved_from: str | None = None
    failures: int = 0
    failing_since: datetime | None = None
    last_error: str | None = None
    operator_told_at: datetime | None = None


class Destinations:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def all(self) -> dict[str, DestinationState]:
        query = select(*(destination_state.c[n] for n in DestinationState.__slots__))
        with unavailable_as_transient(self.engine), self.engine.connect() as conn:
            return {r.name: DestinationState(**r._mapping) for r in conn.execute(query)}

    def refused(self, name: str, error: str, now: datetime) -> DestinationState:
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            self._ensure(conn, name, now)
            row = conn.execute(
                select(destination_state).where(destination_state.c.name == name)
            ).one()
            conn.execute(
                update(destination_state)
                .where(destination_state.c.name == name)
                .values(
                    failures=row.failures + 1,
                    failing_since=row.failing_since or now,
                    last_error=error[:2000],
                    updated_at=now,
                )
            )
            return DestinationState(
                name=name, chat_id=row.chat_id, moved_from=row.moved_from,
                failures=row.failures + 1,
                failing_since=row.failing_since or now, last_error=error[:2000],
                operator_told_at=row.operator_told_at,
            )  # fmt: skip

    def succeeded(self, name: str, now: datetime) -> None:
        self._set(name, now, failures=0, failing_since=None, last_error=None,
                  operator_told_at=None)  # fmt: skip

    def told(self, name: str, now: datetime) -> None:
        self._set(name, now, operator_told_at=now)

    def moved(self, name: str, chat_id: str, now: datetime, moved_from: str) -> None:
        self._set(name, now, chat_id=chat_id, moved_from=moved_from)

    def _set(self, name: str, now: datetime, **values: Any) -> None:
        with unavailable_as_transient(self.engine), self.engine.begin() as conn:
            self._ensure(conn, name, now)
            conn.execute(
                update(destination_state)
                .where(destination_state.c.name == name)
                .values(updated_at=now, **values)
            )

    @staticmethod
    def _ensure(conn: Connection, name: str, now: datetime) -> None:
        conn.execute(
            insert_ignore(conn, destination_state).values(name=name, failures=0, updated_at=now)
        )
