"""Splitting Telegram HTML into messages that each fit the Bot API's length limit.

Contract: `split_html(html, limit)` is pure and returns the parts, in order, of a Telegram-HTML
text: each part is at most `limit` UTF-16 code units (`utf16_len`, how Telegram counts), has
some visible text (the Bot API refuses an empty message: "message text is empty") and is
well-formed on its own. A text that fits comes back unchanged as the one part; a text with no
visible text gives no parts.

Cuts fall, in order of preference, at a blank line (between the blocks of an alert), at a line
end, at a space, and else between any two characters; a preferred cut is taken only when it
leaves the part at least half full, so one long block does not cost a message of its own.
No cut falls inside a tag or an entity (`&amp;` stays whole; Python strings hold code points,
so an astral emoji is never halved either). A tag open at a cut is closed at the end of the part
and opened again, with the same attributes, at the start of the next one, so a blockquote or a
link that spans a cut stays one on both sides. The whitespace at a cut is dropped (Telegram
trims a message's ends anyway), so the parts' visible texts, put together, are the whole's
visible text up to the whitespace at the cuts.

When the tags open at a cut are too long to reopen within the limit (a link whose URL is
longer than the limit), that part goes out without its markup rather than not at all.

`split_text` cuts plain text (sent with no parse mode) the same way, reading no markup.
`join_part_ids` / `parse_part_ids` write and read the external id of a message sent in parts,
`<chat_id>:<msgid>[,<msgid>…]`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MIN_LIMIT",
    "join_part_ids",
    "parse_part_ids",
    "split_html",
    "split_text",
    "utf16_len",
]

#: The longest entity (`&#x10FFFF;`, `&#1114111;`) is 10 units: no smaller limit can progress.
MIN_LIMIT = 10

# An opening or closing tag, attribute values quoted or not; or an entity; or one code point.
_TOKEN = re.compile(
    r"""(?P<tag><(?P<close>/?)(?P<name>[A-Za-z][A-Za-z0-9-]*)"""
    r"""(?:[^>"']|"[^"]*"|'[^']*')*>)"""
    r"""|(?P<entity>&(?:\#[0-9]{1,7}|\#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{0,7});)"""
    r"""|(?P<char>.)""",
    re.DOTALL,
)

_TEXT, _OPEN, _CLOSE, _WS = 0, 1, 2, 3
# Cut classes, best first; each class's positions are also positions of the classes after it.
_BLANK, _LINE, _SPACE, _ANY = 0, 1, 2, 3


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an astral-plane emoji counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class _Token:
    kind: int
    text: str
    name: str  # the tag's name, lower case; "" for text
    cost: int


@functools.lru_cache(maxsize=4096)
def _char(ch: str) -> _Token:
    # One shared token per character: a text is mostly characters, and tokens are immutable.
    return _Token(_WS if ch.isspace() else _TEXT, ch, "", 2 if ord(ch) > 0xFFFF else 1)


def _tokenize(html: str, markup: bool = True) -> list[_Token]:
    if not markup:
        return [_char(ch) for ch in html]
    tokens: list[_Token] = []
    for m in _TOKEN.finditer(html):
        text = m.group(0)
        if m.lastgroup == "char":
            tokens.append(_char(text))  # a stray "<" or "&" included
        elif m.lastgroup == "entity":
            tokens.append(_Token(_TEXT, text, "", len(text)))
        elif m.group("close"):
            tokens.append(_Token(_CLOSE, text, m.group("name").lower(), utf16_len(text)))
        elif text.endswith("/>"):  # self-closing: nothing to reopen (Telegram has none)
            tokens.append(_Token(_TEXT, text, "", utf16_len(text)))
        else:
            tokens.append(_Token(_OPEN, text, m.group("name").lower(), utf16_len(text)))
    return tokens


def _apply(stack: list[_Token], token: _Token) -> None:
    """Track the open tags: push an opening tag, pop up to the matching one on a closing tag."""
    if token.kind == _OPEN:
        stack.append(token)
    elif token.kind == _CLOSE:
        for depth in range(len(stack) - 1, -1, -1):
            if stack[depth].name == token.name:
                del stack[depth:]
                return


def _closing_cost(stack: list[_Token]) -> int:
    return sum(len(t.name) + 3 for t in stack)


def _closing(stack: list[_Token]) -> str:
    return "".join(f"</{t.name}>" for t in reversed(stack))


def _last_text(tokens: list[_Token]) -> int:
    """The index of the last token with visible text, -1 when there is none."""
    return next((i for i in range(len(tokens) - 1, -1, -1) if tokens[i].kind == _TEXT), -1)


def split_html(html: str, limit: int = 4096) -> list[str]:
    """`html` cut into parts of at most `limit` UTF-16 units each; see the module docstring."""
    return _split(html, limit, markup=True)


def split_text(text: str, limit: int = 4096) -> list[str]:
    """Plain text (sent with no parse mode) cut the same way; `<` and `&` are just characters."""
    return _split(text, limit, markup=False)


def _split(html: str, limit: int, markup: bool) -> list[str]:
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} UTF-16 units, not {limit}")
    tokens = _tokenize(html, markup)
    last = _last_text(tokens)
    if last < 0:
        return []
    if utf16_len(html) <= limit:
        return [html]
    parts: list[str] = []
    stack: list[_Token] = []
    start = 0
    while True:
        start = _skip_to_text(tokens, start, stack)
        if start > last:  # only whitespace and tags are left
            return parts
        part, start = _next_part(tokens, start, stack, limit)
        parts.append(part)


def _skip_to_text(tokens: list[_Token], start: int, stack: list[_Token]) -> int:
    """Past the whitespace at a cut, and past closing tags there: reopening a tag only to close
    it at once would add an empty entity."""
    while start < len(tokens):
        token = tokens[start]
        if token.kind == _WS or (token.kind == _CLOSE and stack and stack[-1].name == token.name):
            _apply(stack, token)
            start += 1
        else:
            break
    return start


def _cut_class(tokens: list[_Token], i: int) -> int:
    """How good a cut before tokens[i] is (the whitespace there goes with the cut)."""
    token = tokens[i]
    if token.kind != _WS:
        return _ANY
    if token.text == "\n":
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        return _BLANK if following is not None and following.text == "\n" else _LINE
    return _SPACE


def _next_part(
    tokens: list[_Token], start: int, stack: list[_Token], limit: int
) -> tuple[str, int]:
    """The part that starts at tokens[start] with `stack` open; returns it and where the next
    one starts. `stack` is updated to the tags open at the cut."""
    prefix = "".join(t.text for t in stack)
    used = utf16_len(prefix)
    scan = list(stack)
    best: list[int | None] = [None, None, None, None]  # latest feasible cut of each class
    fill: list[int] = [0, 0, 0, 0]
    closers = _closing_cost(scan)
    seen_text = False
    i = start
    while i < len(tokens):
        token = tokens[i]
        if seen_text and tokens[i - 1].kind != _OPEN and token.kind != _CLOSE:
            cost = used + closers
            if cost <= limit:
                for cls in range(_cut_class(tokens, i), _ANY + 1):
                    best[cls], fill[cls] = i, cost
        used += token.cost
        if used > limit:
            break
        if token.kind == _TEXT:
            seen_text = True
        elif token.kind != _WS:
            _apply(scan, token)
            closers = _closing_cost(scan)
        i += 1
    else:
        # The rest fits: it is the last part (the whole text's own closing tags included).
        if used + closers <= limit:
            rest = "".join(t.text for t in tokens[start:])
            return prefix + rest + _closing(scan), len(tokens)
    cut = next(
        (best[c] for c in (_BLANK, _LINE, _SPACE) if best[c] is not None and fill[c] * 2 >= limit),
        best[_ANY],
    )
    if cut is None:
        return _bare_part(tokens, start, stack, limit)
    for token in tokens[start:cut]:
        _apply(stack, token)
    end = cut
    while tokens[end - 1].kind == _WS:  # the whitespace before the cut goes with it
        end -= 1
    return prefix + "".join(t.text for t in tokens[start:end]) + _closing(stack), cut


def _bare_part(
    tokens: list[_Token], start: int, stack: list[_Token], limit: int
) -> tuple[str, int]:
    """A part without markup, for when the open tags alone leave no room for any text."""
    out: list[str] = []
    used = 0
    i = start
    while i < len(tokens):
        token = tokens[i]
        if token.kind in (_OPEN, _CLOSE) or (token.kind == _WS and not out):
            _apply(stack, token)
        elif used + token.cost > limit:
            break
        else:
            out.append(token.text)
            used += token.cost
        i += 1
    return "".join(out), i


def join_part_ids(chat_id: int | str, message_ids: Sequence[str | int]) -> str:
    """The external id of a message sent in parts: `<chat_id>:<msgid>[,<msgid>…]`."""
    return f"{chat_id}:{','.join(str(i) for i in message_ids)}"


def parse_part_ids(external_id: str) -> tuple[int | str, list[int]] | None:
    """`join_part_ids` undone: the chat (an int, or an `@name`) and the message ids; None when
    `external_id` is not of that form."""
    chat, _, ids = external_id.rpartition(":")
    try:
        numbers = [int(i) for i in ids.split(",")]
    except ValueError:
        return None
    if not chat:
        return None
    digits = chat[1:] if chat.startswith("-") else chat
    return (int(chat) if digits.isdigit() else chat), numbers
