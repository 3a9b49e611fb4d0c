"""JSON API source against a local HTTP server on 127.0.0.1: a Weibo-like API paged by page number, a cursor
API that checks a bearer token taken from the environment, failures on the first and on later pages (kept
items), malformed JSON, an HTML login page, bodies over max_bytes, conditional GET, POST; plus the pure
mapping helpers (dot paths, Chinese counts)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from config.schema import FetchSettings, JsonApiSource
from crawlers.items import FetchResult, FetchState
from crawlers.json_api import poll_json_api
from crawlers.records import parse_count, select_path
from tests.conftest import FIXTURES

API = FIXTURES / "json_api"
NOW = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
TOKEN = "test-token-7f3a9c"
ENV = {"YUQING_TEST_API_TOKEN": TOKEN}
WEIBO_FIELDS = {"id": "mblog.id", "text": "mblog.text", "author": "mblog.user.screen_name",
                "published": "mblog.created_at", "reposts": "mblog.reposts_count", "comments": "mblog.comments_count",
                "likes": "mblog.attitudes_count", "author_followers": "mblog.user.followers_count", "url": "scheme"}
FORUM_FIELDS = {"id": "pid", "title": "subject", "text": "content.body", "url": "link", "published": "time",
                "author": "author.nick", "author_followers": "author.fans", "comments": "stats.replies",
                "reposts": "stats.shares"}
WEIBO_PAGES = {1: "weibo_page1.json", 2: "weibo_page2.json"}


class _Api(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self.requests.append({"path": parts.path, "query": query, "headers": dict(self.headers)})
        route = getattr(self, "_route_" + parts.path.strip("/").replace("-", "_"), None)
        if route is None:
            self._send(404, b"not found", "text/plain")
        else:
            route(query)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append({"path": self.path, "json": body, "headers": dict(self.headers)})
        self._send(200, (API / "weibo_page2.json").read_bytes())

    def _route_weibo(self, query: dict[str, str]) -> None:
        self._send(200, (API / WEIBO_PAGES.get(int(query.get("page", "1")), "weibo_page3_empty.json")).read_bytes())

    def _route_weibo_500(self, query: dict[str, str]) -> None:
        if query.get("page") == "2":
            self._send(500, b'{"error": "internal"}')
        else:
            self._route_weibo(query)

    def _route_ignores_page(self, query: dict[str, str]) -> None:
        self._send(200, (API / "weibo_page1.json").read_bytes())

    def _route_cursor(self, query: dict[str, str]) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, b'{"code": 401, "msg": "invalid token"}')
            return
        name = {None: "cursor_page1.json", "c2": "cursor_page2.json"}.get(query.get("cursor"))
        self._send(200, (API / name).read_bytes()) if name else self._send(400, b"{}")

    def _route_cursor_loop(self, query: dict[str, str]) -> None:
        self._send(200, (API / "cursor_loop.json").read_bytes())

    def _route_login(self, query: dict[str, str]) -> None:
        self._send(200, (API / "login_page.html").read_bytes(), "text/html; charset=utf-8")

    def _route_malformed(self, query: dict[str, str]) -> None:
        self._send(200, (API / "weibo_malformed.json").read_bytes())

    def _route_fixture(self, query: dict[str, str]) -> None:
        self._send(200, (API / query["name"]).read_bytes())

    def _route_deep(self, query: dict[str, str]) -> None:
        self._send(200, b"[" * 100_000 + b"]" * 100_000)

    def _route_gbk(self, query: dict[str, str]) -> None:
        text = (API / "weibo_page2.json").read_text(encoding="utf-8")
        self._send(200, text.encode("gbk"), "application/json; charset=GBK")

    def _route_huge(self, query: dict[str, str]) -> None:
        body = json.dumps({"data": {"cards": [{"mblog": {"text": "长" * 1000}}] * 200}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if query.get("length") == "1":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()  # without Content-Length the body ends when the connection closes
        self.wfile.write(body)

    def _route_etag(self, query: dict[str, str]) -> None:
        if self.headers.get("If-None-Match") == '"v1"':
            self.send_response(304)
            self.end_headers()
            return
        self._send(200, (API / "weibo_page2.json").read_bytes(), etag='"v1"')

    def _route_redirect(self, query: dict[str, str]) -> None:
        self.send_response(302)
        self.send_header("Location", "/weibo?page=" + query.get("page", "1"))
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str = "application/json", etag: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if etag:
            self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def base() -> Iterator[str]:
    _Api.requests.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _src(url: str, fields: dict[str, str] | None = None, **keys: Any) -> JsonApiSource:
    return JsonApiSource(kind="json_api", name="weibo", url=url, fields=fields or WEIBO_FIELDS,
                         items_path=keys.pop("items_path", "data.cards"), **keys)


def _poll(src: JsonApiSource, env: dict[str, str] | None = None, **fetch: Any) -> FetchResult:
    return poll_json_api(src, FetchSettings(**fetch), now=NOW, environ=env if env is not None else {})


def test_weibo_like_api_paged_by_number(base: str) -> None:
    result = _poll(_src(f"{base}/weibo", paging={"mode": "page", "param": "page", "start": 1, "max_pages": 5}))
    assert result.error is None and result.pages == 3  # page 3 is empty: stop there
    assert [r["query"]["page"] for r in _Api.requests] == ["1", "2", "3"]
    first, second, third = result.items
    assert first.url == "https://m.weibo.example.cn/status/5001" and first.author == "市民甲"
    assert first.published == "Sat Nov 21 08:00:00 +0800 2026" and "停水三天" in first.body
    assert first.extra == {"id": "5001", "reposts": 12_000, "comments": 3_456, "likes": 100,
                           "author_followers": 100_000}
    assert second.url == f"{base}/status/5002"  # relative link resolved against the API
    assert "likes" not in second.extra and second.published == "3分钟前"
    assert third.url == "weibo:5003"  # no link: <source>:<id>
    assert third.extra["reposts"] == 200_000_000 and third.extra["comments"] == 15_000
    assert result.warnings == [
        "1 item(s) without text or title skipped (first: page 1 item 2)",
        "1 field value(s) unusable and left out (first: page 1 item 3: likes: '很多' is not a number)",
    ]
    assert result.state == FetchState()  # no validators; and no cursor to resume (each poll starts anew)


def test_page_limit_and_user_agent(base: str) -> None:
    src = _src(f"{base}/weibo", paging={"mode": "page", "max_pages": 1}, user_agent="yuqing-test/2")
    result = _poll(src)
    assert result.pages == 1 and len(result.items) == 2
    assert _Api.requests[0]["headers"]["User-Agent"] == "yuqing-test/2"


def test_later_page_failure_keeps_earlier_items(base: str) -> None:
    result = _poll(_src(f"{base}/weibo-500", paging={"mode": "page", "max_pages": 5}))
    assert result.error is None and len(result.items) == 2 and result.pages == 1
    assert "page 2" in result.warnings[0] and "HTTP 500" in result.warnings[0]


def test_first_page_failure_is_an_error(base: str) -> None:
    result = _poll(_src(f"{base}/nowhere"))
    assert result.items == [] and result.error is not None and "HTTP 404" in result.error


def test_api_that_ignores_the_page_parameter_is_noticed(base: str) -> None:
    result = _poll(_src(f"{base}/ignores-page", paging={"mode": "page", "max_pages": 10}))
    assert result.pages == 2 and len(result.items) == 2
    assert "page 2 repeats page 1" in result.warnings[0]


def test_cursor_api_with_bearer_token_from_environment(base: str) -> None:
    src = _src(f"{base}/cursor", FORUM_FIELDS, items_path="data.posts",
               headers={"Authorization": "Bearer ${YUQING_TEST_API_TOKEN}"},
               paging={"mode": "cursor", "param": "cursor", "cursor_path": "data.next_cursor", "max_pages": 5})
    result = _poll(src, ENV)
    assert result.error is None and result.pages == 2  # next_cursor "" ends the walk
    assert [r["query"].get("cursor") for r in _Api.requests] == [None, "c2"]
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in _Api.requests)
    first, second = result.items
    assert first.title == "关于某路段施工扬尘的投诉" and first.extra["comments"] == 12
    assert first.extra["author_followers"] == 45 and first.published == "1795132800"
    assert second.url == "weibo:103" and second.published == "2026-11-20T10:00:00+08:00"
    assert result.warnings == ["1 item(s) without text or title skipped (first: page 1 item 2)"]


def test_missing_variable_is_an_error_and_nothing_is_sent(base: str) -> None:
    src = _src(f"{base}/cursor", FORUM_FIELDS, items_path="data.posts",
               headers={"Authorization": "Bearer ${YUQING_TEST_API_TOKEN}"})
    result = _poll(src, {})
    assert result.error is not None and "YUQING_TEST_API_TOKEN" in result.error
    assert _Api.requests == []


def test_variable_from_file_and_wrong_token_without_leaking_it(base: str, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("wrong-secret-value\n", encoding="utf-8")
    src = _src(f"{base}/cursor", FORUM_FIELDS, items_path="data.posts",
               headers={"Authorization": "Bearer ${YUQING_TEST_API_TOKEN}"})
    result = _poll(src, {"YUQING_TEST_API_TOKEN_FILE": str(secret)})
    assert result.error is not None and "HTTP 401" in result.error and "wrong-secret-value" not in result.error
    assert _Api.requests[0]["headers"]["Authorization"] == "Bearer wrong-secret-value"


def test_secret_in_query_is_masked_in_messages(base: str) -> None:
    secret = "s3cr/et+key=42 中"
    src = _src(f"{base}/nowhere?lang=zh", params={"access_token": "${YUQING_TEST_API_TOKEN}", "q": "停水"})
    result = _poll(src, {"YUQING_TEST_API_TOKEN": secret})
    assert _Api.requests[0]["query"] == {"lang": "zh", "access_token": secret, "q": "停水"}  # URL query kept
    assert result.error is not None and "HTTP 404" in result.error and "access_token=***" in result.error
    assert "s3cr" not in result.error


def test_cursor_that_repeats_stops(base: str) -> None:
    src = _src(f"{base}/cursor-loop", FORUM_FIELDS, items_path="data.posts",
               paging={"mode": "cursor", "param": "cursor", "cursor_path": "data.next_cursor", "max_pages": 50})
    result = _poll(src)
    assert result.pages == 2 and len(result.items) == 1
    assert result.warnings == ["page 2 repeats page 1: does the API ignore 'cursor'?"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/malformed", "malformed JSON"),
        ("/deep", "nested too deeply"),
        ("/login", "not JSON (content-type text/html"),
        ("/fixture?name=weibo_not_list.json", "items_path 'data.cards' is an object, not a list"),
        ("/fixture?name=weibo_login_required.json", "not found in the response (top-level keys: ok, msg, url)"),
    ],
)
def test_unusable_responses_are_errors(base: str, path: str, expected: str) -> None:
    result = _poll(_src(f"{base}{path}"))
    assert result.items == [] and result.error is not None and expected in result.error


@pytest.mark.parametrize("length", ["0", "1"])
def test_body_over_max_bytes(base: str, length: str) -> None:
    result = _poll(_src(f"{base}/huge?length={length}"), max_bytes=64 * 1024)
    assert result.error is not None and "65536-byte limit" in result.error


def test_gbk_json_and_redirect(base: str) -> None:
    result = _poll(_src(f"{base}/gbk"))
    assert result.items[0].body == "某镇卫生院乱收费？家属称一次输液收费上千元"
    redirected = _poll(_src(f"{base}/redirect", params={"page": "2"}))
    assert redirected.error is None and redirected.items[0].extra["id"] == "5003"
    assert _poll(_src(f"{base}/redirect"), max_redirects=0).error is not None


def test_conditional_get(base: str) -> None:
    src = _src(f"{base}/etag")
    first = _poll(src)
    assert first.state == FetchState(etag='"v1"') and len(first.items) == 1
    again = poll_json_api(src, FetchSettings(), now=NOW, state=first.state, environ={})
    assert again.not_modified and again.items == [] and again.error is None and again.pages == 1


def test_post_sends_parameters_as_json(base: str) -> None:
    result = _poll(_src(f"{base}/search", method="POST", params={"keyword": "停水", "region": "某县"}))
    assert len(result.items) == 1
    assert _Api.requests[0]["json"] == {"keyword": "停水", "region": "某县"}


def test_unusable_configuration_and_unreachable_host(base: str) -> None:
    assert "http(s)" in (_poll(_src("file:///etc/passwd")).error or "")
    assert "ASCII" in (_poll(_src(f"{base}/weibo", headers={"X-City": "某县"})).error or "")
    assert _poll(_src("http://[::1/api")).error
    assert _poll(_src("http://127.0.0.1:9/api"), timeout=2).error


def test_real_weibo_records_served_as_paged_api(shared_data: Path, tmp_path: Path) -> None:
    """CED Weibo posts (research data, read in place) served 50 per page by a local server."""
    lines = (shared_data / "ced_weibo_rumor" / "ced_original_microblogs.jsonl").read_text(encoding="utf-8")
    records = [json.loads(line) for line in lines.splitlines()[:120]]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = int(parse_qs(urlsplit(self.path).query)["p"][0])
            body = json.dumps({"statuses": records[(page - 1) * 50 : page * 50]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        src = JsonApiSource(kind="json_api", name="ced", url=f"http://127.0.0.1:{server.server_address[1]}/",
                            items_path="statuses", paging={"mode": "page", "param": "p", "max_pages": 10},
                            fields={"id": "id", "text": "text", "reposts": "reposts", "published": "time",
                                    "author_followers": "user_followers"})
        result = _poll(src)
    finally:
        server.shutdown()
        server.server_close()
    assert result.error is None and result.pages == 4 and len(result.items) == 120
    assert all(isinstance(i.extra["reposts"], int) for i in result.items)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(12, 12), (12.0, 12), ("3,456", 3456), ("1.2万", 12_000), ("10万+", 100_000), ("3亿", 300_000_000),
     ("1.5w", 15_000), ("２千", None), ("  ", None), (None, None), ("-", None), ("暂无", None), ("１２３", 123),
     ("100+", 100)],
)
def test_parse_count(value: object, expected: int | None) -> None:
    if value == "２千":
        with pytest.raises(ValueError):
            parse_count(value)
        return
    assert parse_count(value) == expected


@pytest.mark.parametrize("value", ["很多", "-5", -1, True, "1.2.3", [1], "12abc"])
def test_parse_count_rejects(value: object) -> None:
    with pytest.raises(ValueError):
        parse_count(value)


def test_select_path() -> None:
    data = {"data": {"list": [{"id": 7, "user": {"followers_count": "1万"}}]}, "a.b": 1}
    assert select_path(data, "data.list.0.id") == 7
    assert select_path(data, "data.list.-1.user.followers_count") == "1万"
    assert select_path(data, "a.b") == 1  # an exact key with a dot
    assert select_path(data, "data.list.5.id") is None
    assert select_path(data, "data.missing", "x") == "x"
    assert select_path(data, "") is data
