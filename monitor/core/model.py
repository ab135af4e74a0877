"""The domain's data: watchlists and their terms, articles, and what a match found.

Watchlist and Term are pydantic models because they are both the YAML schema analysts write and
the objects the matcher compiles: declared once, validated once, immutable afterwards. Articles
and hits are plain frozen dataclasses because they are made by the thousand on the hot path.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from monitor.core.fold import is_substring_script
from monitor.core.languages import check_language

#: The text fields of an article that a watchlist can look at (`fields:`), in display order.
FIELDS: tuple[str, ...] = ("title", "summary", "content", "tags")
FieldName = Literal["title", "summary", "content", "tags"]

#: A term shorter than this before its `*` would match a large share of all words.
MIN_PREFIX_CHARS = 3
MAX_TERM_CHARS = 200
MAX_WITHIN = 50

#: A watchlist id, and every other name the config gives (destinations, feeds).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


#: A language code as an analyst writes it, checked and reduced to its primary subtag.
LanguageCode = Annotated[str, AfterValidator(check_language)]


class Priority(enum.IntEnum):
    low = 0
    normal = 1
    high = 2
    critical = 3


class FrozenModel(BaseModel):
    """The base of every config model: immutable, unknown keys rejected, text stripped."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def priority_by_name(value: Any, key: str) -> Any:
    """A priority written by name (`high`, any case) as a `Priority`; other values pass on.

    For a `mode="before"` validator of the field `key`, which the error message names.
    """
    if isinstance(value, str):
        try:
            return Priority[value.strip().lower()]
        except KeyError:
            names = ", ".join(p.name for p in Priority)
            raise ValueError(f"{key} must be one of {names}") from None
    return value


_STAR_MISUSE = re.compile(r"(?:^|[^\w])\*|\*\w")  # a `*` must end a word, not start or split one


def check_term_text(text: str) -> str:
    """Reject term text that cannot be matched sensibly; return it stripped.

    The rules keep matching linear and predictable: no pattern syntax beyond `*` at the end of
    a word, no empty or punctuation-only terms, no prefix so short it would match most words.
    """
    text = text.strip()
    if not text:
        raise ValueError("a term must not be empty")
    if len(text) > MAX_TERM_CHARS:
        raise ValueError(f"a term is at most {MAX_TERM_CHARS} characters")
    if _STAR_MISUSE.search(text):
        raise ValueError(f"term {text!r}: '*' is only allowed at the end of a word")
    if not any(ch.isalnum() for ch in text):
        raise ValueError(f"term {text!r} has no letters or digits")
    for word in re.findall(r"(\w+)\*", text):
        # CJK terms match as substrings anyway; in every other script a short prefix is a trap.
        if len(word) < MIN_PREFIX_CHARS and not is_substring_script(word):
            raise ValueError(
                f"term {text!r}: a prefix needs at least {MIN_PREFIX_CHARS} letters before '*'"
            )
    return text


class Term(FrozenModel):
    """One term as the analyst wrote it; `text` is reported back verbatim in hits."""

    text: Annotated[str, Field(alias="term")]
    case_sensitive: bool = False
    near: tuple[str, ...] = ()
    within: Annotated[int, Field(ge=1, le=MAX_WITHIN)] | None = None
    #: Longer expressions that contain the term but mean something else (`Chicken Kiev` for
    #: `Kiev`): an occurrence inside one of them does not count. Unlike `none`, the rest of the
    #: article still counts.
    except_: Annotated[tuple[str, ...], Field(alias="except")] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"term": value}
        return value

    @field_validator("text")
    @classmethod
    def _check_text(cls, value: str) -> str:
        return check_term_text(value)

    @field_validator("near", "except_")
    @classmethod
    def _check_near(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_term_text(v) for v in value)

    @model_validator(mode="after")
    def _near_and_within(self) -> Term:
        if self.within is not None and not self.near:
            raise ValueError("'within' needs 'near' terms")
        if self.near and self.within is None:
            object.__setattr__(self, "within", 5)
        return self


def _as_group(value: Any) -> Any:
    # `all: ["PLA", ["strait", "détroit"]]`: a bare term is a group of one.
    if isinstance(value, list):
        return [v if isinstance(v, list) else [v] for v in value]
    return value


class MatchRule(FrozenModel):
    any: Annotated[tuple[Term, ...], Field(min_length=1)]
    all: tuple[Annotated[tuple[Term, ...], Field(min_length=1)], ...] = ()
    none: tuple[Term, ...] = ()

    @field_validator("all", mode="before")
    @classmethod
    def _groups(cls, value: Any) -> Any:
        return _as_group(value)


class Example(FrozenModel):
    """A short text a watchlist must (or must not) match; `monitor check` runs them."""

    text: Annotated[str, Field(min_length=1, max_length=2000)]
    lang: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value

    @field_validator("lang")
    @classmethod
    def _lang(cls, value: str | None) -> str | None:
        return None if value is None else check_language(value)


class Examples(FrozenModel):
    match: tuple[Example, ...] = ()
    no_match: tuple[Example, ...] = ()


class Watchlist(FrozenModel):
    """A watchlist file. `id` defaults to the file name; the loader fills it in."""

    id: Annotated[str, Field(pattern=NAME_PATTERN.pattern)]
    name: str = ""
    priority: Priority = Priority.normal
    notify: tuple[str, ...] | None = None
    languages: tuple[LanguageCode, ...] | None = None
    sources: tuple[str, ...] | None = None
    fields: tuple[FieldName, ...] | None = None
    match: MatchRule
    examples: Examples | None = None

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_name(cls, value: Any) -> Any:
        return priority_by_name(value, "priority")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("'languages' must not be empty (omit it to allow every language)")
        return value

    @model_validator(mode="after")
    def _default_name(self) -> Watchlist:
        if not self.name:
            object.__setattr__(self, "name", self.id)
        return self

    @property
    def all_terms(self) -> tuple[Term, ...]:
        groups = [t for g in self.match.all for t in g]
        return (*self.match.any, *groups, *self.match.none)


@dataclass(frozen=True, slots=True)
class Article:
    """A normalized feed entry: plain text (no HTML), aware UTC dates, hashed keys."""

    feed_id: str
    guid: str
    url: str | None
    title: str
    summary: str = ""
    content: str = ""
    tags: tuple[str, ...] = ()
    lang: str | None = None
    author: str | None = None
    published_at: datetime | None = None

    def text(self, name: str) -> str:
        if name == "tags":
            return " · ".join(self.tags)
        value = getattr(self, name)
        return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class Hit:
    """Where one term occurred: the term as written, the field, character offsets in that field."""

    term: str
    field: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class WatchlistMatch:
    """Why an article matched one watchlist: the terms that hit, in watchlist order."""

    watchlist_id: str
    name: str
    priority: Priority
    terms: tuple[str, ...]
    hits: tuple[Hit, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class AlertPlan:
    """An alert to queue: one destination, every watchlist it reports, when it may go out."""

    destination: str
    watchlists: tuple[str, ...]
    priority: Priority
    next_attempt_at: datetime
