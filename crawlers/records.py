"""Record mapping shared by the JSON API source and file imports (pure): dot paths, counts as Chinese exports
write them ("1.2万", "3,456", "10万+"), publish-time text, and post fields → RawItem.

`build_item` puts counts and the item's own id into `extra`; an item without URL gets `<source>:<id>` or
`<source>:<content hash>`, stable across re-reads.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

from crawlers.items import RawItem

SHANGHAI = ZoneInfo("Asia/Shanghai")
COUNT_FIELDS = ("reposts", "comments", "likes", "author_followers")
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)\s*([万亿wWkK]?)\s*\+?$")
_MULTIPLIERS = {"": 1, "万": 10_000, "w": 10_000, "W": 10_000, "k": 1_000, "K": 1_000, "亿": 100_000_000}
_NO_COUNT = frozenset({"-", "--", "—", "——", "/", "n/a", "na", "null", "none", "暂无", "未知", "无"})  # export blanks


class ItemError(ValueError):
    """A record cannot become an item (it has neither text nor title); the message says why."""


def select_path(obj: Any, path: str, default: Any = None) -> Any:
    """The value at a dot path ("data.list", "user.followers_count", "items.0.id"); "" is `obj` itself.
    An exact key that contains dots ("user.name" as one key) wins over walking the path."""
    if not path:
        return obj
    if isinstance(obj, dict) and path in obj:
        return obj[path]
    current = obj
    for part in path.split("."):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and re.fullmatch(r"-?\d+", part) and -len(current) <= int(part) < len(current):
            current = current[int(part)]
        else:
            return default
    return current


def parse_count(value: Any) -> int | None:
    """A count as APIs and exports write it: 12, 12.0, "3,456", "1.2万", "10万+", "3亿", "1.5w", "2k".
    None for an absent or blank value (also "-", "/", "暂无" as exports write it); ValueError for anything
    else (negative, words, booleans)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a count")
        return round(value)
    if not isinstance(value, str):
        raise ValueError(f"{type(value).__name__} is not a number")
    text = unicodedata.normalize("NFKC", value).strip().replace(",", "").replace(" ", "")
    if not text or text.lower() in _NO_COUNT:
        return None
    match = _COUNT.match(text)
    if not match:
        raise ValueError(f"{value!r} is not a number")
    return int(Decimal(match.group(1)) * _MULTIPLIERS[match.group(2)])  # the regex admits only decimals


def scalar_text(value: Any) -> str | None:
    """A scalar as text (None/blank → None; 12.0 → "12"); None for objects and lists as well."""
    if value is None or isinstance(value, dict | list | tuple):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def published_text(value: Any, *, tz: tzinfo = SHANGHAI) -> str | None:
    """The publish time as RawItem keeps it: strings as given, numbers as Unix-timestamp digits, datetimes
    (from spreadsheets) as ISO 8601 with `tz` assumed when naive, dates as midnight in `tz`."""
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=tz)).isoformat()
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=tz).isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value))
    return scalar_text(value)


def build_item(
    values: Mapping[str, Any], *, source: str, fetched_at: datetime, tz: tzinfo = SHANGHAI, base_url: str = ""
) -> tuple[RawItem, list[str]]:
    """Post fields (see config.schema.POST_FIELDS) → RawItem, plus problems with fields that were left out
    (a count that is not a number, an object where text was expected). Raises ItemError when the record
    has neither text nor title. A relative URL ("/status/1") is resolved against `base_url`."""
    problems: list[str] = []
    texts: dict[str, str | None] = {}
    for name in ("title", "text", "author", "id", "url"):
        raw = values.get(name)
        texts[name] = scalar_text(raw)
        if texts[name] is None and isinstance(raw, dict | list):
            problems.append(f"{name}: an object or list, not text")
    title, body = texts["title"] or "", texts["text"] or ""
    if not title and not body:
        raise ItemError("neither text nor title")
    extra: dict[str, Any] = {"id": texts["id"]} if texts["id"] else {}
    for name in COUNT_FIELDS:
        try:
            count = parse_count(values.get(name))
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        if count is not None:
            extra[name] = count
    published = published_text(values.get("published"), tz=tz)
    url = texts["url"] or ""
    if url.startswith("/") and base_url:
        url = urljoin(base_url, url)
    if not url:
        url = synthetic_url(source, texts["id"], title, body, texts["author"], published)
    item = RawItem(source=source, url=url, fetched_at=fetched_at, title=title, body=body,
                   author=texts["author"], published=published, extra=extra)
    return item, problems


def synthetic_url(source: str, item_id: str | None, *parts: str | None) -> str:
    """`<source>:<id>`, or `<source>:<hash of the content>` when there is no id: stable across re-reads."""
    if item_id:
        return f"{source}:{item_id}"
    digest = hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:24]
    return f"{source}:{digest}"
