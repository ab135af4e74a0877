"""`monitor backtest` as a subprocess, on SQLite and PostgreSQL: `monitor run --once` stores the
demo feed under the shipped watchlists, then one watchlist file is edited and the backtest
reports what the edit gains and loses, as JSON and as text; and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import DEMO_FEED, Monitor, environment, make_config
from tests.fakes.feed_server import FeedServer

CONSOLE = "destinations:\n  screen: {type: console}\n"
# The shipped Taiwan watchlist, cut down to one term and given one it never had.
EDITED_TAIWAN = "name: Taiwan\nmatch:\n  any: [Taiwan*, marathon]\n"
FOUNDING_TITLE = "Xi et Poutine affichent un front commun face à Washington"


def _counts(report: dict[str, Any]) -> dict[str, list[int]]:
    keys = ("would_match", "matched_before", "alerted_before", "gained", "lost")
    return {wid: [w[k] for k in keys] for wid, w in report["watchlists"].items()}


@pytest.fixture
def monitor(tmp_path: Path, db_url: str, feed_server: FeedServer) -> Monitor:
    feed_server.add("/a.xml", DEMO_FEED.read_bytes())
    config = make_config(tmp_path, feeds={"a": feed_server.url("/a.xml")}, destinations=CONSOLE)
    return Monitor(config=config, env=environment(db_url))


def test_backtest_reports_what_an_edit_gains_and_loses(monitor: Monitor) -> None:
    monitor.once()
    unchanged = monitor.run("backtest", "--json")
    assert unchanged.returncode == 0, unchanged.stderr
    before = json.loads(unchanged.stdout)
    assert before["articles"] == 5
    assert all(w["gained"] == w["lost"] == 0 for w in before["watchlists"].values())

    (monitor.config / "watchlists" / "taiwan.yaml").write_text(EDITED_TAIWAN, encoding="utf-8")
    result = monitor.run("backtest", "--json")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar: stderr is not a terminal
    report = json.loads(result.stdout)
    assert report["articles"] == 5
    assert report["since"] is not None
    assert list(report["watchlists"]) == ["greenland", "new-start", "taiwan", "ukraine"]
    counts, counts_before = _counts(report), _counts(before)
    # The founding example and the marathon match Taiwan now; the founding example and the
    # Chinese shipping item matched it then, and alerted the console.
    assert counts["taiwan"] == [2, 2, 2, 1, 1]
    for wid in ("greenland", "new-start", "ukraine"):  # untouched: as at ingest, and as before
        would, matched, alerted, gained, lost = counts[wid]
        assert would == matched == alerted > 0 and gained == lost == 0, (wid, counts[wid])
        assert counts[wid] == counts_before[wid]
    taiwan = report["watchlists"]["taiwan"]
    assert taiwan["name"] == "Taiwan"
    (gained,) = taiwan["gained_samples"]
    assert gained["title"] == "A new start for the city marathon"
    assert (gained["feed"], gained["source"]) == ("a", "Feed A")
    assert gained["url"] == "https://demo.invalid/en/marathon"
    assert gained["terms"] == ["marathon"]
    assert gained["fetched_at"] and "reason" not in gained
    (lost,) = taiwan["lost_samples"]
    assert lost["title"] == "台湾海峡航运保持正常"
    assert lost["terms"] == ["台湾"]
    assert lost["reason"].startswith("no 'any' term occurs")
    assert report["watchlists"]["greenland"]["gained_samples"] == []

    text = monitor.run("backtest", "taiwan", "--since", "all", "--progress")
    assert text.returncode == 0, text.stderr
    assert "backtest 5/5 100%" in text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "Replayed 5 stored articles fetched at any time through 1 watchlist."
    header, _, row = lines[2:5]
    assert header.split()[:2] == ["WATCHLIST", "NAME"]
    assert row.split() == ["taiwan", "Taiwan", "2", "2", "2", "+1", "-1"]
    assert "taiwan: 1 gained (match now, did not before); the 1 most recent:" in lines
    assert "      hits: marathon" in lines
    assert "taiwan: 1 lost (matched before, not now); the 1 most recent:" in lines
    assert FOUNDING_TITLE not in text.stdout  # it matches both times: not a sample


def test_backtest_exit_codes(monitor: Monitor, tmp_path: Path) -> None:
    unknown = monitor.run("backtest", "taiwn")
    assert unknown.returncode == 1
    assert "unknown watchlist 'taiwn' (did you mean 'taiwan'?" in unknown.stderr

    bad_since = monitor.run("backtest", "--since", "a week")
    assert bad_since.returncode == 2 and "--since" in bad_since.stderr

    monitor.env["MONITOR_DATABASE_URL"] = f"sqlite:///{tmp_path / 'empty.db'}"
    no_schema = monitor.run("backtest")
    assert no_schema.returncode == 2 and "monitor db upgrade" in no_schema.stderr

    monitor.env["MONITOR_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    unreachable = monitor.run("backtest")
    assert unreachable.returncode == 2
    assert "database unavailable" in unreachable.stderr
