"""The Telegram-HTML checker behind the fake Bot API: what Telegram accepts, and what it shows.

Contract: `parse_html(text)` returns the visible text of a message sent with parse_mode HTML
(entities decoded, tags gone), or raises `HtmlParseError` with Telegram's wording where the Bot
API would answer 400 "can't parse entities": a tag outside SUPPORTED_TAGS, an unclosed or
mismatched tag, nested blockquotes, an `a` without href, a bare `<`, or an `&` that is not an
entity Telegram knows.
"""

from __future__ import annotations

import html
import re

__all__ = ["SUPPORTED_TAGS", "HtmlParseError", "parse_html"]

# Bot API "Formatting options", HTML style: the only tags it accepts.
_TAG_NAMES = "b strong i em u ins s strike del span tg-spoiler a tg-emoji code pre blockquote"
SUPPORTED_TAGS = frozenset(_TAG_NAMES.split())
_TAG = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)"
    r"((?:\s+[A-Za-z_:][A-Za-z0-9_:.-]*(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*>"
)
# "All numerical HTML entities are supported. The API currently supports only the following
# named HTML entities: &lt;, &gt;, &amp; and &quot;."
_ENTITY = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(lt|gt|amp|quot));")


class HtmlParseError(Exception):
    """Where Telegram would answer 400 "can't parse entities"; the message is its wording."""


def parse_html(text: str) -> str:
    """The visible text of a Telegram-HTML message; raises HtmlParseError where Telegram would."""

    def offset(i: int) -> int:
        return len(text[:i].encode("utf-8"))

    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            if m is None:
                raise HtmlParseError(f"Unexpected character '<' at byte offset {offset(i)}")
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in SUPPORTED_TAGS:
                raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {offset(i)}')
            if closing:
                if not stack or stack[-1] != name:
                    raise HtmlParseError(f"Unexpected end tag at byte offset {offset(i)}")
                stack.pop()
            else:
                if name == "blockquote" and "blockquote" in stack:
                    raise HtmlParseError("Blockquote entities can't be nested")
                if name == "a" and "href" not in m.group(3):
                    raise HtmlParseError(f'Tag "a" must have attribute "href" at byte {offset(i)}')
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if m is None:
                raise HtmlParseError(f"Character entity expected at byte offset {offset(i)}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)
