"""What a poll leaves on its feed row: status, validators, schedule, failure state.

Contract: `PollRecord` is one poll's outcome; `record_outcomes(conn, polls, seen=None)` writes
each `(feed_id, record, now)` of `polls` on its feed row, inside the caller's transaction.
A success resets the failure state and adds its count in `seen` (one per poll; none: 0) to
`articles_seen`; an error counts against
the feed (error_count + 1, failing_since kept from the start of the streak) unless the record
says the daemon's own network was down.

Outcomes are grouped by shape (the kind of outcome and the columns it sets), one statement per
shape, built once and cached. On PostgreSQL a shape's rows travel as one JSON document and the
statement is one `UPDATE … FROM json_to_recordset(…)` (`db.recordset`): a cycle of a thousand
304s is one statement, not a thousand. SQLite gets an executemany.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, Update, bindparam, func, update

from monitor.edges.db import json_rows, recordset
from monitor.edges.schema import feeds

__all__ = ["PollRecord", "record_outcomes"]


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What one poll leaves on the feed row. `error` is None on success.

    An error counts against the feed (error_count + 1, failing_since set if unset) unless
    `counted` is False: the daemon's own network was down, and the feed's record of failures
    stays as it was. The schedule's state (`interval_s`, `items_per_day`) is written when given;
    `url` (a permanent redirect's target) becomes the polled URL; `disabled_reason` takes the
    feed out of the rotation as of `now`, and `operator_told` says the operator was told so.
    """

    status: str
    next_poll_at: datetime
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    title: str | None = None
    counted: bool = True
    interval_s: int | None = None
    items_per_day: float | None = None
    url: str | None = None
    disabled_reason: str | None = None
    operator_told: bool = False


#: A kind of outcome ("ok", "counted" error, "uncounted" error) and the columns it sets.
_Shape = tuple[str, tuple[str, ...]]


def record_outcomes(
    conn: Connection,
    polls: Sequence[tuple[str, PollRecord, datetime]],
    seen: Sequence[int] | None = None,
) -> None:
    counts = seen if seen is not None else [0] * len(polls)
    shapes: dict[_Shape, list[dict[str, Any]]] = {}
    for (feed_id, record, now), new in zip(polls, counts, strict=True):
        shape, params = _params(feed_id, record, now, new)
        shapes.setdefault(shape, []).append(params)
    postgres = conn.dialect.name == "postgresql"
    for (kind, names), rows in shapes.items():
        if postgres and len(rows) > 1:
            columns = ("id", *names, *_INPUTS[kind])
            document = json_rows([{n: row[f"v_{n}"] for n in columns} for row in rows])
            conn.execute(_recordset_statement(kind, names), {"rows": document})
        else:
            conn.execute(_statement(kind, names), rows)


#: The values a kind of outcome computes from besides the columns it sets.
_INPUTS: dict[str, tuple[str, ...]] = {"ok": ("seen",), "counted": ("now",), "uncounted": ()}


def _params(
    feed_id: str, rec: PollRecord, now: datetime, seen: int
) -> tuple[_Shape, dict[str, Any]]:
    """The statement shape and the parameters that leave `rec` on the feed row."""
    values: dict[str, Any] = {
        "last_polled_at": now,
        "next_poll_at": rec.next_poll_at,
        "last_status": rec.status[:64],
    }
    inputs: dict[str, Any] = {}
    if rec.error is None:
        kind = "ok"
        values |= {"last_error": None, "error_count": 0, "failing_since": None,
                   "last_success_at": now}  # fmt: skip
        inputs["seen"] = seen
        for name in ("etag", "last_modified", "body_hash", "title", "url"):
            if getattr(rec, name) is not None:
                values[name] = getattr(rec, name)
    else:
        values["last_error"] = rec.error[:2000]
        kind = "counted" if rec.counted else "uncounted"
        if rec.counted:
            inputs["now"] = now
    for name in ("interval_s", "items_per_day"):
        if getattr(rec, name) is not None:
            values[name] = getattr(rec, name)
    if rec.disabled_reason is not None:
        values |= {"disabled_at": now, "disabled_reason": rec.disabled_reason[:2000]}
    if rec.operator_told:
        values["operator_told_at"] = now
    params = {f"v_{name}": value for name, value in (values | inputs).items()}
    params["v_id"] = feed_id
    return (kind, tuple(sorted(values))), params


def _types() -> dict[str, Any]:
    return {"seen": Integer(), "now": feeds.c.failing_since.type}


def _computed(kind: str, value: Any) -> dict[str, Any]:
    """The columns a kind of outcome computes; `value(name)` is the row's input `name`."""
    if kind == "ok":
        return {"articles_seen": feeds.c.articles_seen + value("seen")}
    if kind == "counted":
        # An error counts against the feed; failing_since keeps the start of the streak.
        since = func.coalesce(feeds.c.failing_since, value("now"))
        return {"error_count": feeds.c.error_count + 1, "failing_since": since}
    return {}


@functools.lru_cache(maxsize=128)
def _statement(kind: str, names: tuple[str, ...]) -> Update:
    """UPDATE … WHERE id = :v_id, one row's parameters at a time (executemany)."""
    types = _types()

    def param(name: str) -> Any:
        return bindparam(f"v_{name}", type_=types.get(name) or feeds.c[name].type)

    values: dict[str, Any] = {n: param(n) for n in names} | _computed(kind, param)
    return update(feeds).where(feeds.c.id == param("id")).values(values)


@functools.lru_cache(maxsize=128)
def _recordset_statement(kind: str, names: tuple[str, ...]) -> Update:
    """UPDATE feeds … FROM json_to_recordset(:rows) AS v(id, …) WHERE feeds.id = v.id."""
    types = _types()
    columns = ("id", *names, *_INPUTS[kind])
    v = recordset([(n, types.get(n) or feeds.c[n].type) for n in columns], "v")

    def column(name: str) -> Any:
        return v.c[name]

    values: dict[str, Any] = {n: v.c[n] for n in names} | _computed(kind, column)
    return update(feeds).where(feeds.c.id == v.c.id).values(values)
