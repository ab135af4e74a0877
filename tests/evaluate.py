"""Precision and recall of the shipped watchlists on the labelled multilingual set.

`python -m tests.evaluate` prints the per-language table that the README carries (and, with
`--misses`, every false positive and false negative); `tests/unit/test_labelled.py` holds the
shipped watchlists to the thresholds. Counting is per (item, topic) pair: an item on two topics
counts twice, and a false alarm on one topic counts once.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from monitor.core.match import Matcher
from monitor.core.model import Article
from monitor.edges.config import load_watchlists

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
#: The development set (the watchlists were corrected on what it revealed) and the held-out set
#: (written afterwards, blind to the watchlists, never used to change them).
SETS = ("labelled", "heldout", "blind")
TOPICS = ("new-start", "taiwan", "greenland", "ukraine")


@dataclass
class Score:
    """Counts of a binary decision against labels (also used by tests/stories_eval.py)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    items: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_items(name: str) -> list[dict[str, object]]:
    items = []
    for path in sorted((DATA / name).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                items.append(json.loads(line))
    return items


def evaluate(config_dir: Path = REPO / "config", name: str = "labelled") -> dict[str, Score]:
    """Scores per language, plus "all", on the set `name` (a folder of tests/data)."""
    matcher = Matcher(load_watchlists(config_dir))
    scores: dict[str, Score] = {"all": Score()}
    for item in load_items(name):
        lang = str(item["lang"])
        article = Article(
            feed_id="labelled",
            guid=str(item["id"]),
            url=None,
            title=str(item["title"]),
            summary=str(item["summary"]),
            lang=lang,
        )
        got = {m.watchlist_id for m in matcher.match(article)}
        want = set(item["labels"])  # type: ignore[call-overload]
        for score in (scores.setdefault(lang, Score()), scores["all"]):
            score.items += 1
            for topic in TOPICS:
                if topic in got and topic in want:
                    score.tp += 1
                elif topic in got:
                    score.fp += 1
                    score.misses.append(f"FP {topic:9} {item['id']}: {item['title']}")
                elif topic in want:
                    score.fn += 1
                    score.misses.append(f"FN {topic:9} {item['id']}: {item['title']}")
    return scores


def table(scores: dict[str, Score]) -> str:
    lines = ["| language | items | precision | recall | false alarms | missed |",
             "|---|--:|--:|--:|--:|--:|"]  # fmt: skip
    for lang in [*sorted(k for k in scores if k != "all"), "all"]:
        s = scores[lang]
        name = "**all**" if lang == "all" else lang
        lines.append(
            f"| {name} | {s.items} | {s.precision:.3f} | {s.recall:.3f} | {s.fp} | {s.fn} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config")
    parser.add_argument("--set", choices=SETS, action="append", help="default: both")
    parser.add_argument("--misses", action="store_true", help="list false positives and negatives")
    args = parser.parse_args(argv)
    for name in args.set or SETS:
        scores = evaluate(args.config, name)
        print(f"\n{name}:\n{table(scores)}")
        if args.misses:
            for line in scores["all"].misses:
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
