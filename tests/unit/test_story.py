"""Story fingerprints: what folds alike, what is too short, what the bands promise, when two
templated reports are vetoed, and the labelled pair sets held to precision >= 0.98 and recall
>= 0.9 (tests/stories_eval.py)."""

from __future__ import annotations

import pytest

from monitor.core.story import (
    BANDS,
    ROWS,
    SIGNATURE_SIZE,
    THRESHOLD,
    Fingerprint,
    band_keys,
    fingerprint,
    same_story,
    similarity,
    vetoed,
)
from tests.evaluate import Score
from tests.stories_eval import evaluate, load

TAIWAN = (
    "China launches military drills around Taiwan",
    "China's military began two days of exercises around Taiwan on Monday, "
    "deploying warships and fighter jets.",
)


def fp(title: str, summary: str = "") -> Fingerprint:
    result = fingerprint(title, summary)
    assert result is not None, (title, summary)
    return result


def sim(a: tuple[str, str], b: tuple[str, str]) -> float:
    return similarity(fp(*a), fp(*b))


# -- what folds to the same words: similarity exactly 1 -------------------------------------

IDENTICAL = [
    TAIWAN,
    (
        "Russia suspends New START",
        "Putin said Russia was suspending its participation in the treaty.",
    ),
    (
        "Le traité New Start expire",
        "Le dernier accord limitant les arsenaux nucléaires a expiré jeudi.",
    ),
    (
        "Scholz entlässt Finanzminister Lindner",
        "Die Ampel-Koalition ist am Ende, Neuwahlen drohen.",
    ),
    ("Путин объявил о приостановке ДСНВ", "Россия не выходит из договора, заявил президент."),
    ("台湾花莲发生7.4级地震", "台湾东部花莲县海域3日上午发生地震，已造成至少9人死亡。"),
    ("日銀がマイナス金利解除", "日本銀行は金融政策決定会合でマイナス金利政策の解除を決めた。"),
    (
        "مجلس الأمن يطالب بوقف إطلاق النار",
        "تبنى مجلس الأمن الدولي قرارا يطالب بوقف فوري لإطلاق النار في غزة.",
    ),
]


@pytest.mark.parametrize("article", IDENTICAL)
def test_identical_text_is_similarity_one(article: tuple[str, str]) -> None:
    assert sim(article, article) == 1.0
    assert same_story(fp(*article), fp(*article))


FOLDED_ALIKE = [
    # case, as in an all-caps or title-case headline
    (TAIWAN, (TAIWAN[0].upper(), TAIWAN[1])),
    (TAIWAN, (TAIWAN[0].title(), TAIWAN[1].lower())),
    # accents, ё/е, ß/ss, typographic apostrophes and dashes, full-width forms
    (("Taïwan : Pékin lance des manœuvres", ""), ("TAIWAN : PEKIN LANCE DES MANŒUVRES", "")),
    (("Ещё одна атака на Харьков", ""), ("Еще одна атака на Харьков", "")),
    (("Straße nach Gießen gesperrt worden", ""), ("STRASSE NACH GIESSEN GESPERRT WORDEN", "")),
    (
        ("Taiwan’s coast guard — shadows survey ship", ""),
        ("Taiwan's coast guard - shadows survey ship", ""),
    ),
    (
        ("ＴＡＩＷＡＮ ＣＯＡＳＴ ＧＵＡＲＤ ＳＨＡＤＯＷＳ ＳＨＩＰ", ""),
        ("Taiwan coast guard shadows ship", ""),
    ),
    # Arabic spelling variants and vowel signs
    (("أعلنت الحكومة خطة لإعادة الإعمار", ""), ("اعلنت الحكومه خطه لاعاده الاعمار", "")),
    (("مَجْلِسُ الأمن يطالب بوقف القتال", ""), ("مجلس الأمن يطالب بوقف القتال", "")),
    # punctuation and spacing carry no words
    (
        ("China launches drills around Taiwan!", "..."),
        ("China — launches drills, around: Taiwan", ""),
    ),
    # digit groups and decimals however written; a number glued to letters is a number
    (
        ("Gaza toll passes 40,000 health ministry", ""),
        ("Gaza toll passes 40000 health ministry", ""),
    ),
    (
        ("Gaza : le bilan dépasse 40\u202f000 morts", ""),
        ("Gaza : le bilan dépasse 40\u00a0000 morts", ""),
    ),
    (("Gaza : le bilan dépasse 40\u00a0000 morts", ""), ("Gaza : bilan dépasse 40000 morts", "")),
    (("Inflation rate falls to 2.5 percent", ""), ("Inflation rate falls to 2,5 percent", "")),
    (
        ("Senate passes $95bn foreign aid package", ""),
        ("Senate passes $95 bn foreign aid package", ""),
    ),
    # words of one or two letters are not compared
    (("Storm floods north of Italy", ""), ("Storm floods north Italy", "")),
    (("Il a plu à Paris le 3 mai", ""), ("Il plu Paris le 3 mai", "")),
]


@pytest.mark.parametrize(("a", "b"), FOLDED_ALIKE)
def test_case_accents_script_forms_fold_alike(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert sim(a, b) == 1.0


# -- what is the same story and what is not -------------------------------------------------

SAME = [
    # wire copy with a dateline, an outlet's boilerplate, a case change
    (TAIWAN, ("China launches military drills around Taiwan", "TAIPEI (Reuters) - " + TAIWAN[1])),
    (TAIWAN, (TAIWAN[0] + " | World News", TAIWAN[1] + " Read more on our website.")),
    (TAIWAN, (TAIWAN[0].upper(), TAIWAN[1])),
    # sentences reordered
    (
        ("Wildfire forces evacuations near Athens", "Thousands left their homes. Winds fanned it."),
        ("Wildfire forces evacuations near Athens", "Winds fanned it. Thousands left their homes."),
    ),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_copies_are_the_same_story(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert same_story(fp(*a), fp(*b))


UNRELATED = [
    (TAIWAN, ("Spain beat England to win Euro 2024", "Oyarzabal scored late in the Berlin final.")),
    (
        ("Federal Reserve holds interest rates steady", "Policymakers still project two cuts."),
        ("Wildfire forces evacuations near Athens", "More than 400 firefighters fought the blaze."),
    ),
    (
        ("Путин объявил о приостановке ДСНВ", "Россия не выходит из договора, заявил президент."),
        ("Центробанк повысил ключевую ставку до 21%", "Это максимальный уровень за всю историю."),
    ),
    (
        ("台湾花莲发生7.4级地震", "台湾东部花莲县海域3日上午发生地震，已造成至少9人死亡。"),
        ("国家统计局发布经济数据", "2023年国内生产总值比上年增长5.2%，高于预期目标。"),
    ),
    (
        ("日銀がマイナス金利解除", "日本銀行は金融政策決定会合でマイナス金利政策の解除を決めた。"),
        ("能登半島で震度7の地震", "気象庁は石川県能登に大津波警報を発表した。"),
    ),
    # same language, no shared content word: scripts never mix
    (("Taiwan earthquake kills nine people", ""), ("台湾地震造成九人死亡", "")),
]


@pytest.mark.parametrize(("a", "b"), UNRELATED)
def test_unrelated_articles_score_low(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert sim(a, b) < 0.2
    assert not same_story(fp(*a), fp(*b))


def test_similarity_is_symmetric_and_in_range() -> None:
    articles = [fp(*a) for a in IDENTICAL]
    for a in articles:
        for b in articles:
            assert 0.0 <= similarity(a, b) <= 1.0
            assert similarity(a, b) == similarity(b, a)
            assert vetoed(a, b) == vetoed(b, a)
            assert same_story(a, b) == (similarity(a, b) >= THRESHOLD and not vetoed(a, b))


def test_only_the_lead_counts() -> None:
    lead = " ".join(f"word{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60))
    tail = " Then an unrelated paragraph about football, rain and markets follows here."
    assert fp("A headline", lead) == fp("A headline", lead + tail)
    assert fp("A headline", lead[:200]) != fp("A headline", lead[:200] + tail)


def test_a_chinese_lead_is_cut_too() -> None:
    lead = "".join(chr(0x4E00 + i) for i in range(300))
    assert fp("标题", lead) == fp("标题", lead + "完全不同的后续段落内容")


# -- too little text ------------------------------------------------------------------------

TOO_SHORT = [
    ("", ""),
    ("Breaking", ""),
    ("Live updates", ""),
    ("Taiwan earthquake", "Developing."),
    ("—", "…"),
    ("a b c d e f g h", "of to in on at by"),  # only words of one or two letters
    ("   ", "\n\t"),
    ("地震", ""),  # one character pair
    ("<p>", "</p>"),
]


@pytest.mark.parametrize(("title", "summary"), TOO_SHORT)
def test_too_little_text_has_no_fingerprint(title: str, summary: str) -> None:
    assert fingerprint(title, summary) is None


ENOUGH = [
    ("Taiwan earthquake kills nine", ""),
    ("", "Taiwan earthquake kills nine"),
    ("台湾花莲地震", ""),
    ("Путин подписал закон о ДСНВ", ""),
    ("\x00\u202e\ufeff Taiwan \U0001f600 quake kills nine \u200b", "\r\n"),
]


@pytest.mark.parametrize(("title", "summary"), ENOUGH)
def test_enough_text_has_a_fingerprint(title: str, summary: str) -> None:
    result = fingerprint(title, summary)
    assert result is not None
    assert len(result.values) == SIGNATURE_SIZE
    assert all(0 <= v < 2**31 for v in result.values)


def test_a_page_in_the_title_costs_fifty_words() -> None:
    words = [a + b + c for a in "bcdfg" for b in "aeiou" for c in "klmnprst"]  # 200 words
    page = " ".join(words * 500)
    assert fp(page, page) == fp(" ".join(words[:50]), " ".join(words[:50]))


# -- storage --------------------------------------------------------------------------------


QUAKE = (
    "Magnitude 6.1 quake hits Hokkaido, no tsunami warning",
    "An earthquake of magnitude 6.1 struck off the coast of Hokkaido on Thursday, the Japan "
    "Meteorological Agency said. No tsunami warning was issued and there were no immediate "
    "reports of damage.",
)
STORED = [
    *IDENTICAL,
    QUAKE,
    ("Gaza toll passes 40,000 health ministry", ""),
    ("台湾花莲发生7.4级地震 已造成9人死亡", ""),
    ("", "A title-less article: the lead has 40,000 figures but the title has none."),
]


@pytest.mark.parametrize("article", STORED)
def test_encode_decode_round_trip(article: tuple[str, str]) -> None:
    f = fp(*article)
    text = f.encode()
    values, figures, frame = text.split("/")
    assert len(values) == 8 * SIGNATURE_SIZE
    assert len(figures) == 8 * len(f.figures)
    assert len(frame) == 8 * len(f.frame)
    assert all(c in "0123456789abcdef" for c in values + figures + frame)
    assert Fingerprint.decode(text) == f
    assert Fingerprint.decode(text.upper()) == f


@pytest.mark.parametrize("article", STORED)
def test_the_older_encoding_decodes_without_title_parts(article: tuple[str, str]) -> None:
    # Stored before the veto: the values alone, 8 hex digits each.
    f = fp(*article)
    old = Fingerprint.decode("".join(f"{v:08x}" for v in f.values))
    assert old == Fingerprint(f.values)
    assert (old.figures, old.frame) == ((), ())
    assert similarity(old, f) == 1.0
    assert band_keys(old) == band_keys(f)
    assert not vetoed(old, f)
    assert same_story(old, f)


def test_a_fingerprint_without_title_parts_round_trips() -> None:
    f = Fingerprint((12345,) * SIGNATURE_SIZE)
    assert f.encode() == "00003039" * SIGNATURE_SIZE + "//"
    assert Fingerprint.decode(f.encode()) == f


VALUES = "00" * 4 * SIGNATURE_SIZE
BAD_ENCODINGS = [
    "",
    "00",
    "zz" * 4 * SIGNATURE_SIZE,
    "00" * (4 * SIGNATURE_SIZE - 1),
    "00" * (4 * SIGNATURE_SIZE + 1),
    "80000000" * SIGNATURE_SIZE,  # values are below 2**31
    VALUES + "/",  # two parts
    VALUES + "///",  # four parts
    VALUES + "/zzzzzzzz/",
    VALUES + "/000000/",  # three bytes are not a hash
    VALUES + "//0000000",  # odd hex
    "/00000000/00000000",  # title parts without values
]


@pytest.mark.parametrize("text", BAD_ENCODINGS)
def test_decode_rejects_what_encode_never_writes(text: str) -> None:
    with pytest.raises(ValueError):
        Fingerprint.decode(text)


# -- band keys ------------------------------------------------------------------------------


@pytest.mark.parametrize("article", IDENTICAL)
def test_band_keys_fit_a_bigint(article: tuple[str, str]) -> None:
    keys = band_keys(fp(*article))
    assert len(keys) == BANDS
    assert all(0 <= k < 2**63 for k in keys)


def test_band_keys_are_fixed_across_runs_and_machines() -> None:
    # Stored keys must match the ones computed by any later process: no salted hash(), no seed.
    f = fp(*TAIWAN)
    assert f.encode()[:32] == "02cab5120264df690177bd600d69f740"
    assert band_keys(f)[:3] == [8616832690428035854, 7162691199906671788, 7153898644211765360]
    assert sum(band_keys(f)) % 1_000_003 == 692862


def test_title_parts_are_fixed_across_runs_and_machines() -> None:
    # Stored figures are compared with the ones of articles fingerprinted later.
    f = fp("Magnitude 6.1 quake hits Hokkaido", "")
    assert f.figures == (1620478814,)
    assert f.encode().split("/")[1:] == ["60968b5e", "478138c381d5951c"]


def test_equal_signatures_share_every_band_key() -> None:
    a = fp(*TAIWAN)
    b = fp(TAIWAN[0].upper(), TAIWAN[1])
    # An all-caps title hides which words are names: the frames differ, not the signatures.
    assert a.values == b.values
    assert a.figures == b.figures
    assert not vetoed(a, b)
    assert band_keys(a) == band_keys(b)
    assert band_keys(Fingerprint.decode(a.encode())) == band_keys(a)


def test_the_band_index_is_mixed_into_its_key() -> None:
    flat = Fingerprint((12345,) * SIGNATURE_SIZE)
    assert len(set(band_keys(flat))) == BANDS


def test_one_changed_value_changes_only_its_band() -> None:
    f = fp(*TAIWAN)
    changed = list(f.values)
    changed[ROWS * 5 + 1] ^= 1
    before, after = band_keys(f), band_keys(Fingerprint(tuple(changed)))
    assert [i for i in range(BANDS) if before[i] != after[i]] == [5]


def test_copies_share_a_band_key() -> None:
    a = fp(*TAIWAN)
    b = fp(TAIWAN[0] + " - state media", "BEIJING (Reuters) - " + TAIWAN[1])
    assert same_story(a, b)
    assert set(band_keys(a)) & set(band_keys(b))


def test_fingerprints_of_another_size_are_refused() -> None:
    short = Fingerprint((1, 2, 3))
    with pytest.raises(ValueError):
        similarity(short, fp(*TAIWAN))
    with pytest.raises(ValueError):
        band_keys(short)


# -- the template veto: titles with figures, none shared, alike apart from figures and names --

VETOED = [
    # quake bulletins: another magnitude, another place
    (
        "Magnitude 5.8 quake hits Hokkaido, no tsunami warning",
        "Magnitude 6.1 quake hits Kyushu, no tsunami warning",
    ),
    # the same in Title Case: the names stay in the frames, which are still alike
    (
        "Magnitude 6.1 Earthquake Strikes Off Hokkaido, No Tsunami Warning",
        "Magnitude 5.9 Earthquake Strikes Off Kyushu, No Tsunami Warning",
    ),
    # match results
    (
        "Arsenal beat Spurs 2-1 to go top of the league",
        "Leeds beat Everton 3-0 to go top of the league",
    ),
    # toll milestones, digit groups written either way
    (
        "Gaza death toll passes 30,000, health ministry says",
        "Gaza death toll passes 40\u202f000, health ministry says",
    ),
    (
        "Gaza : le bilan dépasse 30 000 morts selon le ministère",
        "Gaza : le bilan dépasse 40 000 morts selon le ministère",
    ),
    # decimals written with a comma
    (
        "Terremoto de magnitud 6,4 sacude el sur de Perú",
        "Terremoto de magnitud 7,2 sacude el sur de Perú",
    ),
    # numbers glued to letters
    ("Senate passes $95bn foreign aid package", "Senate passes $60bn foreign aid package"),
    # an uncased script: figures between character pairs
    ("台湾花莲发生7.4级地震", "台湾花莲发生6.1级地震"),
    ("Центробанк повысил ключевую ставку до 21%", "Центробанк повысил ключевую ставку до 19%"),
]


@pytest.mark.parametrize(("a", "b"), VETOED)
def test_templated_titles_with_other_figures_are_vetoed(a: str, b: str) -> None:
    assert vetoed(fp(a), fp(b))
    assert vetoed(fp(b), fp(a))
    assert not same_story(fp(a), fp(b))


NOT_VETOED = [
    # a figure shared: the veto never fires (another place alone is a known limit)
    ("Magnitude 6.1 quake hits Hokkaido", "Magnitude 6.1 quake hits Kyushu"),
    (
        "Arsenal beat Chelsea 2-1 to go top of the league",
        "Liverpool beat Chelsea 2-1 to go top of the league",
    ),
    ("台湾花莲发生7.4级地震 已造成9人死亡", "花莲7.4级强震致9死逾800伤"),
    # one figure however written
    (
        "Gaza death toll passes 40,000, health ministry says",
        "Gaza death toll passes 40 000, health ministry says",
    ),
    (
        "Gaza death toll passes 40,000, health ministry says",
        "Gaza death toll passes 40\u00a0000, health ministry says",
    ),
    ("Gaza : le bilan dépasse 40\u202f000 morts", "Gaza : le bilan dépasse 40.000 morts"),
    ("Inflation rate falls to 2.5 percent in May", "Inflation rate falls to 2,5 percent in May"),
    ("Senate passes $95bn foreign aid package", "Senate passes $95 billion foreign aid package"),
    ("MAGNITUDE 6.1 QUAKE HITS HOKKAIDO", "Magnitude 6.1 quake hits Hokkaido"),
    # one side without figures
    (
        "Gaza death toll passes 40,000, health ministry says",
        "Gaza death toll passes grim milestone, health ministry says",
    ),
    # neither side: earnings beats of two companies are a known limit (p-en-166)
    (
        "Alphabet quarterly revenue beats estimates on cloud growth",
        "Microsoft quarterly revenue beats estimates on cloud growth",
    ),
    # headlines of one story citing different facts of it: the frames are not alike
    (
        "Japan intervenes to support yen for first time since 2022",
        "Japan spent record 9.8 trillion yen to prop up currency, data shows",
    ),
    (
        "Intel to cut 15% of workforce as it struggles to compete",
        "Intel slashes 15,000 jobs and suspends dividend; shares plunge",
    ),
    (
        "台湾東部で震度6強の地震　花蓮で建物倒壊",
        "台湾・花蓮沖でM7.4の地震、建物倒壊　沖縄に一時津波警報",
    ),
    # names and figures alone do not show the title's case: the names stay in the frames
    ("Arsenal 2-1 Spurs at the Emirates", "Leeds 3-0 Everton at Elland Road"),
]


@pytest.mark.parametrize(("a", "b"), NOT_VETOED)
def test_titles_sharing_figures_or_unalike_are_not_vetoed(a: str, b: str) -> None:
    assert not vetoed(fp(a), fp(b))
    assert not vetoed(fp(b), fp(a))


LEAD_FIGURES = [
    # figures only in the leads: the veto reads the titles
    (
        ("Powerful earthquake strikes off northern Japan", "A magnitude 6.1 quake struck."),
        ("Powerful earthquake strikes off northern Japan", "A magnitude 5.8 quake struck."),
    ),
    # a title-less article has no title figures
    (
        ("", "An earthquake of magnitude 6.1 struck off the coast of Hokkaido on Thursday."),
        ("", "An earthquake of magnitude 5.8 struck off the coast of Kyushu on Saturday."),
    ),
]


@pytest.mark.parametrize(("a", "b"), LEAD_FIGURES)
def test_figures_in_the_lead_do_not_veto(a: tuple[str, str], b: tuple[str, str]) -> None:
    assert not vetoed(fp(*a), fp(*b))


def test_a_vetoed_pair_is_not_the_same_story_however_similar() -> None:
    other = (
        "Magnitude 5.8 quake hits Kyushu, no tsunami warning",
        QUAKE[1].replace("6.1", "5.8").replace("Hokkaido", "Kyushu").replace("Thurs", "Satur"),
    )
    a, b = fp(*QUAKE), fp(*other)
    assert similarity(a, b) >= THRESHOLD
    assert vetoed(a, b)
    assert not same_story(a, b)
    assert same_story(a, fp(QUAKE[0].upper(), QUAKE[1]))


def test_the_veto_leaves_band_keys_alone() -> None:
    # Candidates are found on the signature alone; the veto applies to them afterwards.
    a = fp(*QUAKE)
    assert band_keys(a) == band_keys(Fingerprint(a.values))


# -- the labelled pair sets -----------------------------------------------------------------

_scores: dict[str, Score] = {}


def score(name: str) -> Score:
    if name not in _scores:
        _scores[name] = evaluate(name)
    return _scores[name]


@pytest.mark.parametrize(("name", "minimum"), [("pairs", 300), ("heldout", 80)])
def test_pair_sets_are_balanced_and_multilingual(name: str, minimum: int) -> None:
    pairs = load(name)
    assert len(pairs) >= minimum
    same = sum(p.same for p in pairs)
    assert 0.4 <= same / len(pairs) <= 0.6
    assert {p.lang for p in pairs} >= {"en", "fr", "de", "es", "ru", "zh", "ar", "ja"}
    assert len({p.id for p in pairs}) == len(pairs)


@pytest.mark.parametrize("name", ["pairs", "heldout"])
def test_recall_at_least_0_9(name: str) -> None:
    s = score(name)
    assert s.recall >= 0.9, "\n".join(s.misses)


# heldout.jsonl failed this before the template veto (h-en-57, two quake bulletins: precision
# 0.974); the veto was added after that false positive had been seen, so heldout's pass here is
# no longer a blind result.
@pytest.mark.parametrize("name", ["pairs", "heldout"])
def test_precision_at_least_0_98(name: str) -> None:
    s = score(name)
    assert s.precision >= 0.98, "\n".join(s.misses)
