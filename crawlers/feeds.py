"""Feed source: RSS 0.9x/1.0/2.0, Atom and RDF through feedparser, JSON Feed 1.0/1.1 parsed here.

`parse_feed` is pure (bytes in, items out); `poll_feed` adds fetching with conditional GET. Neither raises
for bad input: a poll that fails comes back with `error`, problems that did not stop it as `warnings`.

- A malformed ("bozo") feed keeps whatever entries feedparser recovered and reports a warning.
- Encodings: a body that is not plain ASCII is decoded by `crawlers.encoding.decode_document` (GB2312/GBK as
  GB18030, Big5 as big5hkscs/cp950, wrong declarations sniffed), then handed to feedparser as UTF-8 with its
  XML declaration and header charset rewritten to utf-8. The codec used is in `RawItem.extra["encoding"]`.
- Titles: an HTML title (Atom type="html"/"xhtml", or markup feedparser recognised) is reduced to its text;
  a plain-text title is kept as given. Bodies keep their HTML (normalize strips it).
- Publish times: `RawItem.published` is an aware UTC ISO 8601 string read by `parse_chinese_time` (ISO 8601,
  RFC 822, Chinese and relative forms; times without a zone are in `tz`, Asia/Shanghai by default). feedparser's
  own reading is the fallback for the exotic formats it knows, because it silently misreads Chinese dates
  ("2024年5月1日" becomes 1 November). A string nothing can read is kept as it is and counted in a warning.
- Social metrics (slash:comments, thr:total, reposts/comments/likes/followers elements in any namespace,
  JSON Feed extension objects) become ints in `RawItem.extra` under reposts, comments, likes, author_followers.
- Conditional GET: http(s) polls send If-None-Match / If-Modified-Since from the previous `FetchState`; a 304
  is `FetchResult(not_modified=True)` with no items and no error. Every fetched document counts `pages=1`.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import html
import io
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import feedparser

from config.schema import FeedSource, FetchSettings
from crawlers.encoding import decode_document
from crawlers.fetch import FetchError, fetch_bytes, resolve_location
from crawlers.items import FetchResult, FetchState, RawItem
from crawlers.normalize import strip_html
from crawlers.timeparse import SHANGHAI, parse_chinese_time

log = logging.getLogger(__name__)

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_XML_ENCODING = re.compile(r"""^(\s*<\?xml\b[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")
_METRIC_NAMES: dict[str, str] = {
    "comments": "comments", "slash_comments": "comments", "thr_total": "comments", "comments_count": "comments",
    "comment_count": "comments", "replies": "comments", "reply_count": "comments",
    "reposts": "reposts", "reposts_count": "reposts", "repost_count": "reposts", "retweets": "reposts",
    "retweet_count": "reposts", "forwards": "reposts", "shares": "reposts", "share_count": "reposts",
    "likes": "likes", "like_count": "likes", "likes_count": "likes", "attitudes_count": "likes",
    "favorites": "likes", "favorite_count": "likes",
    "followers": "author_followers", "followers_count": "author_followers", "author_followers": "author_followers",
}
_COUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(万|w|W|k|K|亿)?\s*\+?\s*$")
_MULTIPLIERS = {None: 1, "万": 10_000, "w": 10_000, "W": 10_000, "k": 1_000, "K": 1_000, "亿": 100_000_000}


def parse_feed(
    body: bytes, *, source: str, fetched_at: datetime, content_type: str | None = None, base_url: str = "",
    tz: tzinfo = SHANGHAI,
) -> FetchResult:
    """Items of one feed document (RSS, Atom, RDF or JSON Feed). Never raises."""
    try:
        if _looks_like_json(body, content_type):
            return _parse_json_feed(body, source=source, fetched_at=fetched_at, base_url=base_url, tz=tz)
        return _parse_xml_feed(body, source=source, fetched_at=fetched_at, content_type=content_type,
                               base_url=base_url, tz=tz)
    except Exception as exc:  # a parser bug must not lose the poll: report it like any bad input
        log.exception("feed %s: parser failure", source)
        return FetchResult(source=source, items=[], error=f"feed could not be parsed: {type(exc).__name__}: {exc}")


def poll_feed(
    src: FeedSource, fetch: FetchSettings, *, base_dir: Path, now: datetime, state: FetchState | None = None,
    tz: tzinfo = SHANGHAI,
) -> FetchResult:
    """Fetch and parse one feed source (conditional GET over http(s)); never raises for bad input."""
    try:
        location = resolve_location(src.url, base_dir)
        is_http = location.startswith(("http://", "https://"))
        got = fetch_bytes(
            location,
            timeout=fetch.timeout.total_seconds(),
            max_bytes=fetch.max_bytes,
            user_agent=fetch.user_agent,
            headers=_conditional_headers(state) if is_http else None,
            max_redirects=fetch.max_redirects,
        )
    except FetchError as exc:
        return FetchResult(source=src.name, items=[], error=str(exc))
    new_state = _validators(got.headers, state, not_modified=got.status == 304) if is_http else None
    if got.status == 304:
        return FetchResult(source=src.name, items=[], pages=1, not_modified=True, state=new_state)
    result = parse_feed(got.body, source=src.name, fetched_at=now, content_type=got.content_type,
                        base_url=got.url, tz=tz)
    # a document we could not read keeps the old validators, so the next poll fetches it again
    return dataclasses.replace(result, pages=1, state=None if result.error else new_state)


def _conditional_headers(state: FetchState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _validators(headers: Mapping[str, str], previous: FetchState | None, *, not_modified: bool) -> FetchState:
    """The validators to send next time; a 304 that omits one keeps the one we had."""
    old = previous or FetchState()
    if not_modified:
        return FetchState(etag=headers.get("etag") or old.etag,
                          last_modified=headers.get("last-modified") or old.last_modified, cursor=dict(old.cursor))
    return FetchState(etag=headers.get("etag"), last_modified=headers.get("last-modified"), cursor=dict(old.cursor))


# --- RSS / Atom / RDF -----------------------------------------------------------------------------------------


def _parse_xml_feed(
    body: bytes, *, source: str, fetched_at: datetime, content_type: str | None, base_url: str, tz: tzinfo
) -> FetchResult:
    body, content_type, encoding = _as_utf8(body, content_type)
    headers = {"content-type": content_type} if content_type else {}
    # a stream, never bytes: feedparser would open() bytes that name a file and parse that file instead
    parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    encoding = encoding or str(parsed.get("encoding") or "utf-8")
    warnings: list[str] = []
    if parsed.get("bozo"):
        warnings.append(f"malformed feed: {type(parsed.get('bozo_exception')).__name__}: "
                        f"{parsed.get('bozo_exception')}")
    items = [_entry_item(e, source=source, fetched_at=fetched_at, base_url=base_url, encoding=encoding, tz=tz)
             for e in parsed.entries]
    if not items and not parsed.get("version"):
        return FetchResult(source=source, items=[], error=warnings[0] if warnings else
                           "not a feed: no RSS, Atom, RDF or JSON Feed document found")
    return FetchResult(source=source, items=distinct_urls(items), warnings=warnings + _time_warnings(items))


def _as_utf8(body: bytes, content_type: str | None) -> tuple[bytes, str | None, str | None]:
    """Decode a non-ASCII body ourselves and re-encode it as UTF-8 that says so; ASCII goes to feedparser as is.
    Returns the body, the content type to announce, and the codec used (None: feedparser decides)."""
    if body.isascii():
        return body, content_type, None
    decoded = decode_document(body, content_type=content_type, kind="xml")
    text = _XML_ENCODING.sub(r'\1"utf-8"', decoded.text.lstrip("\ufeff"), count=1)
    return text.encode("utf-8"), _utf8_content_type(content_type), decoded.encoding


def _utf8_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    params = [p.strip() for p in content_type.split(";")]
    kept = [p for p in params[1:] if p and "charset" not in p.lower()]
    return "; ".join([params[0] or "application/xml", *kept, "charset=utf-8"])


def _entry_item(entry: Any, *, source: str, fetched_at: datetime, base_url: str, encoding: str,
                tz: tzinfo) -> RawItem:
    title = _entry_title(entry)
    body = _entry_body(entry)
    link = str(entry.get("link", "") or "")
    entry_id = str(entry.get("id", "") or "")
    extra: dict[str, Any] = {"entry_id": entry_id} if entry_id else {}
    extra.update(_metrics(entry.items()))
    extra["encoding"] = encoding
    return RawItem(
        source=source,
        url=link or entry_id or _synthetic_url(base_url, title, body),
        fetched_at=fetched_at,
        title=title,
        body=body,
        author=(str(entry["author"]) if entry.get("author") else None),
        published=_entry_time(entry, now=fetched_at, tz=tz),
        extra=extra,
    )


def _entry_title(entry: Any) -> str:
    title = str(entry.get("title", "") or "")
    detail = entry.get("title_detail") or {}
    if detail.get("type") not in _HTML_TYPES:
        return title
    return (strip_html(title) if "<" in title else html.unescape(title)).strip()


def _entry_body(entry: Any) -> str:
    contents = entry.get("content") or []
    for content in contents:
        value = content.get("value")
        if value:
            return str(value)
    return str(entry.get("summary", "") or entry.get("description", "") or "")


def _entry_time(entry: Any, *, now: datetime, tz: tzinfo) -> str | None:
    raw_first: str | None = None
    for key in ("published", "updated", "created"):
        raw = dict.get(entry, key)  # plain dict access: no feedparser alias (and no deprecation warning)
        if not raw:
            continue
        found = parse_chinese_time(str(raw), now=now, tz=tz)
        if found is not None:
            return found.isoformat()
        parsed = dict.get(entry, f"{key}_parsed")
        if isinstance(parsed, time.struct_time):
            return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()
        raw_first = raw_first or str(raw)
    return raw_first


def _time_warnings(items: list[RawItem]) -> list[str]:
    unreadable = [item.published for item in items if item.published and not _is_iso(item.published)]
    if not unreadable:
        return []
    return [f"{len(unreadable)} entries have a publish time that could not be read, e.g. {unreadable[0]!r}"]


def _is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _metrics(pairs: Any) -> dict[str, int]:
    """Social counts from entry fields, whatever namespace prefix feedparser gave them (w_reposts → reposts)."""
    found: dict[str, int] = {}
    for key, value in pairs:
        if not isinstance(key, str):
            continue
        name = _METRIC_NAMES.get(key.lower()) or _METRIC_NAMES.get(key.lower().split("_", 1)[-1])
        count = _count(value) if name else None
        if name and count is not None:
            found.setdefault(name, count)
    return found


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value >= 0 else None
    match = _COUNT.match(str(value).replace(",", "")) if isinstance(value, str) else None
    if match is None:
        return None
    return int(float(match.group(1)) * _MULTIPLIERS[match.group(2)])


def distinct_urls(items: list[RawItem]) -> list[RawItem]:
    """Entries of one feed that share a link (some feeds give the site's home page for every entry) get
    distinct URLs, so no entry is lost to the one-row-per-(source, url) rule of the raw-post store."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.url in seen:
            digest = hashlib.sha256(f"{item.title}\n{item.body}".encode()).hexdigest()[:16]
            item = replace(item, url=f"{item.url}#entry-{digest}")
        seen.add(item.url)
        out.append(item)
    return out


def _synthetic_url(base_url: str, title: str, body: str) -> str:
    digest = hashlib.sha256(f"{title}\n{body}".encode()).hexdigest()[:16]
    return f"{base_url or 'feed:'}#entry-{digest}"


# --- JSON Feed (https://www.jsonfeed.org/version/1.1/) --------------------------------------------------------


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    if content_type and "json" in content_type.lower():
        return True
    return body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{")


def _parse_json_feed(body: bytes, *, source: str, fetched_at: datetime, base_url: str, tz: tzinfo) -> FetchResult:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return FetchResult(source=source, items=[], error=f"not a JSON Feed: {exc}")
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return FetchResult(source=source, items=[], error="not a JSON Feed: no \"items\" list")
    warnings: list[str] = []
    if "jsonfeed.org/version/" not in str(doc.get("version", "")):
        warnings.append(f"JSON Feed without a known version: {str(doc.get('version'))[:80]!r}")
    feed_author = _json_author(doc)
    items: list[RawItem] = []
    skipped = 0
    for entry in doc["items"]:
        if not isinstance(entry, dict):
            skipped += 1
            continue
        items.append(_json_item(entry, source=source, fetched_at=fetched_at, base_url=base_url,
                                feed_author=feed_author, tz=tz))
    if skipped:
        warnings.append(f"{skipped} JSON Feed items are not objects and were skipped")
    return FetchResult(source=source, items=distinct_urls(items), warnings=warnings + _time_warnings(items))


def _json_item(entry: dict[str, Any], *, source: str, fetched_at: datetime, base_url: str,
               feed_author: str | None, tz: tzinfo) -> RawItem:
    title = _json_str(entry.get("title"))
    body = _json_str(entry.get("content_html")) or _json_str(entry.get("content_text")) \
        or _json_str(entry.get("summary"))
    entry_id = _json_str(entry.get("id"))
    url = _json_str(entry.get("url")) or _json_str(entry.get("external_url"))
    if not url:  # an id is any string; only a web address can stand for the item's URL
        is_web = entry_id.startswith(("http://", "https://"))
        url = entry_id if is_web else (_synthetic_url(base_url, f"id:{entry_id}", "") if entry_id
                                       else _synthetic_url(base_url, title, body))
    extra: dict[str, Any] = {"entry_id": entry_id} if entry_id else {}
    extension_pairs = [pair for key, value in entry.items() if key.startswith("_") and isinstance(value, dict)
                       for pair in value.items()]
    extra.update(_metrics([*entry.items(), *extension_pairs]))
    extra["encoding"] = "utf-8"
    raw_time = _json_str(entry.get("date_published")) or _json_str(entry.get("date_modified"))
    found = parse_chinese_time(raw_time, now=fetched_at, tz=tz) if raw_time else None
    return RawItem(source=source, url=url, fetched_at=fetched_at, title=title, body=body,
                   author=_json_author(entry) or feed_author,
                   published=found.isoformat() if found else (raw_time or None), extra=extra)


def _json_author(obj: dict[str, Any]) -> str | None:
    authors = obj.get("authors")
    candidates = authors if isinstance(authors, list) else []
    candidates = [*candidates, obj.get("author")]  # "author" is JSON Feed 1.0
    for author in candidates:
        if isinstance(author, dict) and _json_str(author.get("name")):
            return _json_str(author.get("name"))
        if isinstance(author, str) and author.strip():
            return author.strip()
    return None


def _json_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""
