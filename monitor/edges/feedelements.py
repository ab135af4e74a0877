"""feedparser's per-element handlers for the lxml fast path, and the tables that find them.

Contract: `FeedElements` adds to `feedstate.FeedState` a line-for-line port of feedparser 6's
`_start_*` / `_end_*` handlers (`namespaces/_base.py`, `dc.py`, `itunes.py`, `mediarss.py`) for
every element that can touch the keys `parse` reads. `STARTS` and `ENDS` map feedparser's method
name for an element (`item`, `dc_creator`, `content_encoded`, ...) to the handler feedparser
would call for it, its aliases included, as plain functions: `STARTS[name](state, attrs)` and
`ENDS[name](state)`. An element in neither is left to `fastparse`, which pushes and pops it as
feedparser's `unknown_starttag` / `unknown_endtag` would. Handlers raise `Decline` where
feedparser would build state this port does not model, and `_start_item` raises `Stop` at the
entry cap, before it starts the entry past `max_entries`.
"""

from __future__ import annotations

from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin

from monitor.edges.feedstate import XHTML, Decline, FeedState, Stop, map_content_type

__all__ = ["ENDS", "STARTS", "FeedElements"]

_HTML_TYPES = _FeedParserMixin.html_types


class FeedElements(FeedState):
    """feedparser's handlers (namespaces/_base.py, dc.py, itunes.py, mediarss.py), ported."""

    def _start_rss(self, attrs: dict[str, str]) -> None:
        if not self.version.startswith("rss"):
            version = attrs.get("version", "")
            versions = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
            self.version = versions.get(version) or ("rss20" if version[:2] == "2." else "rss")

    def _start_channel(self, attrs: dict[str, str]) -> None:
        if "lastmod" in attrs or "href" in attrs:
            raise Decline("CDF attributes")
        self.infeed = 1

    def _start_feed(self, attrs: dict[str, str]) -> None:
        self.infeed = 1
        if not self.version:
            versions = {"0.1": "atom01", "0.2": "atom02", "0.3": "atom03"}
            self.version = versions.get(attrs.get("version", ""), "atom")

    def _end_channel(self) -> None:
        self.infeed = 0

    def _start_image(self, attrs: dict[str, str]) -> None:
        context = self._context()
        if not self.inentry:
            context.setdefault("image", {})
        self.inimage, self.title_depth = 1, -1
        self._push("image", 0)

    def _end_image(self) -> None:
        self._pop("image")
        self.inimage = 0

    def _start_textinput(self, attrs: dict[str, str]) -> None:
        self._context().setdefault("textinput", {})
        self.intextinput, self.title_depth = 1, -1
        self._push("textinput", 0)

    def _end_textinput(self) -> None:
        self._pop("textinput")
        self.intextinput = 0

    def _start_item(self, attrs: dict[str, str]) -> None:
        if len(self.entries) >= self.max_entries:
            raise Stop
        if "lastmod" in attrs or "href" in attrs:
            raise Decline("CDF attributes")
        self.entries.append({})
        self.depths = {}
        self._push("item", 0)
        self.inentry, self.guidislink, self.title_depth = 1, 0, -1
        about = attrs.get(self._standard_prefix("rdf:about"))
        if about:
            self._context()["id"] = about

    def _end_item(self) -> None:
        self._pop("item")
        self.inentry = self.has_content = 0

    # Authors: RSS <author>/<dc:creator> text, Atom person constructs.

    def _start_author(self, attrs: dict[str, str]) -> None:
        self.inauthor = 1
        self._push("author", 1)
        self._context().setdefault("authors", []).append({})

    def _end_author(self) -> None:
        self._pop("author")
        self.inauthor = 0
        self._sync_author_detail()

    def _start_contributor(self, attrs: dict[str, str]) -> None:
        self.incontributor = 1
        self._context().setdefault("contributors", []).append({})
        self._push("contributor", 0)

    def _end_contributor(self) -> None:
        self._pop("contributor")
        self.incontributor = 0

    def _start_dc_contributor(self, attrs: dict[str, str]) -> None:
        self.incontributor = 1
        self._context().setdefault("contributors", []).append({})
        self._push("name", 0)

    def _end_dc_contributor(self) -> None:
        self._end_name()
        self.incontributor = 0

    def _start_itunes_owner(self, attrs: dict[str, str]) -> None:
        self.inpublisher = 1
        self._push("publisher", 0)

    def _end_itunes_owner(self) -> None:
        self._pop("publisher")
        self.inpublisher = 0

    def _start_name(self, attrs: dict[str, str]) -> None:
        self._push("name", 0)

    def _end_name(self) -> None:
        value = self._pop("name")
        if self.inpublisher:
            self._save_author("name", value, "publisher")
        elif self.inauthor:
            self._save_author("name", value)
        elif self.intextinput and not self.incontributor:
            self._context()["name"] = value

    def _start_email(self, attrs: dict[str, str]) -> None:
        self._push("email", 0)

    def _end_email(self) -> None:
        value = self._pop("email")
        if self.inpublisher:
            self._save_author("email", value, "publisher")
        elif self.inauthor:
            self._save_author("email", value)

    def _start_url(self, attrs: dict[str, str]) -> None:
        self._push("href", 1)

    def _end_url(self) -> None:
        value = self._pop("href")
        if self.inauthor:
            self._save_author("href", value)

    # Text constructs: title, summary / description, content.

    def _start_title(self, attrs: dict[str, str]) -> None:
        self._push_content("title", attrs, "text/plain", self._in_feed())

    def _end_title(self) -> None:
        if self._pop_content("title"):
            self.title_depth = self.depth

    def _end_media_title(self) -> None:
        title_depth = self.title_depth
        self._end_title()
        self.title_depth = title_depth

    def _start_description(self, attrs: dict[str, str]) -> None:
        if "summary" in self._context() and not self.has_content:
            self.summary_key = "content"
            self._start_content(attrs)
        else:
            self._push_content("description", attrs, "text/html", self._in_feed())

    def _start_abstract(self, attrs: dict[str, str]) -> None:
        self._push_content("description", attrs, "text/plain", self._in_feed())

    def _end_description(self) -> None:
        if self.summary_key == "content":
            self._end_content()
        else:
            self._pop_content("description")
        self.summary_key = None

    def _start_summary(self, attrs: dict[str, str]) -> None:
        if "summary" in self._context() and not self.has_content:
            self.summary_key = "content"
            self._start_content(attrs)
        else:
            self.summary_key = "summary"
            self._push_content("summary", attrs, "text/plain", 1)

    def _end_summary(self) -> None:
        if self.summary_key == "content":
            self._end_content()
        else:
            self._pop_content(self.summary_key or "summary")
        self.summary_key = None

    def _start_content(self, attrs: dict[str, str]) -> None:
        self.has_content = 1
        self._push_content("content", attrs, "text/plain", 1)
        if attrs.get("src"):
            self.contentparams["src"] = attrs["src"]
        self._push("content", 1)  # pushed twice, popped once: as feedparser does

    def _start_content_encoded(self, attrs: dict[str, str]) -> None:
        self.has_content = 1
        self._push_content("content", attrs, "text/html", 1)

    def _start_body(self, attrs: dict[str, str]) -> None:
        self._push_content("content", attrs, XHTML, 1)

    def _end_content(self) -> None:
        kind = self.contentparams.get("type")
        if kind is None:
            raise Decline("content without parameters")  # feedparser's AttributeError path
        value = self._pop_content("content")
        if map_content_type(kind) in {"text/plain"} | _HTML_TYPES:
            self._save("summary", value)

    # Links, ids, categories, languages, dates, sources.

    def _start_link(self, attrs: dict[str, str]) -> None:
        attrs.setdefault("rel", "alternate")
        attrs.setdefault("type", "application/atom+xml" if attrs["rel"] == "self" else "text/html")
        context = self._context()
        href = attrs.get("url", attrs.get("uri", attrs.get("href")))
        if href:
            attrs.pop("url", None)
            attrs.pop("uri", None)
            attrs["href"] = href
        if "href" in attrs:
            attrs["href"] = _urljoin(self.baseuri or "", attrs["href"])
        links = context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            links.append(attrs)
        if "href" not in attrs:
            self._push("link", self._in_feed())
        elif attrs.get("rel") == "alternate" and map_content_type(attrs["type"]) in _HTML_TYPES:
            context["link"] = attrs["href"]

    def _end_link(self) -> None:
        self._pop("link")

    def _start_guid(self, attrs: dict[str, str]) -> None:
        self.guidislink = attrs.get("ispermalink", "true") == "true"
        self._push("id", 1)

    def _end_guid(self) -> None:
        value = self._pop("id")
        self._save("guidislink", self.guidislink and "link" not in self._context())
        if self.guidislink:
            self._save("link", value)  # a permalink guid is the link when there is none

    def _start_category(self, attrs: dict[str, str]) -> None:
        scheme = attrs.get("scheme", attrs.get("domain"))
        self._add_tag(attrs.get("term"), scheme, attrs.get("label"))
        self._push("category", 1)

    def _start_media_category(self, attrs: dict[str, str]) -> None:
        attrs.setdefault("scheme", "http://search.yahoo.com/mrss/category_schema")
        self._start_category(attrs)

    def _start_itunes_category(self, attrs: dict[str, str]) -> None:
        self._add_tag(attrs.get("text"), "http://www.itunes.com/", None)
        self._push("category", 1)

    def _end_category(self) -> None:
        value = self._pop("category")
        if not value:
            return
        tags = self._context()["tags"]
        if tags and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _start_tags(self, attrs: dict[str, str]) -> None:
        self._push("tags", 1)

    def _end_tags(self) -> None:
        self._split_tags(self._pop("tags"), None, keep_empty=True)

    def _end_itunes_keywords(self) -> None:
        self._split_tags(self._pop("itunes_keywords"), "http://www.itunes.com/")

    def _end_media_keywords(self) -> None:
        self._split_tags(self._pop("media_keywords"), None)

    def _split_tags(self, value: Any, scheme: str | None, keep_empty: bool = False) -> None:
        for term in value.split(",") if isinstance(value, str) else ():
            if keep_empty or term.strip():
                self._add_tag(term.strip(), scheme, None)

    def _start_language(self, attrs: dict[str, str]) -> None:
        self._push("language", 1)

    def _end_language(self) -> None:
        self.lang = self._pop("language")

    def _start_published(self, attrs: dict[str, str]) -> None:
        self._push("published", 1)

    def _end_published(self) -> None:
        self._save("published_parsed", _parse_date(self._pop("published")), overwrite=True)

    def _start_updated(self, attrs: dict[str, str]) -> None:
        self._push("updated", 1)

    def _end_updated(self) -> None:
        self._save("updated_parsed", _parse_date(self._pop("updated")), overwrite=True)

    def _start_source(self, attrs: dict[str, str]) -> None:
        if "url" in attrs:
            self.sourcedata["href"] = attrs["url"]
        self._push("source", 1)
        self.insource, self.title_depth = 1, -1

    def _end_source(self) -> None:
        self.insource = 0
        self._pop("source")
        self.sourcedata.clear()


# feedparser's aliases (`_start_dc_creator = _start_author`, ...): handler -> other elements.
_ALIASES = {
    "author": "dc_author dc_creator itunes_author managingeditor",
    "category": "dc_subject keywords",
    "description": "dc_description media_description",
    "email": "itunes_email",
    "guid": "id",
    "item": "entry",
    "language": "dc_language",
    "name": "itunes_name",
    "published": "dcterms_issued issued pubdate",
    "summary": "itunes_summary",
    "title": "dc_title",
    "updated": "dc_date dcterms_modified lastbuilddate modified",
    "url": "homepage uri",
}
_START_ONLY = {
    "body": "xhtml_body",
    "content_encoded": "fullitem",
    "title": "media_title",
}
_END_ONLY = {
    "category": "itunes_category media_category",
    "channel": "feed",
    "content": "body content_encoded fullitem xhtml_body",
    "description": "abstract",
}


def _handlers(kind: str, *tables: dict[str, str]) -> dict[str, Any]:
    # Every `kind` method of the class by its element name, then each alias as its handler.
    found = {
        n[len(kind) :]: getattr(FeedElements, n) for n in dir(FeedElements) if n.startswith(kind)
    }
    for table in tables:
        found.update(
            (alias, found[name]) for name, aliases in table.items() for alias in aliases.split()
        )
    return found


STARTS = _handlers("_start_", _ALIASES, _START_ONLY)
ENDS = _handlers("_end_", _ALIASES, _END_ONLY)
