"""The baselines `make bench` compares the daemon with, on the same feeds from the same server.

- `run_naive`: the pipeline one writes first. Feeds one after another with `httpx.get`,
  `feedparser.parse` with its defaults, one compiled regex per watchlist term over title and
  summary (the shipped watchlists' `any` terms: words, prefixes, CJK substrings; no `near`,
  `except` or `none`), and an SQLAlchemy ORM session that adds and commits each article on its
  own, a duplicate caught as IntegrityError.
- `run_feedparser_alone`: only `feedparser.parse(body)` with its defaults, on bodies fetched
  beforehand (the fetching is not timed).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import feedparser
import httpx
from sqlalchemy import DateTime, Engine, String, Text, UniqueConstraint
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from monitor.core.model import Watchlist

_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")


class Base(DeclarativeBase):
    pass


class NaiveArticle(Base):
    __tablename__ = "naive_articles"
    __table_args__ = (UniqueConstraint("feed_url", "guid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_url: Mapped[str] = mapped_column(String(500))
    guid: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    matched: Mapped[str] = mapped_column(Text)  # watchlist ids, comma-separated
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def term_patterns(watchlists: Sequence[Watchlist]) -> list[tuple[str, re.Pattern[str]]]:
    """(watchlist id, compiled regex) for each `any` term of each watchlist."""
    out = []
    for w in watchlists:
        for term in w.match.any:
            text = term.text
            prefix = text.endswith("*")
            core = re.escape(text.rstrip("*"))
            if _UNSPACED.search(text):
                pattern = core
            else:
                pattern = rf"\b{core}\w*" if prefix else rf"\b{core}\b"
            flags = 0 if term.case_sensitive else re.IGNORECASE
            out.append((w.id, re.compile(pattern, flags)))
    return out


@dataclass(frozen=True)
class NaiveResult:
    feeds: int
    entries: int
    stored: int
    matched: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


def run_naive(urls: Sequence[str], watchlists: Sequence[Watchlist], engine: Engine) -> NaiveResult:
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    patterns = term_patterns(watchlists)
    entries = stored = matched = 0
    start, cpu = time.perf_counter(), time.process_time()
    with Session(engine) as session:
        for url in urls:
            response = httpx.get(url)
            parsed = feedparser.parse(response.content)
            for entry in parsed.entries:
                entries += 1
                title = entry.get("title", "")
                summary = entry.get("summary", "")
                text = f"{title}\n{summary}"
                hits = sorted({wid for wid, rx in patterns if rx.search(text)})
                published = entry.get("published_parsed")
                session.add(
                    NaiveArticle(
                        feed_url=url,
                        guid=entry.get("id") or entry.get("link") or title,
                        url=entry.get("link"),
                        title=title,
                        summary=summary,
                        published=datetime(*published[:6], tzinfo=UTC) if published else None,
                        matched=",".join(hits),
                        fetched_at=datetime.now(UTC),
                    )
                )
                try:
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    continue
                stored += 1
                matched += bool(hits)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return NaiveResult(len(urls), entries, stored, matched, seconds, cpu)


@dataclass(frozen=True)
class ParseResult:
    feeds: int
    entries: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def run_feedparser_alone(urls: Sequence[str], chunk: int = 200) -> ParseResult:
    """feedparser.parse with its defaults on each body; bodies are fetched `chunk` at a time
    (untimed), so that memory holds a chunk, never the whole corpus."""
    entries = 0
    seconds = 0.0
    with httpx.Client(timeout=30.0) as client:
        for first in range(0, len(urls), chunk):
            bodies = [client.get(u).content for u in urls[first : first + chunk]]
            start = time.perf_counter()
            for body in bodies:
                entries += len(feedparser.parse(body).entries)
            seconds += time.perf_counter() - start
    return ParseResult(len(urls), entries, seconds)
