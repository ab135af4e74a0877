"""Guessing an article's language when neither its feed nor the config says it.

py3langid (a maintained, numpy-only port of langid.py) scores the text; the guess is used only
when the text is long enough and the model confident enough, because a wrong language would
hide an article from a watchlist's `languages:` filter while an unknown one does not. The model
loads on first use (about 0.7 s), not at import.
"""

from __future__ import annotations

import threading
from typing import Any

from monitor.core.languages import primary_language

MIN_LETTERS = 12
MIN_CONFIDENCE = 0.6
_SAMPLE = 600  # characters: enough for a stable guess, short enough to stay fast
# Codes the model uses for varieties that feeds and analysts call by their macrolanguage.
_MACRO = {"wuu": "zh", "yue": "zh", "nn": "no", "nb": "no"}

_lock = threading.Lock()
_identifier: Any = None


def _model() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def detect_language(text: str) -> str | None:
    """The primary language subtag of `text`, or None when too short or too uncertain."""
    sample = text[:_SAMPLE]
    if sum(ch.isalpha() for ch in sample) < MIN_LETTERS:
        return None
    # The model splits Chinese into zh, wuu and yue: their probabilities add up to "zh".
    totals: dict[str, float] = {}
    for code, probability in _model().rank(sample)[:10]:
        macro = _MACRO.get(code, code)
        totals[macro] = totals.get(macro, 0.0) + float(probability)
    best = max(totals, key=totals.__getitem__)
    if totals[best] < MIN_CONFIDENCE:
        return None
    return primary_language(best)
