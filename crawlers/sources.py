"""Source registry: one poll function per source kind, chosen by the config's `kind`.

A poll never raises for bad input: problems come back in the FetchResult (error, warnings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from config.schema import FeedSource, FetchSettings, JsonApiSource, SourceSettings
from crawlers.feeds import poll_feed
from crawlers.items import FetchResult, FetchState
from crawlers.json_api import poll_json_api

Poll = Callable[..., FetchResult]


def poll_source(
    src: SourceSettings, fetch: FetchSettings, *, base_dir: Path, now: datetime, state: FetchState | None = None,
    environ: Mapping[str, str] | None = None,
) -> FetchResult:
    """Poll a feed or JSON API source (blocking; the service runs it in a worker thread). Site sources are
    crawled by Scrapy in their own process (`yuqing crawl`), see alerts/service.py."""
    if isinstance(src, FeedSource):
        return poll_feed(src, fetch, base_dir=base_dir, now=now, state=state)
    if isinstance(src, JsonApiSource):
        return poll_json_api(src, fetch, now=now, state=state, environ=environ)
    return FetchResult(source=src.name, items=[], error=f"source kind {src.kind!r} is not supported yet")
