"""Checks that need the compiled watchlist: its `examples:` and its redundant terms.

Examples are texts a watchlist must match and texts it must not.

Each failing example becomes a config problem at the example's own line, with the matcher's
explanation: `FILE:LINE:COL: example "…" should match but did not (no 'any' term occurs)`.
An example is read as the article's title (or, when `fields` leaves the title out, as its first
listed field), in its `lang` when given, from a source the watchlist accepts.
"""

from __future__ import annotations

from monitor.core.errors import Problem
from monitor.core.match import Matcher
from monitor.core.model import Article, Example, Watchlist
from monitor.core.terms import redundant_terms
from monitor.edges.yamlsrc import YamlDoc

_QUOTE_LIMIT = 60


def _quoted(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _QUOTE_LIMIT else flat[: _QUOTE_LIMIT - 1] + "…"


def _article(wl: Watchlist, example: Example, index: int) -> Article:
    field = "title" if not wl.fields or "title" in wl.fields else wl.fields[0]
    text = example.text
    return Article(
        feed_id="example",
        guid=f"example-{index}",
        url=None,
        title=text if field == "title" else "",
        summary=text if field == "summary" else "",
        content=text if field == "content" else "",
        tags=(text,) if field == "tags" else (),
        lang=example.lang,
    )


def redundancy_problems(wl: Watchlist, doc: YamlDoc) -> list[Problem]:
    """A term that folds to the same as an earlier one is a mistake worth pointing at."""
    return [
        doc.problem(
            ("match", section, index),
            f"term {term!r} adds nothing: {earlier!r} already matches it"
            " (case and accents are folded)",
        )
        for section, index, term, earlier in redundant_terms(wl)
    ]


def example_problems(wl: Watchlist, doc: YamlDoc) -> list[Problem]:
    """One problem per example whose outcome is not the one written; [] when all hold."""
    if wl.examples is None:
        return []
    matcher = Matcher([wl])
    tags = wl.sources or ()
    problems = []
    cases = [("match", e, True) for e in wl.examples.match]
    cases += [("no_match", e, False) for e in wl.examples.no_match]
    counters = {"match": 0, "no_match": 0}
    for kind, example, expected in cases:
        index = counters[kind]
        counters[kind] += 1
        article = _article(wl, example, index)
        result, reason = matcher.explain(article, wl.id, feed_tags=tags)
        if (result is not None) == expected:
            continue
        verdict = "should match but did not" if expected else "should not match but did"
        message = f'example "{_quoted(example.text)}" {verdict} ({reason})'
        problems.append(doc.problem(("examples", kind, index), message))
    return problems
