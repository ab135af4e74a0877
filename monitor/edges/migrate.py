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


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is there already)."""
    config = _config()
    with unavailable_as_transient(engine), engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


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
