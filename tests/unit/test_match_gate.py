"""The matcher's gate and fast paths give exactly what the full scan gives (monitor.core.scan).

`Matcher.match` first asks a gate whether any `any` term can occur in the article and skips the
full scan when none can; folding and tokenising take shortcuts for common text. Each test here
holds the fast matcher to the full scan (`Matcher._match(..., gated=False)`) on a corpus: the
bench's generated feeds with the bench's watchlists, the labelled sets, the real-feed corpus
(../shared/corpus/real, skipped when absent) and texts built to hit the gate's edge cases.
"""

from __future__ import annotations

import gzip
import itertools
import random
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.core.errors import MonitorError
from monitor.core.fold import TOKEN, _fold_char, arabic_stems, fold, nfc, tokens
from monitor.core.match import Matcher
from monitor.core.model import Article, Watchlist
from monitor.core.scan import _CLITIC_LETTERS, _CLITICS, Scanner
from monitor.edges.config import load_watchlists
from monitor.edges.parse import parse_feed
from tests.bench.bench_match import generated_terms
from tests.bench.corpus import feed
from tests.corpus import corpus_files, needs_corpus
from tests.evaluate import SETS, load_items

REPO = Path(__file__).resolve().parents[2]


@cache
def bench_matcher() -> Matcher:
    """The shipped watchlists plus 1,000 generated terms, configured as tests/bench/bench.py
    (`write_config`) configures the daemon."""
    with tempfile.TemporaryDirectory() as tmp:
        lists = Path(tmp) / "watchlists"
        lists.mkdir()
        for path in sorted((REPO / "config" / "watchlists").glob("*.yaml")):
            shutil.copy(path, lists / path.name)
        extra = generated_terms(1000, random.Random(20260204))
        (lists / "bench-terms.yaml").write_text(
            yaml.safe_dump({"name": "Bench terms", "match": {"any": extra}}, allow_unicode=True)
        )
        return Matcher(load_watchlists(Path(tmp)))


def assert_same(matcher: Matcher, articles: list[Article]) -> tuple[int, int]:
    """Fast and full results agree on every article; returns (matched, gated out) counts."""
    matched = gated_out = 0
    for article in articles:
        fast = matcher.match(article)
        assert fast == matcher._match(article, (), gated=False), (article.title, article.summary)
        matched += bool(fast)
        gated_out += not matcher._scanner.admits(article, matcher._fields)
    return matched, gated_out


def test_bench_corpus() -> None:
    articles = [
        article
        for index in range(26)  # two feeds in each of the 13 languages
        for article in parse_feed(
            feed(index, 20, 20260204),
            feed_id="x",
            url="http://x/",
            content_type="application/rss+xml",
        ).articles
    ]
    matched, gated_out = assert_same(bench_matcher(), articles)
    assert matched > 0
    assert gated_out + matched <= len(articles)
    assert gated_out > 0.8 * (len(articles) - matched)


@pytest.mark.parametrize("name", SETS)
def test_labelled_sets(name: str) -> None:
    articles = [
        Article(
            feed_id="labelled",
            guid=str(item["id"]),
            url=None,
            title=str(item["title"]),
            summary=str(item["summary"]),
            lang=str(item["lang"]),
        )
        for item in load_items(name)
    ]
    if not articles:
        pytest.skip(f"tests/data/{name} is empty")
    matched, _ = assert_same(bench_matcher(), articles)
    assert matched > 0


@needs_corpus
def test_real_corpus() -> None:
    articles: list[Article] = []
    for path in corpus_files("real"):
        body = path.read_bytes()
        if body.startswith(b"\x1f\x8b"):  # stored as the raw gzip stream a server would send
            body = gzip.decompress(body)
        content_type = "application/feed+json" if path.suffix == ".json" else None
        try:
            parsed = parse_feed(body, feed_id="real", url="http://x/", content_type=content_type)
        except MonitorError:
            continue
        articles.extend(parsed.articles)
    assert len(articles) > 1000
    assert_same(bench_matcher(), articles)


def test_the_gate_rules_out_an_article_that_matches_nothing() -> None:
    matcher = bench_matcher()
    article = Article(
        feed_id="f",
        guid="g",
        url=None,
        title="Central bank holds rates as inflation cools",
        summary="Officials met on Tuesday to discuss trade, energy prices and the budget. " * 20,
    )
    assert not matcher._scanner.admits(article, matcher._fields)
    assert matcher.match(article) == []


def test_match_skips_the_full_scan_when_the_gate_says_no(monkeypatch: pytest.MonkeyPatch) -> None:
    matcher = Matcher([_wl(["Taiwan", "Украин*", "台湾"])])

    def full_scan(*args: Any) -> None:
        raise AssertionError("the full scan ran")

    monkeypatch.setattr(Scanner, "_scan_field", full_scan)
    assert matcher.match(_article("Storm brings flooding", "Шторм на побережье. 大雨。")) == []
    with pytest.raises(AssertionError):
        matcher.match(_article("Storm over Taiwan"))


def _wl(terms: list[Any], wid: str = "w", **rule: Any) -> Watchlist:
    return Watchlist.model_validate({"id": wid, "match": {"any": terms, **rule}})


def _article(title: str, summary: str = "", tags: tuple[str, ...] = ()) -> Article:
    return Article(feed_id="f", guid="g", url=None, title=title, summary=summary, tags=tags)


# (terms, title, summary, matches?): each is checked fast against full as well.
EDGES: list[tuple[list[Any], str, str, bool]] = [
    (["Taiwan"], "“Taiwan” «Taiwan» „Taiwan“", "", True),
    (["Taiwan"], "Taiwanese", "«Tai» wan", False),
    (["Taiwan"], "وTaiwan", "", True),  # a conjunction glued to a Latin word is taken off
    (["أوكرانيا"], "لأوكرانيا", "", True),
    (["أوكرانيا"], "وللأوكرانيا والأوكرانيا", "", True),
    (["أوكرانيا"], "أوكرانيات", "", False),
    (["تايوان*"], "والتايوانية", "", True),
    (["بوتين"], "فبوتين", "", True),
    (["Украин*"], "об Украине", "", True),
    (["Украин*"], "Украинцев", "", True),
    (["Grönland*"], "GRONLANDS", "", True),
    (["New START"], "a new start for the club", "", True),
    ([{"term": "New START", "case_sensitive": True}], "a new start", "", False),
    (["New START"], "new", "start", False),  # a phrase only within one field
    (["New START"], "", "New-START talks", True),
    (["台湾"], "G7峰会讨论台湾问题", "", True),
    (["台湾"], "平台湾区", "", True),
    (["ไทย"], "ประเทศไทยวันนี้", "", True),
    (["G7峰会"], "这次G7峰会", "", True),
    (["Taiwan"], "Taiwan\x00", "\ud800Taiwan", True),  # NUL and a lone surrogate
    (["Taiwan"], "a·b©c®d°e№f€g", "Taiwan", True),  # odd characters between letters
    (["Taiwan"], "a·b©c®d°e№f€g", "Taiwa n", False),
    (["ﬁre"], "FIRE", "", True),
    (["Straße"], "STRASSE", "", True),
    (["İstanbul"], "ıstanbul", "", True),
    (["ёлка"], "Елка", "", True),
    (["Ukraine"], "Ukraine\u00adkrieg", "", False),
]


@pytest.mark.parametrize(("terms", "title", "summary", "expected"), EDGES)
def test_edge_cases(terms: list[Any], title: str, summary: str, expected: bool) -> None:
    matcher = Matcher([_wl(terms)])
    article = _article(title, summary)
    fast = matcher.match(article)
    assert fast == matcher._match(article, (), gated=False)
    assert bool(fast) is expected


def test_only_any_terms_open_the_gate() -> None:
    matcher = Matcher([_wl(["Taiwan"], none=["Kyiv"], all=[["Kyiv"]])])
    article = _article("Kyiv")
    assert not matcher._scanner.admits(article, matcher._fields)
    explained = matcher.explain(article, "w")
    assert explained == (None, "no 'any' term occurs")


def test_every_proclitic_arabic_stems_takes_off_is_known() -> None:
    """The gate's list of proclitics covers every prefix `arabic_stems` removes."""
    words = ["اوكرانيا", "لندن", "بوتين", "ولاية", "التايوان", "كييف", "فرنسا", "تايوان"]
    letters = sorted(_CLITIC_LETTERS)
    for length in range(1, 6):
        for prefix in map("".join, itertools.product(letters, repeat=length)):
            for word in words:
                if word[0] in _CLITIC_LETTERS and word in arabic_stems(prefix + word):
                    assert prefix in _CLITICS, (prefix, word)


def test_random_arabic_glue_against_the_full_scan() -> None:
    rng = random.Random(7)
    letters = [*sorted(_CLITIC_LETTERS), "ت", "ي", "ن", "ر"]
    words = ["اوكرانيا", "لندن", "بوتين", "تايوان", "والي", "abc"]
    matcher = Matcher([_wl([*words, "تاي*", "ولا*", "لند*"])])
    for _ in range(3000):
        glue = "".join(rng.choice(letters) for _ in range(rng.randint(0, 5)))
        article = _article(glue + rng.choice(words) + rng.choice(["", "ه", "ية"]))
        assert matcher.match(article) == matcher._match(article, (), gated=False), article.title


def test_tokens_are_token_spans() -> None:
    texts = ["Taiwan's F-35 «jets» 2024", "Украина и الاوكرانية", "台湾G7峰会 abc", ""]
    texts += ["𝐀𝐁 abc 𠀀台湾 x", "\ud800 abc", "ไทยabc"]  # astral letters, a lone surrogate
    texts += [fold(nfc(text)) for text in _some_texts()]
    for text in texts:
        spans = [m.span() for m in TOKEN.finditer(text)]
        runs = {i for i, m in enumerate(TOKEN.finditer(text)) if m.lastindex == 1}
        assert tokens(text) == (spans, runs)


def test_fold_takes_shortcuts_to_the_same_result() -> None:
    def reference(text: str) -> str:
        return "".join(_fold_char(c, keep_case=False) for c in nfc(text))

    chars = [chr(c) for c in range(0x3100)] + [chr(c) for c in range(0x4E00, 0xA000, 97)]
    for char in chars:
        assert fold(char) == reference(char), char
    rng = random.Random(3)
    latin1 = [chr(c) for c in range(256)]
    for _ in range(2000):  # Latin-1 text goes through a byte table
        text = "".join(rng.choice(latin1) for _ in range(rng.randint(1, 20)))
        assert fold(text) == reference(text), text
    for text in _some_texts():
        assert fold(text) == reference(text)
        mixed = "".join(rng.sample(text, min(len(text), 200)))
        assert fold(mixed) == reference(mixed)
    assert fold("Straße\xadn 5µm ½") == reference("Straße\xadn 5µm ½")
    assert fold("Ab\x00É") == "ab\x00e"
    assert fold("ΣΑΣ ΟΔΟΣ") == "σασ οδοσ"


def _some_texts() -> list[str]:
    texts = [
        f"{item['title']} {item['summary']}" for name in SETS for item in load_items(name)[::7]
    ]
    body = feed(5, 5, 20260204).decode()
    return [*texts, body, body.upper()]
