"""A parse worker process: `python -m monitor.edges.parse_worker`, started by `ParsePool`.

Contract: `prepare(body, feed_id=, url=, content_type=, lang_hint=)` is `parse.parse_feed`
followed by a language guess (`language.detect_language`) for the entries that neither the
config nor the feed gave one; it raises what `parse_feed` raises. As a program, the module
reads requests from stdin and answers on stdout, one at a time, each a frame (a 4-byte
big-endian length, then a pickle). The first frame it writes is READY, once its imports are
done. A request is `(body, feed_id, url, content_type, lang_hint)`; the answer is
`("ok", ParsedFeed)`, `("error", class name, message)` for the errors a feed can cause
(`NotAFeed`, `PermanentError`) or `("bug", text)` for anything else. It exits when stdin closes.

It imports the parser and nothing else of the daemon, so it weighs what parsing weighs. The
frames are pickles because both ends are this program: nothing else writes to these pipes.
"""

from __future__ import annotations

import pickle
import signal
import struct
import sys
import traceback
from dataclasses import replace
from typing import IO, Any

from monitor.core.errors import MonitorError
from monitor.edges.language import detect_language
from monitor.edges.parse import ParsedFeed, parse_feed

READY = b"ready"
_LENGTH = struct.Struct(">I")


def prepare(
    body: bytes, *, feed_id: str, url: str, content_type: str | None, lang_hint: str | None
) -> ParsedFeed:
    """Parse, then guess the language of entries that neither the config nor the feed gave."""
    parsed = parse_feed(
        body, feed_id=feed_id, url=url, content_type=content_type, lang_hint=lang_hint
    )
    if all(a.lang for a in parsed.articles):
        return parsed
    articles = tuple(
        a if a.lang else replace(a, lang=detect_language(f"{a.title}. {a.summary}"))
        for a in parsed.articles
    )
    return replace(parsed, articles=articles)


def read_frame(stream: IO[bytes]) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    return data if len(data) == size else None


def frame(data: bytes) -> bytes:
    return _LENGTH.pack(len(data)) + data


def answer(request: bytes) -> tuple[Any, ...]:
    body, feed_id, url, content_type, lang_hint = pickle.loads(request)  # noqa: S301
    try:
        parsed = prepare(
            body, feed_id=feed_id, url=url, content_type=content_type, lang_hint=lang_hint
        )
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
    while (request := read_frame(stdin)) is not None:
        try:
            reply = pickle.dumps(answer(request), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an answer that does not pickle is a bug, not a dead worker
            reply = pickle.dumps(("bug", traceback.format_exc(limit=5)))
        stdout.write(frame(reply))
        stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
