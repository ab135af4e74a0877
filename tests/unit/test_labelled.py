"""The shipped watchlists on the labelled multilingual set (tests/data/labelled).

The thresholds are the project's promise to analysts (see the README's table): precision and
recall of at least 0.97 overall, and no language's recall below 0.9.
"""

from __future__ import annotations

import pytest

from tests.evaluate import evaluate


@pytest.fixture(scope="module")
def scores():  # type: ignore[no-untyped-def]
    return evaluate()


def test_overall_precision_and_recall(scores) -> None:  # type: ignore[no-untyped-def]
    overall = scores["all"]
    assert overall.items >= 400
    assert overall.precision >= 0.97, "\n".join(overall.misses)
    assert overall.recall >= 0.97, "\n".join(overall.misses)


@pytest.mark.parametrize(
    "lang", ["en", "fr", "de", "es", "it", "pt", "pl", "ru", "uk", "zh", "ja", "ar", "tr"]
)
def test_every_language_is_covered_with_recall_at_least_0_9(scores, lang: str) -> None:  # type: ignore[no-untyped-def]
    score = scores[lang]
    assert score.items >= 30
    assert score.recall >= 0.9, "\n".join(m for m in score.misses if m.startswith("FN"))
