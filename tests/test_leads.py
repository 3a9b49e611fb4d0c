"""Manual leads: validation with one-line Chinese reasons, reporter recorded, URL kept or synthesized
(stable for one submission, different for another)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from crawlers.items import RawItem
from crawlers.leads import MAX_TEXT, MAX_TITLE, LeadError, manual_lead

NOW = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)


def _lead(**overrides: Any) -> RawItem:
    args: dict[str, Any] = {"title": "某县煤矿透水", "text": "网传某县煤矿发生透水事故", "url": None, "author": None,
                               "reporter": "值班员张三", "now": NOW}
    return manual_lead(**(args | overrides))


def test_lead_with_url_keeps_it_and_records_reporter() -> None:
    item = manual_lead(title=" 某县煤矿透水 ", text="网传某县煤矿发生透水事故\n",
                       url=" https://weibo.example.cn/status/9 ", author="网友甲", reporter="值班员张三", now=NOW)
    assert item.source == "manual" and item.url == "https://weibo.example.cn/status/9"
    assert item.title == "某县煤矿透水" and item.body == "网传某县煤矿发生透水事故"
    assert item.author == "网友甲" and item.published is None and item.fetched_at == NOW
    assert item.extra == {"reporter": "值班员张三", "reported_at": "2026-11-21T08:30:00+00:00"}


def test_synthesized_url_is_stable_per_submission() -> None:
    first = _lead()
    assert first.url.startswith("manual:")
    assert _lead().url == first.url
    assert _lead(now=NOW + timedelta(minutes=1)).url != first.url
    assert _lead(reporter="值班员李四").url != first.url
    assert _lead(text="").url != first.url


def test_now_in_another_zone_is_stored_in_utc() -> None:
    item = _lead(now=NOW.astimezone(timezone(timedelta(hours=8))), source="manual-web")
    assert item.fetched_at.utcoffset() == timedelta(0) and item.source == "manual-web"
    assert item.url == _lead().url  # the same instant: the same lead


def test_title_or_text_suffices() -> None:
    assert _lead(text="").title == "某县煤矿透水"
    assert _lead(title="   ").body == "网传某县煤矿发生透水事故"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"title": " ", "text": "\n"}, "请填写标题或正文"),
        ({"reporter": "  "}, "请填写报送人"),
        ({"title": "长" * (MAX_TITLE + 1)}, "标题过长"),
        ({"text": "长" * (MAX_TEXT + 1)}, "正文过长"),
        ({"author": "名" * 201}, "作者过长"),
        ({"reporter": "人" * 101}, "报送人过长"),
        ({"url": "ftp://example.cn/a"}, "http:// 或 https://"),
        ({"url": "javascript:alert(1)"}, "http:// 或 https://"),
        ({"url": "https://"}, "http:// 或 https://"),
        ({"url": "weibo.com/123"}, "http:// 或 https://"),
        ({"url": "https://example.cn/a b"}, "不能有空格"),
        ({"url": "https://example.cn/" + "a" * 2001}, "链接过长"),
        ({"url": "http://[::1"}, "链接无效"),
        ({"source": "bad name"}, "数据源名称"),
    ],
)
def test_invalid_leads_are_rejected_with_a_reason(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(LeadError, match=reason) as caught:
        _lead(**overrides)
    assert "\n" not in str(caught.value)


def test_blank_url_means_none() -> None:
    assert _lead(url="  ").url.startswith("manual:")


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _lead(now=datetime(2026, 11, 21, 8, 30))
