"""feedparser's bookkeeping for the lxml fast path: the element stack, and where a value lands.

Contract: `FeedState` is the part of feedparser 6's `_FeedParserMixin` (`feedparser/mixin.py`)
that can reach the keys `parse` reads: `feed`, `entries`, `version`, the in-feed / in-entry /
in-content flags, the element stack and the content parameters. Its methods are line-for-line
ports of the mixin methods that move text into them: `push` / `pop` (base64, relative URIs, the
HTML sniff, the cp1252 fix-up, then where the value is stored), `push_content` / `pop_content`,
`_get_context`, `_save`, `_save_author` / `_sync_author_detail`, `_add_tag` and
`_map_to_standard_prefix`. A value nobody reads (its name is not in `READ`) is popped but not
processed, so nothing this port leaves out can reach the result.

It reads no XML and knows no element by name: `feedelements.FeedElements` adds feedparser's
per-element handlers on top of it, and `fastparse` the lxml driver that calls them. `Decline`
(the document is outside what the port reproduces, so `parse_fast` returns None and feedparser
reads it) and `Stop` (the entry cap is reached) may be raised from any of the three layers;
`parse_fast` catches both.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from typing import Any

from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin

__all__ = ["READ", "XHTML", "Decline", "FeedState", "Stop", "map_content_type"]

XHTML = "application/xhtml+xml"
# Values parse.py reads, and the element names whose text they come from.
READ = frozenset({
    "title", "description", "summary", "content", "link", "id", "author", "name", "email",
    "category", "tags", "itunes_keywords", "media_keywords", "published", "updated", "language",
    "ttl", "sy_updateperiod", "sy_updatefrequency",
})  # fmt: skip
# feedparser's own tables and helpers, so the port cannot drift from the version installed.
_RELATIVE = _FeedParserMixin.can_be_relative_uri
_looks_like_html = _FeedParserMixin.looks_like_html
_C1 = re.compile("[\x80-\x9f]")
_AMP = re.compile("&([A-Za-z0-9_]+);")
_EMAIL = re.compile(
    r"""(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"""
    r"""([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"""
)


class Decline(Exception):
    """The document is outside what this port reproduces exactly."""


class Stop(Exception):
    """max_entries entries are read: stop reading."""


def map_content_type(kind: str) -> str:
    """feedparser's `map_content_type`: Atom's short type names as the MIME types it stores."""
    kind = kind.lower()
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html", "xhtml": XHTML}.get(
        kind, kind
    )


class FeedState:
    """feedparser's `_FeedParserMixin` state, and the mixin methods that fill it in."""

    def __init__(self, baseuri: str, max_entries: int) -> None:
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.max_entries = max_entries
        self.version = ""
        self.baseuri = baseuri
        self.lang: str | None = None
        self.infeed = self.inentry = self.incontent = self.inimage = self.intextinput = 0
        self.inauthor = self.incontributor = self.inpublisher = self.insource = 0
        self.has_content = self.guidislink = self.depth = 0
        self.title_depth = -1
        self.summary_key: str | None = None
        self.sourcedata: dict[str, Any] = {}
        self.contentparams: dict[str, Any] = {}
        self.depths: dict[str, int] = {}  # feedparser's property_depth_map for entries[-1]
        self.stack: list[list[Any]] = []  # [name, expecting_text, pieces, element]
        # Set by the driver, read here: feedparser's prefix for each declared prefix (the
        # handlers map attribute names through it), and the element being started (a pushed
        # entry records it, so the driver knows which stack entry an element's text is for).
        self.namespacemap: dict[str | None, str] = {}
        self.element: Any = None

    # --- feedparser's push / pop, and where a popped value lands --------------------------

    def _push(self, name: str, expecting_text: int) -> None:
        self.stack.append([name, expecting_text, [], self.element])

    def _pop(self, element: str, strip: bool = True) -> Any:
        if not self.stack or self.stack[-1][0] != element:
            return None
        _, expecting_text, pieces, _ = self.stack.pop()
        if element not in READ:
            return ""  # nobody reads it: feedparser's processing would change nothing here
        output = "".join(pieces)
        if strip:
            output = output.strip()
        if not expecting_text:
            return output
        params = self.contentparams
        if params.get("base64"):
            with contextlib.suppress(binascii.Error, binascii.Incomplete, UnicodeDecodeError):
                output = base64.decodebytes(output.encode("utf8")).decode("utf8")
        if element in _RELATIVE and output and (element != "id" or self.guidislink):
            output = _urljoin(self.baseuri or "", output)
        if (not self.version.startswith("atom") and params.get("type") == "text/plain"
                and _looks_like_html(output)):  # fmt: skip
            params["type"] = "text/html"
        params.pop("mode", None)
        params.pop("base64", None)
        # feedparser "fixes" UTF-8 read as ISO-8859-1 in every value it pops
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            output = output.encode("iso-8859-1").decode("utf-8")
        if _C1.search(output):
            output = output.translate(_cp1252)
        if element in ("category", "tags", "itunes_keywords"):
            return output
        if element == "title" and -1 < self.title_depth <= self.depth:
            return output
        if self.inentry and not self.insource:
            self._store_entry(element, output)
        elif self.infeed or self.insource:
            context = self._context()
            if element == "description":
                element = "subtitle"
            context[element] = output
            if element == "link":
                output = _AMP.sub(r"&\g<1>", output)
                context[element] = output
                context["links"][-1]["href"] = output
            elif self.incontent:
                context[element + "_detail"] = dict(params, value=output)
        return output

    def _store_entry(self, element: str, output: str) -> None:
        entry = self.entries[-1]
        if element == "content":
            entry.setdefault("content", []).append(dict(self.contentparams, value=output))
        elif element == "link":
            if not self.inimage:
                output = _AMP.sub(r"&\g<1>", output.replace("&amp;", "&"))
                entry["link"] = output
                if output:
                    entry["links"][-1]["href"] = output
        else:
            if element == "description":
                element = "summary"
            old = self.depths.get(element)
            if old is None or self.depth <= old:
                self.depths[element] = self.depth
                entry[element] = output
            if self.incontent:
                entry[element + "_detail"] = dict(self.contentparams, value=output)

    def _push_content(self, tag: str, attrs: dict[str, str], default: str, expecting: int) -> None:
        self.incontent += 1
        if self.lang:
            self.lang = self.lang.replace("_", "-")
        kind = map_content_type(attrs.get("type", default))
        self.contentparams = {"type": kind, "language": self.lang, "base": self.baseuri}
        self.contentparams["base64"] = attrs.get("mode", "") == "base64" or not (
            kind.startswith("text/") or kind.endswith(("+xml", "/xml"))
        )
        self._push(tag, expecting)

    def _pop_content(self, tag: str) -> Any:
        value = self._pop(tag)
        self.incontent -= 1
        self.contentparams.clear()
        return value

    def _context(self) -> dict[str, Any]:
        if self.insource:
            return self.sourcedata
        if self.inimage and "image" in self.feed:
            image: dict[str, Any] = self.feed["image"]
            return image
        if self.intextinput:
            textinput: dict[str, Any] = self.feed["textinput"]
            return textinput
        return self.entries[-1] if self.inentry else self.feed

    def _save(self, key: str, value: Any, overwrite: bool = False) -> None:
        if overwrite:
            self._context()[key] = value
        else:
            self._context().setdefault(key, value)

    def _in_feed(self) -> int:
        return self.infeed or self.inentry or self.insource

    # --- mixin helpers the element handlers share ---------------------------------------

    def _standard_prefix(self, name: str) -> str:
        prefix, _, suffix = name.partition(":")
        return f"{self.namespacemap.get(prefix, prefix)}:{suffix}"

    def _save_author(self, key: str, value: Any, prefix: str = "author") -> None:
        context = self._context()
        context.setdefault(prefix + "_detail", {})[key] = value
        self._sync_author_detail()
        context.setdefault("authors", [{}])[-1][key] = value

    def _sync_author_detail(self) -> None:
        context = self._context()
        detail = context.get("authors", [{}])[-1]
        if detail:
            name, email = detail.get("name"), detail.get("email")
            if name or email:
                context["author"] = f"{name} ({email})" if name and email else name or email
            return
        author, email = context.get("author"), None
        if not author:
            return
        match = _EMAIL.search(author)
        if match:
            email = match.group(0)
            author = author.replace(email, "").replace("()", "").replace("<>", "")
            author = author.replace("&lt;&gt;", "").strip()
            if author and author[0] == "(":
                author = author[1:]
            if author and author[-1] == ")":
                author = author[:-1]
            author = author.strip()
        if author or email:
            context.setdefault("author_detail", detail)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def _add_tag(self, term: Any, scheme: Any, label: Any) -> None:
        tags = self._context().setdefault("tags", [])
        if term or scheme or label:
            tag = {"term": term, "scheme": scheme, "label": label}
            if tag not in tags:
                tags.append(tag)
