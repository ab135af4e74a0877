"""Story fingerprints: do two articles report the same story?

A wire story is republished with an edited headline, a trimmed or lightly rewritten lead, a
dateline or the outlet's boilerplate. A different story on the same topic the same week (a
follow-up, a reaction, another incident in the same place) shares the names but not the facts.
`fingerprint(title, summary)` turns an article into a MinHash signature; the share of values two
signatures agree on estimates the Jaccard similarity of the articles' word sets, and
`same_story` says whether that estimate reaches `THRESHOLD` and `vetoed` does not object.

Contract:

* pure: no I/O, no clock, no randomness at run time. A fingerprint depends only on the text and
  this module's constants (SHAKE-128 and BLAKE2b are standard, not Python's salted `hash`), so
  stored fingerprints and band keys stay comparable across processes, machines and versions of
  Python; changing the shingling or the hashing means recomputing the stored ones;
* `fingerprint` returns None below `_MIN_SHINGLES` distinct words: too little to tell stories
  apart;
* text is folded as for watchlist matching (`monitor.core.fold`), so case, accents, full-width
  forms and scripts compare alike (`TAIWAN` = `Taïwan`); only the first `_LEAD_WORDS` words of
  the summary count (the caller passes the whole summary);
* `band_keys` gives `BANDS` keys in [0, 2**63) (a PostgreSQL BIGINT), the band's index hashed in.
  Articles sharing a key are candidates, to be confirmed with `same_story`; a pair of Jaccard
  similarity J shares at least one key with probability 1 - (1 - J**ROWS)**BANDS. The keys depend
  on the signature alone: the veto only applies once candidates are found;
* `similarity(a, b)` is the estimated Jaccard and nothing else; `same_story(a, b)` is
  `similarity(a, b) >= THRESHOLD and not vetoed(a, b)`;
* `vetoed(a, b)`: two reports cut from one template. Both titles carry figures (numbers, joined
  and split as for the shingles: 40,000 = 40.000 = 40000, 6,4 = 6.4, $95bn = 95; and for figures
  also 40 000 with a plain space), they share none, and the rest of the titles, names left out,
  is alike (Jaccard of the frames >= `_FRAME_ALIKE`);
* `Fingerprint.encode()` is one Text value, `<values>/<figures>/<frame>` in hex, 8 digits an
  item; `decode` also reads the older `<values>` alone, as a fingerprint with no title figures,
  which `vetoed` never vetoes.

Shingles, chosen by measurement on tests/data/stories (`python -m tests.stories_eval`): single
words rather than word pairs, because rewrites reorder clauses and swap verbs but keep the names,
nouns and numbers (word pairs separated same from different stories worse); words of one or two
letters are dropped (of, de, в, في: they are in every article); a run of Chinese, Japanese,
Korean or Thai gives its character pairs. Numbers are the facts that tell one templated report
from the next (a toll, a magnitude, a rate), so digit groups are joined (40,000 = 40000), digits
glued to letters are split off ($95bn = $95 billion) and every number weighs three words.

Two reports cut from one template (quake bulletins, earnings or match reports) share most of their
words and can score above THRESHOLD; no word weighting measured here separated them without
losing rewritten copies, hence the veto on the titles. A conflict of figures alone is not enough:
rewritten headlines of one story often cite different facts of it (pairs.jsonl: "first time since
2022" / "9.8 trillion yen", "15% of workforce" / "15,000 jobs", 震度6強 / M7.4), and vetoing them
lost 3 of 150 copies there while no false positive of that set has conflicting title figures.
Those headlines are otherwise unalike (frame Jaccard <= 0.28); a templated pair is alike apart
from its figures and names (Gaza toll "passes 30,000" / "passes 40,000": 1.0). Names are the
capitalised words of a title in sentence case; in Title Case, capitals or an uncased script
nothing is known to be a name, so the names stay in the frame and the veto fires less.

Known limit: templated reports that differ only in names (p-en-165, two 2-1 wins over Chelsea;
p-en-166, two earnings beats) are not vetoed. Name conflicts were measured and left out: titles
with names and none shared lost 6 copies on pairs.jsonl; alike titles each with a name the other
lacks removed p-en-166 (and p-en-165 with a looser test of sentence case) but, in a probe, split
over 100 of the 150 labelled copies once their titles carried different outlet suffixes
("- Reuters" / "| BBC News"), as feed aggregators write them.
"""

from __future__ import annotations

import hashlib
import operator
import re
import struct
from dataclasses import dataclass
from itertools import islice

import regex

from monitor.core.fold import TOKEN, fold, fold_cased, nfc

# 192 values: the estimate's standard error at J = 0.5 is 0.036 (0.044 with 128), and 64 bands
# of 3 rows make a pair at THRESHOLD a candidate with probability 0.9998, at J = 0.4 0.985, while
# unrelated articles (J <= 0.05) share a key with probability below 0.01. 128 values allow only
# 2 rows (J = 0.1 pairs become candidates half the time) or 4 (J = 0.5 pairs missed 13% of it).
SIGNATURE_SIZE = 192
BANDS = 64
ROWS = 3
# On pairs.jsonl precision >= 0.98 and recall >= 0.9 both hold from 0.49 to 0.54: below,
# templated and follow-up stories get in (precision 0.974 at 0.45); above, copies with a trimmed
# lead fall out (recall 0.89 at 0.55). See the table printed by tests/stories_eval.py.
THRESHOLD = 0.5
_LEAD_WORDS = 50
_MIN_SHINGLES = 4
# On pairs.jsonl the same-story headlines whose figures conflict have frames at most 0.28 alike
# (p-ja-01, character pairs; the English ones at most 0.07), templated ones from 0.40 (Peru
# quakes p-es-06: "costa central" / "sur" are not names) through 0.56 (hurricanes p-en-112) to
# 1.0 (Gaza tolls p-en-074). Any value above 0.28 gives the same verdicts at THRESHOLD there;
# 0.5 keeps a wide margin from the copies, as a wrong veto splits a story into two alerts.
_FRAME_ALIKE = 0.5

# Headlines are short, but a hostile feed can put a page in the title: bound the work there too.
_TITLE_WORDS = 50
_NUMBER_WEIGHT = 3
_SHORT_WORD = 2
# Digit groups and decimals: 40,000, 40.000, 40 000 (French, with a no-break space), 3.75, 3,75.
_DIGIT_JOIN = regex.compile(r"(?<=\d)[.,\u00a0\u202f](?=\d)")
_DIGIT_RUNS = regex.compile(r"\d+|\D+")
# Digit groups apart by a plain space (40 000), as many French and Russian feeds write them. The
# shingles keep them two words (joining them would change stored signatures); a figure joins
# them, or two writings of one toll would be a conflict and veto a copy.
_SPACED_GROUPS = regex.compile(r"(?<!\d)\d{1,3}(?: \d{3})+(?!\d)")
_ASCII_WORD = re.compile(r"[a-z0-9]+")

# Each value is 31 bits in a 32-bit lane; the lane's top bit is the guard that the lane-wise
# minimum below borrows from. SIGNATURE_SIZE lanes are one Python int.
_LANES = 4 * SIGNATURE_SIZE
_LOW = int.from_bytes(b"\x7f\xff\xff\xff" * SIGNATURE_SIZE, "big")
_GUARD = int.from_bytes(b"\x80\x00\x00\x00" * SIGNATURE_SIZE, "big")
_VALUES = struct.Struct(f">{SIGNATURE_SIZE}I")
_BAND = struct.Struct(f">I{ROWS}I")
_KEY_BITS = (1 << 63) - 1

assert BANDS * ROWS == SIGNATURE_SIZE


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A MinHash signature, `SIGNATURE_SIZE` values below 2**31, and what `vetoed` reads of the
    title: its figures and its frame (the words other than figures and names), each a sorted
    tuple of distinct 32-bit hashes. Only `values` make `similarity` and `band_keys`; the title
    parts follow the title's case (names are told by it), so an all-caps copy of a headline has
    the same values but may have another frame."""

    values: tuple[int, ...]
    figures: tuple[int, ...] = ()
    frame: tuple[int, ...] = ()

    def encode(self) -> str:
        """`<values>/<figures>/<frame>`, hex of 8 digits an item, for a Text column."""
        return "/".join(
            struct.pack(f">{len(part)}I", *part).hex()
            for part in (self.values, self.figures, self.frame)
        )

    @classmethod
    def decode(cls, text: str) -> Fingerprint:
        """The inverse of `encode`, and of the older `<values>` alone (read as no title figures);
        ValueError on values of another width, on text that is not hex, or on other parts."""
        parts = text.split("/")
        raw = bytes.fromhex(parts[0])
        if len(parts) not in (1, 3) or len(raw) != _LANES or any(b & 0x80 for b in raw[::4]):
            raise ValueError(f"not a fingerprint: {text[:20]!r}...")
        if len(parts) == 1:
            return cls(_VALUES.unpack(raw))
        return cls(_VALUES.unpack(raw), _hashes(parts[1]), _hashes(parts[2]))


def _hashes(text: str) -> tuple[int, ...]:
    raw = bytes.fromhex(text)
    if len(raw) % 4:
        raise ValueError(f"not a fingerprint part: {text[:20]!r}...")
    return struct.unpack(f">{len(raw) // 4}I", raw)


def _hash32(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big")


def _words(text: str, limit: int) -> list[str]:
    """Folded words of `text`, at most `limit` of them; a no-space-script run gives its pairs.

    Two characters of Chinese or Japanese are about one word, so a pair costs half a word.
    """
    out: list[str] = []
    budget = 2 * limit
    # A summary can be a whole page: fold no more than the words that can count, with room for
    # the short words that do not.
    folded = fold(_DIGIT_JOIN.sub("", nfc(text[: 32 * limit])))
    # On ASCII text TOKEN's words are exactly [a-z0-9]+ (fold lowercased them), and the stdlib
    # scanner finds them three times faster; most feed text is ASCII.
    tokens = _ASCII_WORD.finditer(folded) if folded.isascii() else TOKEN.finditer(folded)
    for m in tokens:
        token = m.group()
        if m.lastindex == 1:
            grams = [token[i : i + 2] for i in range(len(token) - 1)] or [token]
            out.extend(grams[:budget])
            budget -= len(grams)
        else:
            # $95bn is $95 billion, COP28 is COP 28: a number glued to letters is still a number.
            for word in (token,) if token.isalpha() else _DIGIT_RUNS.findall(token):
                if len(word) > _SHORT_WORD or word[0].isdigit():
                    out.append(word)
                    budget -= 2
        if budget <= 0:
            break
    return out


def _shingles(title: str, lead: str) -> set[str]:
    """The distinct words the fingerprint is computed from (before numbers are weighted)."""
    return set(_words(title, _TITLE_WORDS)) | set(_words(lead, _LEAD_WORDS))


def _names(title: str) -> set[str]:
    """Folded words of the title's capitalised words, if its case tells names: sentence case,
    where at most half of the cased words of three letters or more are capitalised (the first
    word among them). In Title Case, capitals, lower case or an uncased script: none."""
    upper: list[str] = []
    lower = 0
    for m in islice(TOKEN.finditer(fold_cased(title[: 32 * _TITLE_WORDS])), _TITLE_WORDS):
        word = m.group()
        if m.lastindex == 1 or len(word) <= _SHORT_WORD:
            continue  # no-space scripts have no case; short words are not shingles
        if word[0].isupper():
            upper.append(word)
        elif word[0].islower():
            lower += 1
    if not upper or len(upper) > lower:
        return set()
    return set(_words(" ".join(upper), _TITLE_WORDS))


def _title_parts(title: str, words: set[str]) -> tuple[set[str], set[str]]:
    """The title's figures and its frame (its other words, less its names); `words` are the
    title's words as the shingles have them."""
    numbers = {w for w in words if w[0].isdigit()}
    if _SPACED_GROUPS.search(title):
        title_joined = _SPACED_GROUPS.sub(lambda m: m.group().replace(" ", ""), title)
        figures = {w for w in _words(title_joined, _TITLE_WORDS) if w[0].isdigit()}
    else:
        figures = numbers
    return figures, words - numbers - _names(title)


def fingerprint(title: str, lead: str) -> Fingerprint | None:
    """The article's signature from its title and summary (cut to its first `_LEAD_WORDS`
    words), or None with fewer than `_MIN_SHINGLES` distinct words."""
    title_words = set(_words(title, _TITLE_WORDS))
    words = title_words | set(_words(lead, _LEAD_WORDS))  # as `_shingles`
    if len(words) < _MIN_SHINGLES:
        return None
    figures, frame = _title_parts(title, title_words)
    weighted = list(words)
    for word in words:
        if word[0].isdigit():
            weighted.extend(f"{word}\x00{k}" for k in range(1, _NUMBER_WEIGHT))
    # One SHAKE-128 call per shingle gives SIGNATURE_SIZE independent 31-bit hashes at once, and
    # the lane-wise minimum over shingles is taken on whole Python ints (SWAR): a handful of
    # C-level big-int operations per shingle. Permuting a 64-bit hash SIGNATURE_SIZE times with
    # (a*h + b) mod (2**61 - 1) in Python measured 2.5 ms for 60 shingles; this, about 0.25 ms.
    low, guard = _LOW, _GUARD
    sig = low
    for shingle in weighted:
        value = int.from_bytes(hashlib.shake_128(shingle.encode()).digest(_LANES), "big") & low
        # In each lane, (sig + 2**31) - value keeps its guard bit iff sig >= value, and never
        # borrows from the next lane; the guard bit is then widened to a 31-bit lane mask.
        ge = ((sig | guard) - value) & guard
        sig ^= (sig ^ value) & (ge - (ge >> 31))
    return Fingerprint(
        _VALUES.unpack(sig.to_bytes(_LANES, "big")),
        tuple(sorted({_hash32(w) for w in figures})),
        tuple(sorted({_hash32(w) for w in frame})),
    )


def band_keys(fp: Fingerprint) -> list[int]:
    """One key per band in [0, 2**63); the band index is hashed in with the band's values."""
    values = fp.values
    if len(values) != SIGNATURE_SIZE:
        raise ValueError(f"a fingerprint has {SIGNATURE_SIZE} values, not {len(values)}")
    return [
        int.from_bytes(
            hashlib.blake2b(
                _BAND.pack(band, *values[band * ROWS : (band + 1) * ROWS]), digest_size=8
            ).digest(),
            "big",
        )
        & _KEY_BITS
        for band in range(BANDS)
    ]


def similarity(a: Fingerprint, b: Fingerprint) -> float:
    """Estimated Jaccard similarity of the two articles' word sets, in [0, 1]."""
    if len(a.values) != len(b.values):
        raise ValueError("fingerprints of different sizes")
    # map(eq) and sum stay in C: a popular story is compared with each of its copies.
    same: int = sum(map(operator.eq, a.values, b.values))
    return same / len(a.values)


def vetoed(a: Fingerprint, b: Fingerprint) -> bool:
    """True when the two titles look cut from one template with other figures: both carry
    figures, they share none, and their frames are alike (two empty frames are alike)."""
    fa, fb = set(a.figures), set(b.figures)
    if not fa or not fb or fa & fb:
        return False
    wa, wb = set(a.frame), set(b.frame)
    union = len(wa | wb)
    return not union or len(wa & wb) / union >= _FRAME_ALIKE


def same_story(a: Fingerprint, b: Fingerprint) -> bool:
    """True when the two articles report the same story: `similarity(a, b) >= THRESHOLD` and
    the titles are not two reports cut from one template (`vetoed`)."""
    return similarity(a, b) >= THRESHOLD and not vetoed(a, b)
