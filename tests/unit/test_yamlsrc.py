"""YAML with positions: plain data, YAML 1.2 scalars, and a located problem for anything unsafe
or ambiguous."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.core.errors import ConfigError
from monitor.edges.yamlsrc import load_yaml, parse_yaml, problems_from_validation


def data(text: str) -> Any:
    return parse_yaml(text, "f.yaml").data


def problems(raw: str | bytes) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_yaml(raw, "f.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("Off", "Off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("'true'", "true"),
        ("42", 42),
        ("-7", -7),
        ("0x1f", 31),
        ("0o17", 15),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-.inf", float("-inf")),
        ("~", None),
        ("null", None),
        ("", None),
        ("'42'", "42"),
        ("08:00", "08:00"),  # YAML 1.1 would make this 480
        ("2024-01-01", "2024-01-01"),
        ("1_000", "1_000"),
        ("!!str 12", "12"),
        ("Тайван*", "Тайван*"),
    ],
)
def test_scalars_resolve_like_yaml_1_2(scalar: str, expected: Any) -> None:
    assert data(f"value: {scalar}\n") == {"value": expected}


def test_positions_of_keys_and_values() -> None:
    doc = parse_yaml(
        "name: Taiwan\nmatch:\n  any:\n    - Taiwan\n    - {term: START, near: [treaty]}\n",
        "f.yaml",
    )
    assert doc.data == {
        "name": "Taiwan",
        "match": {"any": ["Taiwan", {"term": "START", "near": ["treaty"]}]},
    }
    assert doc.values[()] == (1, 1)
    assert doc.keys[("name",)] == (1, 1)
    assert doc.values[("name",)] == (1, 7)
    assert doc.keys[("match", "any")] == (3, 3)
    assert doc.values[("match", "any", 0)] == (4, 7)
    assert doc.values[("match", "any", 1)] == (5, 7)
    assert doc.keys[("match", "any", 1, "near")] == (5, 21)
    assert doc.values[("match", "any", 1, "near", 0)] == (5, 28)
    # A path the data does not have falls back to its nearest written ancestor.
    assert doc.value_pos(("match", "any", 0, "term")) == (4, 7)
    assert doc.key_pos(("match", "any", 0)) == (4, 7)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "a: b: c\n",
            ["f.yaml:1:5: YAML syntax error: mapping values are not allowed here"],
        ),
        (
            "a:\n\t- x\n",
            [
                "f.yaml:2:1: YAML syntax error: found character '\\t' that cannot start any"
                " token (while scanning for the next token)"
            ],
        ),
        (
            "a: 1\nb:\n  c: 2\n  c: 3\na: 4\n",
            [
                "f.yaml:4:3: duplicate key 'c' (first defined on line 3)",
                "f.yaml:5:1: duplicate key 'a' (first defined on line 1)",
            ],
        ),
        ("a: &x [1]\nb: *x\n", ["f.yaml:1:4: YAML anchors (&name) are not supported"]),
        ("b: *x\n", ["f.yaml:1:4: YAML aliases (*name) are not supported"]),
        (
            "1: one\ntrue: yes\n? [a]\n: b\n",
            [
                "f.yaml:1:1: mapping keys must be strings, not 1",
                "f.yaml:2:1: mapping keys must be strings, not True",
                "f.yaml:3:3: mapping keys must be strings, not a collection",
            ],
        ),
        ("", ["f.yaml: the file is empty"]),
        ("# just a comment\n\n", ["f.yaml: the file is empty"]),
        (
            b"a: 1\nb: caf\xe9\n",
            ["f.yaml:2:7: not valid UTF-8 (byte 0xe9); save the file as UTF-8"],
        ),
        ("a: 1\n---\nb: 2\n", ["f.yaml:2:1: only one YAML document per file is supported"]),
        ("a: !include other.yaml\n", ["f.yaml:1:4: YAML tag '!include' is not supported"]),
        ("a: !!bool yes\n", ["f.yaml:1:4: 'yes' is not a valid boolean"]),
        ("a: \x07\n", ["f.yaml:1:4: character U+0007 is not allowed in YAML"]),
    ],
    ids=[
        "syntax",
        "tab",
        "duplicates",
        "anchor",
        "alias",
        "non-string keys",
        "empty",
        "comments only",
        "utf-8",
        "two documents",
        "tag",
        "bad explicit bool",
        "control character",
    ],
)
def test_problems_are_located(raw: str | bytes, expected: list[str]) -> None:
    assert problems(raw) == expected


def test_a_byte_order_mark_is_fine() -> None:
    assert parse_yaml(b"\xef\xbb\xbfa: 1\n", "f.yaml").data == {"a": 1}


def test_load_yaml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("a: [1, 2]\n", encoding="utf-8")
    doc = load_yaml(tmp_path / "x.yaml", "config/x.yaml")
    assert (doc.file, doc.data) == ("config/x.yaml", {"a": [1, 2]})
    with pytest.raises(ConfigError) as caught:
        load_yaml(tmp_path / "missing.yaml", "config/missing.yaml")
    assert [str(p) for p in caught.value.problems] == ["config/missing.yaml: file not found"]


class _Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    colour: str
    size: int = 1


class _Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: tuple[_Inner, ...]
    mode: str = "x"


def test_validation_errors_point_at_what_was_written() -> None:
    doc = parse_yaml("items:\n  - colour: red\n    szie: 2\n  - size: big\nmood: 3\n", "f.yaml")
    with pytest.raises(ValidationError) as caught:
        _Outer.model_validate(doc.data)
    assert [str(p) for p in problems_from_validation(caught.value, doc, _Outer)] == [
        "f.yaml:3:5: unknown key 'szie' (did you mean 'size'?)",
        "f.yaml:4:5: missing required key 'colour'",
        "f.yaml:4:11: 'size' should be a valid integer, unable to parse string as an integer",
        "f.yaml:5:1: unknown key 'mood' (did you mean 'mode'?)",
    ]
