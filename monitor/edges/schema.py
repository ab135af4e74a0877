"""The database schema (SQLAlchemy Core tables), the same on PostgreSQL and SQLite.

Alembic migrations in `migrations/` create exactly these tables; a test compares the two.
Dedupe lives in unique constraints, so the database, not the code, decides what is new:

* `articles`: unique (url_key) — the same link, tracking parameters and all, is one article
  whichever feed brought it; unique (feed_id, guid_key) — an item re-sent by its feed.
* `matches`: unique (article_id, watchlist_id).
* `alerts` (the outbox): unique (article_id, destination) — one alert per article and
  destination, written in the same transaction as the article, marked sent only after the send.

Failure state lives on the feed row (error count, last error, last status) where `monitor
status` and the scheduler read it, not only in logs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and on SQLite (text).

    SQLite has no time zone type and hands back naive values; normalising at this one place
    keeps every comparison in the code between aware datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# BIGINT on PostgreSQL; SQLite only auto-increments a column declared exactly INTEGER.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("title", Text),  # what the feed calls itself
    Column("enabled", Boolean, nullable=False, default=True),
    Column("in_config", Boolean, nullable=False, default=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_polled_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("next_poll_at", UTCDateTime),
    Column("last_status", String(64)),
    Column("last_error", Text),
    Column("error_count", Integer, nullable=False, default=0),
    Column("articles_seen", Integer, nullable=False, default=0),
)

articles = Table(
    "articles",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("feed_id", String(64), ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("guid_key", String(64), nullable=False),
    Column("url_key", String(64)),
    Column("guid", Text, nullable=False),
    Column("url", Text),
    Column("title", Text, nullable=False),
    Column("summary", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("lang", String(16)),
    Column("author", Text),
    Column("published_at", UTCDateTime),
    Column("fetched_at", UTCDateTime, nullable=False),
    UniqueConstraint("feed_id", "guid_key"),
    UniqueConstraint("url_key"),
    Index(None, "fetched_at"),
)

matches = Table(
    "matches",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("watchlist_id", String(64), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("terms", JSON, nullable=False),  # the terms that hit, as written
    Column("hits", JSON, nullable=False),  # [{term, field, start, end}] for "why it matched"
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("article_id", "watchlist_id"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("article_id", Id, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("destination", String(64), nullable=False),
    Column("watchlists", JSON, nullable=False),  # ids of the matched watchlists it reports
    Column("priority", SmallInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("external_id", Text),  # e.g. the Telegram message id
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("article_id", "destination"),
    Index(None, "status", "next_attempt_at"),
)

#: What the daemon wants other processes (`monitor status`) to know: e.g. the last config
#: reload and its problems. One row per key, overwritten.
daemon_state = Table(
    "daemon_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

PENDING, SENT, FAILED = "pending", "sent", "failed"
