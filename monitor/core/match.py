"""Matching articles against watchlists: the term language of CONTRACT.md.

`Matcher(watchlists)` compiles every term of every watchlist once; `Matcher.match(article)`
returns, for each watchlist the article satisfies, the terms that hit and where.

How a term matches (both sides folded by `monitor.core.fold`):

* a word or phrase matches whole tokens in sequence (`Taiwan` hits `TAIWAN'S` and `Taiwan-Krise`,
  never `Taiwanese`); between the words of a phrase any whitespace or hyphen is allowed;
* a trailing `*` makes the last word a prefix (`Украин*`);
* a term containing CJK, kana, Hangul or Thai-family letters matches as a substring;
* `case_sensitive` re-checks the original letters of the span, accents still folded;
* `near`/`within` keeps an occurrence only if a near term occurs within that many words,
  either side, in the same field.

Cost per article does not grow with the number of terms: each token of the text costs a dict
lookup for whole-word terms and one lookup per distinct prefix length for prefix terms.
Substring terms are searched one by one; there are few of them in practice.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from monitor.core.fold import (
    TOKEN,
    fold,
    fold_cased,
    fold_offsets,
    gap_key,
    is_substring_script,
    nfc,
    to_original,
)
from monitor.core.model import FIELDS, Article, Hit, Term, Watchlist, WatchlistMatch


@dataclass(frozen=True, slots=True)
class _Pattern:
    words: tuple[str, ...]
    gaps: tuple[str, ...]
    prefix: bool
    substring: str | None


@dataclass(frozen=True, slots=True)
class _Occ:
    """One occurrence of a pattern in a field: token span and folded character span."""

    field: str
    first: int
    last: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _CompiledTerm:
    text: str
    pid: int
    cased: tuple[tuple[str, ...], bool] | None  # (words in original case, prefix)
    near: tuple[int, ...]
    within: int


@dataclass(frozen=True, slots=True)
class _CompiledWatchlist:
    wl: Watchlist
    any: tuple[_CompiledTerm, ...]
    all: tuple[tuple[_CompiledTerm, ...], ...]
    none: tuple[_CompiledTerm, ...]
    fields: frozenset[str]


def _split(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    spans = [(m.start(), m.end()) for m in TOKEN.finditer(text)]
    words = tuple(text[s:e] for s, e in spans)
    gaps = tuple(gap_key(text[spans[i][1] : spans[i + 1][0]]) for i in range(len(spans) - 1))
    return words, gaps


def _pattern(text: str) -> _Pattern:
    prefix = text.endswith("*")
    body = fold(text[:-1] if prefix else text)
    if is_substring_script(body):
        return _Pattern((), (), prefix=False, substring=body.strip())
    words, gaps = _split(body)
    return _Pattern(words, gaps, prefix=prefix, substring=None)


@dataclass
class _FieldScan:
    """One field of one article: original and folded text, tokens, lazily the offset map."""

    text: str
    folded: str
    spans: list[tuple[int, int]]
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


class Matcher:
    """Compiled watchlists. Immutable after construction, so safe to share and to swap whole."""

    def __init__(self, watchlists: Iterable[Watchlist]) -> None:
        self._patterns: list[_Pattern] = []
        self._pids: dict[_Pattern, int] = {}
        self._first: dict[str, list[int]] = {}
        self._prefix: dict[str, list[int]] = {}
        self._substrings: list[tuple[int, str]] = []
        self._watchlists = tuple(self._compile(wl) for wl in sorted(watchlists, key=lambda w: w.id))
        self._prefix_lengths = sorted({len(k) for k in self._prefix})
        self._fields = frozenset().union(*(c.fields for c in self._watchlists))

    @property
    def watchlists(self) -> tuple[Watchlist, ...]:
        return tuple(c.wl for c in self._watchlists)

    # -- compiling ---------------------------------------------------------------------------

    def _pid(self, text: str) -> int:
        pattern = _pattern(text)
        pid = self._pids.get(pattern)
        if pid is not None:
            return pid
        pid = len(self._patterns)
        self._patterns.append(pattern)
        self._pids[pattern] = pid
        if pattern.substring is not None:
            self._substrings.append((pid, pattern.substring))
        elif len(pattern.words) == 1 and pattern.prefix:
            self._prefix.setdefault(pattern.words[0], []).append(pid)
        elif pattern.words:
            self._first.setdefault(pattern.words[0], []).append(pid)
        return pid

    def _term(self, term: Term) -> _CompiledTerm:
        cased = None
        if term.case_sensitive:
            prefix = term.text.endswith("*")
            body = fold_cased(term.text[:-1] if prefix else term.text)
            cased = (tuple(m.group() for m in TOKEN.finditer(body)), prefix)
        return _CompiledTerm(
            text=term.text,
            pid=self._pid(term.text),
            cased=cased,
            near=tuple(self._pid(n) for n in term.near),
            within=term.within or 0,
        )

    def _compile(self, wl: Watchlist) -> _CompiledWatchlist:
        rule = wl.match
        return _CompiledWatchlist(
            wl=wl,
            any=tuple(self._term(t) for t in rule.any),
            all=tuple(tuple(self._term(t) for t in group) for group in rule.all),
            none=tuple(self._term(t) for t in rule.none),
            fields=frozenset(wl.fields or FIELDS),
        )

    # -- scanning ----------------------------------------------------------------------------

    def _scan_field(self, name: str, scan: _FieldScan, found: dict[int, list[_Occ]]) -> None:
        folded, spans, patterns = scan.folded, scan.spans, self._patterns
        words = [folded[s:e] for s, e in spans]
        for i, word in enumerate(words):
            for pid in self._first.get(word, ()):
                last = self._continue(patterns[pid], words, spans, folded, i)
                if last is not None:
                    occ = _Occ(name, i, last, spans[i][0], spans[last][1])
                    found.setdefault(pid, []).append(occ)
            for length in self._prefix_lengths:
                if length > len(word):
                    break
                for pid in self._prefix.get(word[:length], ()):
                    found.setdefault(pid, []).append(_Occ(name, i, i, *spans[i]))
        for pid, needle in self._substrings:
            pos = folded.find(needle)
            while pos >= 0:
                end = pos + len(needle)
                occ = _Occ(name, scan.token_at(pos), scan.token_at(end - 1), pos, end)
                found.setdefault(pid, []).append(occ)
                pos = folded.find(needle, end)

    @staticmethod
    def _continue(
        pattern: _Pattern,
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
            if pattern.prefix and k == count - 1:
                if not word.startswith(want):
                    return None
            elif word != want:
                return None
            if gap_key(folded[spans[i + k - 1][1] : spans[i + k][0]]) != pattern.gaps[k - 1]:
                return None
        return i + count - 1

    # -- deciding ----------------------------------------------------------------------------

    def match(self, article: Article, *, feed_tags: Collection[str] = ()) -> list[WatchlistMatch]:
        """Every watchlist the article satisfies, sorted by watchlist id."""
        candidates = [c for c in self._watchlists if _passes_filters(c.wl, article, feed_tags)]
        if not candidates:
            return []
        scans: dict[str, _FieldScan] = {}
        found: dict[int, list[_Occ]] = {}
        for name in FIELDS:
            if name not in self._fields:
                continue
            text = nfc(article.text(name))
            if not text:
                continue
            folded = fold(text)
            spans = [(m.start(), m.end()) for m in TOKEN.finditer(folded)]
            scans[name] = _FieldScan(text, folded, spans)
            self._scan_field(name, scans[name], found)
        if not found:
            return []
        results = []
        for compiled in candidates:
            result = _decide(compiled, found, scans)
            if result is not None:
                results.append(result)
        return results


def _passes_filters(wl: Watchlist, article: Article, feed_tags: Collection[str]) -> bool:
    # An article whose language is unknown is not filtered out: a missed article costs the
    # analyst more than one extra alert, and most feeds declare their language.
    if wl.languages is not None and article.lang is not None:
        lang = article.lang.split("-")[0].lower()
        if lang not in wl.languages:
            return False
    if wl.sources is not None:
        sources = set(wl.sources)
        if article.feed_id not in sources and not sources.intersection(feed_tags):
            return False
    return True


def _occurrences(
    term: _CompiledTerm,
    found: dict[int, list[_Occ]],
    scans: dict[str, _FieldScan],
    fields: frozenset[str],
) -> list[_Occ]:
    occs = [o for o in found.get(term.pid, ()) if o.field in fields]
    if occs and term.cased is not None:
        occs = [o for o in occs if _case_matches(term.cased, scans[o.field], o)]
    if occs and term.near:
        nears = [o for pid in term.near for o in found.get(pid, ()) if o.field in fields]
        occs = [o for o in occs if any(_distance(o, n) <= term.within for n in nears)]
    return occs


def _case_matches(cased: tuple[tuple[str, ...], bool], scan: _FieldScan, occ: _Occ) -> bool:
    words, prefix = cased
    start, end = scan.original(occ.start, occ.end)
    found = [m.group() for m in TOKEN.finditer(fold_cased(scan.text[start:end]))]
    if len(found) != len(words):
        return False
    if prefix:
        return found[:-1] == list(words[:-1]) and found[-1].startswith(words[-1])
    return found == list(words)


def _distance(a: _Occ, b: _Occ) -> int:
    if a.field != b.field:
        return 1 << 30
    if b.first > a.last:
        return b.first - a.last
    if a.first > b.last:
        return a.first - b.last
    return 1 << 30  # the same words are not "near" themselves


def _decide(
    compiled: _CompiledWatchlist, found: dict[int, list[_Occ]], scans: dict[str, _FieldScan]
) -> WatchlistMatch | None:
    fields = compiled.fields
    hits: dict[str, _Occ] = {}
    for term in compiled.any:
        occs = _occurrences(term, found, scans, fields)
        if occs:
            hits.setdefault(term.text, occs[0])
    if not hits:
        return None
    for group in compiled.all:
        group_hit = False
        for term in group:
            occs = _occurrences(term, found, scans, fields)
            if occs:
                group_hit = True
                hits.setdefault(term.text, occs[0])
        if not group_hit:
            return None
    for term in compiled.none:
        if _occurrences(term, found, scans, fields):
            return None
    located = []
    for text, occ in hits.items():
        start, end = scans[occ.field].original(occ.start, occ.end)
        located.append(Hit(term=text, field=occ.field, start=start, end=end))
    wl = compiled.wl
    return WatchlistMatch(
        watchlist_id=wl.id,
        name=wl.name,
        priority=wl.priority,
        terms=tuple(hits),
        hits=tuple(located),
    )
