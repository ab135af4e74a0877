"""Matching articles against watchlists: the term language of CONTRACT.md.

`Matcher(watchlists)` compiles every term of every watchlist once (`monitor.core.terms`) and
scans for them; `Matcher.match(article)` returns, for each watchlist the article satisfies, the
terms that hit and where.

How a term matches (both sides folded by `monitor.core.fold`):

* a word or phrase matches whole tokens in sequence (`Taiwan` hits `TAIWAN'S` and `Taiwan-Krise`,
  never `Taiwanese`); between the words of a phrase any whitespace or hyphen is allowed;
* a trailing `*` makes the last word a prefix (`Украин*`);
* a term containing CJK, kana, Hangul or Thai-family letters matches as a substring;
* `case_sensitive` re-checks the original letters of the span, accents still folded;
* `near`/`within` keeps an occurrence only if a near term occurs within that many words,
  either side, in the same field.

Cost per article does not grow with the number of terms. A gate (`monitor.core.scan`) first
rules out, with a few set operations on the article's words, every article in which no `any`
term can occur: most of them. The others are scanned token by token: each token costs a dict
lookup for whole-word terms and one per distinct prefix length for prefix terms, and substring
terms are looked up by length from each position of a no-space run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from monitor.core.fold import TOKEN, fold_cased
from monitor.core.languages import primary_language
from monitor.core.model import FIELDS, Article, Hit, Term, Watchlist, WatchlistMatch
from monitor.core.scan import FieldScan, Found, Occ, Scanner
from monitor.core.terms import CompiledTerm, Pattern, Terms, compile_pattern, compile_term


@dataclass(frozen=True, slots=True)
class _CompiledWatchlist:
    wl: Watchlist
    any: Terms
    all: tuple[Terms, ...]
    none: Terms
    fields: frozenset[str]


class Matcher:
    """Compiled watchlists. Immutable after construction, so safe to share and to swap whole."""

    def __init__(self, watchlists: Iterable[Watchlist]) -> None:
        self._patterns: list[Pattern] = []
        self._pids: dict[Pattern, int] = {}
        self._watchlists = tuple(self._compile(wl) for wl in sorted(watchlists, key=lambda w: w.id))
        self._fields = frozenset().union(*(c.fields for c in self._watchlists))
        # Only `any` terms are gated: without an `any` hit no other term decides anything.
        gated = {pid for c in self._watchlists for pid in c.any.by_pid}
        self._scanner = Scanner(self._patterns, gated)

    @property
    def watchlists(self) -> tuple[Watchlist, ...]:
        return tuple(c.wl for c in self._watchlists)

    # -- compiling ---------------------------------------------------------------------------

    def _pid(self, text: str) -> int:
        pattern = compile_pattern(text)
        pid = self._pids.get(pattern)
        if pid is not None:
            return pid
        pid = len(self._patterns)
        self._patterns.append(pattern)
        self._pids[pattern] = pid
        return pid

    def _compile(self, wl: Watchlist) -> _CompiledWatchlist:
        def terms(written: Iterable[Term]) -> Terms:
            return Terms(tuple(compile_term(t, self._pid) for t in written))

        rule = wl.match
        return _CompiledWatchlist(
            wl=wl,
            any=terms(rule.any),
            all=tuple(terms(group) for group in rule.all),
            none=terms(rule.none),
            fields=frozenset(wl.fields or FIELDS),
        )

    # -- deciding ----------------------------------------------------------------------------

    def match(self, article: Article, *, feed_tags: Collection[str] = ()) -> list[WatchlistMatch]:
        """Every watchlist the article satisfies, sorted by watchlist id."""
        return self._match(article, feed_tags, gated=True)

    def _match(
        self, article: Article, feed_tags: Collection[str], *, gated: bool
    ) -> list[WatchlistMatch]:
        """`match`; `gated=False` forces the full scan of every article (tests compare both)."""
        candidates = [
            c for c in self._watchlists if _filtered_out(c.wl, article, feed_tags) is None
        ]
        if not candidates:
            return []
        found, scans = self._scanner.scan(article, self._fields, gated=gated)
        if not found:
            return []
        results = []
        for compiled in candidates:
            if not (found.keys() & compiled.any.by_pid.keys()):
                continue
            result, _ = _decide(compiled, found, scans)
            if result is not None:
                results.append(result)
        return results

    def explain(
        self, article: Article, watchlist_id: str, *, feed_tags: Collection[str] = ()
    ) -> tuple[WatchlistMatch | None, str]:
        """Whether one watchlist matches, and why (or why not), in words an analyst can act on."""
        compiled = next(c for c in self._watchlists if c.wl.id == watchlist_id)
        reason = _filtered_out(compiled.wl, article, feed_tags)
        if reason is not None:
            return None, reason
        found, scans = self._scanner.scan(article, self._fields)
        return _decide(compiled, found, scans)


def _filtered_out(wl: Watchlist, article: Article, feed_tags: Collection[str]) -> str | None:
    """Why the article is outside the watchlist's languages or sources; None when it is not."""
    # An article whose language is unknown is not filtered out: a missed article costs the
    # analyst more than one extra alert, and most feeds declare their language.
    lang = primary_language(article.lang)
    if wl.languages is not None and lang is not None and lang not in wl.languages:
        return f"language {lang!r} is not one of {list(wl.languages)}"
    if wl.sources is not None:
        sources = set(wl.sources)
        if article.feed_id not in sources and not sources.intersection(feed_tags):
            return f"source {article.feed_id!r} is not one of {list(wl.sources)}"
    return None


def _occurrences(
    term: CompiledTerm,
    found: Found,
    scans: dict[str, FieldScan],
    fields: frozenset[str],
) -> list[Occ]:
    occs = _outside_excepts(term, [o for o in found.get(term.pid, ()) if o.field in fields], found)
    if occs and term.cased is not None:
        occs = [o for o in occs if _case_matches(term.cased, scans[o.field], o)]
    if occs and term.near:
        nears = [o for pid in term.near for o in found.get(pid, ()) if o.field in fields]
        occs = [o for o in occs if any(_distance(o, n) <= term.within for n in nears)]
    return occs


def _outside_excepts(term: CompiledTerm, occs: list[Occ], found: Found) -> list[Occ]:
    """The occurrences that are not part of one of the term's `except` expressions."""
    if not occs or not term.except_:
        return occs
    wider = [o for pid in term.except_ for o in found.get(pid, ())]
    return [o for o in occs if not any(_inside(o, w) for w in wider)]


def _near_miss(
    term: CompiledTerm,
    found: Found,
    scans: dict[str, FieldScan],
    fields: frozenset[str],
) -> str | None:
    """Why a term that does occur in the text did not count, if that is the case."""
    raw = found.get(term.pid, [])
    if not raw:
        return None
    inside = [o for o in raw if o.field in fields]
    if not inside:
        return f"{term.text!r} occurs only outside fields {sorted(fields)}"
    if not _outside_excepts(term, inside, found):
        return f"{term.text!r} occurs only inside its 'except' expressions"
    if term.cased is not None and not any(
        _case_matches(term.cased, scans[o.field], o) for o in inside
    ):
        return f"{term.text!r} occurs, but not in that exact case"
    return f"{term.text!r} occurs, but no near term within {term.within} words"


def _case_matches(
    cased: tuple[tuple[str, ...], tuple[bool, ...]], scan: FieldScan, occ: Occ
) -> bool:
    words, prefixes = cased
    start, end = scan.original(occ.start, occ.end)
    found = [m.group() for m in TOKEN.finditer(fold_cased(scan.text[start:end]))]
    if len(found) != len(words):
        return False
    return all(
        got.startswith(want) if prefix else got == want
        for got, want, prefix in zip(found, words, prefixes, strict=True)
    )


def _inside(occ: Occ, wider: Occ) -> bool:
    return occ.field == wider.field and wider.start <= occ.start and occ.end <= wider.end


#: Characters of CJK text counted as one word by `near`: Chinese and Japanese words are one to
#: three characters long, two on average, and running text has no spaces to count them by.
CJK_CHARS_PER_WORD = 2


def _distance(a: Occ, b: Occ) -> int:
    if a.field != b.field:
        return 1 << 30
    if b.first > a.last:
        return b.first - a.last
    if a.first > b.last:
        return a.first - b.last
    if a.end <= b.start or b.end <= a.start:
        # Two occurrences inside one token: only a run of CJK-like text holds two apart.
        gap = b.start - a.end if a.end <= b.start else a.start - b.end
        return 1 + -(-gap // CJK_CHARS_PER_WORD)
    return 1 << 30  # the same words are not "near" themselves


def _decide(
    compiled: _CompiledWatchlist, found: Found, scans: dict[str, FieldScan]
) -> tuple[WatchlistMatch | None, str]:
    fields = compiled.fields
    hits: dict[str, Occ] = {}
    for term in compiled.any.present(found):
        occs = _occurrences(term, found, scans, fields)
        if occs:
            hits.setdefault(term.text, occs[0])
    if not hits:
        present = compiled.any.present(found)
        misses = [m for t in present if (m := _near_miss(t, found, scans, fields))]
        return None, "no 'any' term occurs" + (f": {'; '.join(misses)}" if misses else "")
    for number, group in enumerate(compiled.all, start=1):
        group_hit = False
        for term in group.present(found):
            occs = _occurrences(term, found, scans, fields)
            if occs:
                group_hit = True
                hits.setdefault(term.text, occs[0])
        if not group_hit:
            names = ", ".join(repr(t.text) for t in group.terms)
            return None, f"no term of 'all' group {number} ({names}) occurs"
    for term in compiled.none.present(found):
        if _occurrences(term, found, scans, fields):
            return None, f"vetoed by 'none' term {term.text!r}"
    located = []
    for text, occ in hits.items():
        start, end = scans[occ.field].original(occ.start, occ.end)
        located.append(Hit(term=text, field=occ.field, start=start, end=end))
    wl = compiled.wl
    result = WatchlistMatch(
        watchlist_id=wl.id,
        name=wl.name,
        priority=wl.priority,
        terms=tuple(hits),
        hits=tuple(located),
    )
    return result, "matched on " + ", ".join(f"{h.term!r} ({h.field})" for h in located)
