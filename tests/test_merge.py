"""Merge and split (alerts/merge.py and `yuqing merge` / `yuqing split`): posts move, the statutory clock runs
from the earliest detection of the event, the more severe level wins, merged incidents end with their clocks
cancelled, a split-off incident gets its own clocks; every change is on both timelines with the actor."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import actions
from alerts.clock import FakeClock
from alerts.features import extractor_for
from alerts.heat import HeatParams
from alerts.merge import Remeasure, merge, split
from classifier.model import TextModel
from config.schema import Settings
from models.enums import DeadlineStatus, IncidentStatus
from models.tables import Deadline, Incident, IncidentEvent, Post
from pipeline import main
from tests.conftest import FIXTURES
from tests.harness import Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)
FEEDS = FIXTURES / "incidents" / "feeds"
LATER = timedelta(minutes=30)


def _two_incidents(db: Engine, model: TextModel, settings: Settings) -> tuple[int, int]:
    """A vague early sighting at T0 (III) and, 30 minutes later, the fire's reports (II) that correlation could
    not tie to it: the officer knows they are one event."""
    h = Harness(db, model, settings, FakeClock(T0))
    h.ingest(FEEDS / "fire_early.xml")
    asyncio.run(h.process())
    h.clock.advance(LATER)
    h.ingest(FEEDS / "fire_first.xml")
    asyncio.run(h.process())
    with Session(db) as s:
        early, reports = s.exec(select(Incident).order_by(col(Incident.id))).all()
        assert early.first_seen_at == T0 and reports.first_seen_at == T0 + LATER
        assert (early.severity, reports.severity) == ("III", "II")
        assert early.id is not None and reports.id is not None
        return early.id, reports.id


def _pending(s: Session, incident_id: int) -> dict[str, Deadline]:
    rows = s.exec(select(Deadline).where(Deadline.incident_id == incident_id)
                  .where(Deadline.status == DeadlineStatus.PENDING)).all()
    return {d.kind: d for d in rows}


def _events(s: Session, incident_id: int, kind: str) -> list[IncidentEvent]:
    return list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                       .where(IncidentEvent.kind == kind).order_by(col(IncidentEvent.id))).all())


def _remeasure(settings: Settings) -> Remeasure:
    return Remeasure(HeatParams.from_settings(settings.incidents.heat), extractor_for(()))


def test_merge_takes_the_earliest_detection_and_replans_from_it(db: Engine, model: TextModel,
                                                                settings: Settings) -> None:
    early, reports = _two_incidents(db, model, settings)
    now = T0 + timedelta(hours=1)
    with Session(db) as s:
        result = merge(s, reports, [early], actor="张三", now=now, remeasure=_remeasure(settings))
        s.commit()
        assert result.ok and result.incident_id == reports and "#1" in result.message
        target, other = s.get(Incident, reports), s.get(Incident, early)
        assert target is not None and other is not None
        assert target.first_seen_at == T0 and target.source == "fire_early" and target.severity == "II"
        assert target.post_count == 4 and target.source_count == 4 and "heat" in target.features
        assert len(s.exec(select(Post).where(Post.incident_id == reports)).all()) == 4
        assert other.status == IncidentStatus.MERGED and other.merged_into_id == reports
        assert _pending(s, early) == {}  # the merged incident's 48 h clock is cancelled
        pending = _pending(s, reports)
        assert {k: d.due_at for k, d in pending.items()} == {"release_5h": T0 + timedelta(hours=5),
                                                             "press_conference_24h": T0 + timedelta(hours=24)}
        assert {t.deadline_id for t in result.scheduled} == {d.id for d in pending.values()}
        [into] = _events(s, early, "merged")
        [absorbed] = _events(s, reports, "merged")
        assert into.detail["into"] == reports and into.actor == "张三"
        assert absorbed.detail["merged"] == [early] and absorbed.detail["posts"] == 1 and absorbed.actor == "张三"
        replanned = [e for e in _events(s, reports, "deadline_replanned") if e.detail.get("cancelled")]
        assert {e.detail["kind"] for e in replanned} == {"release_5h", "press_conference_24h"}


def test_merging_a_more_severe_incident_raises_the_target(db: Engine, model: TextModel, settings: Settings) -> None:
    early, reports = _two_incidents(db, model, settings)
    with Session(db) as s:
        result = merge(s, early, [reports], actor="李四", now=T0 + timedelta(hours=1))
        s.commit()
        target = s.get(Incident, early)
        assert result.ok and target is not None and target.severity == "II" and target.first_seen_at == T0
        [raised] = _events(s, early, "severity_changed")
        assert raised.actor == "李四" and f"#{reports}" in raised.detail["reason"]
        pending = _pending(s, early)
        assert set(pending) == {"release_5h", "press_conference_24h"}
        assert pending["release_5h"].due_at == T0 + timedelta(hours=5)  # from the earliest detection


@pytest.mark.parametrize(
    ("target", "others", "message"),
    [(1, [1], "不能合并到自身"), (1, [99], "未找到舆情事件 #99"), (1, [], "请指定"), (2, [1], "已排除")],
)
def test_merge_refusals_change_nothing(db: Engine, model: TextModel, settings: Settings, target: int,
                                      others: list[int], message: str) -> None:
    early, reports = _two_incidents(db, model, settings)
    with Session(db) as s:
        actions.dismiss(s, reports, actor="王五", now=T0 + timedelta(hours=1), reason="测试")
        s.commit()
        result = merge(s, target, others, actor="张三", now=T0 + timedelta(hours=2))
        assert not result.ok and message in result.message
        s.rollback()
        inc = s.get(Incident, early)
        assert inc is not None and inc.status == IncidentStatus.NEW and inc.merged_into_id is None


def test_split_moves_posts_into_a_new_incident_with_its_own_clocks(db: Engine, model: TextModel,
                                                                   settings: Settings) -> None:
    early, reports = _two_incidents(db, model, settings)
    now = T0 + timedelta(hours=2)
    with Session(db) as s:
        merge(s, reports, [early], actor="张三", now=T0 + timedelta(hours=1))
        s.commit()
        sighting = s.exec(select(Post).where(Post.url == "https://weibo.example.cn/u/2999/status/1")).one()
        assert sighting.id is not None
        refused = split(s, reports, [sighting.id, 999], actor="张三", now=now)
        assert not refused.ok and "#999" in refused.message
        everything = [p.id for p in s.exec(select(Post).where(Post.incident_id == reports)).all() if p.id]
        assert "至少保留一条" in split(s, reports, everything, actor="张三", now=now).message
        result = split(s, reports, [sighting.id], actor="李四", now=now, remeasure=_remeasure(settings))
        s.commit()
        assert result.ok and result.incident_id is not None
        new = s.get(Incident, result.incident_id)
        original = s.get(Incident, reports)
        assert new is not None and original is not None and new.id != reports
        assert (new.category, new.severity, new.status) == ("EMERGENCY", "III", IncidentStatus.NEW)
        assert new.first_seen_at == T0 and new.title == "鸡足山着火了" and new.post_count == 1
        assert new.features["terms"] and new.policy == original.policy
        assert s.get(Post, sighting.id).incident_id == new.id  # type: ignore[union-attr]
        assert {k: d.due_at for k, d in _pending(s, new.id).items()} == {"response_48h": T0 + timedelta(hours=48)}
        assert {t.deadline_id for t in result.scheduled} == {d.id for d in _pending(s, new.id).values()}
        assert original.post_count == 3 and original.first_seen_at == T0  # its running clocks stay as they were
        assert _pending(s, reports)["release_5h"].due_at == T0 + timedelta(hours=5)
        [out] = _events(s, reports, "split")
        [came] = _events(s, new.id, "split")
        assert out.detail == {"new_incident": new.id, "posts": [sighting.id]} and out.actor == "李四"
        assert came.detail == {"from": reports, "posts": [sighting.id]}


def test_cli_merge_and_split(db: Engine, model: TextModel, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    early, reports = _two_incidents(db, model, settings)
    monkeypatch.setenv("YUQING_DATABASE_URL", db.url.render_as_string(hide_password=False))
    assert main(["merge", str(reports), str(early), "--by", "张三"]) == 0
    assert f"已将事件 #{early} 合并到事件 #{reports}" in capsys.readouterr().out
    assert main(["merge", str(reports), str(early), "--by", "张三"]) == 1
    assert "已合并" in capsys.readouterr().err
    with Session(db) as s:
        sighting = s.exec(select(Post).where(Post.url == "https://weibo.example.cn/u/2999/status/1")).one()
    assert main(["split", str(reports), str(sighting.id), "--by", "李四"]) == 0
    assert "拆分出新事件" in capsys.readouterr().out
    with Session(db) as s:
        assert len(s.exec(select(Incident)).all()) == 3
        assert [e.actor for e in _events(s, reports, "split")] == ["李四"]
