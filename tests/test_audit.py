"""The audit job finds a deadline notice that did not fire (its trigger was lost), fires it once through the
scheduler and tells the admins once; the heartbeat goes out once a day, across restarts. Fake clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.audit import Auditor, LateNotice, audit_key
from alerts.clock import FakeClock
from classifier.model import TextModel
from config.schema import Settings
from models.enums import NotifyReason
from models.tables import Deadline, Delivery
from tests.conftest import FIXTURES
from tests.harness import SH, Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)  # 02:31 in Shanghai
H = timedelta(hours=1)
GRACE = timedelta(minutes=2)
FEED = FIXTURES / "feeds" / "mine_collapse.xml"


def _auditor(h: Harness, heartbeat_at: tuple[int, int] | None = None) -> Auditor:
    return Auditor(h.db, h.scheduler, h.clock, admin=h.engine.admin, tz=SH, grace=GRACE, heartbeat_at=heartbeat_at,
                   holder="host-a:1:aa")


def _release_deadline(db: Engine) -> Deadline:
    with Session(db) as s:
        return s.exec(select(Deadline).where(Deadline.kind == "release_5h")).one()


def _deliveries(db: Engine, reason: NotifyReason) -> list[Delivery]:
    with Session(db) as s:
        return list(s.exec(select(Delivery).where(Delivery.reason == reason.value).order_by(col(Delivery.id))).all())


def test_lost_trigger_is_found_and_fired_once(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    audit = _auditor(h)

    async def life() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        release = _release_deadline(db)
        h.scheduler.aps.remove_job(f"deadline:{release.id}")  # the trigger is lost (a crashed job, a bug …)
        await h.advance_to(T0 + 4 * H + GRACE)
        assert await audit.audit() == []  # exactly at the grace limit: not yet late
        assert h.console_messages()[1:] == []  # the 4 h reminder did not fire
        await h.advance_to(T0 + 4 * H + GRACE + timedelta(seconds=30))
        [late] = await audit.audit()
        assert late.deadline_id == release.id and late.at == T0 + 4 * H and late.stage == 0
        await h.advance_to(h.clock.now())  # the scheduler runs the re-made trigger
        assert await audit.audit() == []  # fired: nothing is late any more
        await h.advance_to(T0 + 4.5 * H)  # and the deadline goes on as normal
        h.stop()

    asyncio.run(life())
    msgs = h.console_messages()
    assert msgs[0].startswith("【特别重大舆情】")
    alarm = next(m for m in msgs if m.startswith("【系统告警】"))
    assert alarm.startswith("【系统告警】发现 1 个时限提醒未按时触发，已补发")
    assert "某县煤矿发生坍塌事故" in alarm and "权威信息发布提醒应于 11-21 06:31 发出" in alarm
    reminders = [m for m in msgs if m.startswith("【提醒】")]
    assert len(reminders) == 2 and "还剩 57分" in reminders[0] and "还剩 30分" in reminders[1]
    assert len(_deliveries(db, NotifyReason.AUDIT)) == 1


def test_same_stuck_notice_is_reported_once(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    audit = _auditor(h)

    async def life() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        h.scheduler.aps.remove_all_jobs()
        h.clock.set(T0 + 21 * H)  # both clocks' first reminders are stuck
        assert len(await audit.audit()) == 2
        h.scheduler.aps.remove_all_jobs()  # the re-made triggers are lost again (still broken)
        h.clock.advance(timedelta(minutes=1))
        assert len(await audit.audit()) == 2
        h.stop()

    asyncio.run(life())
    [alarm] = [m for m in h.console_messages() if m.startswith("【系统告警】")]
    assert "发现 2 个时限提醒未按时触发" in alarm and "新闻发布会提醒" in alarm


def test_audit_key_follows_the_stuck_notices() -> None:
    a = LateNotice(1, 0, 0, T0, 7, "t", "权威信息发布")
    b = LateNotice(2, 0, 1, T0, 7, "t", "新闻发布会")
    assert audit_key([a, b]) == audit_key([b, a])
    assert audit_key([a]) != audit_key([a, b])
    assert audit_key([a]) != audit_key([LateNotice(1, 0, 1, T0, 7, "t", "权威信息发布")])  # the next stage


def test_healthy_scheduler_raises_no_audit(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    audit = _auditor(h)

    async def life() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        for hours in (1, 4.2, 5, 20.5, 25):
            await h.advance_to(T0 + hours * H)
            assert await audit.audit() == []
        h.stop()

    asyncio.run(life())
    assert _deliveries(db, NotifyReason.AUDIT) == []


def _local(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


def test_heartbeat_once_a_day_across_a_restart(db: Engine, model: TextModel, settings: Settings) -> None:
    async def life(at: datetime, steps: list[datetime], ingest: bool = False) -> list[bool]:
        h = Harness(db, model, settings, FakeClock(at))
        await h.start()
        if ingest:
            h.ingest(FEED)
            await h.process()
        beat = _auditor(h, heartbeat_at=(8, 30))
        await beat.install(timedelta(minutes=1))  # what activation does: also sends today's beat if due
        sent = []
        for step in steps:
            h.clock.set(step)
            sent.append(await beat.heartbeat())
        assert {"audit", "heartbeat"} <= {j.id for j in h.scheduler.aps.get_jobs()}
        h.stop()
        return sent

    assert asyncio.run(life(_local(21, 8, 0), [_local(21, 8, 29), _local(21, 8, 30), _local(21, 8, 31)],
                            ingest=True)) == [False, True, False]
    assert asyncio.run(life(_local(21, 9, 0), [_local(21, 23, 59), _local(22, 8, 30)])) == [False, True]
    beats = _deliveries(db, NotifyReason.HEARTBEAT)
    assert [d.alert_key for d in beats] == ["heartbeat:2026-11-21", "heartbeat:2026-11-22"]
    body = beats[0].body or ""
    assert body.startswith("【系统心跳】舆情监测服务运行正常")
    assert "未结事件：1 起　待到期时限：2 个" in body and "最近到期：#1 某县煤矿发生坍塌事故" in body
    assert "权威信息发布" in body and "近24小时投递失败：0 条" in body


def test_heartbeat_missed_while_down_is_sent_late_once(db: Engine, model: TextModel, settings: Settings) -> None:
    async def life(at: datetime, heartbeat_at: tuple[int, int] | None) -> None:
        h = Harness(db, model, settings, FakeClock(at))
        await h.start()
        await _auditor(h, heartbeat_at=heartbeat_at).install(timedelta(minutes=1))
        h.stop()

    asyncio.run(life(_local(21, 10, 0), None))  # heartbeat off: nothing
    assert _deliveries(db, NotifyReason.HEARTBEAT) == []
    asyncio.run(life(_local(21, 10, 0), (8, 30)))  # down at 08:30, up at 10:00
    asyncio.run(life(_local(21, 10, 5), (8, 30)))  # and a restart soon after
    assert [d.alert_key for d in _deliveries(db, NotifyReason.HEARTBEAT)] == ["heartbeat:2026-11-21"]


def test_triggers_beyond_the_horizon_are_swept_in_on_time(db: Engine, model: TextModel, settings: Settings) -> None:
    """With a trigger horizon (as `yuqing run` uses), far notices get no job at first; the periodic sweep adds
    each one before it is due, so every notice still fires on time and the audit finds nothing late."""
    h = Harness(db, model, settings, FakeClock(T0))
    h.scheduler.horizon = H
    audit = _auditor(h)

    async def life() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        assert [j for j, _ in h.scheduler.pending_jobs()] == []  # first notices at 4 h and 20 h: beyond 1 h
        step = timedelta(minutes=15)  # the service sweeps every horizon / 4
        at = T0
        while at < T0 + 25 * H:
            at += step
            await h.scheduler.sweep()
            assert all(run <= h.clock.now() + H for _, run in h.scheduler.pending_jobs())
            await h.advance_to(at)
            assert await audit.audit() == []
        h.stop()

    asyncio.run(life())
    heads = [m.splitlines()[0][:8] for m in h.console_messages()]
    assert heads == ["【特别重大舆情】", "【提醒】【特别重", "【提醒】【特别重", "【超时】权威信息",
                     "【提醒】【特别重", "【提醒】【特别重", "【超时】新闻发布"]
