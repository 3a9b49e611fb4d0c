"""Rendering: Chinese wording contract, countdowns, overdue wording, drill mark, HTML escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest

from alerts.render import DeadlineView, IncidentView, format_remaining, render
from models.enums import Category, NotifyReason, Sentiment, Severity

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)  # 02:31 in Shanghai
H = timedelta(hours=1)


FIRE = "某县林区发生森林火灾 2名扑火队员失联"


def _incident(title: str = FIRE, *, drill: bool = False, scale: float = 1) -> IncidentView:
    return IncidentView(1, title, Category.EMERGENCY, Severity.II, Sentiment.NEGATIVE, T0, "某市新闻网",
                        "https://news.example.cn/a?x=1&y=2", 3, drill, scale)


def _deadlines(scale: float = 1) -> list[DeadlineView]:
    return [
        DeadlineView("release_5h", "权威信息发布", 5 * 3600, T0, T0 + 5 * H / scale, True),
        DeadlineView("press_conference_24h", "新闻发布会", 24 * 3600, T0, T0 + 24 * H / scale, True),
    ]


@pytest.mark.parametrize(
    ("delta", "text"),
    [(timedelta(hours=4, minutes=59, seconds=59), "4小时59分"), (timedelta(minutes=30), "30分"),
     (timedelta(hours=24), "24小时"), (timedelta(seconds=40), "不足1分")],
)
def test_format_remaining(delta: timedelta, text: str) -> None:
    assert format_remaining(delta) == text


def test_opening_message_has_title_facts_and_countdowns() -> None:
    msg = render(NotifyReason.OPENED, _incident(), _deadlines(), now=T0 + timedelta(seconds=20), tz=SH)
    lines = msg.text.splitlines()
    assert lines[0] == "【重大舆情】某县林区发生森林火灾 2名扑火队员失联"
    assert "类别：突发事件　等级：II 重大　情感：负面" in lines
    assert "首次发现：02:31（某市新闻网）" in lines
    assert "⏱ 距5小时权威信息发布时限还剩 4小时59分（07:31 前）" in lines
    assert "⏱ 距24小时新闻发布会时限还剩 23小时59分（次日 02:31 前）" in lines


def test_reminder_shows_only_its_deadline() -> None:
    ds = _deadlines()
    msg = render(NotifyReason.REMINDER, _incident(), ds, now=T0 + 4 * H, tz=SH, subject=ds[0])
    assert msg.text.startswith("【提醒】【重大舆情】")
    assert "距5小时权威信息发布时限还剩 1小时（07:31 前）" in msg.text
    assert "新闻发布会" not in msg.text


def test_overdue_message_names_the_deadline() -> None:
    ds = _deadlines()
    missed = DeadlineView(**{**ds[0].__dict__, "pending": False})
    msg = render(NotifyReason.OVERDUE, _incident(), [missed, ds[1]], now=T0 + 5 * H, tz=SH, subject=missed)
    assert msg.text.startswith("【超时】权威信息发布 已超时：")
    assert "5小时权威信息发布时限已于 07:31 到期" in msg.text
    assert "距24小时新闻发布会时限还剩 19小时" in msg.text


def test_drill_messages_are_marked_and_count_simulated_time() -> None:
    inc = _incident(drill=True, scale=3600)
    msg = render(NotifyReason.OPENED, inc, _deadlines(3600), now=T0 + timedelta(seconds=1), tz=SH)
    assert msg.text.startswith("【演练】【重大舆情】")
    assert "距5小时权威信息发布时限还剩 4小时（07:31 前）" in msg.text


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_untrusted_text_is_escaped_in_html() -> None:
    inc = _incident('<script>alert(1)</script> & <a href="x">点我</a>')
    msg = render(NotifyReason.OPENED, inc, _deadlines(), now=T0, tz=SH)
    parser = _Tags()
    parser.feed(msg.html)
    assert parser.tags == ["b", "a"]  # only our own bold headline and source link
    assert "&lt;script&gt;" in msg.html
    assert 'href="https://news.example.cn/a?x=1&amp;y=2"' in msg.html
    assert "<script>" in msg.text  # plain text keeps the characters as they were
