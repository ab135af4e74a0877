"""The term language of CONTRACT.md, form by form, as a table: (term, text, matches?)."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.core.match import Matcher
from monitor.core.model import Article, Watchlist


def _wl(wid: str = "w", **rule: Any) -> Watchlist:
    extra = {k: rule.pop(k) for k in ("languages", "sources", "fields") if k in rule}
    return Watchlist.model_validate({"id": wid, "match": rule, **extra})


def _matches(term: Any, title: str, summary: str = "") -> bool:
    matcher = Matcher([_wl(any=[term])])
    return bool(
        matcher.match(Article(feed_id="f", guid="g", url=None, title=title, summary=summary))
    )


WORD = [
    ("Taiwan", "Taiwan holds drills", True),
    ("Taiwan", "taiwan holds drills", True),
    ("Taiwan", "TAIWAN'S navy", True),
    ("Taiwan", "Taiwan’s navy", True),
    ("Taiwan", "La crise de Taïwan", True),
    ("Taïwan", "Taiwan crisis", True),
    ("Taiwan", "Die Taiwan-Krise", True),
    ("Taiwan", "Taiwan–China talks", True),
    ("Taiwan", "(Taiwan)", True),
    ("Taiwan", "Taiwanese officials", False),
    ("Taiwan", "Chinataiwan", False),
    ("Taiwan", "ＴＡＩＷＡＮ", True),
    ("Taiwan", "Tayvan'ın", False),
    ("Tayvan", "Tayvan'ın donanması", True),
    ("Ukraine", "l'Ukraine", True),
    ("Ukraine", "l’Ukraine", True),
    ("Ukraine", "dell'Ukraine", True),
    ("Grönland", "GRÖNLAND", True),
    ("Grönland", "Gronland", True),
    ("Straße", "STRASSE", True),
    ("Straße", "Strasse", True),
    ("ёлка", "елка", True),
    ("елка", "Ёлка", True),
    ("İstanbul", "istanbul", True),
    ("istanbul", "İSTANBUL", True),
    ("Київ", "КИЇВ", True),
    ("Ukraine", "Ukraine\u00adkrieg", False),
    ("START", "start-up", True),
    ("NATO", "NATO-Gipfel", True),
    ("F-35", "F-35 jets", True),
    ("F-35", "F 35 jets", True),
    ("Taiwan", "", False),
]

PHRASE = [
    ("South China Sea", "in the South China Sea today", True),
    ("South China Sea", "south  china\n\tsea", True),
    ("South China Sea", "South-China Sea", True),
    ("South China Sea", "South China. Sea", False),
    ("South China Sea", "South China", False),
    ("South China Sea", "China Sea South", False),
    ("South China Sea", "South Chinese Sea", False),
    ("New START", "the New START treaty", True),
    ("New START", "the New-START treaty", True),
    ("New START", "a new start", True),
    ("S. Korea", "S. Korea and Japan", True),
    ("S. Korea", "S Korea and Japan", False),
    ("Lai Ching-te", "President Lai Ching-te said", True),
    ("Lai Ching-te", "President Lai Ching te said", True),
]

PREFIX = [
    ("Украин*", "Украина", True),
    ("Украин*", "Украины", True),
    ("Украин*", "УКРАИНЕ", True),
    ("Украин*", "украинский", True),
    ("Украин*", "Украин", True),
    ("Украин*", "Укра", False),
    ("Украин*", "Малоукраинский", False),
    ("Grönland*", "Grönlandfrage", True),
    ("Grönland*", "Groenland", False),
    ("Ukrain*", "Ukrainekrieg", True),
    ("Ukrain*", "ukrainian", True),
    ("Tajwan*", "tajwańskiego", True),
    ("New STAR*", "New STARTS", True),
    ("New STAR*", "New STOP", False),
    ("гренландск* тюлен*", "популяция гренландского тюленя", True),
    ("гренландск* тюлен*", "гренландские тюлени", True),
    ("гренландск* тюлен*", "гренландский кит", False),
    ("Украин* войн*", "украинской войны", True),
]

ARABIC = [
    ("أوكرانيا", "الحرب في أوكرانيا", True),
    ("أوكرانيا", "الحرب في اوكرانيا", True),  # hamza seat omitted, as often online
    ("أوكرانيا", "مساعدات لأوكرانيا", True),  # ل "to"
    ("أوكرانيا", "روسيا وأوكرانيا", True),  # و "and"
    ("أوكرانيا", "بأوكرانيا اليوم", True),  # ب "in"
    ("أوكراني*", "القوات الأوكرانية", True),  # ال + adjective
    ("أوكراني*", "والأوكرانيين", True),  # و + ال
    ("أوكراني*", "للأوكرانيين", True),  # ل + ال contracted
    ("تايوان", "مضيق تايوان", True),
    ("تايوان", "دعم لتايوان", True),
    ("معاهدة", "المعاهدة", True),
    ("نيو ستارت", "معاهدة نيو ستارت", True),
    ("نيو ستارت", "معاهدة لنيو ستارت", True),
    ("كييف", "كييفية", False),
    ("تايوان", "تايلاند", False),
]

CJK = [
    ("台湾", "台湾海峡局势紧张", True),
    ("台湾", "中国台湾地区", True),
    ("台湾", "台灣", False),
    ("台灣", "臺灣", False),
    ("ウクライナ", "ウクライナ情勢", True),
    ("グリーンランド", "米国がグリーンランドを", True),
    ("대만", "대만은 오늘", True),
    ("新START", "新START条约", True),
    ("新START", "新start条约", True),
    ("新削减战略武器条约", "俄方表示新削减战略武器条约即将到期", True),
    ("Taiwan", "台湾Taiwan问题", True),
    ("Taiwan", "Taiwan台湾", True),
    ("ไต้หวัน", "ข่าวไต้หวันวันนี้", True),
]


@pytest.mark.parametrize(("term", "text", "expected"), WORD + PHRASE + PREFIX + ARABIC + CJK)
def test_term_forms(term: str, text: str, expected: bool) -> None:
    assert _matches(term, text) is expected


CASE = [
    ({"term": "START", "case_sensitive": True}, "the START treaty", True),
    ({"term": "START", "case_sensitive": True}, "a fresh start", False),
    ({"term": "START", "case_sensitive": True}, "Start of talks", False),
    ({"term": "New START", "case_sensitive": True}, "New START expires", True),
    ({"term": "New START", "case_sensitive": True}, "a new start", False),
    ({"term": "New START", "case_sensitive": True}, "New Start", False),
    ({"term": "NATO", "case_sensitive": True}, "NATO's summit", True),
    ({"term": "Ölü", "case_sensitive": True}, "Olu", True),  # accents still fold
    ({"term": "Ölü", "case_sensitive": True}, "olu", False),
    ({"term": "SNV*", "case_sensitive": True}, "SNVIII", True),
    ({"term": "SNV*", "case_sensitive": True}, "snviii", False),
]

NEAR = [
    ({"term": "START", "near": ["treaty"], "within": 6}, "START treaty", True),
    ({"term": "START", "near": ["treaty"], "within": 6}, "treaty START", True),
    ({"term": "START", "near": ["treaty"], "within": 2}, "START arms treaty", True),
    ({"term": "START", "near": ["treaty"], "within": 1}, "START arms treaty", False),
    (
        {"term": "START", "near": ["treaty"], "within": 6},
        "START one two three four five six treaty",
        False,
    ),
    (
        {"term": "START", "near": ["treaty"], "within": 7},
        "START one two three four five six treaty",
        True,
    ),
    ({"term": "START", "near": ["treaty", "traité"], "within": 6}, "le traité START", True),
    ({"term": "START", "near": ["traité*"], "within": 3}, "les traités START", True),
    ({"term": "START", "near": ["treaty"], "within": 6}, "START the race", False),
    (
        {"term": "START", "near": ["treaty"], "case_sensitive": True, "within": 6},
        "start treaty",
        False,
    ),
    (
        {"term": "START", "near": ["treaty"], "case_sensitive": True, "within": 6},
        "START treaty",
        True,
    ),
    ({"term": "START", "near": ["arms control"], "within": 3}, "START and arms control", True),
    ({"term": "START", "near": ["条约"], "within": 3}, "START 条约", True),
    ({"term": "台湾", "near": ["海峡"], "within": 2}, "台湾海峡局势紧张", True),
    ({"term": "台湾", "near": ["军演"], "within": 3}, "解放军在台湾周边举行军演", True),
    ({"term": "台湾", "near": ["军演"], "within": 1}, "解放军在台湾周边举行军演", False),
]


EXCEPT = [
    ({"term": "Kiev", "except": ["Chicken Kiev"]}, "Chicken Kiev recipe", False),
    ({"term": "Kiev", "except": ["Chicken Kiev"]}, "Chicken Kiev in Kiev", True),
    ({"term": "Kiev", "except": ["Chicken Kiev"]}, "Kiev talks", True),
    ({"term": "Киев*", "except": ["по-киевски"]}, "котлета по-киевски", False),
    ({"term": "Киев*", "except": ["по-киевски"]}, "котлета по-киевски из Киева", True),
    ({"term": "Grönland*", "except": ["Grönlandhai*"]}, "Der Grönlandhai lebt lang", False),
    ({"term": "Grönland*", "except": ["Grönlandhai*"]}, "Grönlands Regierung", True),
    ({"term": "台海", "except": ["平台海"]}, "电商平台海外业务", False),
    ({"term": "台海", "except": ["平台海"]}, "再谈台海问题", True),
    ({"term": "START", "case_sensitive": True, "except": ["START I"], "near": ["treaty"]},
     "the START I treaty", False),
]  # fmt: skip


@pytest.mark.parametrize(("term", "text", "expected"), CASE + NEAR + EXCEPT)
def test_term_options(term: dict[str, Any], text: str, expected: bool) -> None:
    assert _matches(term, text) is expected


@pytest.mark.parametrize(
    "bad", ["Tai*wan", "*wan", "Ta*", "a* b", "Taiwan**", "New * START", "***", "Ук*", "ا*"]
)
def test_star_only_ends_a_word_of_three_letters(bad: str) -> None:
    with pytest.raises(ValueError):
        Watchlist.model_validate({"id": "w", "match": {"any": [bad]}})


def test_explain_says_why_not() -> None:
    matcher = Matcher([_wl(any=[{"term": "Kiev", "except": ["Chicken Kiev"]}], none=["recipe"])])
    result, reason = matcher.explain(_article("Chicken Kiev"), "w")
    assert result is None
    assert reason == "no 'any' term occurs: 'Kiev' occurs only inside its 'except' expressions"
    _, reason = matcher.explain(_article("Kiev recipe"), "w")
    assert reason == "vetoed by 'none' term 'recipe'"
    found, reason = matcher.explain(_article("Talks in Kiev"), "w")
    assert found is not None and reason == "matched on 'Kiev' (title)"


def test_near_only_counts_in_the_same_field() -> None:
    term = {"term": "START", "near": ["treaty"], "within": 6}
    assert not _matches(term, "START", "treaty")
    assert _matches(term, "START treaty", "")


def _article(title: str, summary: str = "", **kw: Any) -> Article:
    return Article(
        feed_id=kw.pop("feed_id", "f"), guid="g", url=None, title=title, summary=summary, **kw
    )


def test_all_groups_need_one_hit_each() -> None:
    matcher = Matcher([_wl(any=["Taiwan"], all=[["strait", "détroit"], ["PLA"]])])
    assert matcher.match(_article("Taiwan: PLA ships in the strait"))
    assert matcher.match(_article("Taïwan : l'APL dans le détroit", "PLA"))
    assert not matcher.match(_article("Taiwan: ships in the strait"))
    assert not matcher.match(_article("Taiwan: PLA drills"))


def test_none_vetoes_wherever_it_occurs() -> None:
    matcher = Matcher([_wl(any=["Taiwan"], none=["Taiwan Semiconductor"])])
    assert matcher.match(_article("Taiwan holds drills"))
    assert not matcher.match(_article("Taiwan holds drills", "Taiwan Semiconductor shares fell"))


def test_fields_limit_where_terms_count() -> None:
    matcher = Matcher([_wl(any=["Taiwan"], all=[["PLA"]], fields=["title"])])
    assert matcher.match(_article("Taiwan and the PLA", "nothing"))
    assert not matcher.match(_article("Taiwan", "PLA"))
    assert not matcher.match(_article("news", "Taiwan PLA"))


def test_none_only_vetoes_within_fields() -> None:
    matcher = Matcher([_wl(any=["Taiwan"], none=["chips"], fields=["title"])])
    assert matcher.match(_article("Taiwan drills", "chips"))


def test_tags_are_a_field() -> None:
    matcher = Matcher([_wl(any=["Ukraine"])])
    assert matcher.match(_article("War news", tags=("World", "Ukraine")))


@pytest.mark.parametrize(
    ("languages", "lang", "expected"),
    [
        (["fr", "en"], "fr", True),
        (["fr", "en"], "fr-FR", True),
        (["fr", "en"], "EN-us", True),
        (["fr", "en"], "de", False),
        (["pt-BR"], "pt", True),
        (["fr"], None, True),  # unknown language is not filtered out
        (["en"], "en_US", True),
    ],
)
def test_languages_filter(languages: list[str], lang: str | None, expected: bool) -> None:
    matcher = Matcher([_wl(any=["Ukraine"], languages=languages)])
    assert bool(matcher.match(_article("Ukraine", lang=lang))) is expected


@pytest.mark.parametrize(
    ("sources", "feed_id", "tags", "expected"),
    [
        (["euronews-fr"], "euronews-fr", (), True),
        (["euronews-fr"], "bbc", (), False),
        (["europe"], "bbc", ("europe", "en"), True),
        (["asia"], "bbc", ("europe", "en"), False),
    ],
)
def test_sources_filter(
    sources: list[str], feed_id: str, tags: tuple[str, ...], expected: bool
) -> None:
    matcher = Matcher([_wl(any=["Ukraine"], sources=sources)])
    article = _article("Ukraine", feed_id=feed_id)
    assert bool(matcher.match(article, feed_tags=tags)) is expected


def test_hits_name_terms_as_written_in_watchlist_order_with_offsets() -> None:
    matcher = Matcher([_wl(any=["Украин*", "Kyiv"], all=[["war", "guerre"]])])
    article = _article("Guerre: Kyiv et l'Украины", "the war goes on")
    (found,) = matcher.match(article)
    assert found.terms == ("Украин*", "Kyiv", "war", "guerre")
    by_term = {h.term: h for h in found.hits}
    hit = by_term["Украин*"]
    assert article.title[hit.start : hit.end] == "Украины"
    assert by_term["guerre"].field == "title"
    assert by_term["war"].field == "summary"


def test_hit_offsets_survive_folding_that_changes_length() -> None:
    matcher = Matcher([_wl(any=["Strasse"])])
    title = "ﬁx: Die Straße ist gesperrt"
    (found,) = matcher.match(_article(title))
    (hit,) = found.hits
    assert title[hit.start : hit.end] == "Straße"


def test_every_watchlist_is_reported_sorted() -> None:
    matcher = Matcher(
        [
            _wl("ukraine", any=["Ukraine"]),
            _wl("taiwan", any=["Taïwan"]),
            _wl("greenland", any=["Groenland"]),
            _wl("new-start", any=[{"term": "New START", "case_sensitive": True}]),
        ]
    )
    text = "Appel Xi-Poutine : Taïwan, le Groenland, l'Ukraine et le traité New START"
    found = matcher.match(_article(text))
    assert [m.watchlist_id for m in found] == ["greenland", "new-start", "taiwan", "ukraine"]


def test_many_terms_share_one_index() -> None:
    terms = [f"term{i}" for i in range(2000)] + ["Taiwan"]
    matcher = Matcher([_wl(any=terms)])
    assert matcher.match(_article("news from Taiwan"))
    assert not matcher.match(_article("news from nowhere"))
