"""Lifecycle actions (alerts/actions.py): each meets the deadlines its met_by names, records who and when, and
refuses what makes no sense with a Chinese message instead of an exception."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import actions
from alerts.clock import FakeClock
from classifier.model import TextModel
from config.schema import Settings
from models.enums import DeadlineStatus, HandlingType, IncidentStatus, Severity
from models.tables import Deadline, Incident, IncidentEvent
from tests.conftest import FIXTURES
from tests.harness import Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)
H = timedelta(hours=1)
URL = "https://lyj.example.gov.cn/tzgg/2026/1121.html"


def _opened(db: Engine, model: TextModel, settings: Settings, feed: str = "mine_collapse.xml") -> int:
    h = Harness(db, model, settings, FakeClock(T0))

    async def life() -> None:
        await h.start()
        h.ingest(FIXTURES / "feeds" / feed)
        await h.process()
        h.stop()

    asyncio.run(life())
    with Session(db) as s:
        inc = s.exec(select(Incident)).one()
        assert inc.id is not None
        return inc.id


def _clocks(db: Engine, incident_id: int) -> dict[tuple[str, int], Deadline]:
    with Session(db) as s:
        rows = s.exec(select(Deadline).where(Deadline.incident_id == incident_id).order_by(col(Deadline.id))).all()
        return {(d.kind, d.seq): d for d in rows}


def test_acknowledge_records_who_and_is_idempotent(db: Engine, model: TextModel, settings: Settings) -> None:
    inc_id = _opened(db, model, settings)
    with Session(db) as s:
        first = actions.acknowledge(s, inc_id, actor="张三", now=T0 + timedelta(minutes=10))
        s.commit()
        again = actions.acknowledge(s, inc_id, actor="李四", now=T0 + H)
        s.commit()
        inc = s.get(Incident, inc_id)
        assert inc is not None
        assert first.ok and again.ok and "张三" in again.message
        assert inc.status == IncidentStatus.ACKNOWLEDGED and inc.acknowledged_by == "张三"
        events = s.exec(select(IncidentEvent).where(IncidentEvent.kind == "acknowledged")).all()
        assert [e.actor for e in events] == ["张三"]


def test_release_meets_the_5h_clock_and_press_conference_starts_updates(db: Engine, model: TextModel,
                                                                        settings: Settings) -> None:
    inc_id = _opened(db, model, settings)
    with Session(db) as s:
        refused = actions.release(s, inc_id, actor="张三", now=T0 + 3 * H, url="情况通报")
        assert not refused.ok and "链接" in refused.message
        done = actions.release(s, inc_id, actor="张三", now=T0 + 3 * H, url=URL)
        s.commit()
        assert done.ok and done.scheduled == []
    clocks = _clocks(db, inc_id)
    release = clocks[("release_5h", 0)]
    assert release.status == DeadlineStatus.MET and release.met_by == "张三" and release.met_ref == URL
    assert release.next_notice_at is None
    assert clocks[("press_conference_24h", 0)].status == DeadlineStatus.PENDING  # silence meets nothing
    with Session(db) as s:
        done = actions.press_conference(s, inc_id, actor="王五", now=T0 + 20 * H)
        s.commit()
    clocks = _clocks(db, inc_id)
    assert clocks[("press_conference_24h", 0)].status == DeadlineStatus.MET
    update = clocks[("update", 1)]
    assert update.status == DeadlineStatus.PENDING and update.due_at == T0 + 44 * H
    assert [t.deadline_id for t in done.scheduled] == [update.id]
    with Session(db) as s:
        actions.publish_update(s, inc_id, actor="王五", now=T0 + 40 * H, url=URL)
        s.commit()
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.status == IncidentStatus.PRESS_HELD
    clocks = _clocks(db, inc_id)
    assert clocks[("update", 1)].status == DeadlineStatus.MET and clocks[("update", 2)].due_at == T0 + 64 * H


def test_a_second_release_keeps_the_first_time_and_link(db: Engine, model: TextModel, settings: Settings) -> None:
    inc_id = _opened(db, model, settings)
    with Session(db) as s:
        assert actions.release(s, inc_id, actor="张三", now=T0 + 3 * H, url=URL).ok
        s.commit()
    with Session(db) as s:  # a double tap on 已发布, then a different link six hours late
        again = actions.release(s, inc_id, actor="李四", now=T0 + 4 * H, url=URL)
        other = actions.release(s, inc_id, actor="李四", now=T0 + 9 * H, url=URL + "/2")
        s.commit()
        assert again.ok and "已记录" in again.message
        assert not other.ok and f"/update {inc_id}" in other.message and URL in other.message
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.released_at == T0 + 3 * H and inc.release_url == URL
        events = s.exec(select(IncidentEvent).where(IncidentEvent.kind == "released")).all()
        assert [e.actor for e in events] == ["张三"]


def test_raising_severity_replans_from_first_detection(db: Engine, model: TextModel, settings: Settings) -> None:
    inc_id = _opened(db, model, settings)
    with Session(db) as s:
        actions.change_severity(s, inc_id, Severity.IV, actor="system", now=T0 + H, reason="test")
        s.commit()
    clocks = _clocks(db, inc_id)
    assert clocks[("release_5h", 0)].status == DeadlineStatus.CANCELLED
    assert clocks[("response_48h", 0)].due_at == T0 + 48 * H
    with Session(db) as s:
        out = actions.assess(s, inc_id, actor="张三", now=T0 + 6 * H, severity=Severity.II, department="防火处",
                             handling_type=HandlingType.CONFUSION)
        s.commit()
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.department == "防火处" and inc.handling_type == "confusion"
        assert inc.acknowledged_by == "张三"  # 研判 implies 确认
    clocks = _clocks(db, inc_id)
    new_release = [d for d in clocks.values() if d.kind == "release_5h" and d.status == DeadlineStatus.PENDING]
    assert len(new_release) == 1 and new_release[0].due_at == T0 + 5 * H  # already overdue: fires at once
    assert clocks[("response_48h", 0)].status == DeadlineStatus.CANCELLED
    assert any(t.deadline_id == new_release[0].id and t.at <= T0 + 6 * H for t in out.scheduled)


def test_dismiss_needs_a_reason_and_closes_every_clock(db: Engine, model: TextModel, settings: Settings) -> None:
    inc_id = _opened(db, model, settings)
    with Session(db) as s:
        assert not actions.dismiss(s, inc_id, actor="张三", now=T0 + H, reason=" ").ok
        assert actions.dismiss(s, inc_id, actor="张三", now=T0 + H, reason="影视剧情节，非真实事件").ok
        s.commit()
        again = actions.acknowledge(s, inc_id, actor="李四", now=T0 + 2 * H)
        assert not again.ok and "已排除" in again.message
        assert not actions.acknowledge(s, 99999, actor="李四", now=T0).ok
    assert {d.status for d in _clocks(db, inc_id).values()} == {DeadlineStatus.CANCELLED}
