"""YAML files as plain data that remembers where every key and value was written.

Contract: `parse_yaml(raw, file)` / `load_yaml(path, file)` return a `YamlDoc` (plain dicts,
lists, str, int, float, bool, None) plus the 1-based (line, col) of every value and every
mapping key, addressed by data path (a tuple of keys and list indices). Anything that is not
clean, unambiguous YAML raises `ConfigError` with positioned problems: syntax errors, invalid
UTF-8, an empty file, duplicate keys, non-string keys, anchors and aliases, unknown tags, more
than one document. Scalars resolve the YAML 1.2 way: only `true`/`false` are booleans, so
`no`, `on`, `yes` and `off` stay strings (`languages: [no]` is Norwegian) and `08:00` stays a
time of day rather than becoming 480. `problems_from_validation` turns a pydantic
`ValidationError` on a document's data into problems at the positions the analyst wrote.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.composer import Composer
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from monitor.core.errors import ConfigError, Problem

DataPath = tuple[str | int, ...]
Pos = tuple[int, int]

_TAG = "tag:yaml.org,2002:"
_KIND_NAMES = {"bool": "boolean", "int": "integer", "float": "number"}
#: Custom pydantic error types whose `ctx["key"]` names the offending key inside the mapping at
#: `loc`, so the problem points at that key rather than at the mapping.
KEY_ERROR = "key_problem"


class _Rejected(Exception):
    """A construct we refuse, raised from inside the composer with its position."""

    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _Loader(Reader, Scanner, Parser, Composer, BaseResolver):
    """Composes one node tree; resolves plain scalars with YAML 1.2 core-schema rules."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        BaseResolver.__init__(self)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        # Aliases let a few lines expand into gigabytes (billion laughs); nothing in the config
        # schema needs them, so anchors are refused where they are declared.
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark = event.start_mark
        if isinstance(event, AliasEvent) and mark is not None:
            raise _Rejected(mark, "YAML aliases (*name) are not supported")
        if getattr(event, "anchor", None) is not None and mark is not None:
            raise _Rejected(mark, "YAML anchors (&name) are not supported")
        return super().compose_node(parent, index)


_Loader.add_implicit_resolver(f"{_TAG}bool", re.compile(r"^(?:true|false)$", re.I), list("tTfF"))
_Loader.add_implicit_resolver(
    f"{_TAG}int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Loader.add_implicit_resolver(
    f"{_TAG}float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Loader.add_implicit_resolver(
    f"{_TAG}null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


@dataclass(frozen=True, slots=True)
class YamlDoc:
    """A document's data and where each part of it was written."""

    file: str
    data: Any
    values: Mapping[DataPath, Pos]
    keys: Mapping[DataPath, Pos]

    def value_pos(self, path: DataPath) -> Pos:
        """Position of the value at `path`, or of its nearest ancestor that was written."""
        for end in range(len(path), -1, -1):
            pos = self.values.get(path[:end])
            if pos is not None:
                return pos
        return (0, 0)

    def key_pos(self, path: DataPath) -> Pos:
        """Position of the key whose value is at `path` (its value's position if none)."""
        return self.keys.get(path) or self.value_pos(path)

    def problem(self, path: DataPath, message: str, *, at_key: bool = False) -> Problem:
        line, col = self.key_pos(path) if at_key else self.value_pos(path)
        return Problem(self.file, line, col, message)


def load_yaml(path: Path, file: str | None = None) -> YamlDoc:
    """Read and parse `path`; problems name it as `file` (default: `str(path)`)."""
    name = str(path) if file is None else file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(name, 0, 0, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(name, 0, 0, f"cannot read: {exc.strerror}")]) from None
    return parse_yaml(raw, name)


def parse_yaml(raw: bytes | str, file: str) -> YamlDoc:
    """Parse one YAML document; raise ConfigError with every structural problem found."""
    text = _decode(raw, file) if isinstance(raw, bytes) else raw
    try:
        root = _Loader(text).get_single_node()
    except _Rejected as exc:
        raise ConfigError([_at(file, exc.mark, exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_problem(file, exc)]) from None
    except yaml.reader.ReaderError as exc:
        line, col = _offset_pos(text, exc.position)
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"character U+{char:04X} is not allowed in YAML"
        raise ConfigError([Problem(file, line, col, message)]) from None
    except RecursionError:
        raise ConfigError([Problem(file, 0, 0, "the YAML is nested too deeply")]) from None
    if root is None:
        raise ConfigError([Problem(file, 0, 0, "the file is empty")])
    builder = _Builder(file)
    data = builder.build(root, ())
    if builder.problems:
        raise ConfigError(builder.problems)
    return YamlDoc(file, data, builder.values, builder.keys)


def _decode(raw: bytes, file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", errors="replace")) + 1
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        raise ConfigError([Problem(file, line, col, message)]) from None


def _offset_pos(text: str, offset: int) -> Pos:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _at(file: str, mark: yaml.Mark, message: str) -> Problem:
    return Problem(file, mark.line + 1, mark.column + 1, message)


def _syntax_problem(file: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if exc.context and exc.context.startswith("expected a single document"):
        message = "only one YAML document per file is supported"
    else:
        message = f"YAML syntax error: {exc.problem or exc.context}"
        if exc.context and exc.problem:
            message += f" ({exc.context}"
            context_mark = exc.context_mark
            if context_mark is not None and mark is not None and context_mark.line != mark.line:
                message += f" that starts on line {context_mark.line + 1}"
            message += ")"
    if mark is None:
        return Problem(file, 0, 0, message)
    return _at(file, mark, message)


class _Builder:
    """Turns the node tree into plain data, recording positions and collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[DataPath, Pos] = {}
        self.keys: dict[DataPath, Pos] = {}
        self.problems: list[Problem] = []

    def build(self, node: Node, path: DataPath) -> Any:
        self.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, MappingNode) and node.tag == f"{_TAG}map":
            return self._mapping(node, path)
        if isinstance(node, SequenceNode) and node.tag == f"{_TAG}seq":
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        self._problem(node, f"YAML tag {node.tag!r} is not supported")
        return None

    def _mapping(self, node: MappingNode, path: DataPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node) if isinstance(key_node, ScalarNode) else key_node
            if not isinstance(key, str):
                shown = repr(key) if isinstance(key_node, ScalarNode) else "a collection"
                self._problem(key_node, f"mapping keys must be strings, not {shown}")
                continue
            if key in first_line:
                self._problem(
                    key_node, f"duplicate key {key!r} (first defined on line {first_line[key]})"
                )
                continue
            first_line[key] = key_node.start_mark.line + 1
            self.keys[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: ScalarNode) -> Any:
        value: str = node.value
        kind = node.tag.removeprefix(_TAG)
        if kind == "str":
            return value
        if kind == "null":
            return None
        if kind not in ("bool", "int", "float"):
            self._problem(node, f"YAML tag {node.tag!r} is not supported")
            return value
        try:
            return _convert(kind, value)
        except ValueError:
            self._problem(node, f"{value!r} is not a valid {_KIND_NAMES[kind]}")
            return value

    def _problem(self, node: Node, message: str) -> None:
        self.problems.append(_at(self.file, node.start_mark, message))


def _convert(kind: str, value: str) -> bool | int | float:
    if kind == "bool":
        if value.lower() not in ("true", "false"):
            raise ValueError(value)
        return value.lower() == "true"
    if kind == "int":
        return int(value, 0 if value[:2].lower() in ("0o", "0x") else 10)
    if value.lower().lstrip("+-") in (".inf", ".nan"):
        value = value.replace(".", "", 1)
    return float(value)


def problems_from_validation(
    error: ValidationError, doc: YamlDoc, model: type[BaseModel], base: DataPath = ()
) -> list[Problem]:
    """Place each pydantic error at the key or value it is about.

    `base` is where the validated data sits inside `doc.data`. An unknown key points at the key
    (with a close allowed key as a hint), a missing key at the mapping that lacks it, anything
    else at the offending value (or its nearest written ancestor, since validators may reshape
    data: a bare term string becomes `{term: ...}`).
    """
    errors = error.errors(include_url=False)
    failed = [tuple(err["loc"]) for err in errors]
    problems = []
    for err in errors:
        loc: DataPath = tuple(err["loc"])
        kind = err["type"]
        if kind == "too_short" and any(len(f) > len(loc) and f[: len(loc)] == loc for f in failed):
            # The list is short only because its items failed; those failures say why.
            continue
        if kind == "extra_forbidden":
            key = str(loc[-1])
            message = f"unknown key {key!r}"
            hint = difflib.get_close_matches(key, _allowed_keys(model, loc[:-1]), n=1)
            if hint:
                message += f" (did you mean {hint[0]!r}?)"
            problems.append(doc.problem((*base, *loc), message, at_key=True))
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}"
            problems.append(doc.problem((*base, *loc[:-1]), message))
        elif kind == KEY_ERROR:
            key_path = (*base, *loc, str((err.get("ctx") or {})["key"]))
            problems.append(doc.problem(key_path, err["msg"], at_key=True))
        elif loc and loc[-1] == "[key]":
            message = _clean(err["msg"], kind, ())
            problems.append(doc.problem((*base, *loc[:-1]), message, at_key=True))
        else:
            message = _clean(err["msg"], kind, loc)
            if kind == "too_short" and (err.get("ctx") or {}).get("min_length") == 1 and loc:
                message = f"{loc[-1]!r} must not be empty"
            problems.append(doc.problem((*base, *loc), message))
    return problems


def _clean(message: str, kind: str, loc: DataPath) -> str:
    """Pydantic's wording, in the analyst's terms: YAML lists and mappings, key names."""
    key = loc[-1] if loc and isinstance(loc[-1], str) else None
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "expected a mapping (key: value)"
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message.replace("a valid tuple", "a list").replace("a valid list", "a list")
    if key is not None and message.startswith("Input should"):
        message = f"{key!r} should{message.removeprefix('Input should')}"
    return message


def _allowed_keys(model: type[BaseModel], loc: DataPath) -> list[str]:
    """The keys a mapping at `loc` may hold, following the model's field types."""
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _step(tp: Any, part: str | int) -> Any:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return args[1]
    return None
