"""The bench's helper processes: the feed server and the fake Telegram Bot API, each in its own
process, talked to over stdin/stdout; every one listens on 127.0.0.1 only."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class Helper:
    """A `python -m module args` child: its first stdout line is `READY <words...>`."""

    def __init__(self, module: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if not line or line[0] != "READY":
            self.close()
            raise RuntimeError(f"{module} did not start (said {line!r})")
        self.ready = line[1:]

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # the child exits when its stdin closes
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FeedServerProcess(Helper):
    """tests/bench/serve.py: the corpus on http://127.0.0.1:<port>/f/<i>."""

    def __init__(self, feeds: int, entries: int, seed: int) -> None:
        super().__init__(
            "tests.bench.serve", "--feeds", str(feeds), "--entries", str(entries),
            "--seed", str(seed),
        )  # fmt: skip
        self.port = int(self.ready[0])
        self.corpus_bytes = int(self.ready[1])
        self.startup_s = float(self.ready[2])
        self.root = f"http://127.0.0.1:{self.port}"

    def feed_url(self, index: int) -> str:
        return f"{self.root}/f/{index}"

    def validators(self, on: bool) -> None:
        answer = self.ask(f"validators {'on' if on else 'off'}")
        assert answer.startswith("ok"), answer


class BotApiProcess(Helper):
    """tests/bench/bot_api_proc.py: tests/fakes/bot_api.py's FakeBotApi in its own process."""

    def __init__(self) -> None:
        super().__init__("tests.bench.bot_api_proc")
        self.root = self.ready[0]
        self.token = self.ready[1]

    def messages(self) -> int:
        return int(self.ask("messages"))
