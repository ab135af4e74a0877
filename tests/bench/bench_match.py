"""Matching speed against watchlist size: `make bench-match`.

The same articles (multilingual titles and 1–3 KB summaries, one in five on a watched topic) go
through the matcher with 10, 1,000 and 10,000 terms: ten terms that catch every topical article,
plus generated ones (words, prefixes, phrases, case-sensitive and near terms, CJK substrings)
that a real watchlist would hold and these articles do not contain, so that every size matches
the same articles and only the number of terms differs.
The claim to check: the cost per article stays flat as terms grow (10,000 terms no more than
2x slower than 10). Prints a table and writes JSON (--json PATH).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from monitor.core.match import Matcher
from monitor.core.model import Article, Watchlist

_LATIN = "abcdefghijklmnoprstuvyz"
_CYRILLIC = "абвгдежзиклмнопрстуфхцчшы"
# CJK Extension A: real characters, but rare enough not to turn up in the articles by chance.
_CJK = [chr(c) for c in range(0x3400, 0x3400 + 3000)]

_SENTENCES = [
    "Officials met on Tuesday to discuss trade, energy prices and the regional security outlook.",
    "Les ministres se sont réunis mardi pour évoquer le commerce et la sécurité régionale.",
    "Die Minister berieten am Dienstag über Handel, Energiepreise und die Sicherheitslage.",
    "Министры во вторник обсудили торговлю, цены на энергию и безопасность в регионе.",
    "Los ministros se reunieron el martes para hablar de comercio y seguridad regional.",
    "各国部长周二举行会议，讨论贸易、能源价格和地区安全形势。",
    "Bakanlar salı günü ticaret, enerji fiyatları ve bölgesel güvenliği görüştü.",
    "اجتمع الوزراء يوم الثلاثاء لبحث التجارة وأسعار الطاقة والأمن الإقليمي.",
]
_TOPICAL = [
    "Taïwan : Pékin multiplie les manœuvres dans le détroit",
    "Russia and the US trade blame as New START expires",
    "Grönlandfrage: Kopenhagen lädt zu Gesprächen ein",
    "Удары по энергосистеме Украины продолжаются",
    "台湾海峡局势持续紧张",
    "Ukrayna'ya yeni yardım paketi açıklandı",
]


def _word(rng: random.Random, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(5, 9)))


def generated_terms(count: int, rng: random.Random) -> list[Any]:
    terms: list[Any] = []
    while len(terms) < count:
        kind = rng.random()
        if kind < 0.45:
            terms.append(_word(rng, _LATIN))
        elif kind < 0.60:
            terms.append(_word(rng, _CYRILLIC) + "*")
        elif kind < 0.75:
            terms.append(f"{_word(rng, _LATIN)} {_word(rng, _LATIN)}")
        elif kind < 0.85:
            terms.append("".join(rng.choice(_CJK) for _ in range(rng.randint(2, 4))))
        elif kind < 0.93:
            terms.append({"term": _word(rng, _LATIN).upper(), "case_sensitive": True})
        else:
            terms.append({"term": _word(rng, _LATIN), "near": [_word(rng, _LATIN)], "within": 5})
    return terms


def articles(count: int, rng: random.Random) -> list[Article]:
    out = []
    for i in range(count):
        title = rng.choice(_TOPICAL) if i % 5 == 0 else rng.choice(_SENTENCES)[:70]
        size = rng.randint(1000, 3000)
        parts: list[str] = []
        while sum(len(p) for p in parts) < size:
            parts.append(rng.choice(_SENTENCES))
        out.append(
            Article(feed_id="bench", guid=str(i), url=None, title=title, summary=" ".join(parts))
        )
    return out


#: Ten terms that catch every topical article: the baseline the larger sets are compared to.
BASE = {
    "taiwan": ["Taiwan", "台湾"],
    "new-start": [{"term": "New START", "case_sensitive": True}, "ДСНВ"],
    "greenland": ["Grönland*", "Greenland"],
    "ukraine": ["Украин*", "Ukrayna*", "Ukrain*", "Україн*"],
}


def watchlists_with(total_terms: int, rng: random.Random) -> list[Watchlist]:
    """The baseline lists plus generated terms up to `total_terms`, 500 terms per list."""
    base = [Watchlist.model_validate({"id": k, "match": {"any": v}}) for k, v in BASE.items()]
    extra = generated_terms(max(0, total_terms - sum(len(v) for v in BASE.values())), rng)
    chunk = 500
    generated = [
        Watchlist.model_validate(
            {"id": f"gen-{i // chunk}", "match": {"any": extra[i : i + chunk]}}
        )
        for i in range(0, len(extra), chunk)
    ]
    return [*base, *generated]


def measure(matcher: Matcher, items: list[Article], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for article in items:
            matcher.match(article)
        best = min(best, time.perf_counter() - start)
    return len(items) / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rng = random.Random(20260204)
    items = articles(args.articles, rng)
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        lists = watchlists_with(size, rng)
        terms = sum(len(w.all_terms) for w in lists)
        start = time.perf_counter()
        matcher = Matcher(lists)
        compile_s = time.perf_counter() - start
        rate = measure(matcher, items, args.repeat)
        matched = sum(bool(matcher.match(a)) for a in items)
        rows.append({"terms": terms, "watchlists": len(lists), "compile_s": round(compile_s, 3),
                     "articles_per_s": round(rate), "matched": matched})  # fmt: skip
    print(f"{'terms':>7} {'lists':>6} {'compile s':>10} {'articles/s':>11} {'matched':>8}")
    for r in rows:
        cells = (r["terms"], r["watchlists"], r["compile_s"], r["articles_per_s"], r["matched"])
        print("".join(f"{c:>{w}}" for c, w in zip(cells, (7, 7, 11, 12, 9), strict=True)))
    slowdown = rows[0]["articles_per_s"] / rows[-1]["articles_per_s"]
    print(
        f"bench-match: {rows[-1]['terms']} terms are {slowdown:.2f}x slower than"
        f" {rows[0]['terms']} ({args.articles} articles, 1-3 KB each, best of {args.repeat})"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "slowdown": slowdown}, indent=2))
    return 0 if slowdown <= 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
