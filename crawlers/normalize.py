"""Normalize stage (pure): a raw post's untrusted payload becomes clean text with a canonical URL.

`normalize(...) -> NormalizedPost` raises `NormalizeError` for an entry that cannot become a post;
the caller keeps the raw row with the error so it can be re-processed after a fix.
`canonical_url` is the stored, working URL; `url_key` is a comparison key only (mobile/desktop hosts folded).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawlers.dedup import fingerprint
from crawlers.timeparse import parse_chinese_time

MAX_TEXT_CHARS = 100_000
TRACKING_PARAMS = re.compile(r"^(utm_\w+|spm|from|share_\w+|sharesource|scene|wfr|isappinstalled|timestamp)$", re.I)
_BLOCK_TAGS = {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "blockquote"}
_SKIP_TAGS = {"script", "style", "noscript", "template"}


class NormalizeError(ValueError):
    """A raw post cannot become a post; the message is stored on the raw row."""


@dataclass(frozen=True)
class NormalizedPost:
    source: str
    url: str
    title: str
    text: str
    author: str | None
    published_at: datetime | None
    fetched_at: datetime
    fingerprint: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def url_key(self) -> str:
        return url_key(self.url)

    @property
    def full_text(self) -> str:
        """Title and body together, as the classifier reads them."""
        if self.title and not self.text.startswith(self.title):
            return f"{self.title}\n{self.text}" if self.text else self.title
        return self.text or self.title


def normalize(source: str, url: str, fetched_at: datetime, payload: dict[str, Any], *, tz: tzinfo) -> NormalizedPost:
    """Clean one raw post. `tz` is the zone assumed for publish times that carry none."""
    unextracted = (payload.get("extra") or {}).get("unextracted")
    if unextracted:
        raise NormalizeError(f"no article could be extracted from the page: {unextracted}")
    title = clean_text(str(payload.get("title") or ""), single_line=True)
    text = clean_text(strip_html(str(payload.get("body") or "")))
    if not title and not text:
        raise NormalizeError("entry has neither title nor text")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
    author = clean_text(str(payload["author"]), single_line=True)[:200] if payload.get("author") else None
    metrics = {k: v for k, v in (payload.get("extra") or {}).items() if isinstance(v, int | float)}
    return NormalizedPost(
        source=source,
        url=canonical_url(url),
        title=title[:1000],
        text=text,
        author=author or None,
        published_at=parse_time(payload.get("published"), tz=tz, now=fetched_at),
        fetched_at=fetched_at,
        fingerprint=fingerprint(title, text),
        metrics=metrics,
    )


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, drop the fragment and tracking parameters, sort the query."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    if parts.scheme not in ("http", "https"):
        return url.strip()
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING_PARAMS.match(k))
    netloc = parts.netloc.lower()
    if netloc.endswith(":80") and parts.scheme == "http":
        netloc = netloc[:-3]
    if netloc.endswith(":443") and parts.scheme == "https":
        netloc = netloc[:-4]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", urlencode(query), ""))


_ALIAS_LABELS = frozenset({"www", "m", "wap", "3g", "4g", "mobile"})  # mobile/desktop twins of one site
_GENERIC_SLD = frozenset({"com", "net", "org", "gov", "edu", "ac", "co", "mil"})  # com.cn, gov.cn, co.uk …


def canonical_host(host: str) -> str:
    """The host as compared for de-duplication: lower case, leading www./m./wap./3g./4g./mobile. labels removed
    while a registrable name remains (m.example.cn and www.example.cn → example.cn; m.com.cn, www.gov.cn and
    example.cn stay). IP addresses and ports are kept. Only a comparison key: the host may not exist."""
    host = host.lower()
    if host.startswith("[") or "@" in host:  # IPv6 literal, user info: left alone
        return host
    name, _, port = host.partition(":")
    labels = name.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):  # IPv4
        return host
    while len(labels) > 2 and labels[0] in _ALIAS_LABELS:
        if len(labels) == 3 and labels[1] in _GENERIC_SLD and len(labels[2]) == 2:
            break
        labels.pop(0)
    return ".".join(labels) + (f":{port}" if port else "")


def url_key(url: str) -> str:
    """De-duplication key of a URL: `canonical_url` without its scheme and with `canonical_host`, so
    https://m.example.cn/a?id=1 and http://www.example.cn/a?id=1 both give "example.cn/a?id=1".
    Not a URL (never fetch or store it as one); a URL that is not http(s) is its own key."""
    canonical = canonical_url(url)
    parts = urlsplit(canonical)
    if parts.scheme not in ("http", "https"):
        return canonical
    query = f"?{parts.query}" if parts.query else ""
    return f"{canonical_host(parts.netloc)}{parts.path}{query}"


def parse_time(value: Any, *, tz: tzinfo, now: datetime | None = None) -> datetime | None:
    """A publish time: ISO 8601, RFC 822, or a Chinese absolute or relative form (2024年5月1日 08:30, 3分钟前,
    昨天 12:30) resolved against `now` (the fetch time). Naive times are in `tz`. None when unparseable."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return parse_chinese_time(text, now=now, tz=tz) if now is not None else None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def clean_text(text: str, *, single_line: bool = False) -> str:
    """Unescape entities, drop control characters, collapse white space (keeping paragraph breaks)."""
    text = html.unescape(text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    if single_line:
        return re.sub(r"\s+", " ", text).strip()
    lines = [re.sub(r"[ \t\u3000\xa0]+", " ", line).strip() for line in text.splitlines()]
    return "\n".join(line for line in lines if line)


def strip_html(fragment: str) -> str:
    """Text content of an HTML fragment, with block elements on their own lines."""
    if "<" not in fragment:
        return fragment
    parser = _TextExtractor()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.parts)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)
