"""The config folder: every problem is reported at `FILE:LINE:COL` with a message that says what
to fix; a valid folder loads with the effective values (intervals, resolved paths, defaults)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.core.errors import ConfigError
from monitor.core.model import Priority
from monitor.edges.config import (
    DestinationSpec,
    load_config,
    load_watchlists,
    parse_duration,
)
from monitor.edges.settings import Settings, settings_from_env

TOKEN = "123456:SECRET-bot-token"
PASSWORD = "hunter2-smtp-password"
ENV = {
    "MONITOR_TELEGRAM_TOKEN": TOKEN,
    "MONITOR_SMTP_HOST": "smtp.example.org",
    "MONITOR_SMTP_FROM": "monitor@example.org",
}

MONITOR_YAML = """\
destinations:
  desk:
    type: telegram
    chat_id: -1001234567890
  mail:
    type: email
    to: [desk@example.org]
    mode: digest
    digest_at: ["18:00", "08:00"]
    timezone: Europe/Paris
    quiet_hours: "22:00-07:00"
    min_priority: normal
defaults:
  poll_interval: 15m
"""

FEEDS_YAML = """\
feeds:
  - id: euronews-fr
    url: https://fr.euronews.com/rss
    lang: fr
    interval: 5m
    tags: [europe, fr]
  - id: local
    url: feeds/local.xml
"""

BASE = {
    "monitor.yaml": MONITOR_YAML,
    "feeds.yaml": FEEDS_YAML,
    "feeds/local.xml": "<rss version='2.0'><channel/></rss>\n",
    "watchlists/taiwan.yaml": "name: Taiwan\nmatch:\n  any: [Taiwan]\n",
}

W = "config/watchlists/taiwan.yaml"
M = "config/monitor.yaml"
F = "config/feeds.yaml"


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty `config` folder, addressed relatively as the CLI's default is."""
    monkeypatch.chdir(tmp_path)
    return Path("config")


def write(config_dir: Path, files: Mapping[str, str | None]) -> None:
    for relative, text in files.items():
        path = config_dir / relative
        if text is None:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems(config_dir: Path, env: dict[str, str] = ENV) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, settings_from_env(env))
    return [str(p) for p in caught.value.problems]


CASES: list[tuple[str, dict[str, str | None], list[str]]] = [
    (
        "yaml syntax error",
        {"watchlists/taiwan.yaml": "match:\n  any: [Taiwan\nname: x\n"},
        [
            f"{W}:3:5: YAML syntax error: expected ',' or ']', but got ':'"
            " (while parsing a flow sequence that starts on line 2)"
        ],
    ),
    (
        "duplicate key",
        {"watchlists/taiwan.yaml": "name: A\nmatch:\n  any: [Taiwan]\nname: B\n"},
        [f"{W}:4:1: duplicate key 'name' (first defined on line 1)"],
    ),
    (
        "alias",
        {"watchlists/taiwan.yaml": "match:\n  any: &t [Taiwan]\n  none: *t\n"},
        [f"{W}:2:8: YAML anchors (&name) are not supported"],
    ),
    (
        "unknown key in a watchlist",
        {"watchlists/taiwan.yaml": "nmae: Taiwan\nmatch:\n  any: [Taiwan]\n"},
        [f"{W}:1:1: unknown key 'nmae' (did you mean 'name'?)"],
    ),
    (
        "unknown key in a term",
        {"watchlists/taiwan.yaml": "match:\n  any:\n    - {term: START, case_sensitiv: true}\n"},
        [f"{W}:3:21: unknown key 'case_sensitiv' (did you mean 'case_sensitive'?)"],
    ),
    (
        "unknown key in monitor.yaml",
        {"monitor.yaml": "destinations:\n  desk:\n    type: console\n    mdoe: digest\n"},
        [f"{M}:4:5: unknown key 'mdoe' (did you mean 'mode'?)"],
    ),
    (
        "unknown top-level key in monitor.yaml",
        {"monitor.yaml": "defaults:\n  poll_interval: 5m\nfeeds: []\n"},
        [f"{M}:3:1: unknown key 'feeds'"],
    ),
    (
        "unknown key in feeds.yaml",
        {"feeds.yaml": "feeds:\n  - id: a\n    url: https://a.example/rss\n    intervall: 5m\n"},
        [f"{F}:4:5: unknown key 'intervall' (did you mean 'interval'?)"],
    ),
    (
        "missing any",
        {"watchlists/taiwan.yaml": "name: Taiwan\nmatch:\n  none: [Taiwan]\n"},
        [f"{W}:3:3: missing required key 'any'"],
    ),
    (
        "empty any",
        {"watchlists/taiwan.yaml": "match:\n  any: []\n"},
        [f"{W}:2:8: 'any' must not be empty"],
    ),
    (
        "bad priority",
        {"watchlists/taiwan.yaml": "priority: urgent\nmatch:\n  any: [Taiwan]\n"},
        [f"{W}:1:11: priority must be one of low, normal, high, critical"],
    ),
    (
        "star in the middle of a term",
        {"watchlists/taiwan.yaml": "match:\n  any: [Taiwan, Tai*wan]\n"},
        [f"{W}:2:17: term 'Tai*wan': '*' is only allowed at the end of a word"],
    ),
    (
        "prefix too short",
        {"watchlists/taiwan.yaml": "match:\n  any: [Ta*]\n"},
        [f"{W}:2:9: term 'Ta*': a prefix needs at least 3 letters before '*'"],
    ),
    (
        "within without near",
        {"watchlists/taiwan.yaml": "match:\n  any:\n    - term: START\n      within: 3\n"},
        [f"{W}:3:7: 'within' needs 'near' terms"],
    ),
    (
        "within 0",
        {"watchlists/taiwan.yaml": "match:\n  any: [{term: START, near: [treaty], within: 0}]\n"},
        [f"{W}:2:47: 'within' should be greater than or equal to 1"],
    ),
    (
        "unknown notify destination",
        {"watchlists/taiwan.yaml": "notify: [desk, dsek]\nmatch:\n  any: [Taiwan]\n"},
        [f"{W}:1:16: unknown destination 'dsek' (did you mean 'desk'? known: desk, mail)"],
    ),
    (
        "notify console when monitor.yaml declares no destination",
        {"monitor.yaml": None, "watchlists/taiwan.yaml": "notify: [desk]\nmatch: {any: [x]}\n"},
        [f"{W}:1:10: unknown destination 'desk' (known: console)"],
    ),
    (
        "unknown source",
        {"watchlists/taiwan.yaml": "sources: [europe, local, asia]\nmatch: {any: [x]}\n"},
        [f"{W}:1:26: unknown source 'asia' (not a feed id or feed tag)"],
    ),
    (
        "duplicate watchlist id from the file name",
        {"watchlists/other.yaml": "id: taiwan\nmatch: {any: [x]}\n"},
        [f"{W}: duplicate watchlist id 'taiwan' (also in config/watchlists/other.yaml)"],
    ),
    (
        "duplicate explicit watchlist id",
        {"watchlists/zz.yml": "id: taiwan\nmatch: {any: [x]}\n"},
        [
            "config/watchlists/zz.yml:1:5: duplicate watchlist id 'taiwan'"
            " (also in config/watchlists/taiwan.yaml)"
        ],
    ),
    (
        "a file name that is not an id",
        {"watchlists/my list.yaml": "match: {any: [x], none: [Ta*]}\n"},
        [
            "config/watchlists/my list.yaml: the file name 'my list' is not a valid watchlist"
            " id; rename it or add an 'id:' key",
            "config/watchlists/my list.yaml:1:26: term 'Ta*': a prefix needs at least 3"
            " letters before '*'",
        ],
    ),
    (
        "bad duration",
        {"monitor.yaml": "defaults:\n  poll_interval: 10 minutes\n"},
        [f"{M}:2:18: '10 minutes' is not a duration such as '90s', '10m', '2h', '1d' or '1h30m'"],
    ),
    (
        "interval below one second",
        {"feeds.yaml": "feeds:\n  - {id: a, url: 'https://a.example/', interval: 0}\n"},
        [f"{F}:2:50: an interval must be at least 1s"],
    ),
    (
        "bad timezone",
        {"monitor.yaml": "destinations:\n  out:\n    type: console\n    timezone: Mars/Olympus\n"},
        [f"{M}:4:15: unknown time zone 'Mars/Olympus' (use an IANA name such as 'Europe/Paris')"],
    ),
    (
        "quiet hours that are not a window",
        {"monitor.yaml": "destinations:\n  out: {type: console, quiet_hours: late}\n"},
        [f"{M}:2:37: 'late' is not a window like '22:00-07:00'"],
    ),
    (
        "quiet hours with a bad time",
        {"monitor.yaml": "destinations:\n  out: {type: console, quiet_hours: 22:00-25:00}\n"},
        [f"{M}:2:37: '25:00' is not a time of day like '07:30'"],
    ),
    (
        "empty quiet hours",
        {"monitor.yaml": "destinations:\n  out: {type: console, quiet_hours: 22:00-22:00}\n"},
        [f"{M}:2:37: '22:00-22:00' is an empty window"],
    ),
    (
        "digest without digest_at",
        {"monitor.yaml": "destinations:\n  out:\n    type: console\n    mode: digest\n"},
        [f"{M}:3:5: missing required key 'digest_at' (mode is digest)"],
    ),
    (
        "digest_at without digest",
        {"monitor.yaml": "destinations:\n  out:\n    type: console\n    digest_at: ['08:00']\n"},
        [f"{M}:4:5: 'digest_at' only applies with 'mode: digest'"],
    ),
    (
        "a key that does not apply to the type",
        {
            "monitor.yaml": "destinations:\n  mail:\n    type: email\n    to: [a@b.org]\n"
            "    chat_id: 12\n"
        },
        [f"{M}:5:5: 'chat_id' does not apply to email destinations (only to telegram)"],
    ),
    (
        "telegram without chat_id",
        {"monitor.yaml": "destinations:\n  desk:\n    type: telegram\n"},
        [f"{M}:3:5: missing required key 'chat_id' (telegram destinations need it)"],
    ),
    (
        "bad chat_id and address",
        {
            "monitor.yaml": "destinations:\n  d: {type: telegram, chat_id: 'my chan'}\n"
            "  m: {type: email, to: [desk.example.org]}\n"
        },
        [
            f"{M}:2:32: 'my chan' is not a Telegram chat id (a number or @channelname)",
            f"{M}:3:25: 'desk.example.org' is not an email address",
        ],
    ),
    (
        "bad destination name and type",
        {"monitor.yaml": "destinations:\n  'a b': {type: console}\n  c: {type: pager}\n"},
        [
            f"{M}:2:3: 'a b' is not a valid name: up to 64 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit",
            f"{M}:3:13: 'type' should be 'telegram', 'email' or 'console'",
        ],
    ),
    (
        "missing feeds.yaml",
        {"feeds.yaml": None},
        ["config/feeds.yaml: file not found"],
    ),
    (
        "local feed file that does not exist",
        {"feeds.yaml": "feeds:\n  - id: gone\n    url: feeds/gone.xml\n"},
        [
            f"{F}:3:10: feed file 'feeds/gone.xml' does not exist (looked for {{cwd}}/config/"
            "feeds/gone.xml)"
        ],
    ),
    (
        "bad feed url, lang and enabled",
        {
            "feeds.yaml": "feeds:\n  - {id: a, url: 'ftp://a.example/f', lang: french,"
            " enabled: no}\n"
        },
        [
            f"{F}:2:18: unsupported URL scheme 'ftp' (use http, https or a file path)",
            f"{F}:2:45: 'french' is not a language code such as 'fr', 'pt-BR' or 'zh-Hant'",
            f"{F}:2:62: 'enabled' should be a valid boolean",
        ],
    ),
    (
        "duplicate feed id",
        {
            "feeds.yaml": "feeds:\n  - {id: a, url: 'https://a.example/'}\n"
            "  - {id: a, url: 'https://b.example/'}\n"
        },
        [f"{F}:3:10: duplicate feed id 'a' (first on line 2)"],
    ),
    (
        "a root that is not a mapping",
        {"feeds.yaml": "- id: a\n"},
        [f"{F}:1:1: expected a mapping of keys, like `key: value`"],
    ),
    (
        "an empty file",
        {"monitor.yaml": "# nothing yet\n"},
        [f"{M}: the file is empty"],
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_reported_where_it_was_written(
    config_dir: Path, files: dict[str, str | None], expected: list[str]
) -> None:
    write(config_dir, {**BASE, **files})
    cwd = str(Path.cwd().resolve())
    assert problems(config_dir) == [e.replace("{cwd}", cwd) for e in expected]


def test_every_problem_in_every_file_is_reported_at_once(config_dir: Path) -> None:
    write(
        config_dir,
        {
            **BASE,
            "monitor.yaml": "destinations:\n  desk: {type: telegram, chat_id: 1}\n",
            "feeds.yaml": "feeds:\n  - {id: a, url: 'https://a.example/', interval: soon}\n",
            "watchlists/a.yaml": "priority: urgent\nmatch: {any: [x]}\n",
            "watchlists/b.yaml": "match: {any: [x]\n",
        },
    )
    assert problems(config_dir, env={}) == [
        f"{F}:2:50: 'soon' is not a duration such as '90s', '10m', '2h', '1d' or '1h30m'",
        f"{M}:2:16: telegram destination 'desk' needs MONITOR_TELEGRAM_TOKEN"
        " (or MONITOR_TELEGRAM_TOKEN_FILE) in the environment",
        "config/watchlists/a.yaml:1:11: priority must be one of low, normal, high, critical",
        "config/watchlists/b.yaml:2:1: YAML syntax error: expected ',' or '}', but got"
        " '<stream end>' (while parsing a flow mapping that starts on line 1)",
    ]


def test_destinations_need_their_credentials_from_the_environment(config_dir: Path) -> None:
    write(config_dir, BASE)
    assert problems(config_dir, env={"MONITOR_SMTP_HOST": "smtp.example.org"}) == [
        f"{M}:3:11: telegram destination 'desk' needs MONITOR_TELEGRAM_TOKEN"
        " (or MONITOR_TELEGRAM_TOKEN_FILE) in the environment",
        f"{M}:6:11: email destination 'mail' needs MONITOR_SMTP_FROM in the environment",
    ]


def test_a_full_config_loads_with_its_effective_values(config_dir: Path) -> None:
    write(
        config_dir,
        {
            **BASE,
            "watchlists/taiwan.yaml": """\
                name: Taiwan
                priority: high
                notify: [desk, mail]
                languages: [fr, en, no]
                sources: [euronews-fr, europe]
                match:
                  any: ["Taiwan", "台湾", "Тайван*"]
                  all: [["strait", "détroit"], "PLA"]
                  none: [{term: START, near: [treaty], within: 6}]
            """,
            "watchlists/china.yml": "match: {any: [China]}\n",
            "watchlists/README.md": "not a watchlist\n",
        },
    )
    config = load_config(config_dir, settings_from_env(ENV))

    assert config.dir == config_dir
    assert set(config.destinations) == {"desk", "mail"}
    assert config.destinations["desk"].chat_id == -1001234567890
    mail = config.destinations["mail"]
    assert mail.to == ("desk@example.org",)
    assert mail.digest_at == ("08:00", "18:00")
    assert mail.tz.key == "Europe/Paris"
    assert mail.quiet_hours == "22:00-07:00"
    assert mail.min_priority is Priority.normal
    assert config.destinations["desk"].mode == "immediate"
    assert config.destinations["desk"].min_priority is Priority.low

    assert config.defaults.poll_interval == timedelta(minutes=15)
    euronews, local = config.feeds
    assert (euronews.url, euronews.interval, euronews.tags) == (
        "https://fr.euronews.com/rss",
        timedelta(minutes=5),
        ("europe", "fr"),
    )
    assert (euronews.name, euronews.lang, euronews.enabled) == ("euronews-fr", "fr", True)
    assert local.interval == timedelta(minutes=15)
    local_file = (config_dir / "feeds/local.xml").resolve()
    assert local.url == local_file.as_uri()

    assert [w.id for w in config.watchlists] == ["china", "taiwan"]
    taiwan = config.watchlists[1]
    assert taiwan.languages == ("fr", "en", "no")  # `no` is Norwegian, not False
    assert taiwan.priority is Priority.high
    assert [t.text for t in taiwan.match.any] == ["Taiwan", "台湾", "Тайван*"]
    assert taiwan.match.none[0].within == 6


def test_without_destinations_alerts_go_to_the_console(config_dir: Path) -> None:
    write(config_dir, {**BASE, "monitor.yaml": None})
    config = load_config(config_dir, settings_from_env({}))
    assert config.destinations == {"console": DestinationSpec(type="console")}
    assert config.defaults.poll_interval == timedelta(minutes=10)
    assert {f.interval for f in config.feeds} == {timedelta(minutes=5), timedelta(minutes=10)}

    write(config_dir, {"monitor.yaml": "destinations:\ndefaults: {poll_interval: 90}\n"})
    config = load_config(config_dir, settings_from_env({}))
    assert list(config.destinations) == ["console"]
    assert config.defaults.poll_interval == timedelta(seconds=90)


def test_feed_urls_may_be_absolute_paths_or_file_urls(config_dir: Path, tmp_path: Path) -> None:
    feed = tmp_path / "elsewhere.xml"
    feed.write_text("<rss/>", encoding="utf-8")
    write(
        config_dir,
        {
            **BASE,
            "feeds.yaml": f"feeds:\n  - {{id: a, url: '{feed}'}}\n"
            f"  - {{id: b, url: '{feed.as_uri()}'}}\n",
        },
    )
    config = load_config(config_dir, settings_from_env(ENV))
    assert [f.url for f in config.feeds] == [feed.as_uri(), feed.as_uri()]


def test_watchlists_load_alone(config_dir: Path) -> None:
    write(config_dir, {"watchlists/taiwan.yaml": "match: {any: [Taiwan]}\n"})
    assert [w.id for w in load_watchlists(config_dir)] == ["taiwan"]
    (config_dir / "watchlists/taiwan.yaml").unlink()
    assert load_watchlists(config_dir) == ()
    (config_dir / "watchlists").rmdir()
    assert load_watchlists(config_dir) == ()
    with pytest.raises(ConfigError, match=r"^nowhere: config folder not found$"):
        load_watchlists(Path("nowhere"))
    with pytest.raises(ConfigError, match=r"^nowhere: config folder not found$"):
        load_config(Path("nowhere"), settings_from_env({}))

    write(config_dir, {"watchlists/bad.yaml": "match: {any: []}\n"})
    with pytest.raises(ConfigError) as caught:
        load_watchlists(config_dir)
    assert [str(p) for p in caught.value.problems] == [
        "config/watchlists/bad.yaml:1:14: 'any' must not be empty"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("300", timedelta(seconds=300)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "m", "10 minutes", "1.5h", "-5m", "30m1h", "1w"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration such as '90s', '10m'"):
        parse_duration(text)


def test_times_are_normalized() -> None:
    spec = DestinationSpec.model_validate(
        {"type": "console", "mode": "digest", "digest_at": "8:00", "quiet_hours": " 9:00-7:05"}
    )
    assert (spec.digest_at, spec.quiet_hours) == (("08:00",), "09:00-07:05")


# Settings from the environment


def env_problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings_from_env(env)
    return [str(p) for p in caught.value.problems]


def test_settings_defaults() -> None:
    settings = settings_from_env({})
    assert settings.database_url.get_secret_value() == "sqlite:///./data/monitor.db"
    assert settings.telegram_token is None
    assert settings.telegram_api_url == "https://api.telegram.org"
    assert (settings.smtp_port, settings.smtp_tls, settings.auto_migrate) == (587, "starttls", True)


def test_settings_from_variables() -> None:
    settings = settings_from_env(
        {
            "MONITOR_DATABASE_URL": "postgresql+psycopg://monitor:pw@db/monitor",
            "MONITOR_TELEGRAM_API_URL": "http://127.0.0.1:8081/",
            "MONITOR_SMTP_PORT": "465",
            "MONITOR_SMTP_TLS": "TLS",
            "MONITOR_SMTP_USER": "monitor",
            "MONITOR_AUTO_MIGRATE": "0",
            "MONITOR_SMTP_HOST": "",  # empty is unset
        }
    )
    assert settings.telegram_api_url == "http://127.0.0.1:8081"
    assert (settings.smtp_port, settings.smtp_tls, settings.smtp_user) == (465, "tls", "monitor")
    assert settings.auto_migrate is False
    assert settings.smtp_host is None


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(f"{TOKEN}\n", encoding="utf-8")
    (tmp_path / "password").write_text(PASSWORD, encoding="utf-8")
    (tmp_path / "url").write_text("postgresql://u:pw@db/m\n", encoding="utf-8")
    (tmp_path / "user").write_text(" monitor \n", encoding="utf-8")
    settings = settings_from_env(
        {
            "MONITOR_TELEGRAM_TOKEN_FILE": str(tmp_path / "token"),
            "MONITOR_SMTP_PASSWORD_FILE": str(tmp_path / "password"),
            "MONITOR_DATABASE_URL_FILE": str(tmp_path / "url"),
            "MONITOR_SMTP_USER_FILE": str(tmp_path / "user"),
        }
    )
    assert settings.telegram_token is not None
    assert settings.telegram_token.get_secret_value() == TOKEN
    assert settings.smtp_password is not None
    assert settings.smtp_password.get_secret_value() == PASSWORD
    assert settings.database_url.get_secret_value() == "postgresql://u:pw@db/m"
    assert settings.smtp_user == "monitor"


def test_bad_environment_values_name_the_variable(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n", encoding="utf-8")
    assert env_problems(
        {
            "MONITOR_TELEGRAM_TOKEN": TOKEN,
            "MONITOR_TELEGRAM_TOKEN_FILE": str(tmp_path / "token"),
            "MONITOR_SMTP_PASSWORD_FILE": str(tmp_path / "missing"),
            "MONITOR_SMTP_USER_FILE": str(tmp_path / "empty"),
            "MONITOR_SMTP_PORT": "smtp",
            "MONITOR_SMTP_TLS": "ssl",
            "MONITOR_AUTO_MIGRATE": "maybe",
            "MONITOR_TELEGRAM_API_URL": "api.telegram.org",
        }
    ) == [
        "environment: MONITOR_AUTO_MIGRATE: must be 0 or 1",
        f"environment: MONITOR_SMTP_PASSWORD_FILE: cannot read {tmp_path}/missing:"
        " No such file or directory",
        "environment: MONITOR_SMTP_PORT: must be a port number from 1 to 65535",
        "environment: MONITOR_SMTP_TLS: should be 'starttls', 'tls' or 'none'",
        f"environment: MONITOR_SMTP_USER_FILE: {tmp_path}/empty is empty",
        "environment: MONITOR_TELEGRAM_API_URL: 'api.telegram.org' is not an http(s) URL",
        "environment: set MONITOR_TELEGRAM_TOKEN or MONITOR_TELEGRAM_TOKEN_FILE, not both",
    ]


@pytest.mark.parametrize(
    ("value", "workers"), [("", None), ("auto", None), (" AUTO ", None), ("0", 0), ("3", 3)]
)
def test_parse_workers_are_a_count_or_auto(value: str, workers: int | None) -> None:
    assert settings_from_env({"MONITOR_PARSE_WORKERS": value}).parse_workers == workers


@pytest.mark.parametrize("value", ["-1", "two", "65", "1.5"])
def test_a_bad_parse_worker_count_is_named(value: str) -> None:
    assert env_problems({"MONITOR_PARSE_WORKERS": value}) == [
        "environment: MONITOR_PARSE_WORKERS: must be 'auto' or a number of processes from 0 to 64"
    ]


def test_secrets_never_show(tmp_path: Path) -> None:
    settings = settings_from_env(
        {**ENV, "MONITOR_SMTP_PASSWORD": PASSWORD, "MONITOR_DATABASE_URL": "sqlite:///s3cr3t.db"}
    )
    for text in (str(settings), repr(settings), repr(settings.model_dump())):
        assert TOKEN not in text and PASSWORD not in text and "s3cr3t" not in text

    bad = {
        "MONITOR_TELEGRAM_TOKEN": f"{TOKEN} {PASSWORD}",
        "MONITOR_DATABASE_URL": f"no-scheme-{PASSWORD}",
        "MONITOR_SMTP_PASSWORD": PASSWORD,
        "MONITOR_SMTP_PASSWORD_FILE": str(tmp_path / "password"),
    }
    found = env_problems(bad)
    assert found == [
        "environment: MONITOR_DATABASE_URL: must be a SQLAlchemy URL such as"
        " sqlite:///./data/monitor.db",
        "environment: MONITOR_TELEGRAM_TOKEN: does not look like a bot token"
        " (it contains spaces or '/')",
        "environment: set MONITOR_SMTP_PASSWORD or MONITOR_SMTP_PASSWORD_FILE, not both",
    ]
    assert not any(TOKEN in p or PASSWORD in p for p in found)


def test_settings_are_frozen() -> None:
    settings = settings_from_env({})
    with pytest.raises(ValueError, match="frozen"):
        settings.smtp_port = 25  # type: ignore[misc]
    assert isinstance(settings, Settings)
