"""Upgrading a database that holds data keeps every row, on SQLite in particular.

SQLite alters a table by rebuilding it (copy, drop, rename); with foreign keys on, dropping the
old `articles` would cascade into `matches` and `alerts`, silently deleting pending alerts.
`monitor.edges.migrate.upgrade` turns foreign keys off for the migration and checks them after.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import func, select, text

from monitor.edges.db import make_engine
from monitor.edges.migrate import _config, upgrade
from monitor.edges.schema import alerts, articles, matches

NOW = datetime(2026, 2, 4, 12, 0, tzinfo=UTC).replace(tzinfo=None).isoformat(" ")


def test_an_upgrade_from_0002_keeps_articles_matches_and_pending_alerts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO feeds (id, url, name, enabled, in_config, created_at, error_count,"
            f" articles_seen) VALUES ('f', 'https://x.example/rss', 'f', 1, 1, '{NOW}', 0, 0)"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO articles (id, feed_id, guid_key, url_key, guid, url, title, summary,"
            " content, tags, fetched_at) VALUES (1, 'f', 'g', 'u', 'g', 'https://x.example/1',"
            f" 'Taiwan', '', '', '[]', '{NOW}')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO matches (article_id, watchlist_id, priority, terms, hits, created_at)"
            f" VALUES (1, 'taiwan', 2, '[\"Taiwan\"]', '[]', '{NOW}')"
        ))  # fmt: skip
        conn.execute(text(
            "INSERT INTO alerts (article_id, destination, watchlists, priority, status, attempts,"
            f" next_attempt_at, created_at) VALUES (1, 'desk', '[\"taiwan\"]', 2, 'pending', 0,"
            f" '{NOW}', '{NOW}')"
        ))  # fmt: skip

    upgrade(engine)

    with engine.connect() as conn:
        counts = [conn.scalar(select(func.count()).select_from(t)) for t in (articles, matches,
                                                                             alerts)]  # fmt: skip
        assert counts == [1, 1, 1]
        assert conn.scalar(select(alerts.c.status)) == "pending"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1  # back on afterwards
    engine.dispose()
