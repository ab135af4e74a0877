"""core.prepare: keys always, matches and fingerprints with a matcher, "not yet" kept apart
from "nothing"."""

from __future__ import annotations

from monitor.core.dedupe import guid_key, url_key
from monitor.core.match import Matcher
from monitor.core.model import Article, Watchlist
from monitor.core.prepare import complete, prepare
from monitor.core.story import fingerprint

TAIWAN = Watchlist.model_validate({"id": "taiwan", "match": {"any": ["Taiwan", "Тайвань"]}})
MATCHER = Matcher([TAIWAN])
HIT = Article(
    feed_id="f", guid=" g-1 ", url="https://Example.org/a?utm_source=x",
    title="Taiwan's coast guard shadows survey ships near Kinmen",
    summary="Patrol boats followed three vessels for most of the day, officials said.",
)  # fmt: skip
MISS = Article(feed_id="f", guid="g-2", url=None, title="Harvest festival opens", summary="")


def test_without_a_matcher_only_the_keys_are_known() -> None:
    item = prepare(HIT)
    assert (item.guid_key, item.url_key) == (guid_key(" g-1 "), url_key(HIT.url))
    assert item.matches is None and item.fingerprint is None


def test_with_a_matcher_matches_and_fingerprint_come_together() -> None:
    item = prepare(HIT, MATCHER)
    assert item.matches is not None and [m.watchlist_id for m in item.matches] == ["taiwan"]
    assert item.fingerprint == fingerprint(HIT.title, HIT.summary)


def test_matching_nothing_is_an_empty_answer_not_an_open_question() -> None:
    item = prepare(MISS, MATCHER)
    assert item.matches == () and item.fingerprint is None
    assert item.url_key is None


def test_complete_matches_what_was_left_open_and_nothing_twice() -> None:
    assert complete(prepare(HIT), MATCHER) == prepare(HIT, MATCHER)
    done = prepare(HIT, MATCHER)
    # Already matched (by a worker, with the watchlists of its day): kept as it is, even
    # by a matcher that would say otherwise now.
    assert complete(done, Matcher([TAIWAN.model_copy(update={"id": "other"})])) is done


def test_feed_tags_reach_the_matcher() -> None:
    tagged = Watchlist.model_validate(
        {"id": "tagged", "sources": ["wire"], "match": {"any": ["Taiwan"]}}
    )
    matcher = Matcher([tagged])
    assert prepare(HIT, matcher).matches == ()
    assert [m.watchlist_id for m in prepare(HIT, matcher, ["wire"]).matches or ()] == ["tagged"]
