"""What can be known about a parsed article before the database is asked anything.

Contract: `prepare(article, matcher, feed_tags)` returns a `Prepared`: the article, its dedupe
keys (`dedupe.guid_key`, `dedupe.url_key`) and, when a matcher is given, the watchlists it
matches (`Matcher.match`) and, if it matched any, its story fingerprint (`story.fingerprint`).
With `matcher=None` only the keys are computed and `matches` is None: "not decided yet", which
is not the same as "matched nothing" (an empty tuple).

Why it exists: all of this is pure and costs more CPU than the rest of an ingest together, so
the parse worker processes compute it beside the parse (`edges.parse_worker`), off the daemon's
one interpreter. Where parsing runs in a thread there is no core to spare, and the daemon
matches lazily instead: only the articles the database has not seen, which on a warm poll of a
changed feed is a few of them, not all (`complete`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

from monitor.core.dedupe import guid_key, url_key
from monitor.core.match import Matcher
from monitor.core.model import Article, WatchlistMatch
from monitor.core.story import Fingerprint, fingerprint

__all__ = ["Prepared", "complete", "prepare"]


@dataclass(frozen=True, slots=True)
class Prepared:
    article: Article
    guid_key: str
    url_key: str | None
    #: The watchlists matched, by watchlist id; None: not matched yet (see `complete`).
    matches: tuple[WatchlistMatch, ...] | None = None
    #: Set only when `matches` is not empty, and even then None for too little text.
    fingerprint: Fingerprint | None = None


def prepare(
    article: Article, matcher: Matcher | None = None, feed_tags: Collection[str] = ()
) -> Prepared:
    """The article's keys, and with a matcher its matches and (if any) its fingerprint."""
    item = Prepared(article, guid_key(article.guid), url_key(article.url))
    return item if matcher is None else complete(item, matcher, feed_tags)


def complete(item: Prepared, matcher: Matcher, feed_tags: Collection[str] = ()) -> Prepared:
    """`item` matched with `matcher`, unless it was matched already (then it is returned as is:
    the worker's matcher was the one in force when the feed was parsed)."""
    if item.matches is not None:
        return item
    found = tuple(matcher.match(item.article, feed_tags=feed_tags))
    article = item.article
    fp = fingerprint(article.title, article.summary) if found else None
    return replace(item, matches=found, fingerprint=fp)
