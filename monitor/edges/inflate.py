"""Bounded incremental decompression of an HTTP body's Content-Encoding.

Contract: `Inflater.for_encoding(header, limit)` returns a decoder for a Content-Encoding header
value (none or identity, gzip / x-gzip, deflate as a zlib stream or raw DEFLATE), or None for
anything else (br, zstd, compress, stacked codings). Its `feed(chunk)` returns the bytes decoded
so far and `finish()` the rest; the two together never produce more than `limit` bytes, raising
`TooLarge` instead, and a stream cut short raises `EOFError`, a corrupt one `zlib.error`.
Concatenated gzip members are all decoded; trailing bytes after the stream are ignored.
"""

from __future__ import annotations

import zlib

__all__ = ["Inflater", "TooLarge"]

_GZIP_MAGIC = b"\x1f\x8b"


class TooLarge(Exception):
    """More than the limit came out: raised at the first byte past it."""


class Inflater:
    """Incremental gzip/deflate decoding that never produces more than `limit` bytes in total.

    zlib's `max_length` stops inflating at the cap and leaves the rest of the input in
    `unconsumed_tail`, so a bomb is detected after `limit + 1` bytes, whatever its ratio.
    """

    def __init__(self, kind: str, limit: int) -> None:
        self._kind = kind
        self._limit = limit
        self._produced = 0
        self._decoder: zlib._Decompress | None = None
        self._pending = b""  # deflate: the first bytes, until the format can be told
        self._done = False

    @classmethod
    def for_encoding(cls, header: str, limit: int) -> Inflater | None:
        codings = [c.strip().lower() for c in header.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if not codings:
            return cls("identity", limit)
        if len(codings) == 1 and codings[0] in ("gzip", "x-gzip", "deflate"):
            return cls("deflate" if codings[0] == "deflate" else "gzip", limit)
        return None  # br, zstd, compress, or stacked codings: none of which we asked for

    def feed(self, data: bytes) -> bytes:
        if self._kind == "identity":
            return self._count(data)
        if self._done or not data:
            return b""
        if self._decoder is None:
            self._pending += data
            if self._kind == "deflate" and len(self._pending) < 2:
                return b""
            self._decoder = zlib.decompressobj(self._wbits(self._pending))
            data, self._pending = self._pending, b""
        return self._inflate(data)

    def finish(self) -> bytes:
        if self._kind == "identity" or self._done:
            return b""
        if self._decoder is None:
            if not self._pending:
                return b""  # an empty body with a Content-Encoding header
            self._decoder = zlib.decompressobj(self._wbits(self._pending))
            out = self._inflate(self._pending)
        else:
            out = b""
        out += self._count(self._decoder.flush())
        if not self._decoder.eof and not self._done:
            raise EOFError("compressed stream ended before its end marker")
        return out

    def _wbits(self, head: bytes) -> int:
        if self._kind == "gzip":
            return 16 + zlib.MAX_WBITS
        # RFC 9110 §8.4.1.2 "deflate" is a zlib stream (RFC 1950), but servers have long sent raw
        # DEFLATE (RFC 1951) under that name; a zlib header is two bytes that are a multiple of 31.
        if len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0:
            return zlib.MAX_WBITS
        return -zlib.MAX_WBITS

    def _inflate(self, data: bytes) -> bytes:
        assert self._decoder is not None
        out = bytearray()
        while data:
            if self._decoder.eof:
                # RFC 1952 §2.2: a gzip body may be several members one after the other.
                if self._kind != "gzip" or not data.startswith(_GZIP_MAGIC):
                    self._done = True  # trailing garbage after the stream: ignored, as gzip(1)
                    break
                self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            chunk = self._decoder.decompress(data, self._limit - self._produced + 1)
            out += self._count(chunk)
            if self._decoder.eof:
                data = self._decoder.unused_data
            elif not chunk and self._decoder.unconsumed_tail == data:
                break  # no progress (cannot happen while there is room left; never spin)
            else:
                data = self._decoder.unconsumed_tail
        return bytes(out)

    def _count(self, data: bytes) -> bytes:
        self._produced += len(data)
        if self._produced > self._limit:
            raise TooLarge
        return data
