"""Feed parsing speed: `.venv/bin/python -m tests.bench.bench_parse [--repeat N] [--json PATH]`.

Entries per second over three inputs:

- "real": the XML feeds of ../shared/corpus/real (read in place, skipped when absent);
- "generated": tests.bench.corpus feeds (RSS 2.0 and Atom, 1–3 KB HTML descriptions), 20 x 250;
- "100k tiny": one ~10 MB RSS 2.0 feed of 100,000 one-line items (the MAX_ENTRIES case).

Rows: feedparser with its defaults (sanitising and URI resolution on), feedparser with both off
(what parse.py asks for), the fast path alone (`fastparse.parse_fast`, lxml), and the whole of
`parse_feed` (Articles, HTML to text) forced through feedparser and with the fast path. The raw
rows read the bytes parse.py would hand over (gunzipped, transcoded, DOCTYPE removed) and only
the documents the fast path accepts, so all raw rows count the same entries; the parse_feed rows
take every XML file. "entries" is what each row returned: feedparser returns all 100,000 tiny
items, the fast path stops after MAX_ENTRIES, so that column shows the bounded work.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from monitor.edges.fastparse import parse_fast
from monitor.edges.parse import MAX_BODY_BYTES, MAX_ENTRIES, parse_feed
from monitor.edges.xmlguard import defuse, drop_bad_char_refs, gunzip, wide_to_utf8
from tests.bench.corpus import feed
from tests.corpus import corpus_files


def prepared(body: bytes) -> bytes:
    """The bytes parse.py hands to either parser."""
    if body.startswith(b"\x1f\x8b"):
        body = gunzip(body, MAX_BODY_BYTES)
    body, _ = wide_to_utf8(body, None)
    return drop_bad_char_refs(defuse(body))


def tiny_items(count: int) -> bytes:
    items = "".join(
        f"<item><title>Item {i}</title><link>https://example.org/{i}</link></item>"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>'
        f"<link>https://example.org/</link>{items}</channel></rss>"
    ).encode()


def inputs() -> dict[str, list[bytes]]:
    real = [p.read_bytes() for p in corpus_files("real") if not p.name.endswith(".json")]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    generated = [feed(i, 250, seed=7, now=now) for i in range(20)]
    sets = {"generated": generated, "100k tiny": [tiny_items(100_000)]}
    return {"real": real, **sets} if real else sets


def rows(bodies: list[bytes]) -> dict[str, Callable[[], int]]:
    raw = [prepared(b) for b in bodies]
    accepted = [b for b in raw if parse_fast(b, {}, MAX_ENTRIES) is not None]

    def feedparser_rows(**kwargs: bool) -> int:
        return sum(len(feedparser.parse(io.BytesIO(b), **kwargs)["entries"]) for b in accepted)

    def fast() -> int:
        total = 0
        for b in accepted:
            result = parse_fast(b, {}, MAX_ENTRIES)
            total += len(result["entries"]) if result else 0
        return total

    def whole(use_fast: bool) -> int:
        return sum(len(parse_feed(b, feed_id="b", fast=use_fast).articles) for b in bodies)

    return {
        "feedparser, defaults": lambda: feedparser_rows(),
        "feedparser, sanitising off": lambda: feedparser_rows(
            sanitize_html=False, resolve_relative_uris=False
        ),
        "fast path (lxml)": fast,
        "parse_feed, feedparser": lambda: whole(False),
        "parse_feed, fast path": lambda: whole(True),
    }


def measure(run: Callable[[], int], repeat: int) -> tuple[int, float]:
    best = float("inf")
    entries = 0
    for _ in range(repeat):
        start = time.perf_counter()
        entries = run()
        best = min(best, time.perf_counter() - start)
    return entries, best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    results: list[dict[str, Any]] = []
    print(
        f"{'input':<10} {'parser':<28} {'docs':>5} {'entries':>8} {'seconds':>8} {'entries/s':>10}"
    )
    for name, bodies in inputs().items():
        for label, run in rows(bodies).items():
            entries, seconds = measure(run, args.repeat)
            rate = entries / seconds if seconds else 0.0
            results.append({"input": name, "parser": label, "entries": entries, "seconds": seconds})
            print(f"{name:<10} {label:<28} {len(bodies):>5} {entries:>8}", end="")
            print(f" {seconds:>8.3f} {rate:>10,.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
