"""The value a source hands over: one untrusted item, before normalization."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RawItem:
    """One crawled entry as the source gave it. Text may hold HTML; nothing here is trusted."""

    source: str
    url: str
    fetched_at: datetime
    title: str = ""
    body: str = ""
    author: str | None = None
    published: str | None = None  # ISO 8601 when the source gave a parseable time, else the raw string
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The JSON stored in raw_post.payload (everything but the row's own columns)."""
        data = asdict(self)
        for key in ("source", "url", "fetched_at"):
            data.pop(key)
        return data


@dataclass(frozen=True)
class FetchState:
    """What a source remembers between polls (stored in source_state): validators for conditional GET and
    a paging cursor."""

    etag: str | None = None
    last_modified: str | None = None
    cursor: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FetchResult:
    """What one poll of a source produced: items, plus problems that did not stop it."""

    source: str
    items: list[RawItem]
    error: str | None = None  # the poll failed as a whole (network, unreadable file …)
    warnings: list[str] = field(default_factory=list)  # e.g. a malformed (bozo) feed whose good entries were kept
    pages: int = 0  # documents fetched (feed documents, list and article pages, API pages)
    empty_pages: int = 0  # fetched article pages from which no article could be extracted
    not_modified: bool = False  # conditional GET answered 304: nothing new, not an error
    state: FetchState | None = None  # validators/cursor to remember for the next poll (None: unchanged)
    stored: int = 0  # items the source stored itself (a site crawl in its own process writes raw posts directly)
