"""Compiling watchlist terms: what a term looks for, once folded, and which terms add nothing.

Contract: `compile_pattern(text)` folds a term's text (`monitor.core.fold`) into the hashable
`Pattern` the matcher looks up: its words, the punctuation that must sit between them and which
words are prefixes (written with a trailing `*`), or a substring for a term in a script written
without spaces. Two terms that fold alike get equal patterns, so the matcher scans for each
pattern once however many terms share it. `compile_term(term, pid)` turns a `Term` into the
`CompiledTerm` the matcher decides with, `pid` numbering the patterns of the term and of its
`near` and `except` expressions; `Terms` indexes one section's compiled terms by pattern.
`redundant_terms(wl)` lists the terms of a watchlist that
another term of the same section already covers (`monitor check` reports them).
Pure: no I/O, no state.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from monitor.core.fold import TOKEN, fold, fold_cased, gap_key, is_substring_script
from monitor.core.model import Term, Watchlist


@dataclass(frozen=True, slots=True)
class Pattern:
    words: tuple[str, ...]
    gaps: tuple[str, ...]
    prefixes: tuple[bool, ...]  # per word: it ended with `*` in the term
    substring: str | None


@dataclass(frozen=True, slots=True)
class CompiledTerm:
    text: str
    pid: int
    cased: tuple[tuple[str, ...], tuple[bool, ...]] | None  # words in original case, prefixes
    near: tuple[int, ...]
    within: int
    except_: tuple[int, ...] = ()


class Terms:
    """A list of terms, indexed by pattern so that only the terms that occurred are visited.

    Deciding an article then costs what occurred in it, not the size of the watchlist: with
    10,000 terms, looping over each to ask "did you occur?" would dominate matching.
    """

    __slots__ = ("by_pid", "terms")

    def __init__(self, terms: tuple[CompiledTerm, ...]) -> None:
        self.terms = terms
        by_pid: dict[int, list[int]] = {}
        for index, term in enumerate(terms):
            by_pid.setdefault(term.pid, []).append(index)
        self.by_pid = by_pid

    def present(self, found: Collection[int]) -> list[CompiledTerm]:
        """The terms whose pattern is among the `found` pids, in the order they were written."""
        if len(found) < len(self.by_pid):
            indices = [i for pid in found for i in self.by_pid.get(pid, ())]
        else:
            indices = [i for pid, idx in self.by_pid.items() if pid in found for i in idx]
        return [self.terms[i] for i in sorted(indices)]


def _words(folded: str) -> tuple[tuple[str, ...], tuple[str, ...], tuple[bool, ...]]:
    """Words, the punctuation that must sit between them, and which end with `*`."""
    spans = [m.span() for m in TOKEN.finditer(folded)]
    words = tuple(folded[s:e] for s, e in spans)
    gaps = tuple(
        gap_key(folded[spans[i][1] : spans[i + 1][0]].replace("*", ""))
        for i in range(len(spans) - 1)
    )
    prefixes = tuple(folded[e : e + 1] == "*" for _, e in spans)
    return words, gaps, prefixes


def compile_pattern(text: str) -> Pattern:
    folded = fold(text)
    if is_substring_script(folded):
        return Pattern((), (), (), substring=folded.replace("*", "").strip())
    words, gaps, prefixes = _words(folded)
    return Pattern(words, gaps, prefixes, substring=None)


def compile_term(term: Term, pid: Callable[[str], int]) -> CompiledTerm:
    cased = None
    if term.case_sensitive:
        words, _, prefixes = _words(fold_cased(term.text))
        cased = (words, prefixes)
    return CompiledTerm(
        text=term.text,
        pid=pid(term.text),
        cased=cased,
        near=tuple(pid(n) for n in term.near),
        within=term.within or 0,
        except_=tuple(pid(e) for e in term.except_),
    )


def redundant_terms(wl: Watchlist) -> list[tuple[str, int, str, str]]:
    """Terms of a section that add nothing: the same as another once folded, or a word that
    a prefix term of the section already covers.

    Returns (section, index, term, the term that covers it), section "any" or "none": `Taïwan`
    beside `Taiwan*` adds nothing but a second name for every hit.
    """
    out = []
    for section, terms in (("any", wl.match.any), ("none", wl.match.none)):
        seen: dict[tuple[Pattern, bool, tuple[str, ...], int | None, tuple[str, ...]], str] = {}
        prefixes: list[tuple[str, str]] = []  # plain one-word prefix terms: (prefix, as written)
        for term in terms:
            pattern = compile_pattern(term.text)
            plain = not term.near and not term.case_sensitive and not term.except_
            if plain and len(pattern.words) == 1 and pattern.prefixes[0]:
                prefixes.append((pattern.words[0], term.text))
        for index, term in enumerate(terms):
            pattern = compile_pattern(term.text)
            key = (pattern, term.case_sensitive, term.near, term.within, term.except_)
            if key in seen:
                out.append((section, index, term.text, seen[key]))
                continue
            seen[key] = term.text
            single = len(pattern.words) == 1 and not pattern.prefixes[0]
            if single and not term.near and not term.except_:
                for prefix, written in prefixes:
                    if written != term.text and pattern.words[0].startswith(prefix):
                        out.append((section, index, term.text, written))
                        break
    return out
