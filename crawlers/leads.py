"""Manual leads: a post the duty officer registers by hand (from the CLI now; the web app and the bot later).

`manual_lead(*, title, text, url, author, reporter, now, source="manual") -> RawItem` validates the lead and
returns it as a raw item for the raw-post store; it raises `LeadError` with a one-line Chinese reason that
the caller shows as it is. Rules:

- text or title is required; title ≤ 500 characters, text ≤ 50,000, author ≤ 200, reporter 1–100,
  url ≤ 2,000 (white space around values is dropped);
- a URL, when given, must be http:// or https:// with a host; it is the lead's identity, so the same post
  registered twice lands once in the store (same source and URL);
- without a URL the lead gets `manual:<hash>` (a SHA-256 over title, text, reporter and `now`): stable for
  one submission, different for a later one;
- the reporter goes to `extra["reporter"]`, the registration time (ISO 8601 UTC) to `extra["reported_at"]`.
  `published` stays unknown (None): the lead says where the post is, not when it appeared.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from crawlers.items import RawItem

MAX_TITLE = 500
MAX_TEXT = 50_000
MAX_AUTHOR = 200
MAX_REPORTER = 100
MAX_URL = 2_000
_SOURCE = re.compile(r"[\w.\-]{1,100}")


class LeadError(ValueError):
    """A lead cannot be registered; `str()` is one line for the officer."""


def manual_lead(
    *, title: str, text: str, url: str | None, author: str | None, reporter: str, now: datetime,
    source: str = "manual",
) -> RawItem:
    """Validate a hand-registered post and return it as a raw item. Raises LeadError."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    title, text = (title or "").strip(), (text or "").strip()
    reporter, author = (reporter or "").strip(), (author or "").strip() or None
    if not title and not text:
        raise LeadError("请填写标题或正文（至少一项）")
    _check_length("标题", title, MAX_TITLE)
    _check_length("正文", text, MAX_TEXT)
    _check_length("作者", author or "", MAX_AUTHOR)
    if not reporter:
        raise LeadError("请填写报送人")
    _check_length("报送人", reporter, MAX_REPORTER)
    if not _SOURCE.fullmatch(source):
        raise LeadError(f"数据源名称 {source!r} 无效：只能用字母、数字、'-'、'_' 或 '.'")
    reported_at = now.astimezone(UTC)
    link = _checked_url(url) if url and url.strip() else _lead_url(title, text, reporter, reported_at)
    return RawItem(
        source=source, url=link, fetched_at=reported_at, title=title, body=text, author=author, published=None,
        extra={"reporter": reporter, "reported_at": reported_at.isoformat()},
    )


def _check_length(label: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise LeadError(f"{label}过长：{len(value)}个字符，最多{limit}个")


def _checked_url(url: str) -> str:
    url = url.strip()
    if len(url) > MAX_URL:
        raise LeadError(f"链接过长：{len(url)}个字符，最多{MAX_URL}个")
    if any(ch.isspace() for ch in url):
        raise LeadError("链接中不能有空格或换行")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise LeadError(f"链接无效：{url[:100]}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise LeadError(f"链接须以 http:// 或 https:// 开头并包含网站地址：{url[:100]}")
    return url


def _lead_url(title: str, text: str, reporter: str, reported_at: datetime) -> str:
    digest = hashlib.sha256("\x1f".join((title, text, reporter, reported_at.isoformat())).encode()).hexdigest()
    return f"manual:{digest[:32]}"
