"""Text folding and tokenisation, applied identically to watchlist terms and to article text.

Folding is symmetric so that a term matches however either side is written:

* Unicode NFKC: full-width `ＴＡＩＷＡＮ`, ligatures, compatibility forms become plain letters;
* case folding (`casefold`, so `ß` = `ss`; Turkish dotless `ı` folds to `i` as well);
* accents dropped from Latin, Greek and Cyrillic letters (`Taïwan` = `Taiwan`, `ё` = `е`,
  `Україні` = `Украіні` on both sides) and vowel signs dropped from Arabic and Hebrew, which are
  optional in running text; marks that change the letter in other scripts (Japanese dakuten,
  Indic vowel signs) are kept, because dropping them would merge different words;
* typographic apostrophes and hyphens mapped to `'` and `-`;
* Arabic letter variants unified (`أ إ آ ٱ` → `ا`, `ى` → `ي`, `ة` → `ه`), as Arabic search does.

Folding is character-local after NFC, which is what makes `fold_offsets` possible: a hit found
in folded text is mapped back to the original characters for snippets.

Tokens are runs of letters, marks and digits. Runs of CJK, kana, Hangul and Southeast Asian scripts
form tokens of their own, so a Latin term never matches inside them; terms in those scripts are
matched as substrings (the `is_substring_script` test), since those languages do not put spaces
between words.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

import regex

# Scripts written without spaces between words: terms in them match as substrings.
_NO_SPACE = (
    r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
    r"\u30FC\u3005\u309D\u309E\u30FD\u30FE"  # ー 々 ゝゞヽヾ: Common-script kana marks
)
#: Group 1 is a run of a no-space script, group 2 a word of any other script.
TOKEN = regex.compile(rf"([{_NO_SPACE}]+)|([[\p{{L}}\p{{M}}\p{{N}}]--[{_NO_SPACE}]]+)", regex.V1)
_NO_SPACE_CHAR = regex.compile(rf"[{_NO_SPACE}]", regex.V1)

_PUNCT = str.maketrans(
    {
        "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2032": "'", "\u00b4": "'", "\u02bb": "'",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
        "\u2212": "-", "\u00ad": "",  # soft hyphen: invisible, must not split or block a word
        "\u0131": "i",  # Turkish dotless i; dotted capital İ casefolds to i + a dropped mark
        "\u0640": "",  # Arabic tatweel only stretches letters
        # Arabic spelling variants that search engines treat as one (hamza seats fold through
        # their combining hamza, dropped below): alef wasla, alef maqsura, ta marbuta, and the
        # Persian/Urdu forms of kaf and yeh that Arabic-script outlets mix.
        "\u0671": "\u0627", "\u0649": "\u064a", "\u0629": "\u0647",
        "\u06a9": "\u0643", "\u06cc": "\u064a",
    }
)  # fmt: skip


def _droppable(mark: str) -> bool:
    """True for combining marks that only decorate a letter (see the module docstring)."""
    cp = ord(mark)
    return (
        0x0300 <= cp <= 0x036F  # combining diacritics: Latin, Greek, Cyrillic accents, breve
        or 0x1AB0 <= cp <= 0x1AFF
        or 0x1DC0 <= cp <= 0x1DFF
        or 0x20D0 <= cp <= 0x20FF
        or 0xFE20 <= cp <= 0xFE2F
        or 0x0591 <= cp <= 0x05C7  # Hebrew points and cantillation
        or 0x0610 <= cp <= 0x061A  # Arabic honorifics and small marks
        or 0x064B <= cp <= 0x065F  # Arabic harakat
        or cp == 0x0670  # Arabic superscript alef
    )


def _fold_char(ch: str, keep_case: bool) -> str:
    text = unicodedata.normalize("NFKC", ch).translate(_PUNCT)
    if not keep_case:
        text = text.casefold()
    decomposed = unicodedata.normalize("NFD", text)
    kept = "".join(c for c in decomposed if not (unicodedata.combining(c) and _droppable(c)))
    return unicodedata.normalize("NFC", kept)


class _FoldTable(dict[int, str]):
    """A `str.translate` table that folds each character on first sight and remembers it.

    Translating through it runs the per-character loop in C: about twice as fast as joining
    a Python function's results, and folding is most of the cost of matching an article.
    The table only grows with the distinct characters ever seen.
    """

    def __init__(self, keep_case: bool) -> None:
        super().__init__()
        self.keep_case = keep_case

    def __missing__(self, code: int) -> str:
        value = _fold_char(chr(code), self.keep_case)
        self[code] = value
        return value


_FOLD = _FoldTable(keep_case=False)
_FOLD_CASED = _FoldTable(keep_case=True)


def nfc(text: str) -> str:
    """The form offsets refer to: feed text is almost always NFC already, which is cheap to see."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Case- and accent-folded text; `fold(nfc(s))` is what terms and text are compared on."""
    text = nfc(text)
    if text.isascii():
        return text.lower()
    return text.translate(_FOLD)


def fold_cased(text: str) -> str:
    """Like `fold` but keeping case: what `case_sensitive: true` terms are compared on."""
    text = nfc(text)
    if text.isascii():
        return text
    return text.translate(_FOLD_CASED)


def fold_offsets(text: str) -> list[int]:
    """For NFC `text`, `out[i]` is where original character i starts in `fold(text)`.

    The list has len(text) + 1 entries, the last being len(fold(text)), so a folded span maps
    back with `to_original`.
    """
    out = [0]
    total = 0
    if text.isascii():
        return list(range(len(text) + 1))
    for ch in text:
        total += len(_FOLD[ord(ch)])
        out.append(total)
    return out


def to_original(offsets: list[int], folded_start: int, folded_end: int) -> tuple[int, int]:
    """Map a span of folded text back to the original characters that produced it."""
    start = bisect_right(offsets, folded_start) - 1
    end = bisect_right(offsets, folded_end - 1) if folded_end > folded_start else start
    return max(start, 0), min(max(end, start), len(offsets) - 1)


def is_substring_script(text: str) -> bool:
    """True when a term contains CJK, kana, Hangul or Thai-family letters (matched as text)."""
    return _NO_SPACE_CHAR.search(text) is not None


def gap_key(gap: str) -> str:
    """What must agree between two words of a phrase: punctuation, not spacing or hyphens.

    `South China Sea` matches across any whitespace or a line break, `New START` matches
    `New-START`, but `Taiwan Strait` does not match across a full stop (`Taiwan. Strait`).
    """
    return "".join(c for c in gap if not (c.isspace() or c == "-"))


_ARABIC_CONJUNCTIONS = "\u0648\u0641"  # و ف
_ARABIC_PREPOSITIONS = "\u0628\u0644\u0643"  # ب ل ك
_ARABIC_ARTICLE = "\u0627\u0644"  # ال
_ARABIC_LETTER = regex.compile(r"\p{Arabic}")


def arabic_stems(word: str) -> list[str]:
    """The forms of a folded Arabic word with its proclitics taken off, longest first.

    Arabic writes conjunctions (و and, ف so), prepositions (ب in, ل to, ك like) and the article
    (ال) as prefixes of the next word: لأوكرانيا is "to Ukraine", والأوكرانية "and the
    Ukrainian". `ل` + `ال` contracts to `لل`. Stems shorter than three letters are not offered:
    they would be other words.
    """
    if len(word) < 4 or not _ARABIC_LETTER.match(word):
        return []
    out: list[str] = []

    def add(stem: str) -> None:
        if len(stem) >= 3 and stem != word and stem not in out:
            out.append(stem)

    after_conj = [word, word[1:]] if word[0] in _ARABIC_CONJUNCTIONS else [word]
    for a in after_conj:
        add(a)
        heads = [a]
        if a[:1] in _ARABIC_PREPOSITIONS:
            heads.append(a[1:])
            if a.startswith("\u0644\u0644"):  # لل = ل + ال
                heads.append(a[2:])
        for b in heads:
            add(b)
            if b.startswith(_ARABIC_ARTICLE):
                add(b[2:])
    return out
