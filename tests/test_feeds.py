"""Feed source: RSS, Atom, malformed (bozo) feeds keep their good entries; file paths, file:// and http://
URLs; size limit; unreachable sources report an error instead of raising."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.schema import FetchSettings, SourceSettings
from crawlers.feeds import parse_feed, poll_feed
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"
NOW = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


def _poll(url: str, **fetch: object) -> object:
    return poll_feed(SourceSettings(name="t", url=url), FetchSettings(**fetch), base_dir=FEEDS, now=NOW)  # type: ignore[arg-type]


def test_rss_entries_become_raw_items() -> None:
    result = parse_feed((FEEDS / "mine_collapse.xml").read_bytes(), source="s", fetched_at=NOW)
    assert result.error is None and not result.warnings
    [item] = result.items
    assert item.title == "某县煤矿发生坍塌事故 已致35人遇难 多人被困井下"
    assert "35人遇难" in item.body
    assert item.published == "2026-11-20T18:31:00+00:00"
    assert item.url.startswith("https://news.example.cn/2026/1121/mine.html")


def test_atom_content_and_author() -> None:
    [item] = parse_feed((FEEDS / "social.atom").read_bytes(), source="s", fetched_at=NOW).items
    assert item.author == "市民甲"
    assert "停水三天" in item.body
    assert item.url == "https://weibo.example.cn/status/1"


def test_malformed_feed_keeps_good_entries_and_warns() -> None:
    result = parse_feed((FEEDS / "bozo.xml").read_bytes(), source="s", fetched_at=NOW)
    assert result.error is None
    assert result.warnings and "malformed feed" in result.warnings[0]
    assert result.items and result.items[0].title == "第一条完好的条目"


def test_garbage_is_an_error_not_an_exception() -> None:
    result = parse_feed(b"\x00\x01 this is not a feed", source="s", fetched_at=NOW)
    assert result.items == []
    assert result.error


def test_relative_path_and_file_url() -> None:
    rel = _poll("mine_collapse.xml")
    url = _poll((FEEDS / "mine_collapse.xml").as_uri())
    assert len(rel.items) == len(url.items) == 1  # type: ignore[attr-defined]


def test_missing_file_reports_error() -> None:
    result = _poll("does-not-exist.xml")
    assert result.items == [] and "does-not-exist.xml" in result.error  # type: ignore[attr-defined]


class _Handler(BaseHTTPRequestHandler):
    body = (FEEDS / "mine_collapse.xml").read_bytes()
    seen_agents: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:
        self.seen_agents.append(self.headers.get("User-Agent", ""))
        if self.path == "/missing":
            self.send_response(404)
            self.end_headers()
            return
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/feed.xml")
            self.end_headers()
            return
        payload = self.body * (200 if self.path == "/huge" else 1)
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def http_base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_feed_with_user_agent_and_redirect(http_base: str) -> None:
    result = _poll(f"{http_base}/redirect", user_agent="yuqing-test/1")
    assert result.error is None  # type: ignore[attr-defined]
    assert len(result.items) == 1  # type: ignore[attr-defined]
    assert "yuqing-test/1" in _Handler.seen_agents


def test_http_errors_and_size_limit(http_base: str) -> None:
    assert "HTTP 404" in _poll(f"{http_base}/missing").error  # type: ignore[attr-defined]
    assert "limit" in _poll(f"{http_base}/huge", max_bytes=4096).error  # type: ignore[attr-defined]


def test_unreachable_host_reports_error(tmp_path: Path) -> None:
    result = _poll("http://127.0.0.1:9/feed.xml", timeout=2)
    assert result.items == [] and result.error  # type: ignore[attr-defined]
