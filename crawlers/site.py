"""Site crawls: one configured news or government site, crawled with Scrapy in the current process.

`crawl_site(src, fetch, *, db_url, now) -> FetchResult` runs `SiteSpider` (crawlers/site_spider.py) under a
`CrawlerProcess` and stores what it finds itself, in batches, into raw_post of the database at `db_url`.
It can run once per process (Twisted's reactor cannot restart), so the service runs every crawl as its own
process: `python -m crawlers.site JOB` (this module's entry point, used by the tests and benchmarks) or the
`yuqing crawl` command. It never raises for bad input or a failed crawl: that comes back as `error`.

The returned FetchResult: `stored` counts the raw posts this crawl inserted and `items` are those posts
(already stored: a caller's own `store_raw` of them inserts nothing); `pages` the list and article
pages fetched; `empty_pages` the article pages without an extractable article (login wall, captcha: a
health signal); `error` when the crawl failed as a whole (no start page could be read, every article
request failed, nothing could be stored); `warnings` the first message of each other kind of problem.
`run_crawl` returns the same with every counter (`CrawlReport`).

Scrapy settings derived from the source: robots.txt obeyed unless `obey_robots: false`; AutoThrottle on,
starting at `download_delay` (also its floor) and aiming at `concurrency_per_domain` requests in flight
(CONCURRENT_REQUESTS_PER_DOMAIN is the hard cap); `retries` → RETRY_TIMES for 5xx/408/429 and network
errors, with an exponential pause of 1 s, 2 s, 4 s … (≤ 60 s) before each retry; timeout, body-size cap and
redirect limit from `fetch`; no telnet console; log level WARNING.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from scrapy.crawler import CrawlerProcess
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from twisted.python.failure import Failure

from config.env import EnvError, Environment
from config.schema import FetchSettings, SiteSource
from crawlers.items import FetchResult
from crawlers.site_spider import Count, RawPostStore, RetryBackoff, SiteSpider, selector_error, stat_key
from crawlers.store import known_urls
from models.db import make_engine, utcnow

STORE_BATCH = 200
# Scrapy's own counters reported beside ours (name in CrawlReport.counts → stats key).
SCRAPY_STATS = {
    "requests": "downloader/request_count", "responses": "downloader/response_count", "retries": "retry/count",
    "offsite": "offsite/filtered",
}


@dataclass(frozen=True)
class CrawlReport:
    """A crawl's FetchResult plus every counter (`Count` values → numbers)."""

    result: FetchResult
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: what `python -m crawlers.site` prints."""
        r = self.result
        return {
            "source": r.source, "pages": r.pages, "items": len(r.items), "stored": r.stored,
            "empty_pages": r.empty_pages,
            "error": r.error, "warnings": r.warnings, "counts": self.counts,
        }


def scrapy_settings(
    src: SiteSource, fetch: FetchSettings, *, db_url: str, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Scrapy settings for one source (see the module docstring); `overrides` win (benchmarks, tests)."""
    delay = src.download_delay.total_seconds()
    settings: dict[str, Any] = {
        "BOT_NAME": "yuqing",
        "USER_AGENT": src.user_agent or fetch.user_agent,
        "ROBOTSTXT_OBEY": src.obey_robots,
        "CONCURRENT_REQUESTS": max(16, src.concurrency_per_domain),
        "CONCURRENT_REQUESTS_PER_DOMAIN": src.concurrency_per_domain,
        "DOWNLOAD_DELAY": delay,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": max(60.0, delay),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(src.concurrency_per_domain),
        "RETRY_ENABLED": src.retries > 0,
        "RETRY_TIMES": src.retries,
        "DOWNLOAD_TIMEOUT": fetch.timeout.total_seconds(),
        "DOWNLOAD_MAXSIZE": fetch.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "REDIRECT_ENABLED": fetch.max_redirects > 0,
        "REDIRECT_MAX_TIMES": fetch.max_redirects,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        # Spider output is processed by CONCURRENT_ITEMS asyncio tasks per response (Scrapy creates them all for
        # each response); the store pipeline is synchronous, so 100 (the default) only costs CPU: 8 doubles
        # the pages/s of benchmarks/ingest.py.
        "CONCURRENT_ITEMS": 8,
        "ITEM_PIPELINES": {RawPostStore: 300},
        "DOWNLOADER_MIDDLEWARES": {RetryBackoff: 560},
        "YUQING_DATABASE_URL": db_url,
        "YUQING_STORE_BATCH": STORE_BATCH,
        "YUQING_RETRY_BACKOFF": 1.0,
    }
    settings.update(overrides or {})
    return settings


def crawl_site(src: SiteSource, fetch: FetchSettings, *, db_url: str, now: datetime) -> FetchResult:
    """Crawl one site source and store its new articles (see the module docstring). Once per process."""
    return run_crawl(src, fetch, db_url=db_url, now=now).result


def run_crawl(
    src: SiteSource, fetch: FetchSettings, *, db_url: str, now: datetime, overrides: Mapping[str, Any] | None = None
) -> CrawlReport:
    """`crawl_site` with every counter; `overrides` are extra Scrapy settings. Never raises."""
    problems = [p for p in _selector_problems(src) if p]
    if problems:
        return CrawlReport(FetchResult(src.name, [], error="选择器无效：" + "；".join(problems)))
    try:
        known = _known(db_url, src.name)
    except SQLAlchemyError as exc:
        return CrawlReport(FetchResult(src.name, [], error=f"无法读取数据库：{type(exc).__name__}: {exc}"))
    try:
        return _run(src, scrapy_settings(src, fetch, db_url=db_url, overrides=overrides), known, now)
    except Exception as exc:  # the crawl machinery itself failed; report, never raise
        return CrawlReport(FetchResult(src.name, [], error=f"抓取进程出错：{type(exc).__name__}: {exc}"))


def _known(db_url: str, source: str) -> frozenset[str]:
    engine = make_engine(db_url)
    try:
        with Session(engine) as session:
            return frozenset(known_urls(session, source))
    finally:
        engine.dispose()


def _selector_problems(src: SiteSource) -> list[str | None]:
    selectors = [src.list_page.links, src.list_page.next_page]
    if src.article is not None:
        a = src.article
        selectors += [a.title, a.body, a.published, a.author]
    return [selector_error(s) for s in selectors if s]


def _run(src: SiteSource, settings: dict[str, Any], known: frozenset[str], now: datetime) -> CrawlReport:
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(SiteSpider)
    failures: list[Failure] = []
    done = process.crawl(crawler, source=src, known=known, now=now)
    done.addErrback(failures.append)
    process.start(install_signal_handlers=threading.current_thread() is threading.main_thread())
    spider = getattr(crawler, "spider", None)
    if failures or not isinstance(spider, SiteSpider):
        why = failures[0].getErrorMessage() if failures else "spider did not start"
        return CrawlReport(FetchResult(src.name, [], error=f"抓取进程出错：{why}"))
    stats = crawler.stats.get_stats() if crawler.stats is not None else {}
    counts = {c.value: int(stats.get(stat_key(c), 0)) for c in Count}
    counts.update({name: int(stats.get(key, 0)) for name, key in SCRAPY_STATS.items()})
    return _report(spider, counts)


def _report(spider: SiteSpider, counts: dict[str, int]) -> CrawlReport:
    messages = dict(spider.messages)
    error: str | None = None
    if counts[Count.LIST_PAGES] == 0:
        reasons = list(spider.start_failures.values()) or [messages.get("list_not_html", "")]
        error = "没有读到任何列表页：" + "；".join(r for r in reasons if r)
    elif counts[Count.ARTICLE_FAILURES] and not counts[Count.ARTICLE_PAGES]:
        error = "所有文章页均抓取失败"
    elif counts[Count.STORE_ERRORS] and not counts[Count.STORED]:
        error = messages.pop("store", "保存失败")
    result = FetchResult(
        source=spider.source.name,
        items=list(spider.stored),
        error=error,
        warnings=list(messages.values()),
        pages=counts[Count.LIST_PAGES] + counts[Count.ARTICLE_PAGES],
        empty_pages=counts[Count.EMPTY_PAGES],
        stored=counts[Count.STORED],
    )
    return CrawlReport(result, counts)


def load_job(path: Path) -> tuple[SiteSource, FetchSettings, dict[str, Any]]:
    """A crawl job file (JSON or YAML): {"source": {...}, "fetch": {...}, "settings": {...}}."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError("a job is a mapping with a 'source' key")
    source = SiteSource.model_validate({"kind": "site", **data["source"]})
    fetch = FetchSettings.model_validate(data.get("fetch") or {})
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise ValueError("'settings' must be a mapping of Scrapy settings")
    return source, fetch, settings


def main(argv: list[str] | None = None) -> int:
    """`python -m crawlers.site JOB [--db-url URL]`: crawl once, print the summary as one JSON line.

    Exit status 0 when the crawl worked, 1 when it failed as a whole, 2 for an unusable job file.
    """
    ap = argparse.ArgumentParser(prog="python -m crawlers.site", description="Crawl one site source once.")
    ap.add_argument("job", type=Path, help="JSON or YAML: {source: {...}, fetch: {...}, settings: {...}}")
    ap.add_argument("--db-url", help="database URL (default: YUQING_DATABASE_URL)")
    args = ap.parse_args(argv)
    try:
        source, fetch, overrides = load_job(args.job)
        db_url = args.db_url or Environment.from_environ().database_url
    except (OSError, ValueError, ValidationError, yaml.YAMLError, EnvError) as exc:
        print(json.dumps({"error": f"{args.job}: {exc}"}, ensure_ascii=False))
        return 2
    report = run_crawl(source, fetch, db_url=db_url, now=utcnow(), overrides=overrides)
    print(json.dumps(report.summary(), ensure_ascii=False))
    return 1 if report.result.error else 0


if __name__ == "__main__":
    sys.exit(main())
