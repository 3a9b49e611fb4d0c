"""Source health: polls update the state row; a source that fails, goes quiet or serves pages without
articles changes state and the admin channel gets one alert per change."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.clock import FakeClock
from alerts.service import ProcessOutcome, Service
from classifier.model import TextModel
from config.schema import FeedSource, Settings, SiteSource
from crawlers.health import assess, record_poll, transition
from crawlers.items import FetchResult, FetchState
from models.enums import SourceHealth
from models.tables import SourceState
from tests.conftest import FIXTURES
from tests.harness import Harness

T0 = datetime(2026, 11, 20, 18, 0, tzinfo=UTC)
FEED = FeedSource(name="city", url="feed.xml", interval=timedelta(hours=1))


def _ok(n: int = 1) -> FetchResult:
    return FetchResult(source="city", items=[object()] * n, pages=1, state=FetchState(etag='"v1"'))  # type: ignore[list-item]


def test_success_resets_errors_and_remembers_validators() -> None:
    row = SourceState(source="city")
    record_poll(row, FetchResult(source="city", items=[], error="HTTP 503"), new_items=0, now=T0)
    assert row.consecutive_errors == 1 and row.last_error == "HTTP 503"
    record_poll(row, _ok(), new_items=1, now=T0 + timedelta(hours=1))
    assert row.consecutive_errors == 0 and row.etag == '"v1"'
    assert row.last_success_at == row.last_new_item_at == T0 + timedelta(hours=1)


def test_failing_after_consecutive_errors() -> None:
    row = SourceState(source="city")
    for i in range(3):
        failed = FetchResult(source="city", items=[], error="timed out")
        record_poll(row, failed, new_items=0, now=T0 + i * FEED.interval)
    verdict = assess(row, FEED, failing_after=3, now=T0 + timedelta(hours=3))
    assert verdict.state is SourceHealth.FAILING and "连续3次抓取失败" in verdict.reason


def test_blocked_when_pages_have_no_articles() -> None:
    site = SiteSource(name="gov", start_urls=["https://x.gov.cn/"], list_page={"links": "a"})  # type: ignore[arg-type]
    row = SourceState(source="gov")
    for i in range(3):
        empty = FetchResult(source="gov", items=[], pages=12, empty_pages=10)
        record_poll(row, empty, new_items=0, now=T0 + timedelta(hours=i))
    assert assess(row, site, failing_after=3, now=T0 + timedelta(hours=3)).state is SourceHealth.BLOCKED


def test_silent_after_expected_period_and_transition_once() -> None:
    row = SourceState(source="city")
    record_poll(row, _ok(), new_items=1, now=T0)
    assert assess(row, FEED, failing_after=3, now=T0 + timedelta(hours=23)).state is SourceHealth.OK
    verdict = assess(row, FEED, failing_after=3, now=T0 + timedelta(days=1, minutes=1))
    assert verdict.state is SourceHealth.SILENT and verdict.reason == "超过1天未获取到新内容"
    assert transition(row, verdict, now=T0 + timedelta(days=1)) is True
    assert transition(row, verdict, now=T0 + timedelta(days=2)) is False


def _service(db: Engine, h: Harness, src: FeedSource, base: Path) -> Service:
    return Service(db=db, sources=[src], settings=h.settings, base_dir=base, scheduler=h.scheduler,
                   process=_noop, clock=h.clock)


def _noop(now: datetime) -> ProcessOutcome:
    return ProcessOutcome()


def test_service_alerts_admin_when_a_source_goes_silent_then_fails(
    db: Engine, model: TextModel, settings: Settings, tmp_path: Path
) -> None:
    shutil.copy(FIXTURES / "feeds" / "social.atom", tmp_path / "feed.atom")
    src = FeedSource(name="city", url="feed.atom", interval=timedelta(hours=1))
    clock = FakeClock(T0)
    h = Harness(db, model, settings, clock)
    service = _service(db, h, src, tmp_path)

    async def scenario() -> None:
        await service.poll(src)  # one new item
        clock.advance(timedelta(hours=12))
        await service.poll(src)  # nothing new, still ok
        clock.advance(timedelta(hours=13))
        await service.poll(src)  # 25 h without anything new: silent
        await service.check_health()  # no second alert for the same state
        (tmp_path / "feed.atom").unlink()
        for _ in range(3):
            clock.advance(timedelta(hours=1))
            await service.poll(src)  # the file is gone: failing after 3 errors

    asyncio.run(scenario())
    alerts = [m for m in h.console_messages() if m.startswith("【数据源")]
    assert len(alerts) == 2
    assert alerts[0].startswith("【数据源告警】city：静默") and "超过1天未获取到新内容" in alerts[0]
    assert alerts[1].startswith("【数据源告警】city：抓取失败") and "feed.atom" in alerts[1]
    with Session(db) as s:
        row = s.exec(select(SourceState)).one()
    assert row.state == SourceHealth.FAILING and row.items_total == 1
