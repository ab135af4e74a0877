"""The fast path of `parse`: libxml2 (lxml) reads a well-formed feed; feedparser's rules fill it in.

Contract: `parse_fast(body, headers, max_entries)` takes the bytes `parse` would hand feedparser
(already through `xmlguard`) and the response headers it would pass, and returns what
`feedparser.parse` returns for the keys `parse` reads: "version", "feed" (title, title_detail,
link, language, ttl, sy_updateperiod, sy_updatefrequency), "entries" (title, title_detail,
summary, summary_detail, content, link, id, tags, author, published_parsed, updated_parsed),
"bozo", "bozo_exception", plus "truncated" when it stopped after `max_entries` entries. The same
dicts go through the same Article-building code, so the two paths differ only in who read the XML.

It returns None ("decline": `parse` then runs feedparser) whenever it cannot promise feedparser's
result: a document libxml2 rejects (not well-formed, undefined entity, undeclared prefix: expat
would fail too and feedparser would retry with its loose parser), markup inside a text construct
(feedparser rebuilds it as XHTML), a root other than rss / rdf:RDF / feed, GeoRSS, Podlove
chapters, SVG or MathML, or anything that makes its port of feedparser raise.

This module is the driver: it picks the encoding, runs lxml's iterparse, turns lxml's events
into the names and attributes feedparser's StrictFeedParser gets from expat, and dispatches
each element as feedparser's `unknown_starttag` / `unknown_endtag` do. What feedparser does
with an element lives in `feedelements` (the per-element handlers), on top of `feedstate`
(the mixin's element stack and where a popped value lands).

How it stays equal to feedparser 6: the encoding is chosen and the body transcoded by feedparser's
own `convert_to_utf8`; dates go through feedparser's `_parse_date`; `looks_like_html`, the
cp1252 fix-up and URI joining are feedparser's functions; and `feedstate` and `feedelements`
are a line-for-line port of feedparser's mixin (`feedparser/mixin.py`, `namespaces/_base.py`,
`dc.py`, `itunes.py`, `mediarss.py`) for every element that can touch those keys. Other
elements only keep feedparser's element stack in step (pushed, or not, exactly as feedparser
does: the tables below).
tests/integration/test_fastparse.py checks every corpus feed field by field against feedparser.

Bounded work: lxml's iterparse reads the body incrementally, each finished child of the root
or of the channel is cleared, and reading stops at entry `max_entries` + 1, so a 10 MB feed of
100,000 items costs `max_entries` items of work and holds one read block (32 KiB) of tree. No
entity is ever expanded (resolve_entities=False, load_dtd=False, no DOCTYPE survives
`xmlguard.defuse`, and one that did would make it decline) and nothing is fetched (no_network).
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any
from xml.sax.saxutils import escape

from feedparser.encodings import convert_to_utf8
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree

from monitor.edges.feedelements import ENDS, STARTS, FeedElements
from monitor.edges.feedstate import READ, XHTML, Decline, Stop

__all__ = ["parse_fast"]

_MATCH = {k.lower(): v for k, v in _FeedParserMixin.namespaces.items()}
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:]")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_XML_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "huge_tree": False,
    "remove_comments": True,
    "remove_pis": True,
}
# An unknown element with one of these names would overwrite feedparser's own bookkeeping.
_RESERVED = frozenset({
    "links", "authors", "author_detail", "contributors", "title_detail", "summary_detail",
    "published_parsed", "updated_parsed", "guidislink", "publishers", "publisher_detail",
})  # fmt: skip
# Handlers this port leaves out because they can raise or build state it does not model.
_UNPORTED = ("georss", "gml_", "where", "psc_", "svg", "math")
# feedparser handlers that push an element of their own (name, expecting text) and whose
# effects never reach the keys parse reads (feedstate.READ); and handlers that push nothing.
_PUSHES = {
    "webmaster": ("publisher", 1), "dc_publisher": ("publisher", 1),
    "created": ("created", 1), "dcterms_created": ("created", 1),
    "expirationdate": ("expired", 1), "dcterms_valid": ("validity", 1),
    "generator": ("generator", 1), "height": ("height", 0), "width": ("width", 0),
    "itunes_image": ("itunes_image", 0), "itunes_link": ("itunes_image", 0),
    "media_credit": ("credit", 1), "media_license": ("license", 1),
    "media_player": ("media_player", 0), "media_rating": ("rating", 1),
    "media_restriction": ("restriction", 1), "media_thumbnail": ("url", 1),
    "newlocation": ("newlocation", 1), "creativecommons_license": ("license", 1),
}  # fmt: skip
_POPS = {name: key for name, (key, _) in _PUSHES.items()}
_NO_PUSH = frozenset({"cloud", "enclosure", "media_content", "media_group", "cc_license"})
_TEXT_CONSTRUCTS = {
    "subtitle": "subtitle", "tagline": "subtitle", "itunes_subtitle": "subtitle",
    "rights": "rights", "copyright": "rights", "dc_rights": "rights",
    "info": "info", "feedburner_browserfriendly": "info",
}  # fmt: skip
# feedelements' dispatch tables, the very same dicts, under the names the driver (and a test
# that patches `_STARTS["item"]`) looks them up by.
_STARTS = STARTS
_ENDS = ENDS


def parse_fast(body: bytes, headers: dict[str, str], max_entries: int) -> dict[str, Any] | None:
    """feedparser's result for `body`, read by lxml; None to decline (see the module doc)."""
    result: dict[str, Any] = {"bozo": False}
    data = convert_to_utf8(headers, body, result)
    if not result.get("encoding"):
        return None  # no encoding worked: feedparser goes straight to its loose parser
    first = _FIRST_ELEMENT.search(data)
    if first is None or _DOCTYPE.search(data, 0, first.start()):
        # xmlguard.defuse removes every DOCTYPE: one still here (or no element) is unusual.
        return None
    contentloc = headers.get("content-location", "")
    state = _Port(make_safe_absolute_uri("", contentloc) or "", max_entries)
    events = etree.iterparse(io.BytesIO(data), events=("start", "end", "start-ns"), **_XML_OPTIONS)
    try:
        for event, item in events:
            if event == "start":
                state.start(item)
            elif event == "end":
                state.end(item)
            else:
                state.namespace(*item)
    except Stop:
        result["truncated"] = True
    except Exception:  # libxml2's errors, Decline, or whatever feedparser would also trip on
        return None
    if state.root not in ("rss", "rdf:rdf", "feed"):
        return None
    result.update(version=state.version, feed=state.feed, entries=state.entries)
    return result


@functools.lru_cache(maxsize=256)
def _rebase(baseuri: str, base: str | None) -> str:
    """feedparser's xml:base tracking, cached: it runs for every element, mostly unchanged."""
    base = base or baseuri
    if baseuri:
        return make_safe_absolute_uri(baseuri, base) or baseuri
    return _urljoin(baseuri, base)  # type: ignore[no-any-return]


class _Port(FeedElements):
    """feedparser's StrictFeedParser over lxml: its events, names, attributes and dispatch."""

    def __init__(self, baseuri: str, max_entries: int) -> None:
        super().__init__(baseuri, max_entries)
        # What only the reading needs: the handlers never look at any of it.
        self.root = ""
        self.basestack: list[str] = []
        self.langstack: list[str | None] = []
        self.names: list[str] = []
        self.in_use: dict[str, str] = {}
        self.decls: dict[str, str] = {}
        self.qualified: dict[str, str] = {}  # Clark name -> feedparser's name, per namespaces

    # --- driving: lxml's events as feedparser's StrictFeedParser sees expat's ---------------

    def namespace(self, prefix: str, uri: str) -> None:  # startPrefixMapping + track_namespace
        if not uri:
            if prefix:
                raise Decline("undeclaring a prefix is not XML 1.0 (expat refuses it)")
            return
        self.qualified.clear()
        lower = uri.lower()
        if not self.version:
            if not prefix and lower == "http://my.netscape.com/rdf/simple/0.9/":
                self.version = "rss090"
            elif lower == "http://purl.org/rss/1.0/":
                self.version = "rss10"
            elif lower == "http://www.w3.org/2005/atom":
                self.version = "atom10"
        if prefix and uri == "http://www.w3.org/1999/xlink":
            self.decls["xmlns:" + prefix] = uri
        if "backend.userland.com/rss" in lower:
            uri = lower = "http://backend.userland.com/rss"
        if lower in _MATCH:
            self.namespacemap[prefix or None] = _MATCH[lower]
            self.in_use[_MATCH[lower]] = uri
        else:
            self.in_use[prefix or ""] = uri

    def _qualify(self, clark: str) -> str:
        name = self.qualified.get(clark)
        if name is None:
            name = self.qualified[clark] = self._qualify_uncached(clark)
        return name

    def _qualify_uncached(self, clark: str) -> str:
        if ":" in clark and clark[0] != "{":
            raise Decline("undeclared namespace prefix")  # libxml2 only warns; expat stops
        namespace, _, local = clark[1:].rpartition("}") if clark[0] == "{" else ("", "", clark)
        lower = namespace.lower()
        if "backend.userland.com/rss" in lower:
            namespace = lower = "http://backend.userland.com/rss"
        prefix = _MATCH.get(lower)
        local = local.lower()
        if prefix:
            return f"{prefix.lower()}:{local}"
        if namespace:
            for name, value in self.in_use.items():
                if name and value == namespace:
                    return f"{name}:{local}".lower()
        return local

    def start(self, element: Any) -> None:
        name = self._qualify(element.tag)
        if not self.root:
            self.root = name
        attrs: dict[str, str] = self.decls
        self.decls = {}
        local_keys = []
        for key, value in element.attrib.items() if len(element.attrib) else ():
            if ":" in key and key[0] != "{":
                raise Decline("undeclared attribute prefix")
            namespace, _, local = key[1:].rpartition("}") if key[0] == "{" else ("", "", key)
            prefix = _MATCH.get(namespace.lower(), "")
            attrs[(f"{prefix}:{local}" if prefix else local).lower()] = value
            local_keys.append((local.lower(), value))
        if local_keys:
            attrs.update(local_keys)  # expat's qnames, which are the local names here
            attrs = {k: v.lower() if k in ("rel", "type") else v for k, v in attrs.items()}
        # The top of the stack gets the text; an entry whose element has ended is stale (an
        # Atom <content> is pushed twice and popped once) and its text is never read.
        top = self.stack[-1] if self.stack and self.stack[-1][3] is not None else None
        self.names.append(name)
        self.element = element
        depth = len(self.stack)
        self._starttag(name, attrs)
        if top is not None and top[0] in READ and len(self.stack) == depth:
            # An element pushing nothing lends its text to the one we read: decline.
            raise Decline("markup inside a text element")

    def end(self, element: Any) -> None:
        name = self.names.pop()
        top = self.stack[-1] if self.stack else None
        if top is not None and top[3] is element and top[0] in READ:
            text = (element.text or "") + "".join(child.tail or "" for child in element)
            top[2].append(escape(text) if self.contentparams.get("type") == XHTML else text)
        self._endtag(name)
        for entry in reversed(self.stack):
            if entry[3] is not element:
                break
            entry[3] = None
        if self.depth <= 2:  # a finished child of the root or of the channel: drop its tree
            element.clear()
            while element.getprevious() is not None:
                del element.getparent()[0]

    # --- feedparser's unknown_starttag / unknown_endtag -----------------------------------

    def _starttag(self, tag: str, attrs: dict[str, str]) -> None:
        self.depth += 1
        self.baseuri = _rebase(self.baseuri, attrs.get("xml:base", attrs.get("base")))
        lang = attrs.get("xml:lang", attrs.get("lang"))
        if lang == "":
            lang = None
        elif lang is None:
            lang = self.lang
        if lang and tag in ("feed", "rss", "rdf:RDF"):
            self.feed["language"] = lang.replace("_", "-")
        self.lang = lang
        self.basestack.append(self.baseuri)
        self.langstack.append(lang)
        if self.incontent:
            raise Decline("markup inside content: feedparser serialises it as XHTML")
        prefix, suffix = tag.split(":", 1) if ":" in tag else ("", tag)
        prefix = self.namespacemap.get(prefix, prefix)
        method = f"{prefix}_{suffix}" if prefix else suffix
        if not prefix and tag not in ("title", "link", "description", "name"):
            self.intextinput = 0
        if not prefix and tag not in ("title", "link", "description", "url", "href", "width",
                                      "height"):  # fmt: skip
            self.inimage = 0
        if method.startswith(_UNPORTED) or suffix in ("svg", "math"):
            raise Decline(f"<{tag}> is not ported")
        handler = _STARTS.get(method)
        if handler is not None:
            handler(self, attrs)
        elif method in _TEXT_CONSTRUCTS:
            self._push_content(_TEXT_CONSTRUCTS[method], attrs, "text/plain", 1)
        elif method in _PUSHES:
            self._push(*_PUSHES[method])
        elif method in _NO_PUSH:
            pass
        elif method in _RESERVED:
            raise Decline(f"<{tag}> would clobber feedparser's bookkeeping")
        elif not attrs:
            self._push(method, 1)
        elif method in READ:
            self._context()[method] = attrs  # feedparser keeps an unknown element's attributes

    def _endtag(self, tag: str) -> None:
        prefix, suffix = tag.split(":", 1) if ":" in tag else ("", tag)
        prefix = self.namespacemap.get(prefix, prefix)
        method = f"{prefix}_{suffix}" if prefix else suffix
        handler = _ENDS.get(method)
        if handler is not None:
            handler(self)
        elif method in _TEXT_CONSTRUCTS:
            self._pop_content(_TEXT_CONSTRUCTS[method])
        else:
            self._pop(_POPS.get(method, method))
        if self.basestack:
            self.basestack.pop()
            if self.basestack and self.basestack[-1]:
                self.baseuri = self.basestack[-1]
        if self.langstack:
            self.langstack.pop()
            if self.langstack:
                self.lang = self.langstack[-1]
        self.depth -= 1
