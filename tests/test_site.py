"""Site crawler: list pages → article pages → raw posts, against a fixture site on 127.0.0.1.

Each crawl runs in a subprocess (`python -m crawlers.site JOB`: Twisted's reactor runs once per process)
against a temporary database; the fixture server in this process logs every request it answers.
The site (tests/fixtures/site): robots.txt closing /private/; two list pages (a third beyond max_pages);
UTF-8 articles, a GBK article declaring gb2312, a login wall, a PDF link, an extension-less link answering
application/pdf, a robots-disallowed link, a page answering 503 once, duplicate links and a link to another
site.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import HtmlResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from config.schema import ArticleSelectors, FetchSettings, ListSelectors, SiteSource
from models.db import make_engine
from models.enums import RawPostStatus
from models.migrate import upgrade
from models.tables import RawPost

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(__file__).parent / "fixtures" / "site"
NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
GBK_FILES = {"/news/2026/gbk.html"}  # served as plain "text/html": the page itself declares gb2312
TITLES = {
    "/news/2026/water.html": "我市全面完成老旧供水管网改造",
    "/news/2026/forest.html": "林业局部署今冬明春森林防火工作",
    "/news/2026/flaky.html": "市政府常务会议研究部署重点工作",
    "/news/2026/gbk.html": "市民王喆反映小区电梯停运问题得到解决",
    "/news/2026/road.html": "城区主干道改造工程本月底完工",
}
FAST = {"YUQING_RETRY_BACKOFF": 0.01}  # keep the retry pause short in tests


class FixtureSite:
    """A threading HTTP server on 127.0.0.1 serving tests/fixtures/site, with a request log."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.flaky_hits = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.site = self  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FixtureSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def respond(self, target: str) -> tuple[int, str, bytes]:
        self.log.append(target)
        path = target.split("?", 1)[0]
        if path == "/download":
            return 200, "application/pdf", (SITE / "files" / "report.pdf").read_bytes()
        if path == "/news/2026/flaky.html":
            self.flaky_hits += 1
            if self.flaky_hits == 1:
                return 503, "text/html; charset=utf-8", b"<h1>Service Unavailable</h1>"
        file = (SITE / path.lstrip("/")).resolve()
        if SITE.resolve() not in file.parents or not file.is_file():
            return 404, "text/html; charset=utf-8", b"<h1>Not Found</h1>"
        if file.suffix == ".pdf":
            ctype = "application/pdf"
        elif file.suffix == ".txt":
            ctype = "text/plain; charset=utf-8"
        else:
            ctype = "text/html" if path in GBK_FILES else "text/html; charset=utf-8"
        return 200, ctype, file.read_bytes()

    def paths(self) -> list[str]:
        return [t.split("?", 1)[0] for t in self.log]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:
        status, ctype, body = self.server.site.respond(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the crawler cuts a non-HTML body off after its headers, as it should

    def log_message(self, format: str, *args: Any) -> None:
        pass


def source(site: FixtureSite, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "city-news",
        "start_urls": [f"{site.base}/news/index.html"],
        "list_page": {"links": "ul.news-list a", "next_page": "a.next::attr(href)", "max_pages": 2},
        "retries": 2,
    }
    data.update(overrides)
    return data


def crawl(job: dict[str, Any], db_url: str, work: Path) -> tuple[int, dict[str, Any]]:
    """Run one crawl in a subprocess; return its exit status and printed summary."""
    path = work / f"job-{len(list(work.glob('job-*.json')))}.json"
    path.write_text(json.dumps(job, ensure_ascii=False), encoding="utf-8")
    cmd = [sys.executable, "-m", "crawlers.site", str(path), "--db-url", db_url]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no summary printed; stderr:\n{done.stderr}"
    return done.returncode, json.loads(lines[-1])


def rows(engine: Engine, name: str = "city-news") -> dict[str, RawPost]:
    """The stored articles (pages kept without an article are failed rows, see the login-wall test)."""
    with Session(engine) as s:
        query = select(RawPost).where(RawPost.source == name, RawPost.status != RawPostStatus.FAILED)
        return {r.url: r for r in s.exec(query).all()}


@dataclass
class Crawled:
    site: FixtureSite
    engine: Engine
    first: dict[str, Any]
    first_status: int
    first_log: list[str]
    second: dict[str, Any] = field(default_factory=dict)
    second_log: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawled]:
    """The fixture site crawled twice into one SQLite database (the second crawl is incremental)."""
    work = tmp_path_factory.mktemp("site")
    url = f"sqlite:///{work / 'site.db'}"
    engine = make_engine(url)
    upgrade(engine)
    with FixtureSite() as site:
        job = {"source": source(site), "settings": FAST}
        status, first = crawl(job, url, work)
        result = Crawled(site, engine, first, status, list(site.paths()))
        site.log.clear()
        _, result.second = crawl(job, url, work)
        result.second_log = list(site.paths())
        yield result
    engine.dispose()


def test_first_crawl_stores_every_article_with_its_title(crawled: Crawled) -> None:
    assert crawled.first_status == 0 and crawled.first["error"] is None
    stored = rows(crawled.engine)
    assert set(stored) == {crawled.site.base + path for path in TITLES}
    for path, title in TITLES.items():
        payload = stored[crawled.site.base + path].payload
        assert title in payload["title"]
        assert len(payload["body"]) > 60
    assert crawled.first["items"] == 5 and crawled.first["counts"]["stored"] == 5


def test_gbk_page_declaring_gb2312_is_decoded(crawled: Crawled) -> None:
    payload = rows(crawled.engine)[crawled.site.base + "/news/2026/gbk.html"].payload
    assert "王喆" in payload["title"]  # 喆 is in GBK but not in GB2312
    assert "12345政务服务便民热线" in payload["body"]
    assert payload["extra"]["encoding"].lower().replace("-", "") in {"gbk", "gb18030", "gb2312", "cp936"}


def test_robots_txt_is_obeyed(crawled: Crawled) -> None:
    assert "/robots.txt" in crawled.first_log
    assert "/private/secret.html" not in crawled.first_log
    assert crawled.first["counts"]["robots_forbidden"] == 1


def test_file_links_and_non_html_responses_are_skipped(crawled: Crawled) -> None:
    assert "/files/report.pdf" not in crawled.first_log  # skipped by extension, never requested
    assert crawled.first_log.count("/download") == 1  # requested, cut off after the headers
    counts = crawled.first["counts"]
    assert counts["skipped_file_links"] == 1 and counts["non_html"] == 1
    assert not any("download" in url or url.endswith(".pdf") for url in rows(crawled.engine))


def test_login_wall_counts_as_an_empty_page(crawled: Crawled) -> None:
    assert crawled.first["empty_pages"] == 1
    assert crawled.site.base + "/news/2026/members.html" not in rows(crawled.engine)
    assert any("members.html" in w for w in crawled.first["warnings"])
    with Session(crawled.engine) as s:  # kept, not lost: the reason and the page text, marked failed
        kept = s.exec(select(RawPost).where(RawPost.status == RawPostStatus.FAILED)).one()
    assert kept.url.endswith("/news/2026/members.html")
    assert "no article could be extracted" in (kept.error or "") and kept.payload["extra"]["html"]


def test_pagination_stops_at_max_pages_and_duplicates_are_fetched_once(crawled: Crawled) -> None:
    log = crawled.first_log
    assert log.count("/news/index.html") == 1 and log.count("/news/index_2.html") == 1
    assert "/news/index_3.html" not in log and "/news/2026/beyond.html" not in log
    assert log.count("/news/2026/road.html") == 1  # linked with tracking parameters and without
    assert log.count("/news/2026/water.html") == 1  # linked again with a #fragment
    assert crawled.first["pages"] == 2 + 6  # list pages + HTML article pages (5 articles, 1 login wall)


def test_failed_request_is_retried(crawled: Crawled) -> None:
    assert crawled.first_log.count("/news/2026/flaky.html") == 2  # 503, then 200
    assert crawled.first["counts"]["retries"] == 1


def test_links_to_other_sites_are_not_followed(crawled: Crawled) -> None:
    counts = crawled.first["counts"]
    assert counts["offsite"] == 1 and counts["network_errors"] == 0


def test_second_crawl_fetches_no_stored_article_and_stores_nothing(crawled: Crawled) -> None:
    second = crawled.second
    assert second["error"] is None and second["items"] == 0 and second["counts"]["stored"] == 0
    assert len(rows(crawled.engine)) == 5
    for path in TITLES:
        assert path not in crawled.second_log
    assert second["counts"]["skipped_known"] == 7  # 3 on page 1, 4 links (3 articles) on page 2
    assert second["empty_pages"] == 1  # the login wall is tried again: it may open up


def test_selectors_fill_title_author_and_time(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sel.db'}"
    engine = make_engine(url)
    upgrade(engine)
    article = {"title": "xpath://div[@class='article']/h1/text()", "body": "div.content",
               "published": "span.date", "author": "span.author"}
    with FixtureSite() as site:
        job = {"source": source(site, name="city-sel", article=article, obey_robots=False,
                                start_urls=[f"{site.base}/news/index_2.html"]), "settings": FAST}
        job["source"]["list_page"]["max_pages"] = 1
        status, summary = crawl(job, url, tmp_path)
    assert status == 0, summary
    stored = rows(engine, "city-sel")
    road = stored[site.base + "/news/2026/road.html"].payload
    assert road["title"] == TITLES["/news/2026/road.html"]
    assert "市住建局" in (road["author"] or "")
    assert road["published"] and road["published"].startswith("2026-11-14")
    assert "/news/index.html" not in site.paths()  # max_pages 1: no pagination
    engine.dispose()


def test_unreadable_start_pages_fail_the_crawl(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'err.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    with FixtureSite() as site:
        closed = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        dead = f"http://127.0.0.1:{closed.server_address[1]}/index.html"
        closed.server_close()  # nothing listens there any more
        job = {"source": source(site, start_urls=[f"{site.base}/private/index.html", dead], retries=0)}
        status, summary = crawl(job, url, tmp_path)
    assert status == 1
    assert "robots.txt" in summary["error"] and "127.0.0.1" in summary["error"]
    assert summary["pages"] == 0 and summary["items"] == 0


def test_invalid_selector_is_reported_without_crawling(tmp_path: Path) -> None:
    from crawlers.site import run_crawl

    src = SiteSource(kind="site", name="bad", start_urls=["http://127.0.0.1:9/"],
                     list_page=ListSelectors(links="ul li a["), article=ArticleSelectors(title="xpath://h1["))
    report = run_crawl(src, FetchSettings(), db_url=f"sqlite:///{tmp_path / 'x.db'}", now=NOW)
    assert report.result.error is not None and "ul li a[" in report.result.error and "//h1[" in report.result.error


def test_crawl_on_each_database(db: Engine, tmp_path: Path) -> None:
    with FixtureSite() as site:
        status, summary = crawl({"source": source(site), "settings": FAST}, db.url.render_as_string(False), tmp_path)
    assert status == 0 and summary["items"] == 5
    assert len(rows(db)) == 5


# -- pure helpers (no reactor) -------------------------------------------------------------------------------

LIST_HTML = """<html><body><base href="http://example.cn/news/">
<ul class="l"><li><a href="a.html">A</a></li><li><a href="/b.html">B</a></li>
<li><a href="javascript:void(0)">x</a></li><li><a href="mailto:x@example.cn">m</a></li></ul>
<div class="urls"><span data-u="https://other.cn/c.html">C</span></div></body></html>"""


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("ul.l a", ["http://example.cn/news/a.html", "http://example.cn/b.html"]),
        ("ul.l li", ["http://example.cn/news/a.html", "http://example.cn/b.html"]),  # the <a> inside
        ("ul.l a::attr(href)", ["http://example.cn/news/a.html", "http://example.cn/b.html"]),
        ("xpath://div[@class='urls']/span/@data-u", ["https://other.cn/c.html"]),
        ("xpath://div[@class='urls']/span/text()", ["http://example.cn/news/C"]),
    ],
)
def test_links_selector_yields_absolute_urls(selector: str, expected: list[str]) -> None:
    from crawlers.site_spider import selected_urls

    page = HtmlResponse("http://example.cn/news/index.html", body=LIST_HTML.encode(), encoding="utf-8")
    assert selected_urls(page, selector) == expected


def test_settings_follow_the_source_and_fetch_limits() -> None:
    from crawlers.site import scrapy_settings

    src = SiteSource(kind="site", name="s", start_urls=["https://www.gov.example.cn/news/"],
                     list_page=ListSelectors(links="a"), obey_robots=True, concurrency_per_domain=3,
                     download_delay=timedelta(seconds=2), retries=4)
    fetch = FetchSettings(user_agent="ua-fetch", timeout=timedelta(seconds=7), max_bytes=5000, max_redirects=2)
    s = scrapy_settings(src, fetch, db_url="sqlite://")
    assert s["ROBOTSTXT_OBEY"] is True and s["USER_AGENT"] == "ua-fetch"
    assert s["CONCURRENT_REQUESTS_PER_DOMAIN"] == 3 and s["DOWNLOAD_DELAY"] == 2.0
    assert s["AUTOTHROTTLE_ENABLED"] is True and s["AUTOTHROTTLE_START_DELAY"] == 2.0
    assert s["RETRY_TIMES"] == 4 and s["DOWNLOAD_TIMEOUT"] == 7.0 and s["DOWNLOAD_MAXSIZE"] == 5000
    assert s["REDIRECT_MAX_TIMES"] == 2 and s["TELNETCONSOLE_ENABLED"] is False and s["LOG_LEVEL"] == "WARNING"
    own = scrapy_settings(src.model_copy(update={"user_agent": "ua-src"}), fetch, db_url="sqlite://")
    assert own["USER_AGENT"] == "ua-src"


def test_html_content_types() -> None:
    from crawlers.site_spider import default_domains, is_html_type

    assert is_html_type(b"text/html; charset=gbk") and is_html_type("application/xhtml+xml") and is_html_type(None)
    assert not is_html_type(b"application/pdf") and not is_html_type("image/png")
    assert default_domains(["http://127.0.0.1:8080/a", "https://www.gov.cn/x"]) == ["127.0.0.1", "www.gov.cn"]
