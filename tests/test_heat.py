"""Heat (alerts/heat.py): volume, distinct sources, source authority and speed give a score and a trend; the
opening alert shows it as in USERS.md; the timeline records HEAT_CHANGED only when the trend changes or the
score crosses a band, not on every post."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import FakeClock
from alerts.heat import Authority, HeatParams, Mention, Trend, authority_of, band_of, changed, measure, trend_of
from alerts.render import IncidentView, render
from classifier.model import TextModel
from config.schema import HeatSettings, Settings
from models.enums import Category, NotifyReason, Sentiment, Severity
from models.tables import Incident, IncidentEvent
from tests.conftest import FIXTURES
from tests.harness import SH, Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)
PARAMS = HeatParams.from_settings(HeatSettings())
FEEDS = FIXTURES / "incidents" / "feeds"


def _m(minutes_ago: float, source: str = "weibo", host: str = "weibo.example.cn", author: str | None = None) -> Mention:
    return Mention(T0 - timedelta(minutes=minutes_ago), source, host, author)


@pytest.mark.parametrize(
    ("recent", "previous", "trend"),
    [(1, 0, Trend.RISING), (3, 2, Trend.RISING), (3, 3, Trend.STEADY), (4, 3, Trend.STEADY), (0, 0, Trend.STEADY),
     (2, 3, Trend.FALLING), (0, 1, Trend.FALLING), (5, 6, Trend.STEADY)],
)
def test_trend_compares_the_last_window_with_the_one_before(recent: int, previous: int, trend: Trend) -> None:
    assert trend_of(recent, previous, 1.5) is trend


@pytest.mark.parametrize(
    ("mention", "level"),
    [(_m(0, "xinhua", "www.news.cn"), Authority.CENTRAL),
     (_m(0, "feed-3", "www.example.cn", "新华社"), Authority.CENTRAL),
     (_m(0, "people", "sd.people.com.cn"), Authority.CENTRAL),
     (_m(0, "city", "www.dalinews.example.cn", "大理新闻网"), Authority.LOCAL),
     (_m(0, "gov", "www.binchuan.gov.cn"), Authority.LOCAL),
     (_m(0, "weibo", "weibo.example.cn", "宾川生活圈"), Authority.SELF_MEDIA),
     (_m(0, "fake", "news.cn.example.org"), Authority.SELF_MEDIA)],  # a look-alike host is not news.cn
)
def test_authority_from_names_and_domains(mention: Mention, level: Authority) -> None:
    assert authority_of(mention, PARAMS) is level


def test_each_part_raises_the_score() -> None:
    base = measure([_m(30), _m(25)], now=T0, params=PARAMS)
    more_posts = measure([_m(30), _m(25), _m(25), _m(24)], now=T0, params=PARAMS)
    more_sources = measure([_m(30, author="a"), _m(25, author="b")], now=T0, params=PARAMS)
    central = measure([_m(30), _m(25, "xinhua", "www.news.cn")], now=T0, params=PARAMS)
    faster = measure([_m(3), _m(2)], now=T0, params=PARAMS)
    assert base.score < min(more_posts.score, more_sources.score, central.score, faster.score)
    assert (faster.recent, faster.previous, faster.trend) == (2, 0, Trend.RISING)
    assert central.authority is Authority.CENTRAL and more_sources.sources == 2 and base.sources == 1


def test_a_burst_is_hot_and_the_score_stays_within_0_and_100() -> None:
    burst = [_m(i % 10, author=f"u{i}") for i in range(2000)] + [_m(1, "xinhua", "www.news.cn")]
    reading = measure(burst, now=T0, params=PARAMS)
    assert reading.score == 100.0 and reading.band == 4
    empty = measure([], now=T0, params=PARAMS)
    assert empty.score == 0.0 and empty.trend is Trend.STEADY and empty.band == 0


def test_changed_only_on_a_new_trend_or_band() -> None:
    reading = measure([_m(3), _m(2)], now=T0, params=PARAMS)
    assert band_of(reading.score, PARAMS.bands) == reading.band
    assert not changed(reading.score + 1, "rising", reading, PARAMS.bands)  # same band, same trend
    assert changed(reading.score, "steady", reading, PARAMS.bands)
    assert changed(85.0, "rising", reading, PARAMS.bands)


def _view(**heat: object) -> IncidentView:
    return IncidentView(1, "某县林区发生森林火灾 2名扑火队员失联", Category.EMERGENCY, Severity.II, Sentiment.NEGATIVE,
                        T0, "某市新闻网", "https://news.example.cn/a", 40, False, 1.0, **heat)  # type: ignore[arg-type]


def test_opening_alert_shows_heat_as_in_users_md() -> None:
    msg = render(NotifyReason.OPENED, _view(heat=62.0, heat_trend="rising", heat_recent=37, heat_window_s=600,
                                           source_count=9), [], now=T0, tz=SH)
    assert msg.text.splitlines()[1] == "类别：突发事件　等级：II 重大　情感：负面　热度：↑ 37条/10分钟，来源 9 个"
    falling = render(NotifyReason.OPENED, _view(heat=20.0, heat_trend="falling", heat_recent=2, heat_window_s=1800,
                                                source_count=3), [], now=T0, tz=SH)
    assert "热度：↓ 2条/30分钟，来源 3 个" in falling.html
    unmeasured = render(NotifyReason.OPENED, _view(), [], now=T0, tz=SH)
    assert unmeasured.text.splitlines()[1] == "类别：突发事件　等级：II 重大　情感：负面"
    later = render(NotifyReason.REMINDER, _view(heat=62.0, heat_trend="rising", heat_recent=37, source_count=9), [],
                   now=T0 + timedelta(hours=4), tz=SH)
    assert "热度" not in later.text  # measured when posts arrived: not repeated hours later


def test_timeline_records_heat_changes_not_every_post(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    h.ingest(FEEDS / "fire_first.xml")  # three reports at once: rising
    asyncio.run(h.process())
    [opening] = h.console_messages()
    assert "热度：↑ 3条/10分钟，来源 3 个" in opening
    h.clock.advance(timedelta(minutes=12))  # one more after a lull: 1 in the last 10 min against 3 before
    h.ingest(FEEDS / "fire_more_1.xml")
    asyncio.run(h.process())
    h.clock.advance(timedelta(minutes=2))  # and another: 2 against 3, still falling
    h.ingest(FEEDS / "fire_more_2.xml")
    asyncio.run(h.process())
    with Session(db) as s:
        inc = s.exec(select(Incident)).one()
        assert inc.post_count == 5 and inc.source_count == 5 and inc.heat_trend == "falling"
        assert inc.features["heat"]["recent"] == 2 and inc.features["heat"]["authority"] == "local"
        events = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id)
                        .order_by(col(IncidentEvent.id))).all()
        assert [e.kind for e in events].count("grew") == 2
        changes = [e for e in events if e.kind == "heat_changed"]
        assert len(changes) == 1  # the trend turned once; the second post changed neither trend nor band
        assert changes[0].detail["from_trend"] == "rising" and changes[0].detail["trend"] == "falling"
        assert changes[0].actor == "system"
