"""Byte-level guards run on a feed body before feedparser sees it.

Contract, in the order `parse` applies them:

- `gunzip(body, limit)`: a raw gzip body (corpus: ru_orenburg_news_rss20_gzip_body.xml.gz, a
  server compressing twice or without Content-Encoding) inflated, within `limit` bytes: past it
  `PermanentError`, a corrupt stream `NotAFeed`. Only the first gzip member is read.
- `wide_to_utf8(body, content_type)`: a UTF-16/32 or EBCDIC body transcoded to UTF-8, with its
  XML declaration and the returned Content-Type no longer naming the old encoding, so the next
  step can read its prolog; any other body comes back unchanged.
- `defuse(body)`: the DOCTYPE, internal subset included, removed. feedparser keeps "safe"
  literal ENTITY declarations and expands them in both its parsers: 1 MB declaring one 1 MB
  entity and using it 2,000 times took 50 s and 5.8 GB (expat's amplification limit stops the
  strict parser, then the loose parser expands it all). External entities are never fetched
  (feedparser disables external general entities) and, with the DOCTYPE gone, never even
  declared. A feed relying on an internal entity (corpus: hostile/.../entity_in_doctype.xml)
  keeps the `&name;` text.

Pure functions of bytes: nothing here parses a feed or does I/O.
"""

from __future__ import annotations

import re
import zlib

from monitor.core.errors import NotAFeed, PermanentError

__all__ = ["defuse", "gunzip", "wide_to_utf8"]


def gunzip(body: bytes, limit: int) -> bytes:
    """A raw gzip body inflated, refused past `limit` bytes (PermanentError) or when corrupt."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise NotAFeed(f"not a feed (corrupt gzip body: {exc})") from None
    if len(out) > limit:
        raise PermanentError(f"gzip body larger than {limit // 2**20} MiB once inflated")
    return out


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
)
# XML 1.0 Appendix F.1: the first four bytes of a document without a BOM.
_SNIFF = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),  # "<?xm" in EBCDIC
)
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]{0,200}?encoding\s*=\s*)(["'])[^"']{0,40}\2""")
_PROBE = "<!ENTITY x>"


def wide_to_utf8(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """Transcode a document whose markup is not ASCII bytes (UTF-16/32, EBCDIC) to UTF-8."""
    # RFC 7303 §3: a BOM wins; then the bytes themselves, then the HTTP charset.
    codec = next((c for bom, c in _BOMS if body.startswith(bom)), None)
    if codec is None:
        codec = next((c for head, c in _SNIFF if body.startswith(head)), None)
    if codec is None and content_type:
        match = _CHARSET.search(content_type.encode("latin-1", "replace"))
        if match:
            codec = match.group(1).decode("ascii").lower()
    try:
        if codec is None or _PROBE.encode(codec) == _PROBE.encode("ascii"):
            return body, content_type
        text = body.decode(codec, errors="replace").removeprefix("\ufeff")
    except (LookupError, UnicodeError):
        return body, content_type
    utf8 = _DECLARED_ENCODING.sub(rb"\1\2utf-8\2", text.encode("utf-8"), count=1)
    # The HTTP charset named the old encoding; feedparser would believe it over the bytes.
    return utf8, (content_type or "").split(";")[0].strip() or None


_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_DOCTYPE_SPECIAL = re.compile(rb"""["'\[\]>]|<!--""")
_LEFTOVER_DECL = re.compile(rb"<!(?=(?:DOCTYPE|ENTITY))", re.IGNORECASE)
_HEAD_END = re.compile(rb"<\w")


def defuse(body: bytes) -> bytes:
    """Remove every DOCTYPE from the prolog; neutralise any declaration feedparser could still see.

    The prolog (XML 1.0 §2.8) is whitespace, comments, processing instructions and at most one
    DOCTYPE; the scan follows that grammar and is linear. feedparser's own regex treats
    everything before the first "<" + word character as the prolog, so if a malformed prolog
    stopped the scan, any "<!DOCTYPE"/"<!ENTITY" left there is broken to "<!-" + name.
    """
    bom = b"\xef\xbb\xbf" if body.startswith(b"\xef\xbb\xbf") else b""
    rest = body[len(bom) :]
    stripped = rest.lstrip(b" \t\r\n")
    if stripped.startswith(b"<?xml"):
        # Whitespace before the XML declaration is fatal to expat (corpus: en_londonist,
        # en_techcrunch): dropping it keeps those feeds on the strict parser.
        rest = stripped
    kept: list[bytes] = [bom]
    i = kept_from = 0
    n = len(rest)
    while i < n:
        while i < n and rest[i] in b" \t\r\n":
            i += 1
        if rest.startswith(b"<?", i):
            end = rest.find(b"?>", i + 2)
            i = n if end < 0 else end + 2
        elif rest.startswith(b"<!--", i):
            end = rest.find(b"-->", i + 4)
            i = n if end < 0 else end + 3
        elif _DOCTYPE.match(rest, i):
            kept.append(rest[kept_from:i])
            i = kept_from = _doctype_end(rest, i)
        else:
            break
    kept.append(rest[kept_from:])
    out = b"".join(kept)
    head = _HEAD_END.search(out)
    head_end = head.end() if head else len(out)
    if _LEFTOVER_DECL.search(out, 0, head_end):
        out = _LEFTOVER_DECL.sub(b"<!-", out[:head_end]) + out[head_end:]
    return out


def _doctype_end(body: bytes, i: int) -> int:
    """The index after the DOCTYPE starting at `i`, its [internal subset] included."""
    n = len(body)
    in_subset = False
    i += len(b"<!DOCTYPE")
    while True:
        match = _DOCTYPE_SPECIAL.search(body, i)
        if match is None:
            return n
        token = match.group()
        if token in (b'"', b"'"):
            end = body.find(token, match.end())
            i = n if end < 0 else end + 1
        elif token == b"<!--":
            end = body.find(b"-->", match.end())
            i = n if end < 0 else end + 3
        elif token == b"[":
            in_subset, i = True, match.end()
        elif token == b"]":
            in_subset, i = False, match.end()
        elif not in_subset:
            return match.end()
        else:
            i = match.end()  # a ">" closing a declaration inside the subset


# A character reference to a surrogate, to NUL or beyond U+10FFFF names no character (XML 1.0
# §4.1, production WFC: Legal Character), yet feedparser's fallback parser turns it into a
# lone surrogate that breaks encoding later. One such reference must not cost the whole feed.
_CHAR_REF = re.compile(rb"&#([xX][0-9a-fA-F]{1,8}|[0-9]{1,10});")


def _char_ref(match: re.Match[bytes]) -> bytes:
    digits = match.group(1)
    code = int(digits[1:], 16) if digits[:1] in b"xX" else int(digits)
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    return match.group(0)


def drop_bad_char_refs(body: bytes) -> bytes:
    """Replace references to code points that are not characters with U+FFFD's reference."""
    if b"&#" not in body:
        return body
    return _CHAR_REF.sub(_char_ref, body)
