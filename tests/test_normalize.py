"""Normalize stage: HTML to text, canonical URLs, publish times, empty entries rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crawlers.normalize import NormalizeError, canonical_url, normalize, parse_time, strip_html

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
