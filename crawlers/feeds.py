"""Feed source: RSS/Atom/RDF/JSON feeds through feedparser.

`parse_feed` is pure (bytes in, items out); `poll_feed` adds the fetching. A malformed ("bozo") feed keeps
whatever entries feedparser recovered and reports a warning instead of failing.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser

from config.schema import FetchSettings, SourceSettings
from crawlers.fetch import FetchError, fetch_bytes, resolve_location
from crawlers.items import FetchResult, RawItem

log = logging.getLogger(__name__)


def parse_feed(
    body: bytes, *, source: str, fetched_at: datetime, content_type: str | None = None, base_url: str = ""
) -> FetchResult:
    headers = {"content-type": content_type} if content_type else {}
    parsed = feedparser.parse(body, response_headers=headers)
    warnings: list[str] = []
    if parsed.get("bozo"):
        warnings.append(f"malformed feed: {type(parsed.get('bozo_exception')).__name__}: "
                        f"{parsed.get('bozo_exception')}")
    items = [_entry_item(e, source=source, fetched_at=fetched_at, base_url=base_url) for e in parsed.entries]
    if not items and warnings and not parsed.get("version"):
        return FetchResult(source=source, items=[], error=warnings[0])
    return FetchResult(source=source, items=items, warnings=warnings)


def poll_feed(src: SourceSettings, fetch: FetchSettings, *, base_dir: Path, now: datetime) -> FetchResult:
    """Fetch and parse one feed source; never raises for bad input."""
    try:
        location = resolve_location(src.url, base_dir)
        got = fetch_bytes(
            location,
            timeout=fetch.timeout.total_seconds(),
            max_bytes=fetch.max_bytes,
            user_agent=fetch.user_agent,
        )
    except FetchError as exc:
        return FetchResult(source=src.name, items=[], error=str(exc))
    return parse_feed(got.body, source=src.name, fetched_at=now, content_type=got.content_type, base_url=got.url)


def _entry_item(entry: Any, *, source: str, fetched_at: datetime, base_url: str) -> RawItem:
    title = str(entry.get("title", "") or "")
    body = _entry_body(entry)
    link = str(entry.get("link", "") or "")
    entry_id = str(entry.get("id", "") or "")
    url = link or entry_id or _synthetic_url(base_url, title, body)
    return RawItem(
        source=source,
        url=url,
        fetched_at=fetched_at,
        title=title,
        body=body,
        author=(str(entry["author"]) if entry.get("author") else None),
        published=_entry_time(entry),
        extra={"entry_id": entry_id} if entry_id else {},
    )


def _entry_body(entry: Any) -> str:
    contents = entry.get("content") or []
    for content in contents:
        value = content.get("value")
        if value:
            return str(value)
    return str(entry.get("summary", "") or entry.get("description", "") or "")


def _entry_time(entry: Any) -> str | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if isinstance(value, time.struct_time):
            return datetime.fromtimestamp(calendar.timegm(value), UTC).isoformat()
    for key in ("published", "updated", "created"):
        if entry.get(key):
            return str(entry[key])
    return None


def _synthetic_url(base_url: str, title: str, body: str) -> str:
    digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:16]
    return f"{base_url or 'feed:'}#entry-{digest}"
