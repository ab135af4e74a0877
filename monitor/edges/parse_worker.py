"""A parse worker process: `python -m monitor.edges.parse_worker`, started by `ParsePool`.

Contract: `prepare(body, feed_id=, url=, content_type=, lang_hint=, matcher=, feed_tags=)` is
`parse.parse_feed` followed by a language guess (`language.detect_language`) for the entries
that neither the config nor the feed gave one, and by `core.prepare.prepare` for every entry
(`ParsedFeed.prepared`: dedupe keys, and with a matcher the matches and fingerprints); it raises
what `parse_feed` raises.

As a program, the module reads requests from stdin and answers on stdout, one at a time, each a
frame (a 4-byte big-endian length, then a pickle). The first frame it writes is READY, once its
imports are done. Requests:

- `("watchlists", version, watchlists)`: compile a `Matcher` and keep it as `version` (the one
  before is dropped); the answer is `("ok", None)`;
- `("parse", body, feed_id, url, content_type, lang_hint, version, feed_tags)`: `prepare` with
  the matcher of `version` (None, or a version it does not hold: keys only, and the daemon
  matches); the answer is `("ok", ParsedFeed)`, `("error", class name, message)` for the
  errors a feed can cause (`NotAFeed`, `PermanentError`) or `("bug", text)` for anything else.

It exits when stdin closes. It imports the parser and the pure core, nothing else of the
daemon, so it weighs what parsing and matching weigh. The frames are pickles because both ends
are this program: nothing else writes to these pipes.
"""

from __future__ import annotations

import pickle
import signal
import struct
import sys
import traceback
from collections.abc import Collection
from dataclasses import replace
from typing import IO, Any

from monitor.core.errors import MonitorError
from monitor.core.match import Matcher
from monitor.core.prepare import prepare as prepare_article
from monitor.edges.language import detect_language
from monitor.edges.parse import ParsedFeed, parse_feed

READY = b"ready"
_LENGTH = struct.Struct(">I")


def prepare(
    body: bytes, *, feed_id: str, url: str, content_type: str | None, lang_hint: str | None,
    matcher: Matcher | None = None, feed_tags: Collection[str] = (),
) -> ParsedFeed:  # fmt: skip
    """Parse, guess the language of entries that neither the config nor the feed gave, and
    prepare every entry (keys; with a matcher, matches and fingerprints)."""
    parsed = parse_feed(
        body, feed_id=feed_id, url=url, content_type=content_type, lang_hint=lang_hint
    )
    articles = parsed.articles
    if not all(a.lang for a in articles):
        articles = tuple(
            a if a.lang else replace(a, lang=detect_language(f"{a.title}. {a.summary}"))
            for a in articles
        )
    prepared = tuple(prepare_article(a, matcher, feed_tags) for a in articles)
    return replace(parsed, articles=articles, prepared=prepared)


def read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def frame(data: bytes) -> bytes:
    return _LENGTH.pack(len(data)) + data


class Worker:
    """A worker's state between requests: the matcher of the latest watchlists it was sent."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.matcher: Matcher | None = None

    def answer(self, request: bytes) -> tuple[Any, ...]:
        message = pickle.loads(request)  # noqa: S301
        if message[0] == "watchlists":
            try:
                self.matcher = Matcher(message[2])
            except Exception:
                self.version, self.matcher = None, None
                return ("bug", traceback.format_exc(limit=5))
            self.version = message[1]
            return ("ok", None)
        _, body, feed_id, url, content_type, lang_hint, version, feed_tags = message
        matcher = self.matcher if version is not None and version == self.version else None
        return _parse(body, feed_id, url, content_type, lang_hint, matcher, feed_tags)


def _parse(
    body: bytes, feed_id: str, url: str, content_type: str | None, lang_hint: str | None,
    matcher: Matcher | None, feed_tags: Collection[str],
) -> tuple[Any, ...]:  # fmt: skip
    try:
        parsed = prepare(
            body, feed_id=feed_id, url=url, content_type=content_type, lang_hint=lang_hint,
            matcher=matcher, feed_tags=feed_tags,
        )  # fmt: skip
    except MonitorError as exc:
        return ("error", type(exc).__name__, str(exc))
    except Exception:
        return ("bug", traceback.format_exc(limit=5))
    return ("ok", parsed)


def main() -> int:
    # The daemon ends a worker by closing its stdin, after the parse in hand: a SIGTERM or
    # SIGINT meant for the whole service (systemd's stop, Ctrl-C) must not cut a parse short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(frame(READY))
    stdout.flush()
    worker = Worker()
    while (request := read_frame(stdin)) is not None:
        try:
            reply = pickle.dumps(worker.answer(request), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an answer that does not pickle is a bug, not a dead worker
            reply = pickle.dumps(("bug", traceback.format_exc(limit=5)))
        stdout.write(frame(reply))
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
