"""The database schema (SQLAlchemy Core tables), the same on PostgreSQL and SQLite.

Alembic migrations in `migrations/` create exactly these tables; a test compares the two.
Dedupe lives in unique constraints, so the database, not the code, decides what is new:

* `articles`: unique (url_key) — the same link, tracking parameters and all, is one article
  whichever feed brought it; unique (feed_id, guid_key) — an item re-sent by its feed.
* `matches`: unique (article_id, watchlist_id).
* `stories`: articles that report the same story (a copy with another link, an edited
  headline) share a story; `story_keys` holds each story's LSH band keys, the index that finds
  candidate stories for a new article (monitor.core.story).
* `alerts` (the outbox): unique (story_id, destination) — one alert per story and destination
  (and so per article), written in the same transaction as the article, marked sent only after
  the send. A later copy of the story sets `update_due_at` on a sent alert: its message is
  edited in place to list the new source.
* `destination_state`: what delivery learnt about a destination (a Telegram chat that moved,
  repeated refusals, whether the operator was told).
* `mutes` and `feedback`: what the team told the bot (mute a watchlist or a story until a
  time; "not relevant" and the other alert buttons).

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
    Float,
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
    Column("url", Text, nullable=False),  # where it is polled: config_url after 301/308s
    Column("config_url", Text),  # the URL as monitor's feeds.yaml gives it
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
    # Scheduling (monitor.core.schedule): the interval in force, adapted to how often the
    # feed publishes, and the publishing rate it is derived from.
    Column("interval_s", Integer),
    Column("items_per_day", Float),
    Column("failing_since", UTCDateTime),  # first error of the current run of errors
    # Taken out of the rotation by the daemon (410 Gone, failing for too long), not by the
    # config; `operator_told_at` records that the operator was told, once.
    Column("disabled_at", UTCDateTime),
    Column("disabled_reason", Text),
    Column("operator_told_at", UTCDateTime),
    # A worker's claim on the feed while it polls it (SELECT … FOR UPDATE SKIP LOCKED); a
    # killed worker's claim lapses at lease_until and another worker takes the feed.
    Column("lease_owner", String(128)),
    Column("lease_until", UTCDateTime),
    Index(None, "next_poll_at"),
)

stories = Table(
    "stories",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("signature", Text),  # core.story.Fingerprint.encode(); None: too little text
    Column("title", Text, nullable=False),  # the first article's
    Column("articles", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index(None, "created_at"),
)

story_keys = Table(
    "story_keys",
    metadata,
    Column("key", BigInteger, primary_key=True),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
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
    Column("story_id", Id, ForeignKey("stories.id", ondelete="SET NULL")),
    UniqueConstraint("feed_id", "guid_key"),
    UniqueConstraint("url_key"),
    Index(None, "fetched_at"),
    Index(None, "story_id"),
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
    Column("story_id", Id, ForeignKey("stories.id", ondelete="CASCADE")),
    # How it went out: message | summary (a burst collapsed) | digest | muted | backlog.
    Column("delivered_as", String(16)),
    Column("parts", JSON),  # external ids of the parts a broken multi-part send delivered
    Column("uncertain", Integer, nullable=False, default=0),  # ambiguous timeouts so far
    Column("refused", JSON),  # {recipient: server reply} for recipients that did not get it
    Column("update_due_at", UTCDateTime),  # the story grew: edit the sent message from then
    Column("updated_at", UTCDateTime),
    UniqueConstraint("article_id", "destination"),
    UniqueConstraint("story_id", "destination"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "update_due_at"),
)

destination_state = Table(
    "destination_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("chat_id", Text),  # where a Telegram group moved (ChatMigrated); overrides the config
    Column("moved_from", Text),  # ... as long as the config still names this chat
    Column("failures", Integer, nullable=False, default=0),  # refusals in a row (403)
    Column("failing_since", UTCDateTime),
    Column("last_error", Text),
    Column("operator_told_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

mutes = Table(
    "mutes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("scope", String(16), nullable=False),  # watchlist | story
    Column("target", String(64), nullable=False),  # a watchlist id, or a story id as text
    Column("until", UTCDateTime, nullable=False),
    Column("by", Text),  # who asked: "telegram:<user id> (<name>)"
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("scope", "target"),  # muting again moves `until`
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", Id, ForeignKey("alerts.id", ondelete="SET NULL")),
    Column("story_id", Id, ForeignKey("stories.id", ondelete="SET NULL")),
    Column("watchlists", JSON, nullable=False),
    Column("action", String(32), nullable=False),  # mute_story | snooze_watchlist | not_relevant
    Column("user_id", BigInteger),
    Column("chat_id", Text),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("alert_id", "action", "user_id"),
)

#: Named leases shared by every worker on the database: who delivers for a destination (or for
#: all the chats of one Telegram bot, whose limits are shared), who runs a periodic job. A lease
#: is taken when free or expired, renewed by its owner, and lapses if the owner dies.
leases = Table(
    "leases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("acquired_at", UTCDateTime, nullable=False),
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
#: Not sent, on purpose: its watchlists were muted, or it was a new feed's backlog.
SKIPPED = "skipped"
