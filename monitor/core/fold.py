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
in folded text is mapped back to the original characters for snippets. `fold_nfc` folds text
that `nfc` already returned without checking it again.

Tokens are runs of letters, marks and digits. Runs of CJK, kana, Hangul and Southeast Asian scripts
form tokens of their own, so a Latin term never matches inside them; terms in those scripts are
matched as substrings (the `is_substring_script` test), since those languages do not put spaces
between words. `tokens` gives what iterating TOKEN gives, faster; `narrow` is a cheap test that a
text has no letter of those scripts.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from functools import cache

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

# `fold` is `str.translate` through the table, but translating costs about 50 ns a character
# once a text is not pure ASCII. Two shortcuts give the same result for less, both built from
# `_fold_char` itself on first use, so that they cannot disagree with the table:
#
# * text of Latin-1 characters is folded by a byte table, after replacing the few characters
#   that fold to more or less than one character (ß → ss, the soft hyphen → nothing);
# * other text is split into runs of characters that fold to their own `str.lower()` (most
#   letters of most alphabets, CJK ideographs) and runs of others: one `lower` call for all the
#   former, one `translate` call for all the latter.


@cache
def _latin1() -> tuple[bytes, tuple[tuple[bytes, bytes], ...], tuple[bytes, ...]]:
    """The byte table, the replacements made before it, and the characters it cannot fold."""
    table = bytearray(range(256))
    several: list[tuple[int, str]] = []
    for code in range(256):
        folded = _fold_char(chr(code), keep_case=False)
        if len(folded) == 1 and folded <= "\xff":
            table[code] = ord(folded)
        else:
            several.append((code, folded))
    replace: list[tuple[bytes, bytes]] = []
    unfoldable: list[bytes] = []
    for code, folded in several:
        as_bytes = folded.encode("latin-1", "replace")
        if max(folded, default="") <= "\xff" and as_bytes.translate(table) == as_bytes:
            replace.append((bytes([code]), as_bytes))
        else:
            unfoldable.append(bytes([code]))
    return bytes(table), tuple(replace), tuple(unfoldable)


#: Blocks whose characters are checked one by one for folding to their own `str.lower()`
#: (Latin, Greek, Cyrillic, Hebrew, Arabic, Thai, punctuation, kana), and blocks checked as one
#: string (CJK ideographs: no decomposition, no case, no marks).
_PER_CHAR = ((0x0000, 0x0800), (0x0E00, 0x0E80), (0x2000, 0x2070), (0x3000, 0x3100))
_WHOLE = ((0x3400, 0x4DC0), (0x4E00, 0xA000))


@cache
def _not_plain() -> re.Pattern[str]:
    """Runs of characters that do not always fold to their `str.lower()` (capital sigma is one:
    `lower` looks at its neighbours)."""
    plain: list[int] = []
    for lo, hi in _PER_CHAR:
        plain += [
            cp
            for cp in range(lo, hi)
            if cp != 0x3A3 and _fold_char(chr(cp), keep_case=False) == chr(cp).lower()
        ]
    for lo, hi in _WHOLE:
        block = "".join(map(chr, range(lo, hi)))
        if (
            unicodedata.is_normalized("NFKD", block)
            and block.casefold() == block == block.lower() == block.translate(_PUNCT)
            and not any(map(unicodedata.combining, block))
        ):
            plain += range(lo, hi)
    ranges: list[list[int]] = []
    for cp in plain:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(re.escape(chr(lo)) + "-" + re.escape(chr(hi)) for lo, hi in ranges)
    return re.compile(f"([^{body}][^{body}]*)")


def nfc(text: str) -> str:
    """The form offsets refer to: feed text is almost always NFC already, which is cheap to see."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """Case- and accent-folded text; `fold(nfc(s))` is what terms and text are compared on."""
    return fold_nfc(nfc(text))


def fold_nfc(text: str) -> str:
    """`fold` of text already in NFC (as `nfc` returns it), without checking that again."""
    if text.isascii():
        return text.lower()
    if "\x00" in text:  # it joins the runs below
        return text.translate(_FOLD)
    try:
        data = text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    else:
        table, replace, unfoldable = _latin1()
        if not any(code in data for code in unfoldable):
            for code, folded in replace:
                data = data.replace(code, folded)
            return data.translate(table).decode("latin-1")
    parts = _not_plain().split(text)
    if len(parts) == 1:
        return text.lower()
    # One call for all the plain runs and one for all the others, joined by a character that
    # is not in the text and that neither call changes or produces (checked by counting).
    plain = "\x00".join(parts[::2]).lower().split("\x00")
    other = "\x00".join(parts[1::2]).translate(_FOLD).split("\x00")
    if len(plain) + len(other) != len(parts):
        return text.translate(_FOLD)
    parts[::2] = plain
    parts[1::2] = other
    return "".join(parts)


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


@cache
def _bmp_tokens() -> tuple[int, re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    """TOKEN within the Basic Multilingual Plane as stdlib regexes: both groups, words alone and
    one letter of a no-space script; and the first letter of a no-space script.

    Built from TOKEN's own tokens of every BMP character, so they cannot disagree with it there;
    they find tokens two to four times as fast. Astral characters are left to TOKEN: the stdlib
    regex would test them range by range.
    """
    ranges: tuple[list[str], list[str]] = ([], [])
    first = 0x10000
    for m in TOKEN.finditer("".join(map(chr, range(0x10000)))):
        start, end = m.span()
        ranges[m.lastindex == 2].append(f"{re.escape(chr(start))}-{re.escape(chr(end - 1))}")
        if m.lastindex == 1:
            first = min(first, start)
    no_space, word = (f"[{''.join(group)}]" for group in ranges)
    return (
        first,
        re.compile(f"({no_space}{no_space}*)|({word}{word}*)"),
        re.compile(f"{word}{word}*"),
        re.compile(no_space),
    )


#: Deleting these bytes from UTF-8 leaves the lead bytes of characters from U+0800 up, and
#: from U+10000 up.
_BELOW_0800 = bytes(range(0xE0))
_BELOW_10000 = bytes(range(0xF0))


def narrow(text: str) -> bool:
    """Whether every character of the text is below U+0800, so that none is of a no-space script
    (no such character is below U+0800; were one ever, the answer would always be False)."""
    return _bmp_tokens()[0] >= 0x800 and (
        text.isascii() or not text.encode("utf-8", "surrogatepass").translate(None, _BELOW_0800)
    )


def tokens(folded: str) -> tuple[list[tuple[int, int]], set[int]]:
    """The spans of TOKEN's tokens in the text, and the indices of the runs of a no-space
    script among them: what iterating TOKEN gives, faster."""
    _, bmp, words, no_space = _bmp_tokens()
    if narrow(folded):
        return [m.span() for m in words.finditer(folded)], set()
    astral = bool(folded.encode("utf-8", "surrogatepass").translate(None, _BELOW_10000))
    if not astral and not no_space.search(folded):
        return [m.span() for m in words.finditer(folded)], set()
    spans: list[tuple[int, int]] = []
    runs: set[int] = set()
    for m in (TOKEN if astral else bmp).finditer(folded):
        if m.lastindex == 1:
            runs.add(len(spans))
        spans.append(m.span())
    return spans, runs


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
