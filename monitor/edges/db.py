"""Database plumbing shared by the store, the outbox and migrations.

Contract: `make_engine(url)` builds the one `Engine` a process uses (nothing connects at import
time); `unavailable_as_transient(engine)` turns connection-level failures into
`DatabaseUnavailable` (transient) and lets anything else from the driver, a bug, propagate;
`insert_ignore(conn, table)` is an INSERT that skips rows conflicting with a unique key, and
`upsert(conn, table, keys, values)` one that updates them instead, both in the
connection's dialect (PostgreSQL or SQLite).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.sql.dml import Insert

from monitor.core.errors import DatabaseUnavailable

__all__ = ["insert_ignore", "make_engine", "unavailable_as_transient", "upsert"]


def make_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite the parent folder is created and WAL is switched on."""
    if url.startswith("sqlite"):
        database = url.split(":///", 1)[1] if ":///" in url else ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets `monitor status` read while the daemon writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@contextlib.contextmanager
def unavailable_as_transient(engine: Engine) -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable(f"database {engine.url!r}: {exc.orig or exc}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseUnavailable(f"database {engine.url!r}: connection lost") from exc
        raise


def insert_ignore(conn: Connection, table: Any) -> Insert:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


def upsert(conn: Connection, table: Any, keys: list[str], values: dict[str, Any]) -> Insert:
    """An INSERT that, on a conflict over `keys`, sets `values` on the existing row instead."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_update(index_elements=keys, set_=values)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_update(index_elements=keys, set_=values)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")
