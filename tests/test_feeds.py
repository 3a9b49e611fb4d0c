"""Feed source: RSS, Atom, RDF and JSON Feed; malformed (bozo) feeds keep their good entries; GB2312/GBK, Big5
and undeclared encodings; Chinese publish times; social metrics; file paths, file:// and http:// URLs; size
limit; conditional GET (ETag / Last-Modified) and redirect limits against a local server; unreachable sources
report an error instead of raising. With ../shared/data present: feedparser's conformance suite and chardet's
real GB2312/Big5 feeds."""

from __future__ import annotations

import ast
import html
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.schema import FeedSource, FetchSettings
from crawlers.feeds import parse_feed, poll_feed
from crawlers.items import FetchResult, FetchState
from crawlers.normalize import strip_html
from tests.conftest import FIXTURES

FEEDS = FIXTURES / "feeds"
NOW = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


def _poll(url: str, **fetch: object) -> object:
    return poll_feed(FeedSource(name="t", url=url), FetchSettings(**fetch), base_dir=FEEDS, now=NOW)  # type: ignore[arg-type]


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


# --- encodings, JSON Feed, Chinese dates, metrics -------------------------------------------------------------

FETCHED = datetime(2026, 11, 20, 18, 40, tzinfo=UTC)  # 02:40 on 21 November in Beijing


def _parse(name: str, content_type: str | None = None) -> FetchResult:
    return parse_feed((FEEDS / name).read_bytes(), source="s", fetched_at=FETCHED, content_type=content_type)


def test_gb2312_declared_feed_with_gbk_characters_decodes_as_gb18030() -> None:
    result = _parse("gb2312_declared.xml")
    assert result.error is None and not result.warnings
    assert [i.title for i in result.items] == ["市政府召开常务会议 研究部署冬季供暖保障工作",
                                               "朱镕基同志题词的“喆”字碑迁移至市博物馆"]
    assert "镕" in result.items[1].body
    assert {i.extra["encoding"] for i in result.items} == {"gb18030"}
    assert result.items[0].published == "2026-11-21T01:00:00+00:00"


def test_big5_atom_feed() -> None:
    result = _parse("big5.atom")
    assert result.error is None and not result.warnings
    first, second = result.items
    assert first.title == "颱風來襲 沿海縣市停班停課"
    assert first.author == "記者王小明" and "颱風警報" in first.body
    assert second.title == "臺北市捷運延長營運時間"  # an HTML title is reduced to its text
    assert first.extra["encoding"].startswith("big5") or first.extra["encoding"] == "cp950"


def test_undeclared_gbk_feed_is_sniffed() -> None:
    result = _parse("gbk_undeclared.rss")
    assert result.error is None
    assert result.items[0].title == "县应急管理局开展安全生产大检查 排查隐患一百余处"
    assert result.items[0].extra["encoding"] == "gb18030"


def test_utf8_feed_under_a_wrong_gb2312_header_stays_utf8() -> None:
    [item] = _parse("mine_collapse.xml", content_type="text/xml; charset=gb2312").items
    assert item.title == "某县煤矿发生坍塌事故 已致35人遇难 多人被困井下"
    assert item.extra["encoding"] == "utf-8"


def test_chinese_publish_times_are_read_against_the_fetch_time() -> None:
    result = _parse("chinese_dates.rss")
    published = {i.title: i.published for i in result.items}
    assert published == {
        "带年月日和时分的条目": "2026-11-20T10:31:00+00:00",  # 18:31 Beijing; feedparser alone says 1 November
        "斜杠日期的条目": "2026-11-19T01:05:00+00:00",
        "三小时前发布的条目": "2026-11-20T15:40:00+00:00",
        "昨天发布的条目": "2026-11-20T04:30:00+00:00",
        "没有年份的条目": "2026-11-20T00:00:00+00:00",
        "不带时区的 ISO 时间": "2026-11-20T00:00:00+00:00",  # a time without a zone is Beijing time
        "RFC 822 时间照常读取": "2026-11-20T10:00:00+00:00",
        "读不出的时间原样保留": "某日",
    }
    assert result.error is None
    assert result.warnings == ["1 entries have a publish time that could not be read, e.g. '某日'"]


def test_social_metrics_become_ints() -> None:
    items = {i.title: i.extra for i in _parse("chinese_dates.rss").items}
    assert items["带年月日和时分的条目"]["comments"] == 12  # slash:comments
    metrics = {k: v for k, v in items["三小时前发布的条目"].items() if k != "encoding"}
    assert metrics == {"reposts": 12000, "comments": 3456, "likes": 789, "author_followers": 2000000}
    assert "comments" not in items["读不出的时间原样保留"]  # RSS <comments> is a URL, not a count


def test_json_feed() -> None:
    result = _parse("jsonfeed.json")
    assert result.error is None
    assert result.warnings == ["1 JSON Feed items are not objects and were skipped"]
    first, second, third = result.items
    assert first.title == "某区发生燃气泄漏 周边群众已疏散"
    assert first.url == "https://json.example.cn/posts/1" and first.author == "记者张三"
    assert "燃气泄漏" in first.body and first.published == "2026-11-21T01:30:00+00:00"
    assert {k: first.extra[k] for k in ("reposts", "comments", "likes", "author_followers")} == {
        "reposts": 120, "comments": 45, "likes": 300, "author_followers": 15000}
    assert second.url == "https://json.example.cn/posts/2"  # external_url when there is no url
    assert second.author == "市住建局" and second.published == "2026-11-20T08:00:00+00:00"
    assert second.body.startswith("市住建局表示")
    assert third.title == "" and third.author == "某市融媒体中心"  # the feed's author stands in
    assert third.url.startswith("feed:#entry-") and third.published == "2026-11-20T08:00:00+00:00"
    again = _parse("jsonfeed.json").items[2]
    assert again.url == third.url  # a synthetic URL is stable across polls


@pytest.mark.parametrize("body", [b"{not json", b'{"version": "x"}', b"[1, 2]"])
def test_broken_json_feed_is_an_error(body: bytes) -> None:
    result = parse_feed(body, source="s", fetched_at=NOW, content_type="application/feed+json")
    assert result.items == [] and result.error and "JSON Feed" in result.error


def test_a_body_naming_a_local_file_is_not_read_as_that_file() -> None:
    result = parse_feed(str(FEEDS / "mine_collapse.xml").encode(), source="s", fetched_at=NOW)
    assert result.items == [] and result.error


def test_html_page_is_not_a_feed() -> None:
    result = parse_feed(b"<html><head><title>x</title></head><body>hi</body></html>", source="s", fetched_at=NOW)
    assert result.items == [] and result.error


# --- conditional GET ------------------------------------------------------------------------------------------

ETAG = '"v1-mine"'
LAST_MODIFIED = "Fri, 20 Nov 2026 18:31:00 GMT"


class _ConditionalHandler(BaseHTTPRequestHandler):
    """/both sends ETag and Last-Modified; /etag and /lm only one of them; 304 when the client's validator matches."""

    requests: list[dict[str, str]] = []  # noqa: RUF012

    def do_GET(self) -> None:
        sent = {k: v for k, v in self.headers.items() if k.lower().startswith("if-")}
        self.requests.append({"path": self.path, **sent})
        etag = ETAG if self.path in ("/both", "/etag") else None
        modified = LAST_MODIFIED if self.path in ("/both", "/lm") else None
        fresh = (etag and self.headers.get("If-None-Match") == etag) or (
            not self.headers.get("If-None-Match") and modified and self.headers.get("If-Modified-Since") == modified)
        self.send_response(304 if fresh else 200)
        if etag:
            self.send_header("ETag", etag)
        if modified:
            self.send_header("Last-Modified", modified)
        body = b"" if fresh else (FEEDS / "mine_collapse.xml").read_bytes()
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def conditional_base() -> Iterator[str]:
    _ConditionalHandler.requests.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ConditionalHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _cpoll(url: str, state: FetchState | None = None, **fetch: object) -> FetchResult:
    settings = FetchSettings(**fetch)  # type: ignore[arg-type]
    return poll_feed(FeedSource(name="t", url=url), settings, base_dir=FEEDS, now=NOW, state=state)


def test_conditional_get_with_etag_and_last_modified(conditional_base: str) -> None:
    first = _cpoll(f"{conditional_base}/both")
    assert first.error is None and len(first.items) == 1 and first.pages == 1 and not first.not_modified
    assert first.state == FetchState(etag=ETAG, last_modified=LAST_MODIFIED)
    second = _cpoll(f"{conditional_base}/both", state=first.state)
    assert second.not_modified and second.items == [] and second.error is None and second.pages == 1
    assert second.state == first.state
    assert _ConditionalHandler.requests[0] == {"path": "/both"}
    assert _ConditionalHandler.requests[1] == {"path": "/both", "If-None-Match": ETAG,
                                               "If-Modified-Since": LAST_MODIFIED}


@pytest.mark.parametrize("path", ["/etag", "/lm"])
def test_conditional_get_with_one_validator(conditional_base: str, path: str) -> None:
    first = _cpoll(f"{conditional_base}{path}")
    assert len(first.items) == 1 and first.state is not None
    second = _cpoll(f"{conditional_base}{path}", state=first.state)
    assert second.not_modified and second.items == [] and second.error is None
    assert second.state == first.state


def test_stale_validators_get_the_full_feed(conditional_base: str) -> None:
    old = FetchState(etag='"v0"', last_modified="Thu, 01 Jan 2026 00:00:00 GMT", cursor={"k": 1})
    result = _cpoll(f"{conditional_base}/both", state=old)
    assert len(result.items) == 1 and not result.not_modified
    assert result.state == FetchState(etag=ETAG, last_modified=LAST_MODIFIED, cursor={"k": 1})


def test_files_send_no_validators_and_count_one_page() -> None:
    result = _cpoll("mine_collapse.xml", state=FetchState(etag='"x"'))
    assert len(result.items) == 1 and result.pages == 1 and result.state is None and not result.not_modified


def test_max_redirects_is_honoured(http_base: str) -> None:
    assert _cpoll(f"{http_base}/redirect", max_redirects=1).error is None
    refused = _cpoll(f"{http_base}/redirect", max_redirects=0)
    assert refused.items == [] and refused.error and "redirect" in refused.error.lower()


# --- real corpora (research-only, read in place from ../shared/data; skipped when absent) ----------------------

_EXPECT = re.compile(r"Expect:\s*(.*)")
_HEADER = re.compile(r"Header:\s*Content-type:\s*(.*)", re.IGNORECASE)
# Expect paths naming one entry field, and the RawItem attribute that carries it
_FIELDS = {("title",): "title", ("title_detail", "value"): "title", ("link",): "url", ("author",): "author",
           ("description",): "body", ("summary",): "body", ("content", 0, "value"): "body"}
# The entry has two body fields (content and summary, or description and summary) and RawItem.body is one of
# them; these Expect constraints are about the other one, so they say nothing about our body.
_BODY_EXCLUDED = {("wellformed/atom10/entry_content_and_summary.xml", "Summary"),
                  ("wellformed/rss/item_description_and_summary.xml", "Example description"),
                  ("wellformed/rss/item_summary_and_description.xml", "Example summary")}


def _subscript_path(node: ast.expr) -> list[object] | None:
    keys: list[object] = []
    while isinstance(node, ast.Subscript):
        if not isinstance(node.slice, ast.Constant):
            return None
        keys.append(node.slice.value)
        node = node.value
    return [node.id, *reversed(keys)] if isinstance(node, ast.Name) else None


def _entry_constraints(expect: str) -> list[tuple[int, str, str]]:
    """(entry index, RawItem attribute, expected string) for every `entries[i][field…] == '…'` in an Expect."""
    try:
        tree = ast.parse(expect, mode="eval")
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq)):
            continue
        path, right = _subscript_path(node.left), node.comparators[0]
        if (path and len(path) >= 3 and path[0] == "entries" and isinstance(path[1], int)
                and tuple(path[2:]) in _FIELDS and isinstance(right, ast.Constant) and isinstance(right.value, str)):
            found.append((path[1], _FIELDS[tuple(path[2:])], right.value))
    return found


def _plain_title(expected: str) -> str:
    """Our clean-up of an HTML title: its text, entities resolved, white space collapsed."""
    return " ".join((strip_html(expected) if "<" in expected else html.unescape(expected)).split())


def _conformance_header(body: bytes) -> tuple[str, str | None]:
    head = body[:8000].replace(b"\x00", b"").decode("latin-1")  # UTF-16/32 files: their comment is ASCII
    expect, header = _EXPECT.search(head), _HEADER.search(head)
    return (expect.group(1).strip() if expect else ""), (header.group(1).strip() if header else None)


def test_feedparser_conformance_suite(shared_data: Path) -> None:
    """Every file of feedparser's suite goes through our reader without raising; every entry title an Expect
    names is our title, verbatim (plain-text titles) or as its text (HTML titles, which we strip). Links,
    authors and bodies named by an Expect are checked the same way (bodies verbatim: we keep body HTML)."""
    root = shared_data / "feedparser_test_feeds"
    files = sorted(p for p in root.rglob("*.xml") if p.is_file())
    assert len(files) > 600
    checked: dict[str, int] = {}
    failures = []
    for path in files:
        body = path.read_bytes()
        expect, content_type = _conformance_header(body)
        result = parse_feed(body, source="t", fetched_at=NOW, content_type=content_type)
        assert isinstance(result, FetchResult)
        assert result.items or result.error or not _entry_constraints(expect), path
        for index, attr, expected in _entry_constraints(expect):
            name = str(path.relative_to(root))
            if attr == "body" and (name, expected) in _BODY_EXCLUDED:
                continue
            checked[attr] = checked.get(attr, 0) + 1
            got = getattr(result.items[index], attr) if index < len(result.items) else None
            if got != expected and not (attr == "title" and got == _plain_title(expected)):
                failures.append((name, attr, expected, got))
    assert failures == [], f"checked {checked}"
    assert checked["title"] >= 15 and checked["url"] >= 10 and checked["body"] >= 40


_UNDECLARED = {"big5.xml": "big5hkscs", "eucjp.xml": "euc_jp", "euckr.xml": "euc_kr", "gb2312.xml": "gb18030",
               "koi8r.xml": "koi8_r", "shiftjis.xml": "shift_jis", "tis620.xml": "tis_620",
               "windows1255.xml": "cp1255"}


def test_feeds_without_any_encoding_information_are_sniffed(shared_data: Path) -> None:
    """feedparser's illformed/chardet files declare nothing; without chardet feedparser reads them as
    windows-1252. We must read the text the codec their name gives would."""
    folder = shared_data / "feedparser_test_feeds" / "illformed" / "chardet"
    for name, codec in _UNDECLARED.items():
        raw = (folder / name).read_bytes()
        result = parse_feed(raw, source="t", fetched_at=NOW)
        reference = html.unescape(raw.decode(codec))
        for item in result.items:
            assert item.title in reference and item.body in reference, name
        if result.items and result.items[0].title:
            assert result.items[0].title.strip() and not result.items[0].title.isascii(), name


_FOLDER_CODEC = {"GB2312": "gb18030", "Big5": "big5hkscs"}
_ENTRY = re.compile(r"<(item|entry)\b.*?</\1\s*>", re.S)
_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.S)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)


def _canonical(text: str) -> str:
    text = html.unescape(_CDATA.sub(lambda m: html.escape(m.group(1), quote=False), text))
    return " ".join((strip_html(text) if "<" in text else html.unescape(text)).split())


def _reference_titles(text: str) -> list[str]:
    """Entry titles found with regular expressions in a document decoded with the codec its folder names."""
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    titles = []
    for entry in _ENTRY.finditer(text):
        title = _TITLE.search(entry.group(0))
        titles.append(_canonical(title.group(1)) if title else "")
    return titles


def _is_cjk(ch: str) -> bool:
    return "\u3000" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"


def test_real_gb2312_and_big5_feeds(shared_data: Path) -> None:
    """chardet's real Chinese feeds: every feed parses and every entry title is the one a reference decode of
    the raw bytes gives, without U+FFFD or mojibake. Files that are not feeds (HTML pages, plain-text samples,
    the only EUC-TW file) are left out."""
    root = shared_data / "chardet_gb2312_big5_feeds"
    feeds = [p for p in sorted(root.glob("*/*")) if p.parent.name in _FOLDER_CODEC
             and re.search(rb"<(rss|feed|rdf:RDF)\b", p.read_bytes())]
    assert len(feeds) >= 40
    for path in feeds:
        raw = path.read_bytes()
        result = parse_feed(raw, source="t", fetched_at=NOW)
        assert result.error is None and result.items, path.name
        titles = [_canonical(item.title) for item in result.items]
        assert titles == _reference_titles(raw.decode(_FOLDER_CODEC[path.parent.name])), path.name
        assert not any("\ufffd" in t for t in titles), path.name
        non_ascii = [ch for t in titles for ch in t if ord(ch) > 0x7F]
        mojibake = [ch for ch in non_ascii if ord(ch) < 0x250]  # Latin-1 and Latin Extended: GB/Big5 as cp1252
        assert not mojibake, (path.name, mojibake[:10])
        assert len(non_ascii) < 10 or sum(map(_is_cjk, non_ascii)) >= 0.8 * len(non_ascii), path.name


def test_entries_sharing_a_link_keep_distinct_urls() -> None:
    items = parse_feed((FEEDS / "shared_links.rss").read_bytes(), source="s", fetched_at=NOW).items
    assert len({i.url for i in items}) == 2
    assert items[0].url == "https://county.example.gov.cn/"
