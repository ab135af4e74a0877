"""The fake Telegram Bot API (tests/fakes/bot_api.py) in a process of its own, for the bench.

Prints `READY <root_url> <token>`; answers `messages` (how many messages were delivered) and
`floods` (429s from enforced limits) on stdin, one a line; exits when stdin closes. Flood
control is not enforced (the daemon's own pacing is what the bench measures), and every chat
id is accepted.
"""

from __future__ import annotations

import sys

from tests.fakes.bot_api import DEFAULT_TOKEN, FakeBotApi


def main() -> int:
    with FakeBotApi(DEFAULT_TOKEN) as api:
        print(f"READY {api.root_url} {DEFAULT_TOKEN}", flush=True)
        for raw in sys.stdin:
            command = raw.strip()
            if command == "messages":
                print(len(api.messages()), flush=True)
            elif command == "floods":
                print(api.flood_answers, flush=True)
            elif command:
                print(f"error unknown command {command!r}", flush=True)
        if api.errors:
            print(f"fake Bot API errors: {api.errors!r}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
