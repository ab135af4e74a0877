"""Turn what feeds say into the plain text and UTC datetimes that Articles hold.

Contract (pure: no I/O, no clock, no environment):

- `html_to_text(html, limit)` and `plain_text(s, limit)`: feed HTML and text as clean plain
  text; they live in `monitor.core.html_text` (whose docstring is their contract) and are
  re-exported here, where the rest of the project imports them from.
- `to_utc(value)`: an aware UTC datetime from a feedparser `time.struct_time` (which is UTC), a
  naive datetime (taken as UTC), an aware datetime, or an ISO-8601 / RFC 3339 / RFC 822 string;
  None for anything else, for garbage, and for dates outside [1970, 2200).

html_to_text and plain_text live in monitor.core.html_text, with the HTML tokenizer (hardened
against hostile markup: linear time, CVE-2025-6069) and its fast path; they are imported from here.
"""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, date, datetime

from monitor.core.html_text import html_to_text, plain_text

__all__ = ["html_to_text", "plain_text", "to_utc"]

MIN_YEAR = 1970
MAX_YEAR = 2199  # anything later is a broken date field, not a scheduled post
_MAX_DATE_CHARS = 100


def to_utc(value: object) -> datetime | None:
    """An aware UTC datetime, or None when `value` is not a plausible date (see module doc)."""
    result: datetime | None
    if isinstance(value, time.struct_time):
        result = _from_struct(value)
    elif isinstance(value, datetime):
        result = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    elif isinstance(value, date):
        result = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        result = _from_string(value)
    else:
        return None
    if result is None:
        return None
    try:
        result = result.astimezone(UTC)
    except (OverflowError, ValueError):
        return None  # an offset pushed it past year 1 or 9999
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        return None
    return result


def _from_struct(value: time.struct_time) -> datetime | None:
    # feedparser normalizes every date it parses to a UTC struct_time.
    try:
        # tm_sec may be 60 or 61 (leap seconds, RFC 822 allows them); datetime does not.
        return datetime(*value[:5], min(value.tm_sec, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _from_string(value: str) -> datetime | None:
    text = value.strip()
    if not text or len(text) > _MAX_DATE_CHARS:
        return None
    try:
        # RFC 3339 (JSON Feed) allows a lower-case "t" and "z"; fromisoformat does not.
        return datetime.fromisoformat(text.upper())
    except ValueError:
        pass
    try:
        # RFC 822/2822 (RSS pubDate), including obsolete zone names such as "EST" and "GMT";
        # an unknown zone gives a naive datetime, taken as UTC like every other naive value.
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
