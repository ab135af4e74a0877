"""Database plumbing shared by the store, the outbox and migrations.

Contract: `make_engine(url)` builds the one `Engine` a process uses (nothing connects at import
time); `unavailable_as_transient(engine)` turns connection-level failures into
`DatabaseUnavailable` (transient) and lets anything else from the driver, a bug, propagate;
`insert_ignore(conn, table)` is an INSERT that skips rows conflicting with a unique key, and
`insert_rows_ignore(conn, table, rows, returning)` runs one for many rows at once,
`one_of(conn, column, values)` is an IN whose SQL does not change with the values (and
`int_array(values)` the literal that binds integers as one PostgreSQL array),
`relaxed_commit(conn)` lets a PostgreSQL transaction commit without waiting for the disk, and
`upsert(conn, table, keys, values)` updates conflicting rows instead, all in the
connection's dialect (PostgreSQL or SQLite); `dialect_insert(conn, table)` is the dialect's own
INSERT, for conflict clauses those two do not cover.

`single_process(url)` holds, for a SQLite database file, an exclusive `flock` on
`<file>.lock` while its block runs, and raises `DatabaseInUse` (naming the file and, when it
can, the holder's pid) if another process holds it. SQLite serves one `monitor run` at a time:
workers that share a database coordinate through row locks (`SELECT … FOR UPDATE SKIP
LOCKED`), which SQLite does not have. The OS drops the lock when its process dies, however it
dies, so a crash never leaves the file locked. Other databases need no lock: the block runs
with None.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    column,
    create_engine,
    event,
    func,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator

from monitor.core.errors import DatabaseUnavailable

__all__ = [
    "DatabaseInUse",
    "dialect_insert",
    "insert_ignore",
    "insert_rows_ignore",
    "int_array",
    "json_rows",
    "make_engine",
    "one_of",
    "recordset",
    "relaxed_commit",
    "single_process",
    "sqlite_file",
    "unavailable_as_transient",
    "upsert",
]


class DatabaseInUse(DatabaseUnavailable):
    """Another process holds the SQLite database (`single_process`); the CLI exits 2 on it."""


def make_engine(url: str) -> Engine:
    """An engine for `url`; for SQLite the parent folder is created and WAL is switched on,
    PostgreSQL sessions run without JIT compilation."""
    if url.startswith("sqlite"):
        database = url.split(":///", 1)[1] if ":///" in url else ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # JIT off: every statement here is short (one feed's rows, a handful of index lookups),
    # and a plan whose estimate crosses jit_above_cost spent more time compiling with LLVM
    # than running: a fifth of PostgreSQL's CPU in a cold cycle of the bench (perf).
    return create_engine(url, pool_pre_ping=True, connect_args={"options": "-c jit=off"})


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


def dialect_insert(conn: Connection, table: Any) -> postgresql.Insert | sqlite.Insert:
    """The INSERT of the connection's dialect, which has `on_conflict_do_*` and `excluded`."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {dialect!r}")


def insert_ignore(conn: Connection, table: Any) -> Insert:
    return dialect_insert(conn, table).on_conflict_do_nothing()


def insert_rows_ignore(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], returning: Sequence[str]
) -> list[tuple[Any, ...]]:
    """Insert `rows` (all with the same keys), skipping conflicts; the inserted rows' columns
    `returning`, in no particular order.

    On PostgreSQL the rows travel as one JSON document read back by `json_to_recordset()`:
    `json.dumps` writes the whole batch in C, where psycopg would adapt an array per column
    element by element in Python (the largest cost of a cold ingest in the daemon's profile),
    and the statement's text is the same whatever the number of rows, so it is compiled once
    and psycopg prepares it. Datetimes travel as ISO 8601 with their offset; JSON columns as
    nested JSON. SQLite gets an executemany.
    """
    if not rows:
        return []
    names = tuple(rows[0])
    if conn.dialect.name != "postgresql":
        stmt = insert_ignore(conn, table)
        if not returning:
            conn.execute(stmt, list(rows))
            return []
        returned = stmt.returning(*(table.c[n] for n in returning))
        return [tuple(row) for row in conn.execute(returned, list(rows))]
    statement = _recordset_insert(table, names, tuple(returning))
    result = conn.execute(statement, {"rows": json_rows(rows)})
    return [tuple(row) for row in result] if returning else []


def json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """`rows` as the JSON document a `recordset` reads (datetimes as ISO 8601, aware only)."""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_json_value)


def recordset(columns: Sequence[tuple[str, Any]], name: str = "r") -> Any:
    """`json_to_recordset(CAST(:rows AS json)) AS name(column type, …)` for PostgreSQL: the
    rows of `json_rows` as a table, each field read with its column's type (the type's
    input function: timestamptz from ISO 8601, json from nested JSON). Bind `rows`."""
    rows = cast(bindparam("rows", type_=Text()), postgresql.JSON)
    return (
        func.json_to_recordset(rows)
        .table_valued(*(column(n, _sql_type(t)) for n, t in columns))
        .render_derived(name=name, with_types=True)
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass aware UTC")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} has no JSON form for the database")


@functools.lru_cache(maxsize=64)
def _recordset_insert(table: Table, names: tuple[str, ...], returning: tuple[str, ...]) -> Insert:
    record = recordset([(n, table.c[n].type) for n in names])
    stmt = postgresql.insert(table).from_select(list(names), select(*record.c))
    stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(*(table.c[n] for n in returning)) if returning else stmt


def _sql_type(type_: Any) -> Any:
    # A TypeDecorator's bind processing ran in _json_value already; the list wants the impl.
    return type_.impl if isinstance(type_, TypeDecorator) else type_


def one_of(conn: Connection, column: Any, values: Sequence[Any], *, many: bool = False) -> Any:
    """`column IN values` as a condition whose SQL is the same for any number of values:
    `= ANY(:array)` on PostgreSQL (one cached statement, prepared once); SQLite, which has no
    arrays, gets the expanding IN.

    `many=True` for values that may cover much of the table: `IN (SELECT unnest(:array))`,
    which PostgreSQL runs as a hash join. `= ANY` suits an index lookup, but on a scan it
    tests each row against the array element by element: 8 s for 10,000 feed ids against
    10,000 feed rows, 0.2 s this way."""
    if conn.dialect.name != "postgresql":
        return column.in_(values)
    array = postgresql.ARRAY(column.type)
    literal = _plain_array(values)
    bound = (
        bindparam(None, list(values), type_=array)
        if literal is None
        else cast(bindparam(None, literal, type_=Text()), array)
    )
    if many:
        return column.in_(select(func.unnest(bound)).scalar_subquery())
    return column == any_(bound)


def int_array(values: Iterable[int]) -> str:
    """A PostgreSQL array literal of integers, `{1,2,3}`, to bind as text and CAST to an
    integer array: PostgreSQL reads it in C, where psycopg adapts a list element by element
    in Python."""
    return "{" + ",".join(map(str, values)) + "}"


# Elements an array literal can hold unquoted: letters, digits, `_`, `.` and `-` (the dedupe
# keys are hex digests, ids follow core.model.NAME_PATTERN), nothing with a comma, brace,
# quote, backslash or space; and not the word NULL, which the literal would read as a null.
_PLAIN_LIST = re.compile(r"[\w.-]+(?:,[\w.-]+)*", re.ASCII)
_NULL = re.compile(r"(?:^|,)null(?=,|$)", re.IGNORECASE)


def _plain_array(values: Sequence[Any]) -> str | None:
    """`values` as an array literal when they are all integers or all plain words (see
    above), else None (psycopg adapts them)."""
    if all(type(v) is int for v in values):
        return int_array(values)
    if not all(type(v) is str for v in values):
        return None
    joined = ",".join(values)  # not empty: an empty list took the integer branch
    # The count rules out an element that itself held a comma.
    if (
        _PLAIN_LIST.fullmatch(joined) is None
        or joined.count(",") != len(values) - 1
        or _NULL.search(joined) is not None
    ):
        return None
    return "{" + joined + "}"


def relaxed_commit(conn: Connection) -> None:
    """Let this PostgreSQL transaction commit without waiting for its WAL flush.

    For transactions that record what a poll brought and hold nothing a deliverer could act
    on (articles that matched nothing, a feed's validators and schedule): a server crash
    within the WAL writer's delay (a few hundred ms) loses such a transaction whole, as if the
    poll had not happened, and the next poll brings the same articles again. A transaction
    that queues or updates an alert commits as usual: another worker could send that alert
    before the flush, and a crash would then bring it back to be sent twice.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(_SYNC_OFF)


_SYNC_OFF = text("SET LOCAL synchronous_commit TO OFF")


def upsert(conn: Connection, table: Any, keys: list[str], values: dict[str, Any]) -> Insert:
    """An INSERT that, on a conflict over `keys`, sets `values` on the existing row instead."""
    return dialect_insert(conn, table).on_conflict_do_update(index_elements=keys, set_=values)


def sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL opens (relative to the working directory, as SQLite reads it);
    None for other databases and for in-memory ones."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database.startswith("file:"):  # a URI filename (?uri=true): the path, no query
        database = database.removeprefix("file:").split("?", 1)[0]
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    # Resolved, so that two spellings of one file (relative, through a symlink) share a lock.
    return Path(database).expanduser().resolve()


@contextlib.contextmanager
def single_process(url: str) -> Iterator[Path | None]:
    """Hold the SQLite database at `url` for this process alone while the block runs (see the
    module docstring); yields the database file, or None when `url` needs no lock."""
    path = sqlite_file(url)
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(
                f"{path} is in use by another monitor process ({_holder(fd)}lock {lock}): "
                "SQLite serves one `monitor run` at a time; stop the other one, or use "
                "PostgreSQL (MONITOR_DATABASE_URL) to run several workers"
            ) from None
        # The holder's pid, for the message a second process prints; the lock is the flock,
        # not the file's content, so a stale pid left by a dead process misleads nobody.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(os.pread(fd, 32, 0).decode().strip())}; "
    return ""
