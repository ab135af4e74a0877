"""The other commands of CONTRACT.md, run as subprocesses: check, match, db upgrade, status,
send-test."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import CHAT_ID, REPO, Monitor, environment, make_config
from tests.fakes.bot_api import DEFAULT_TOKEN, FakeBotApi


def _monitor(
    *args: str, cwd: Path = REPO, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=cwd,
        env=env or environment("sqlite:///:memory:"),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_shipped_config() -> None:
    result = _monitor("check", "--config", str(REPO / "config"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK: 21 feeds, 4 watchlists, 1 destinations"


def test_check_uses_monitor_config_variable(tmp_path: Path) -> None:
    env = environment("sqlite:///:memory:", MONITOR_CONFIG=str(REPO / "config"))
    result = _monitor("check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 21 feeds")


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    return target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: Taiwan\nmatch:\n  any: [Taiwan\n", ":4:1: "),  # YAML syntax error
        ("name: Taiwan\nmatch:\n  any: [Taiwan]\n  colour: red\n", ":4:3: unknown key 'colour'"),
        ("name: Taiwan\nname: Twice\nmatch:\n  any: [Taiwan]\n", ":2:1: duplicate key 'name'"),
        ("name: Taiwan\nmatch:\n  any: []\n", ":3:8: "),
        ("match:\n  any: ['Tai*wan']\n", ":2:9: "),
        ("languages: [fr, xx]\nmatch:\n  any: [Taiwan]\n", ":1:17: 'xx' is not a language code"),
        ("match:\n  any: [Taiwan]\n  all: [[strait]]\n", ""),  # fine by itself: see below
        (
            "match:\n  any: [Taiwan]\nexamples:\n  match:\n    - Taiwan holds drills\n"
            "    - Tayvan'ın donanması\n",
            ":6:7: example \"Tayvan'ın donanması\" should match but did not (no 'any' term occurs)",
        ),
        (
            "match:\n  any: [Taiwan, Taïwan]\n",
            ":2:17: term 'Taïwan' adds nothing: 'Taiwan' already matches it",
        ),
    ],
)
def test_check_reports_file_line_col_and_exits_1(
    config_copy: Path, text: str, expected: str
) -> None:
    path = config_copy / "watchlists" / "taiwan.yaml"
    path.write_text(text, encoding="utf-8")
    result = _monitor("check", "--config", str(config_copy))
    if not expected:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines, result.stderr
    assert all(line.startswith(f"{path}:") for line in lines), lines
    assert any(expected in line for line in lines), lines


def test_match_contract_output(tmp_path: Path) -> None:
    only_watchlists = tmp_path / "wl-only"
    shutil.copytree(REPO / "config" / "watchlists", only_watchlists / "watchlists")
    result = _monitor(
        "match", str(REPO / "seeds" / "articles.jsonl"), "--config", str(only_watchlists)
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a1", "a2", "a3", "a4", "a5"]
    contract = [{k: r[k] for k in ("id", "watchlists", "hits")} for r in rows]
    assert contract[0] == {"id": "a1", "watchlists": ["taiwan"], "hits": {"taiwan": ["Taiwan*"]}}
    assert rows[0]["why"] == {
        "taiwan": [
            {
                "term": "Taiwan*",
                "field": "title",
                "snippet": "«Taïwan» : Pékin multiplie les manœuvres",
            }
        ]
    }
    assert rows[1]["watchlists"] == ["new-start"]
    assert contract[2] == {"id": "a3", "watchlists": [], "hits": {}}
    assert rows[3]["hits"]["ukraine"] == ["Украин*", "Киев*"]
    assert rows[4]["watchlists"] == ["greenland"]


def test_match_reads_stdin_and_reports_bad_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {
                "id": 1,
                "title": "Appel Xi–Poutine",
                "summary": "Taïwan, le Groenland, l'Ukraine et le traité New START",
            }
        ),
        "not json",
        json.dumps({"id": "x", "title": "A new start", "summary": "start-up news"}),
    ]
    result = _monitor("match", "-", "--config", str(REPO / "config"), stdin="\n".join(lines))
    assert result.returncode == 1
    first, bad, last = (json.loads(line) for line in result.stdout.splitlines())
    assert first["watchlists"] == ["greenland", "new-start", "taiwan", "ukraine"]
    assert first["id"] == 1
    assert bad["line"] == 2 and "error" in bad
    assert last == {"id": "x", "watchlists": [], "hits": {}, "why": {}}
    assert "line 2:" in result.stderr


def test_db_upgrade_then_status(tmp_path: Path, config_copy: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'm.db'}")
    before = _monitor("status", "--config", str(config_copy), env=env)
    assert before.returncode == 2
    assert "monitor db upgrade" in before.stderr
    upgraded = _monitor("db", "upgrade", "--config", str(config_copy), env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "up to date" in upgraded.stdout
    again = _monitor("db", "upgrade", "--config", str(config_copy), env=env)
    assert again.returncode == 0
    status = _monitor("status", "--config", str(config_copy), env=env)
    assert status.returncode == 0
    assert status.stdout.splitlines()[0] == "CONFIG"
    assert "FEEDS" in status.stdout.splitlines()
    console_row = next(line for line in status.stdout.splitlines() if line.startswith("console"))
    assert console_row.split() == ["console", "console", "0", "0", "0", "0", "ok"]


def test_send_test_to_console_and_telegram(tmp_path: Path, bot_api: FakeBotApi) -> None:
    config = make_config(
        tmp_path,
        feeds={},
        destinations=f"destinations:\n  desk: {{type: telegram, chat_id: {CHAT_ID}}}\n"
        "  screen: {type: console}\n",
    )
    env = environment(
        "sqlite:///:memory:",
        MONITOR_TELEGRAM_TOKEN=DEFAULT_TOKEN,
        MONITOR_TELEGRAM_API_URL=bot_api.root_url,
    )
    monitor = Monitor(config=config, env=env)
    screen = monitor.run("send-test", "screen")
    assert screen.returncode == 0, screen.stderr
    assert "delivered" in screen.stderr and screen.stdout.strip()
    desk = monitor.run("send-test", "desk")
    assert desk.returncode == 0, desk.stderr
    (message,) = bot_api.messages()
    assert message.chat_id == CHAT_ID
    unknown = monitor.run("send-test", "nowhere")
    assert unknown.returncode == 1 and "unknown destination 'nowhere'" in unknown.stderr
    for run in monitor.runs:
        assert DEFAULT_TOKEN not in run.stdout + run.stderr
