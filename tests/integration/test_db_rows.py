"""Database helpers on SQLite and PostgreSQL: bulk inserts, array lookups, relaxed commits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError

from monitor.edges.db import insert_rows_ignore, make_engine, one_of, relaxed_commit
from monitor.edges.schema import articles, feeds

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC)


def _feed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            feeds.insert().values(id="a", url="http://x/a", name="A", enabled=True,
                                  in_config=True, created_at=NOW, error_count=0,
                                  articles_seen=0)
        )  # fmt: skip


def _row(n: int, *, url_key: str | None = None, tags: list[str] | None = None) -> dict[str, object]:
    return {
        "feed_id": "a", "guid_key": f"g{n}", "url_key": url_key, "guid": f"guid {n}",
        "url": None, "title": f"Title {n} — ünïcode, 台湾", "summary": "it's \"quoted\" {x}",
        "content": "", "tags": tags if tags is not None else [], "lang": None, "author": None,
        "published_at": None if n % 2 else NOW, "fetched_at": NOW,
    }  # fmt: skip


def test_inserts_every_new_row_and_returns_what_it_inserted(engine: Engine) -> None:
    _feed(engine)
    rows = [_row(n, tags=["a", "b c"] if n == 1 else None) for n in range(30)]
    with engine.begin() as conn:
        got = insert_rows_ignore(conn, articles, rows, ("guid_key", "title"))
    assert sorted(got) == sorted((r["guid_key"], r["title"]) for r in rows)
    with engine.connect() as conn:
        stored = {r.guid_key: r for r in conn.execute(select(articles))}
    assert stored["g1"].tags == ["a", "b c"] and stored["g2"].tags == []
    assert stored["g2"].published_at == NOW and stored["g1"].published_at is None
    assert stored["g3"].summary == 'it\'s "quoted" {x}' and stored["g3"].url_key is None


def test_conflicting_rows_are_skipped_and_not_returned(engine: Engine) -> None:
    _feed(engine)
    with engine.begin() as conn:
        insert_rows_ignore(conn, articles, [_row(1), _row(2, url_key="u2")], ())
    again = [_row(1), _row(3, url_key="u2"), _row(4), _row(4)]  # same guid, same URL, twice
    with engine.begin() as conn:
        got = insert_rows_ignore(conn, articles, again, ("guid_key",))
    assert got == [("g4",)]
    with engine.connect() as conn:
        assert sorted(conn.scalars(select(articles.c.guid_key))) == ["g1", "g2", "g4"]


def test_no_rows_is_no_statement(engine: Engine) -> None:
    with engine.begin() as conn:
        assert insert_rows_ignore(conn, articles, [], ("id",)) == []


def test_a_relaxed_commit_is_relaxed_for_its_own_transaction_only(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        with conn.begin():
            relaxed_commit(conn)
            if postgres:
                assert conn.scalar(text("SHOW synchronous_commit")) == "off"
        if postgres:
            assert conn.scalar(text("SHOW synchronous_commit")) == "on"


def test_one_of_matches_any_number_of_values(engine: Engine) -> None:
    _feed(engine)
    with engine.begin() as conn:
        insert_rows_ignore(conn, articles, [_row(n) for n in range(5)], ())
    with engine.connect() as conn:
        for wanted in ([], ["g1"], ["g0", "g3", "nope"]):
            query = select(articles.c.guid_key).where(one_of(conn, articles.c.guid_key, wanted))
            assert sorted(conn.scalars(query)) == sorted(set(wanted) - {"nope"})


def test_rows_keep_every_character_and_instant_on_the_way_in(engine: Engine) -> None:
    # On PostgreSQL the rows travel as one JSON document: what JSON escapes (backslashes,
    # quotes, control characters, line separators, characters beyond the BMP) must come
    # back as it went in, and an aware time in another zone must keep its instant.
    _feed(engine)
    odd = 'back\\slash \\u0041 "q" \x01\x1f \u2028\u2029 \U0001f30d {"k": [1]} \t\r\n'
    east = datetime(2026, 2, 4, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    row = _row(1, tags=[odd, "x"]) | {"title": odd, "published_at": east}
    with engine.begin() as conn:
        insert_rows_ignore(conn, articles, [row], ())
    with engine.connect() as conn:
        stored = conn.execute(select(articles)).one()
    assert stored.title == odd and stored.tags == [odd, "x"]
    assert stored.published_at == datetime(2026, 2, 4, 12, 30, tzinfo=UTC)


def test_a_naive_time_is_refused_before_it_reaches_the_database(engine: Engine) -> None:
    _feed(engine)
    row = _row(1) | {"published_at": datetime(2026, 2, 4, 12, 0)}
    with engine.begin() as conn, pytest.raises((ValueError, StatementError), match="naive"):
        insert_rows_ignore(conn, articles, [row], ())


@pytest.mark.parametrize(
    "keys",
    [
        ["ab12", "00ff"],  # hex: sent as one array literal
        ["ab,cd", "ab"],  # hex around a comma: must stay one value
        ["NULL", "{x}", 'q"uote', "back\\slash", "sp ace", ""],  # what a literal would quote
        ["feed-1", "Feed_2.x"],  # ids: plain words, one array literal too
        ["a", "NuLl"],  # the word a literal would read as a null
    ],
)
def test_one_of_reads_each_value_as_itself(engine: Engine, keys: list[str]) -> None:
    _feed(engine)
    rows = [_row(n) | {"guid_key": key} for n, key in enumerate(keys)]
    rows.append(_row(99) | {"guid_key": "ab,cd,ef"})
    with engine.begin() as conn:
        insert_rows_ignore(conn, articles, rows, ())
    with engine.connect() as conn:
        for many in (False, True):
            found = one_of(conn, articles.c.guid_key, keys, many=many)
            assert sorted(conn.scalars(select(articles.c.guid_key).where(found))) == sorted(keys)
        ids = sorted(conn.scalars(select(articles.c.id)))
        by_id = select(articles.c.id).where(one_of(conn, articles.c.id, [*ids[:2], -1]))
        assert sorted(conn.scalars(by_id)) == ids[:2]


@pytest.mark.postgres
def test_postgresql_sessions_do_not_compile_plans_with_llvm(pg_url: str) -> None:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SHOW jit")) == "off"
    finally:
        engine.dispose()
