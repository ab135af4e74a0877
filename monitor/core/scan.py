"""Finding compiled term patterns in an article's fields: the full scan, and the gate before it.

Contract: `Scanner(patterns, gated)` indexes the patterns (`monitor.core.terms.Pattern`,
numbered by position) once. `scan(article, fields)` folds and tokenises each field
(`monitor.core.fold`) and returns every occurrence of every pattern, with the scanned fields the
occurrences refer to. With `gated=True` it first asks the gate whether any pattern numbered in
`gated` can occur in the article and returns nothing when none can; `admits(article, fields)` is
that answer alone. The matcher gates on the patterns of `any` terms: without an `any` hit no
other term decides anything, and most articles have none.

The gate is exact in one direction: it never rules out an article in which a gated pattern
occurs. What it lets through without one costs a full scan and nothing else. It reads the
folded fields joined, with a few C-level calls (regexes, `str.split`, set operations) and no
Python loop per token, so its cost does not grow with the number of terms:

* words: the text's runs of letters (the letters of the gated words and of the alphabets below
  U+0800) form a set. A token equal to a word is made of such letters between non-letters, so it
  is one of the runs. A word or phrase pattern is looked up by its longest whole word; a phrase
  also needs its other whole words after the first among the runs;
* prefixes: runs cut to the length of the shortest prefix word are intersected with the prefix
  words cut alike, and the runs with a common head are then compared in full;
* Arabic proclitics, which `arabic_stems` takes off before looking words up (`ل` + `أوكرانيا`):
  a first word that starts with a letter a proclitic can end in is also looked up glued to each
  proclitic; for the others, the runs that start with proclitic letters are added without them;
* substrings: the text's windows that start with the first letter of a substring, as long as the
  shortest substring, are intersected with the substrings' heads, and those that hit are searched
  in full. A `narrow` text has no letter of a no-space script, so none of them.

Pure: no I/O; the gate's tables are built once per Scanner.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import starmap
from operator import add, itemgetter

from monitor.core.fold import (
    TOKEN,
    arabic_stems,
    fold_nfc,
    fold_offsets,
    gap_key,
    narrow,
    nfc,
    to_original,
    tokens,
)
from monitor.core.model import FIELDS, Article
from monitor.core.terms import Pattern


@dataclass(frozen=True, slots=True)
class Occ:
    """One occurrence of a pattern in a field: token span and folded character span."""

    field: str
    first: int
    last: int
    start: int
    end: int


@dataclass
class FieldScan:
    """One field of one article: original and folded text, tokens, lazily the offset map."""

    text: str
    folded: str
    spans: list[tuple[int, int]]
    runs: set[int]  # indices of the tokens that are runs of a no-space script
    _offsets: list[int] | None = None
    _starts: list[int] = field(default_factory=list)

    def offsets(self) -> list[int]:
        if self._offsets is None:
            self._offsets = fold_offsets(self.text)
        return self._offsets

    def token_at(self, pos: int) -> int:
        if not self._starts:
            self._starts = [s for s, _ in self.spans]
        return max(bisect_right(self._starts, pos) - 1, 0)

    def original(self, start: int, end: int) -> tuple[int, int]:
        return to_original(self.offsets(), start, end)


Found = dict[int, list[Occ]]

#: What `arabic_stems` can take off the front of a word: a conjunction (و ف), a preposition
#: (ب ل ك, or لل for ل + ال) and the article (ال), each optional, in that order.
_CLITICS = tuple(
    c + p + a
    for c in ("", "\u0648", "\u0641")
    for p in ("", "\u0628", "\u0644", "\u0643", "\u0644\u0644")
    for a in ("", "\u0627\u0644")
    if c + p + a
)
_CLITIC_LETTERS = frozenset("".join(_CLITICS))


def _with_clitics(word: str) -> list[str]:
    """The word, and if it starts with a letter a proclitic can end in, as glued to each."""
    if word[0] not in _CLITIC_LETTERS:
        return [word]
    return [word, *(clitic + word for clitic in _CLITICS)]


def _charset(chars: Iterable[str], negate: str = "") -> str:
    """A stdlib regex class of the characters, as ranges."""
    ranges: list[list[int]] = []
    for cp in sorted(map(ord, set(chars))):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in ranges)
    return f"[{negate}{body}]"


@cache
def _alphabets() -> frozenset[str]:
    """Token letters below U+0800 (Latin, Greek, Cyrillic, Hebrew, Arabic...): the gate's runs
    take them whole, so that a text in those alphabets is split at spaces and punctuation only,
    which `str.split` does faster than a regex."""
    return frozenset(
        c for c in map(chr, range(0x800)) if (m := TOKEN.fullmatch(c)) and m.lastindex == 2
    )


class _Gate:
    """Whether any of some patterns can occur in a folded text (see the module docstring)."""

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self._words: dict[str, list[frozenset[str]]] = {}  # key -> per pattern, words it needs
        firsts: set[str] = set()
        subs: set[str] = set()
        letters = set(_alphabets())
        for p in patterns:
            if p.substring is not None:
                subs.add(p.substring)
                continue
            letters.update(*p.words)
            exact = [w for w, prefix in zip(p.words, p.prefixes, strict=True) if not prefix]
            if not exact:
                firsts.add(p.words[0])
                continue
            # The longest word is the likeliest to be rare: `new start` waits for `start`.
            key = max(exact, key=len)
            later = zip(p.words[1:], p.prefixes[1:], strict=True)
            needs = frozenset(w for w, prefix in later if not prefix) - {key}
            for form in _with_clitics(key) if key == p.words[0] else [key]:
                self._words.setdefault(form, []).append(needs)
        self._head_length = min(map(len, firsts), default=0)
        self._heads: dict[str, list[str]] = {}  # head -> prefix words that start with it
        for first in sorted(firsts):
            for form in _with_clitics(first):
                self._heads.setdefault(form[: self._head_length], []).append(form)
        self._cut = itemgetter(slice(0, self._head_length))
        word = _charset(letters)
        # The runs come from `str.split` once every other character is a space: runs of
        # non-ASCII ones by a regex (feed text has few), the ASCII ones by a byte table.
        stray = _charset((c for c in letters if not c.isascii()), "^\\x00-\\x7f")
        self._strays = re.compile(f"{stray}{stray}*")
        self._blank = bytes(c if chr(c) in letters else 32 for c in range(128)) + bytes(
            range(128, 256)
        )
        clitic = _charset(_CLITIC_LETTERS)
        self._stems = re.compile(f"{clitic}(?<!{word}{clitic}){clitic}{{0,4}}({word}+)")
        self._sub_length = min(map(len, subs), default=0)
        self._subs: dict[str, list[str]] = {}  # head -> substrings that start with it
        for sub in sorted(subs):
            self._subs.setdefault(sub[: self._sub_length], []).append(sub)
        tail = f"(?=([\\s\\S]{{{self._sub_length - 1}}}))" if self._sub_length > 1 else ""
        self._windows = re.compile(f"({_charset(s[0] for s in subs) if subs else '(?!)'}){tail}")

    def admits(self, folded: str) -> bool:
        if self._words or self._heads:
            forms = self._forms(folded)
            for key in self._words.keys() & forms:
                if any(needs <= forms for needs in self._words[key]):
                    return True
            if self._heads and (hits := self._heads.keys() & set(map(self._cut, forms))):
                for form in forms:
                    head = form[: self._head_length]
                    if head in hits and any(map(form.startswith, self._heads[head])):
                        return True
        if not self._subs or narrow(folded):  # every substring has a no-space letter
            return False
        windows = self._windows.findall(folded)
        if self._sub_length > 1:
            windows = list(starmap(add, windows))
        return any(
            sub in folded for head in self._subs.keys() & set(windows) for sub in self._subs[head]
        )

    def _forms(self, folded: str) -> set[str]:
        """The text's runs of letters, and its Arabic runs without their proclitics."""
        if folded.isascii():
            return set(folded.encode().translate(self._blank).decode().split())
        spaced = self._strays.sub(" ", folded).encode("utf-8", "surrogatepass")
        forms = set(spaced.translate(self._blank).decode("utf-8", "surrogatepass").split())
        if any(letter in folded for letter in _CLITIC_LETTERS):
            forms.update(self._stems.findall(folded))
        return forms


class Scanner:
    """Patterns indexed for scanning. Immutable after construction."""

    def __init__(self, patterns: Sequence[Pattern], gated: Collection[int]) -> None:
        self._patterns = patterns
        self._first: dict[str, list[int]] = {}
        self._prefix: dict[str, list[int]] = {}
        self._substrings: dict[str, list[int]] = {}
        for pid, pattern in enumerate(patterns):
            if pattern.substring is not None:
                self._substrings.setdefault(pattern.substring, []).append(pid)
            elif pattern.words and pattern.prefixes[0]:
                self._prefix.setdefault(pattern.words[0], []).append(pid)
            elif pattern.words:
                self._first.setdefault(pattern.words[0], []).append(pid)
        self._prefix_lengths = sorted({len(k) for k in self._prefix})
        self._gate_length = self._prefix_lengths[0] if self._prefix_lengths else 1
        self._prefix_gate = {k[: self._gate_length] for k in self._prefix}
        # Substring terms are looked up by length in a hash table, from each position of a
        # no-space-script run (and each word start, for terms that begin in Latin letters).
        # pyahocorasick was measured here at 332 µs per 1.5 KB text with 1,000 CJK terms
        # against 2.6 µs with one: its nodes search their children linearly, and CJK gives
        # the root thousands of them. Lookups by length stay flat as terms grow.
        self._sub_lengths = sorted({len(k) for k in self._substrings}, reverse=True)
        self._sub_gate_length = min(self._sub_lengths, default=1)
        self._sub_gate = {k[: self._sub_gate_length] for k in self._substrings}
        self._gate = _Gate(patterns[pid] for pid in gated)

    def scan(
        self, article: Article, fields: Collection[str], *, gated: bool = False
    ) -> tuple[Found, dict[str, FieldScan]]:
        """Every occurrence of every pattern in the article's `fields`, and the fields scanned.

        With `gated`, nothing at all when the gate rules out every gated pattern.
        """
        texts = []
        for name in FIELDS:
            if name in fields and (text := nfc(article.text(name))):
                texts.append((name, text, fold_nfc(text)))
        if gated and not self._gate.admits("\n".join(folded for _, _, folded in texts)):
            return {}, {}
        scans: dict[str, FieldScan] = {}
        found: Found = {}
        for name, text, folded in texts:
            spans, runs = tokens(folded)
            scans[name] = FieldScan(text, folded, spans, runs)
            self._scan_field(name, scans[name], found)
        return found, scans

    def admits(self, article: Article, fields: Collection[str]) -> bool:
        """Whether the gate lets the article through to the full scan."""
        texts = [nfc(article.text(name)) for name in FIELDS if name in fields]
        return self._gate.admits("\n".join(fold_nfc(text) for text in texts if text))

    def _scan_field(self, name: str, scan: FieldScan, found: Found) -> None:
        folded, spans = scan.folded, scan.spans
        words = [folded[s:e] for s, e in spans]
        for i, word in enumerate(words):
            self._lookup(name, word, i, words, scan, found)
            if "\u0600" <= word[0] <= "\u06ff":  # Arabic: proclitics glued to the word
                for stem in arabic_stems(word):
                    self._lookup(name, stem, i, words, scan, found)
        if self._substrings:
            self._scan_substrings(name, scan, found)

    def _scan_substrings(self, name: str, scan: FieldScan, found: Found) -> None:
        folded, gate, width = scan.folded, self._sub_gate, self._sub_gate_length
        for index, (start, end) in enumerate(scan.spans):
            positions = range(start, end) if index in scan.runs else (start,)
            for pos in positions:
                if folded[pos : pos + width] not in gate:
                    continue
                for length in self._sub_lengths:
                    pids = self._substrings.get(folded[pos : pos + length])
                    if pids is None:
                        continue
                    stop = pos + length
                    occ = Occ(name, index, scan.token_at(stop - 1), pos, stop)
                    for pid in pids:
                        found.setdefault(pid, []).append(occ)

    def _lookup(
        self, name: str, form: str, i: int, words: Sequence[str], scan: FieldScan, found: Found
    ) -> None:
        """Record the whole-word and prefix patterns that start at token i (read as `form`)."""
        spans = scan.spans
        first = self._first.get(form)
        if first is not None:
            for pid in first:
                last = self._continue(self._patterns[pid], words, spans, scan.folded, i)
                if last is not None:
                    occ = Occ(name, i, last, spans[i][0], spans[last][1])
                    found.setdefault(pid, []).append(occ)
        # One set lookup rules out almost every word before trying each prefix length.
        if form[: self._gate_length] not in self._prefix_gate:
            return
        for length in self._prefix_lengths:
            if length > len(form):
                break
            for pid in self._prefix.get(form[:length], ()):
                last = self._continue(self._patterns[pid], words, spans, scan.folded, i)
                if last is not None:
                    occ = Occ(name, i, last, spans[i][0], spans[last][1])
                    found.setdefault(pid, []).append(occ)

    @staticmethod
    def _continue(
        pattern: Pattern,
        words: Sequence[str],
        spans: Sequence[tuple[int, int]],
        folded: str,
        i: int,
    ) -> int | None:
        """Index of the last token if the pattern's remaining words follow token i, else None."""
        count = len(pattern.words)
        if i + count > len(words):
            return None
        for k in range(1, count):
            word, want = words[i + k], pattern.words[k]
            if not (word.startswith(want) if pattern.prefixes[k] else word == want):
                return None
            if gap_key(folded[spans[i + k - 1][1] : spans[i + k][0]]) != pattern.gaps[k - 1]:
                return None
        return i + count - 1
