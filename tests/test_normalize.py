"""Normalize stage: HTML to text, canonical URLs, publish times, empty entries rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crawlers.normalize import (
    NormalizeError,
    canonical_host,
    canonical_url,
    normalize,
    parse_time,
    strip_html,
    url_key,
)

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)


def test_html_is_stripped_and_entities_unescaped() -> None:
    body = "<p>第一段</p><script>x()</script><p>第二段&nbsp;内容 &lt;b&gt;</p>"
    post = normalize("s", "https://x.cn/a", NOW, {"title": "标题 &amp; 副题", "body": body}, tz=SH)
    assert post.title == "标题 & 副题"
    assert post.text == "第一段\n第二段 内容 <b>"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://News.Example.cn/a.html?utm_source=weibo&id=3#comments", "https://news.example.cn/a.html?id=3"),
        ("http://x.cn:80/p?b=2&a=1&spm=abc", "http://x.cn/p?a=1&b=2"),
        ("https://x.cn", "https://x.cn/"),
        ("urn:yuqing:1", "urn:yuqing:1"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-20T18:31:00+00:00", datetime(2026, 11, 20, 18, 31, tzinfo=UTC)),
        ("Sat, 21 Nov 2026 02:31:00 +0800", datetime(2026, 11, 20, 18, 31, tzinfo=UTC)),
        ("2026-11-21 02:31:00", datetime(2026, 11, 20, 18, 31, tzinfo=UTC)),  # naive → Asia/Shanghai
        ("not a date", None),
        (None, None),
    ],
)
def test_parse_time(raw: str | None, expected: datetime | None) -> None:
    assert parse_time(raw, tz=SH) == expected


def test_empty_entry_is_rejected_with_reason() -> None:
    with pytest.raises(NormalizeError, match="neither title nor text"):
        normalize("s", "https://x.cn/a", NOW, {"title": "  ", "body": "<p> </p>"}, tz=SH)


def test_full_text_does_not_repeat_the_title() -> None:
    post = normalize("s", "u", NOW, {"title": "标题", "body": "标题\n正文"}, tz=SH)
    assert post.full_text == "标题\n正文"
    post = normalize("s", "u", NOW, {"title": "标题", "body": "正文"}, tz=SH)
    assert post.full_text == "标题\n正文"


def test_control_characters_removed_but_text_kept() -> None:
    assert strip_html("a\x00b<br>c") == "a\x00b\nc"
    post = normalize("s", "u", NOW, {"title": "t\x07", "body": "正文\x00内容"}, tz=SH)
    assert post.title == "t" and post.text == "正文内容"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("3分钟前", datetime(2026, 11, 20, 23, 57, tzinfo=UTC)),
        ("昨天 12:30", datetime(2026, 11, 20, 4, 30, tzinfo=UTC)),
        ("2024年5月1日 08:30", datetime(2024, 5, 1, 0, 30, tzinfo=UTC)),
    ],
)
def test_chinese_publish_times_resolve_against_fetch_time(raw: str, expected: datetime) -> None:
    post = normalize("s", "u", NOW, {"title": "t", "body": "b", "published": raw}, tz=SH)
    assert post.published_at == expected


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("https://m.example.cn/a.html?id=3&utm_source=wx", "example.cn/a.html?id=3"),
        ("http://www.example.cn/a.html?id=3", "example.cn/a.html?id=3"),
        ("https://WAP.Example.cn/a.html?id=3#top", "example.cn/a.html?id=3"),
        ("https://3g.163.com/news/x.html", "163.com/news/x.html"),
        ("https://mobile.news.example.cn/p", "news.example.cn/p"),
        ("https://news.m.example.cn/p", "news.m.example.cn/p"),  # only leading labels are aliases
        ("https://m.com.cn/p", "m.com.cn/p"),  # would leave a bare public suffix
        ("https://www.gov.cn/zhengce/", "www.gov.cn/zhengce/"),
        ("https://m.example.cn:8443/p", "example.cn:8443/p"),
        ("http://10.1.2.3:8080/p", "10.1.2.3:8080/p"),
        ("urn:yuqing:1", "urn:yuqing:1"),
    ],
)
def test_url_key_folds_mobile_and_desktop_hosts(url: str, key: str) -> None:
    assert url_key(url) == key


def test_canonical_url_keeps_the_working_host() -> None:
    assert canonical_url("https://m.example.cn/a?id=1") == "https://m.example.cn/a?id=1"
    assert canonical_host("M.Weibo.cn") == "weibo.cn" and canonical_host("www.example.com.cn") == "example.com.cn"
