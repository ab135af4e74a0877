"""Database fixtures: every storage and pipeline test runs on SQLite and on PostgreSQL.

PostgreSQL comes from MONITOR_TEST_DATABASE_URL when set, else the local server at
127.0.0.1:5432 (user postgres, trust auth). A throw-away database is created for the session
and dropped at the end; each test starts from empty tables. When no server answers, the
PostgreSQL tests skip, except under CI=true, where they fail: CI must never go green without
having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from monitor.edges.db import make_engine
from monitor.edges.migrate import upgrade
from monitor.edges.outbox import Outbox
from monitor.edges.schema import metadata
from monitor.edges.store import Store

__all__ = ["db_url", "engine", "outbox", "pg_url", "scratch_database", "store"]

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("MONITOR_TEST_DATABASE_URL") or DEFAULT_PG


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a fresh, migrated PostgreSQL database for this test session."""
    admin_url = make_url(_admin_url())
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # any driver error means "no server here"
        admin.dispose()
        message = f"PostgreSQL not reachable at {admin_url.render_as_string()}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    admin.dispose()
    with scratch_database(admin_url.render_as_string(hide_password=False), "monitor_test") as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of `admin_url`, dropped on exit."""
    admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def truncate_all(engine: Engine) -> None:
    names = [t.name for t in reversed(metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database URL: SQLite in a temp folder, or the session PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "monitor.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        return url
    url: str = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    truncate_all(engine)
    engine.dispose()
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine)


@pytest.fixture
def outbox(engine: Engine) -> Outbox:
    return Outbox(engine)
