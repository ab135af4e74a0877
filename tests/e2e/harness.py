"""End-to-end harness: a config folder wired to the loopback fakes, and `monitor` as a subprocess.

The subprocess is the real console entry point (`python -m monitor`) with a clean environment:
only the MONITOR_* variables set here, so nothing from the developer's shell leaks in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[2]
DEMO_FEED = REPO / "seeds" / "demo-feed.xml"
CHAT_ID = -1001234567890


def rss(items: list[dict[str, str]], *, title: str = "Test feed", lang: str = "en") -> bytes:
    """A small RSS 2.0 document; every value is XML-escaped."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://feeds.example/</link>",
        f"<description>test</description><language>{escape(lang)}</language>",
    ]
    for item in items:
        parts.append("<item>")
        for key in ("title", "link", "guid", "description", "pubDate"):
            if key in item:
                attrs = ' isPermaLink="false"' if key == "guid" else ""
                parts.append(f"<{key}{attrs}>{escape(item[key])}</{key}>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts).encode()


def word(n: int) -> str:
    """A made-up word of letters only, different for every n (digits would be read as figures)."""
    letters = ""
    while True:
        n, rest = divmod(n, 26)
        letters += chr(ord("a") + rest)
        if n == 0:
            return "qz" + letters


@dataclass
class Monitor:
    """A config folder plus the environment that points `monitor` at the fakes."""

    config: Path
    env: dict[str, str]
    runs: list[subprocess.CompletedProcess[str]] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "monitor", *args, "--config", str(self.config)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.config.parent,
            check=False,
        )
        self.runs.append(result)
        return result

    def once(self) -> subprocess.CompletedProcess[str]:
        result = self.run("run", "--once")
        assert result.returncode == 0, result.stderr
        return result


def make_config(
    root: Path,
    *,
    feeds: dict[str, str],
    destinations: str,
    alert_backlog: bool = True,
) -> Path:
    """A config folder with the shipped watchlists, the given feeds and destinations YAML.

    `alert_backlog` sets `backlog_window: off` on every feed: the served items have fixed or no
    dates, and a new feed's first poll would otherwise count them as old news.
    """
    config = root / "config"
    (config / "watchlists").mkdir(parents=True)
    for source in (REPO / "config" / "watchlists").glob("*.yaml"):
        shutil.copy(source, config / "watchlists" / source.name)
    lines = ["feeds:"]
    for feed_id, url in feeds.items():
        lines += [f"  - id: {feed_id}", f"    url: {url}", f"    name: Feed {feed_id.upper()}"]
        if alert_backlog:
            lines.append("    backlog_window: 'off'")
    (config / "feeds.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (config / "monitor.yaml").write_text(destinations, encoding="utf-8")
    return config


def environment(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),
        "MONITOR_DATABASE_URL": database_url,
    }
    env.update(extra)
    return env
