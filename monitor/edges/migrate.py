"""Schema migrations: runs the Alembic scripts in `migrations/` on a given engine.

The scripts live at the top of the repository (the project's fixed layout), next to the
`monitor` package; the daemon is installed in editable mode or run from a checkout, and
`MONITOR_MIGRATIONS_DIR` points elsewhere when neither holds (a packaged install).
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from monitor.core.errors import PermanentError
from monitor.edges.db import unavailable_as_transient


def migrations_dir() -> Path:
    override = os.environ.get("MONITOR_MIGRATIONS_DIR")
    path = Path(override) if override else Path(__file__).resolve().parents[2] / "migrations"
    if not (path / "env.py").is_file():
        raise PermanentError(f"migrations folder not found at {path} (set MONITOR_MIGRATIONS_DIR)")
    return path


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


#: The advisory lock key that serialises migrations on PostgreSQL ("migrate" in ASCII).
_MIGRATION_LOCK = 0x6D696772617465


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    config = _config()
    with unavailable_as_transient(engine), engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table (copy, drop, rename) to alter it; with foreign keys
            # on, SQLite's DROP TABLE first deletes the rows, and ON DELETE CASCADE would
            # empty the tables that point at it (matches and alerts). The pragma only takes
            # effect outside a transaction, so it is set before ours begins.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.commit()
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # Several workers starting at once on one database: one migrates, the
                    # others wait here and then find the schema current.
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise PermanentError(f"migration left dangling references: {broken[:5]}")
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def pending(engine: Engine) -> list[str]:
    """Revisions not yet applied (empty when the schema is current)."""
    script = ScriptDirectory.from_config(_config())
    with unavailable_as_transient(engine), engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    heads = set(script.get_heads())
    if current == heads:
        return []
    return [rev.revision for rev in script.iterate_revisions("heads", "base")
            if rev.revision not in current]  # fmt: skip
