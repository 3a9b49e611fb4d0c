"""What `yuqing extract URL` shows: fetch one URL (or path), decide whether it is a feed or an article page,
and return the records yuqing would take from it (`title`, `text`, `published_at`, `author`, `encoding`,
`url`). Raises ExtractError with a one-line reason."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from config.schema import ArticleSelectors, FetchSettings
from crawlers.encoding import decode_document
from crawlers.extract import ExtractError, extract_article, parse_published
from crawlers.feeds import parse_feed
from crawlers.fetch import FetchError, fetch_bytes, resolve_location
from crawlers.normalize import clean_text, strip_html


def looks_like_feed(body: bytes, content_type: str | None) -> bool:
    """True for RSS, Atom, RDF and JSON Feed documents (by their first bytes, then the Content-Type)."""
    head = decode_document(body[:4096], kind="xml").text.lstrip().lower()[:2048]
    if head.startswith(("<!doctype html", "<html")):
        return False
    if re.search(r"<(rss|feed|rdf:rdf)[\s>/]", head):
        return True
    if head.startswith("{") and "jsonfeed.org/version" in head:
        return True
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json")


def extract_url(url: str, *, fetch: FetchSettings, now: datetime,
                selectors: ArticleSelectors | None = None) -> list[dict[str, Any]]:
    """Fetch one URL (or path) and return its article, or one dict per feed entry. Raises ExtractError."""
    return extract_document(url, fetch=fetch, now=now, selectors=selectors)[1]


def extract_document(url: str, *, fetch: FetchSettings, now: datetime,
                     selectors: ArticleSelectors | None = None) -> tuple[bool, list[dict[str, Any]]]:
    """Like extract_url, and also says whether the URL was a feed (True) or an article page (False)."""
    try:
        got = fetch_bytes(resolve_location(url, Path.cwd()), timeout=fetch.timeout.total_seconds(),
                          max_bytes=fetch.max_bytes, user_agent=fetch.user_agent)
    except FetchError as exc:
        raise ExtractError(str(exc)) from None
    if not looks_like_feed(got.body, got.content_type):
        article = extract_article(got.body, url=got.url, now=now, content_type=got.content_type,
                                  selectors=selectors)
        published = article.published.isoformat() if article.published else None
        return False, [{"title": article.title, "text": article.text, "published_at": published,
                        "author": article.author, "encoding": article.encoding, "url": article.url}]
    result = parse_feed(got.body, source="extract", fetched_at=now, content_type=got.content_type,
                        base_url=got.url)
    if result.error:
        raise ExtractError(result.error)
    encoding = decode_document(got.body, content_type=got.content_type, kind="xml").encoding
    entries = []
    for item in result.items:
        when = parse_published(item.published, now=now) if item.published else None
        entries.append({"title": clean_text(item.title, single_line=True), "text": clean_text(strip_html(item.body)),
                        "published_at": when.isoformat() if when else None, "author": item.author,
                        "encoding": encoding, "url": item.url})
    return True, entries

