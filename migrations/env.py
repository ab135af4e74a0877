"""Alembic environment: migrates the database named by the caller, or MONITOR_DATABASE_URL.

`monitor db upgrade` passes its own open connection in `config.attributes["connection"]`, so
the URL is resolved in exactly one place (the CLI's settings). Batch mode makes ALTERs work on
SQLite, which cannot alter most things in place.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from monitor.edges.schema import metadata

config = context.config


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = os.environ.get("MONITOR_DATABASE_URL", "sqlite:///./data/monitor.db")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()
