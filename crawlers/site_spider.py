"""The Scrapy side of site crawling: the spider, its storage pipeline and its retry backoff.

Contract of `SiteSpider` (one configured `SiteSource`):
- list pages (the start URLs, then `list_page.next_page` up to `list_page.max_pages` per start URL) give
  article links through `list_page.links`: an element (its @href, or the href of an <a> inside it) or a
  selector that yields URL strings (`a::attr(href)`, `xpath://a/@href`); relative links are resolved;
- an article whose canonical URL is already stored for the source (`known`, loaded from raw_post before
  the crawl) or already seen in this run is never requested; links to files (.pdf, .doc, images …) are
  skipped unrequested, and a response whose Content-Type is not HTML is cut off after its headers;
- each article page goes through `crawlers.extract.extract_article`; a page with no article (login wall,
  captcha, too little text: `ExtractError`) is counted as empty and kept as a raw row holding the reason and
  the page text, which processing marks failed (nothing is lost; the next crawl fetches it again);
- everything is counted in the crawl stats under `yuqing/…` (see `Count`); the first message of each
  kind of failure is kept for the report. Nothing here raises out of a callback for bad input.

`RawPostStore` inserts the spider's `RawItem`s in batches with `crawlers.store.store_raw`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from cssselect import SelectorError
from lxml import etree
from parsel import Selector, SelectorList
from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, StopDownload
from scrapy.http import Headers, Response, TextResponse
from scrapy.linkextractors import IGNORED_EXTENSIONS
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.asyncio import sleep
from scrapy.utils.url import url_has_any_extension
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from twisted.python.failure import Failure

from config.schema import SiteSource
from crawlers.encoding import decode_document
from crawlers.extract import ExtractError, extract_article
from crawlers.items import RawItem
from crawlers.normalize import canonical_url
from crawlers.store import store_raw
from models.db import make_engine, session_scope

log = logging.getLogger(__name__)

XPATH_PREFIX = "xpath:"
HTML_TYPES = ("text/html", "application/xhtml+xml")
SKIPPED_EXTENSIONS = tuple(f".{ext}" for ext in IGNORED_EXTENSIONS)
KIND = "yuqing_kind"  # request meta: "list" or "article"
PAGE = "yuqing_page"  # request meta: list page number (1 = start URL)
KEY = "yuqing_key"  # request meta: the article's canonical URL


class Count(StrEnum):
    """Crawl counters (stats keys `yuqing/<value>`)."""

    LIST_PAGES = "list_pages"  # list pages parsed (HTML)
    ARTICLE_PAGES = "article_pages"  # article pages handed to extraction (HTML)
    ITEMS = "items"  # articles extracted
    STORED = "stored"  # raw posts inserted
    EMPTY_PAGES = "empty_pages"  # article pages with no extractable article (ExtractError)
    SKIPPED_KNOWN = "skipped_known"  # article links already stored for this source: not requested
    SKIPPED_FILE_LINKS = "skipped_file_links"  # links to .pdf/.doc/images …: not requested
    NON_HTML = "non_html"  # responses cut off because their Content-Type is not HTML
    NO_LINKS = "list_pages_without_links"  # list pages on which the links selector found nothing
    ROBOTS_FORBIDDEN = "robots_forbidden"
    HTTP_ERRORS = "http_errors"  # final non-2xx answers (after retries)
    NETWORK_ERRORS = "network_errors"  # timeouts, refused connections, oversized bodies … (after retries)
    ARTICLE_FAILURES = "article_failures"  # article requests that failed (HTTP or network errors)
    IGNORED = "ignored"  # other dropped requests (offsite …)
    EXTRACT_FAILURES = "extract_failures"  # unexpected errors while extracting (a bug, not a page problem)
    STORE_ERRORS = "store_errors"  # batches that could not be stored (refetched on the next crawl)


def stat_key(count: Count) -> str:
    return f"yuqing/{count.value}"


def select(node: TextResponse | Selector, selector: str) -> SelectorList[Selector]:
    """Apply a configured selector: CSS, or XPath when prefixed with "xpath:"."""
    if selector.startswith(XPATH_PREFIX):
        return node.xpath(selector[len(XPATH_PREFIX) :].strip())
    return node.css(selector)


def selector_error(selector: str) -> str | None:
    """Why a configured selector cannot be compiled (None: it is fine)."""
    try:
        if selector.startswith(XPATH_PREFIX):
            etree.XPath(selector[len(XPATH_PREFIX) :].strip())
        else:
            Selector(text="<html></html>").css(selector)
    except (etree.XPathError, SelectorError, ValueError) as exc:
        return f"{selector!r}: {exc}"
    return None


def selected_urls(response: TextResponse, selector: str) -> list[str]:
    """Absolute http(s) URLs that a links selector yields on a page, in page order."""
    urls: list[str] = []
    for sel in select(response, selector):
        root = sel.root
        href = root if isinstance(root, str) else sel.attrib.get("href") or sel.xpath(".//a/@href").get()
        raw = (href or "").strip()
        if not raw or raw.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        url = response.urljoin(raw)
        if urlsplit(url).scheme in ("http", "https"):
            urls.append(url)
    return urls


def is_html_type(content_type: bytes | str | None) -> bool:
    """True for an HTML Content-Type, and for a missing one (the body decides)."""
    if not content_type:
        return True
    value = content_type.decode("latin-1") if isinstance(content_type, bytes) else content_type
    return value.split(";", 1)[0].strip().lower() in HTML_TYPES


def default_domains(start_urls: list[str]) -> list[str]:
    """The host names of the start URLs (ports dropped: Scrapy's offsite filter matches host names)."""
    hosts = [urlsplit(url).hostname or "" for url in start_urls]
    return sorted({h for h in hosts if h})


class SiteSpider(Spider):
    """One configured news or government site: list pages → article pages → `RawItem`s."""

    name = "site"

    def __init__(self, *, source: SiteSource, known: frozenset[str], now: datetime, **kwargs: Any) -> None:
        super().__init__(name=source.name, **kwargs)
        self.source = source
        self.known = known
        self.now = now
        self.allowed_domains = list(source.allowed_domains) or default_domains(source.start_urls)
        self.seen: set[str] = set()
        self.stored: list[RawItem] = []
        self.messages: dict[str, str] = {}  # first message per kind of problem
        self.start_failures: dict[str, str] = {}  # start URL → why it could not be read

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SiteSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.headers_received, signal=signals.headers_received)
        return spider

    # -- bookkeeping ---------------------------------------------------------------------------------------

    def count(self, counter: Count, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(stat_key(counter), n)

    def note(self, kind: str, message: str) -> None:
        """Keep the first message of each kind; log it once."""
        if kind not in self.messages:
            self.messages[kind] = message
            log.warning("%s: %s", self.source.name, message)

    # -- requests --------------------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Request]:
        for url in self.source.start_urls:
            yield self.list_request(url, page=1)

    def list_request(self, url: str, *, page: int) -> Request:
        # List pages go first so that every article link is known early.
        return Request(url, callback=self.parse_list, errback=self.on_error, priority=1,
                       meta={KIND: "list", PAGE: page})

    def article_request(self, url: str) -> Request | None:
        if url_has_any_extension(url, SKIPPED_EXTENSIONS):
            self.count(Count.SKIPPED_FILE_LINKS)
            return None
        key = canonical_url(url)
        if key in self.known:
            self.count(Count.SKIPPED_KNOWN)
            return None
        if key in self.seen:
            return None
        self.seen.add(key)
        return Request(url, callback=self.parse_article, errback=self.on_error, meta={KIND: "article", KEY: key})

    def headers_received(self, headers: Headers, body_length: int, request: Request, spider: Spider) -> None:
        """Stop downloading a body that is not HTML (a PDF behind an extension-less link …)."""
        if request.meta.get(KIND) and not is_html_type(headers.get(b"Content-Type")):
            raise StopDownload(fail=False)

    # -- callbacks -------------------------------------------------------------------------------------------

    def html(self, response: Response) -> TextResponse | None:
        if "download_stopped" in response.flags or not isinstance(response, TextResponse):
            self.count(Count.NON_HTML)
            return None
        if not is_html_type(response.headers.get(b"Content-Type")):
            self.count(Count.NON_HTML)
            return None
        return response

    def parse_list(self, response: Response) -> Iterator[Request]:
        page = self.html(response)
        if page is None:
            self.note("list_not_html", f"列表页不是 HTML：{response.url}")
            return
        self.count(Count.LIST_PAGES)
        lists = self.source.list_page
        links = selected_urls(page, lists.links)
        if not links:
            self.count(Count.NO_LINKS)
            self.note("no_links", f"列表页上文章链接选择器 {lists.links!r} 没有匹配：{response.url}（页面可能改版）")
        for url in links:
            request = self.article_request(url)
            if request is not None:
                yield request
        number = int(response.meta.get(PAGE, 1))
        if lists.next_page and number < lists.max_pages:
            following = selected_urls(page, lists.next_page)
            if following:
                yield self.list_request(following[0], page=number + 1)

    def parse_article(self, response: Response) -> Iterator[RawItem]:
        page = self.html(response)
        if page is None:
            return
        self.count(Count.ARTICLE_PAGES)
        key = str(response.meta.get(KEY) or canonical_url(response.url))
        content_type = page.headers.get(b"Content-Type")
        try:
            article = extract_article(
                page.body, url=response.url, now=self.now, selectors=self.source.article,
                content_type=content_type.decode("latin-1") if content_type else None,
            )
        except ExtractError as exc:
            self.count(Count.EMPTY_PAGES)
            self.note("empty", f"文章页提取不到正文（疑似登录墙或反爬页面）：{response.url}：{exc}")
            yield unextracted_item(self.source.name, key, self.now, page.body, content_type, exc.reason)
            return
        except Exception as exc:  # a bug in extraction must not stop the crawl
            self.count(Count.EXTRACT_FAILURES)
            self.note("extract_failure", f"提取文章时出错：{response.url}：{type(exc).__name__}: {exc}")
            return
        self.count(Count.ITEMS)
        published = article.published.isoformat() if article.published else article.published_raw
        yield RawItem(
            source=self.source.name, url=key, fetched_at=self.now, title=article.title, body=article.text,
            author=article.author, published=published, extra={"encoding": article.encoding},
        )

    def on_error(self, failure: Failure) -> None:
        request: Request | None = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        kind, message = self.classify(failure, url)
        if not kind:
            return
        self.note(kind, message)
        meta = request.meta if request is not None else {}
        if meta.get(KIND) == "article" and kind != "robots":
            self.count(Count.ARTICLE_FAILURES)
        elif meta.get(KIND) == "list" and meta.get(PAGE) == 1:
            self.start_failures.setdefault(url, message)

    def classify(self, failure: Failure, url: str) -> tuple[str, str]:
        """Count a failed request; return the kind of problem and its message ("" kind: not a problem)."""
        exc = failure.value
        if isinstance(exc, HttpError):
            self.count(Count.HTTP_ERRORS)
            status = exc.response.status
            return f"http_{status}", f"HTTP {status}：{url}"
        if isinstance(exc, IgnoreRequest):
            if "robots.txt" in str(exc):
                self.count(Count.ROBOTS_FORBIDDEN)
                return "robots", f"robots.txt 禁止抓取：{url}"
            self.count(Count.IGNORED)
            return "", ""
        self.count(Count.NETWORK_ERRORS)
        name = type(exc).__name__
        return f"net_{name}", f"抓取失败：{url}：{name}: {exc}"


class RetryBackoff:
    """Downloader middleware: wait before each retry, `YUQING_RETRY_BACKOFF` × 2^(n-1) seconds (at most 60).

    Scrapy's RetryMiddleware re-queues a failed request at once (only at a lower priority); this adds the
    exponential pause. The request holds one of CONCURRENT_REQUESTS' places while it waits.
    """

    def __init__(self, base: float) -> None:
        self.base = base

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryBackoff:
        return cls(crawler.settings.getfloat("YUQING_RETRY_BACKOFF", 1.0))

    async def process_request(self, request: Request) -> None:
        attempt = int(request.meta.get("retry_times", 0))
        if attempt and self.base > 0:
            await sleep(min(60.0, self.base * 2 ** (attempt - 1)))


KEPT_HTML_CHARS = 500_000


def unextracted_item(source: str, url: str, now: datetime, body: bytes, content_type: bytes | None,
                     reason: str) -> RawItem:
    """A page with no extractable article is kept, not dropped: the raw row holds the reason and the page's
    text (capped), processing marks it failed with that reason, and the next crawl fetches the URL again."""
    decoded = decode_document(body, content_type=content_type.decode("latin-1") if content_type else None)
    return RawItem(source=source, url=url, fetched_at=now,
                   extra={"unextracted": reason, "encoding": decoded.encoding, "html": decoded.text[:KEPT_HTML_CHARS]})


def is_article(item: RawItem) -> bool:
    return "unextracted" not in item.extra


class RawPostStore:
    """Item pipeline: insert the spider's `RawItem`s into raw_post, `YUQING_STORE_BATCH` at a time."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.db_url: str = crawler.settings.get("YUQING_DATABASE_URL")
        self.batch_size = crawler.settings.getint("YUQING_STORE_BATCH", 200)
        self.pending: list[RawItem] = []
        self.engine: Engine | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RawPostStore:
        return cls(crawler)

    def open_spider(self) -> None:
        self.engine = make_engine(self.db_url)

    def close_spider(self) -> None:
        self.flush()
        if self.engine is not None:
            self.engine.dispose()

    def process_item(self, item: Any) -> Any:
        if isinstance(item, RawItem):
            self.pending.append(item)
            if len(self.pending) >= self.batch_size:
                self.flush()
        return item

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        spider = self.crawler.spider
        assert isinstance(spider, SiteSpider) and self.engine is not None
        try:
            with session_scope(self.engine) as session:
                added = store_raw(session, [i for i in batch if is_article(i)])
                store_raw(session, [i for i in batch if not is_article(i)])  # kept for the record, not counted
        except SQLAlchemyError as exc:
            spider.count(Count.STORE_ERRORS)
            spider.note("store", f"保存 {len(batch)} 条原始数据失败（下次抓取会重试）：{type(exc).__name__}: {exc}")
            return
        spider.count(Count.STORED, added)
        spider.stored.extend(i for i in batch if is_article(i))
