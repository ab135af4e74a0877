"""Dedupe keys: what makes two feed items "the same article" for the database's unique indexes.

* `canonical_url` rewrites a link so that the copies publishers and aggregators hand out compare
  equal: scheme and host lowercased (RFC 3986 §6.2.2.1), default ports dropped (§6.2.3), an empty
  path made `/`, the fragment dropped (it never reaches the server), tracking parameters removed
  (utm_*, fbclid, gclid and their kin), the remaining query parameters sorted.
* `url_key` and `guid_key` hash those strings to fixed-width keys: GUIDs and URLs can be
  kilobytes long, and a unique index wants short, uniform values.

The database enforces uniqueness on (url_key) and on (feed_id, guid_key); this module only
computes the keys.
"""

from __future__ import annotations

import hashlib
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

# Parameters that identify a campaign, a click or a share, never the article itself.
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_", "ga_", "__hs", "_hs")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "ysclid",
        "twclid", "ttclid", "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok",
        "_ga", "_gl", "_openstat", "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid",
        "vero_conv", "vero_id", "wickedid", "xtor", "cmpid", "ncid", "ocid", "sr_share",
        "smid", "spm", "soc_src", "soc_trk", "ref_src", "ref_url", "rss", "rss_id", "cmp",
        "feature", "taid", "guccounter", "guce_referrer", "guce_referrer_sig",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_NAMES or lowered.startswith(_TRACKING_PREFIXES)


def canonical_url(url: str) -> str | None:
    """The comparable form of an http(s) link, or None when `url` is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        host = host.lower()
    if ":" in host:  # an IPv6 literal needs its brackets back
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = sorted((k, v) for k, v in query if not _is_tracking(k))
    return urlunsplit(
        SplitResult(scheme, netloc, parts.path or "/", urlencode(kept, doseq=True), "")
    )


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def url_key(url: str | None) -> str | None:
    """The unique key of an article's link (None when it has no usable http(s) link)."""
    if url is None:
        return None
    canonical = canonical_url(url)
    return None if canonical is None else _key("url", canonical)


def guid_key(guid: str) -> str:
    """The per-feed unique key of an item's GUID (RSS <guid>, Atom <id>, or its fallback)."""
    return _key("guid", guid.strip())
