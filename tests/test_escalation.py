"""Escalation through the duty roster on a fake clock, through the harness, python-telegram-bot and the fake Bot
API server: nobody acknowledges → the alert climbs 值班员 → 科室负责人 → 分管领导 → 主要领导 at the configured
wait and repeats at the top; an acknowledgement stops it; a restart resumes without repeating; quiet hours
hold a IV back but not a II; a missed deadline reaches the leaders. Deliveries per person are in `Delivery`."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import actions
from alerts.clock import FakeClock
from alerts.clocks import triggers as deadline_triggers
from alerts.escalation import EscalationDue, Router, plan_step, quiet_until
from alerts.incidents import OpenIncident
from alerts.notifiers.telegram import TelegramNotifier
from alerts.outbox import Receiver, enqueue
from alerts.render import Message
from alerts.roster import Person
from classifier.model import TextModel
from config.schema import EscalationSettings, QuietHoursSettings, Settings
from models.db import session_scope
from models.enums import Category, DeadlineStatus, DutyRole, NotifyReason, Sentiment, Severity
from models.tables import Deadline, Delivery, Incident, IncidentEvent
from tests.conftest import FIXTURES, TOKEN
from tests.fake_telegram import FakeTelegramServer
from tests.harness import Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)  # 02:31 in Shanghai
M, H = timedelta(minutes=1), timedelta(hours=1)
FEED = FIXTURES / "feeds" / "mine_collapse.xml"
ROSTER = FIXTURES / "roster" / "escalation.yaml"
QUIET = FIXTURES / "roster" / "escalation_quiet.yaml"
GROUP = 42
PEOPLE = {"张三": 1001, "李四": 1002, "王五": 1003, "赵六": 1004, "孙七": 1007}


def _harness(db: Engine, model: TextModel, settings: Settings, server: FakeTelegramServer, at: datetime,
             roster: Path | None = ROSTER) -> tuple[Harness, TelegramNotifier]:
    tg = TelegramNotifier(TOKEN, [GROUP], base_url=server.base_url, timeout=5)
    h = Harness(db, model, settings, FakeClock(at), [tg], roster=roster)
    return h, tg


def _to(server: FakeTelegramServer, chat: int) -> list[str]:
    return [m["plain_text"] for m in server.messages if m["chat_id"] == chat]


def _people(db: Engine, reason: NotifyReason) -> list[str | None]:
    with Session(db) as s:
        rows = s.exec(select(Delivery).where(Delivery.reason == reason.value, Delivery.channel == "telegram")
                      .order_by(col(Delivery.id))).all()
        return [r.person for r in rows]


def _incident(db: Engine) -> Incident:
    with Session(db) as s:
        return s.exec(select(Incident)).one()


def test_no_ack_climbs_every_rung_then_repeats_at_the_top(db: Engine, model: TextModel, settings: Settings,
                                                         telegram: FakeTelegramServer) -> None:
    h, tg = _harness(db, model, settings, telegram, T0)

    async def scenario() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        assert _to(telegram, GROUP)[0].startswith("【特别重大舆情】")  # the group, as without a roster
        assert _to(telegram, PEOPLE["张三"])[0].startswith("【特别重大舆情】")  # and the duty officer
        await h.advance_to(T0 + 15 * M - timedelta(seconds=1))
        assert _to(telegram, PEOPLE["李四"]) == []  # nothing before the wait is over
        await h.advance_to(T0 + 2 * H)
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    [chief] = _to(telegram, PEOPLE["李四"])
    assert chief.startswith("【升级】【特别重大舆情】某县煤矿发生坍塌事故")
    assert "值班员 张三 15分钟未确认，现报科室负责人 李四" in chief
    assert "距5小时权威信息发布时限还剩 4小时45分" in chief
    assert "科室负责人 李四 15分钟未确认，现报分管领导 王五" in _to(telegram, PEOPLE["王五"])[0]
    top = _to(telegram, PEOPLE["赵六"])
    assert "分管领导 王五 15分钟未确认，现报主要领导 赵六" in top[0]
    # at the top: every 30 minutes (at 1:15, 1:45) until someone acknowledges
    assert len(top) == 3 and "主要领导 赵六 30分钟未确认（第2次）" in top[1] and "（第3次）" in top[2]
    assert _to(telegram, GROUP) == [_to(telegram, GROUP)[0]]  # escalations go to people, not the group
    assert _people(db, NotifyReason.ESCALATION) == ["李四", "王五", "赵六", "赵六", "赵六"]
    assert _people(db, NotifyReason.OPENED) == [None, "张三"]
    with Session(db) as s:
        steps = s.exec(select(IncidentEvent).where(IncidentEvent.kind == "escalated").order_by(col(IncidentEvent.id)))
        assert [(e.detail["rung"], e.detail["repeat"], e.at - T0) for e in steps] == [
            (1, 0, 15 * M), (2, 0, 30 * M), (3, 0, 45 * M), (3, 1, 75 * M), (3, 2, 105 * M)]
        keys = [d.alert_key for d in s.exec(select(Delivery).where(Delivery.reason == "escalation"))]
        inc_id = _incident(db).id
        expected = {f"escalation:{inc_id}:{rung}:{rep}" for rung, rep in ((1, 0), (2, 0), (3, 0), (3, 1), (3, 2))}
        assert set(keys) == expected and len(keys) == 10  # one key per (rung, repeat): console + the person


def test_acknowledgement_mid_way_stops_the_escalation(db: Engine, model: TextModel, settings: Settings,
                                                      telegram: FakeTelegramServer) -> None:
    h, tg = _harness(db, model, settings, telegram, T0)

    async def scenario() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        await h.advance_to(T0 + 20 * M)  # the section chief has been told
        with session_scope(db) as s:
            inc = s.exec(select(Incident)).one()
            assert inc.id is not None and inc.escalation_level == 1
            assert actions.acknowledge(s, inc.id, actor="李四", now=h.clock.now()).ok
        await h.advance_to(T0 + 3 * H)
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    assert _people(db, NotifyReason.ESCALATION) == ["李四"]
    assert _to(telegram, PEOPLE["王五"]) == [] and _to(telegram, PEOPLE["赵六"]) == []
    inc = _incident(db)
    assert inc.next_escalation_at is None and inc.acknowledged_by == "李四"
    # the deadline clocks go on: reminders at 4 h are still to come, the 5 h clock is pending
    with Session(db) as s:
        assert s.exec(select(Deadline).where(Deadline.kind == "release_5h")).one().status == DeadlineStatus.PENDING


def test_restart_mid_way_resumes_without_repeating(db: Engine, model: TextModel, settings: Settings,
                                                   telegram: FakeTelegramServer) -> None:
    first, tg1 = _harness(db, model, settings, telegram, T0)

    async def first_life() -> None:
        await first.start()
        first.ingest(FEED)
        await first.process()
        await first.advance_to(T0 + 20 * M)  # rung 1 (section chief) told; rung 2 due at 0:30
        await tg1.close()
        first.stop()  # the process dies: in-memory jobs are gone

    asyncio.run(first_life())
    second, tg2 = _harness(db, model, settings, telegram, T0 + 40 * M)  # down past rung 2's time

    async def second_life() -> None:
        assert await second.start() >= 3  # two deadline clocks and the escalation rebuilt from the database
        assert [j for j, _ in second.scheduler.pending_jobs() if j.startswith("escalate:")] == ["escalate:1"]
        await second.advance_to(T0 + 40 * M)
        assert len(_to(telegram, PEOPLE["王五"])) == 1  # the overdue step fires once, at the restart
        await second.advance_to(T0 + 56 * M)
        await tg2.close()
        second.stop()

    asyncio.run(second_life())
    assert _people(db, NotifyReason.ESCALATION) == ["李四", "王五", "赵六"]  # nothing repeated, nothing lost
    assert len(_to(telegram, PEOPLE["李四"])) == 1 and len(_to(telegram, PEOPLE["张三"])) == 1
    with Session(db) as s:
        at = [e.at for e in s.exec(select(IncidentEvent).where(IncidentEvent.kind == "escalated")
                                   .order_by(col(IncidentEvent.id)))]
    assert at == [T0 + 15 * M, T0 + 40 * M, T0 + 55 * M]  # the next wait counts from the late step


def test_stale_escalation_job_sends_nothing(db: Engine, model: TextModel, settings: Settings,
                                            telegram: FakeTelegramServer) -> None:
    h, tg = _harness(db, model, settings, telegram, T0)

    async def scenario() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    inc = _incident(db)
    assert inc.id is not None and inc.next_escalation_at == T0 + 15 * M
    again = h.engine.escalate(inc.id, inc.token - 1, T0 + 16 * M)  # made before a later change: re-armed only
    assert again == [EscalationDue(inc.id, inc.token, T0 + 15 * M)]
    assert h.engine.escalate(inc.id, inc.token, T0 + 10 * M) != []  # early: nothing yet
    assert _people(db, NotifyReason.ESCALATION) == []
    h.engine.escalate(inc.id, inc.token, T0 + 16 * M)
    h.engine.escalate(inc.id, inc.token, T0 + 16 * M)  # the same job twice: the token moved on, no repeat
    assert _people(db, NotifyReason.ESCALATION) == ["李四"]


def _open(h: Harness, severity: Severity, key: str) -> int:
    """Open an incident of a given severity directly through the engine (the classifier is not under test)."""
    title = f"某小区居民反映供暖不足（{severity.value}）"
    change = OpenIncident(group_key=key, title=title, category=Category.LIVELIHOOD, severity=severity,
                          sentiment=Sentiment.NEGATIVE, first_seen_at=h.clock.now(), source="test",
                          source_url="https://news.example.cn/heating.html", post_ids=())
    with session_scope(h.db) as s:
        inc = h.engine.open_incident(s, change, h.policy, h.clock.now())
        s.flush()
        triggers = h.engine.triggers(s, inc, h.clock.now())
        rows = list(s.exec(select(Deadline).where(Deadline.incident_id == inc.id)).all())
        assert inc.id is not None
        inc_id = inc.id
    for item in [*triggers, *deadline_triggers(list(rows))]:
        h.scheduler.schedule(item)
    return inc_id


def test_quiet_hours_hold_back_a_iv_but_not_a_ii(db: Engine, model: TextModel, settings: Settings,
                                                 telegram: FakeTelegramServer) -> None:
    h, tg = _harness(db, model, settings, telegram, T0, roster=QUIET)  # 02:31, inside 22:00–07:30
    morning = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # 07:30 in Shanghai

    async def scenario() -> None:
        await h.start()
        iv = _open(h, Severity.IV, "iv")
        ii = _open(h, Severity.II, "ii")
        await h.dispatcher.dispatch()
        texts = _to(telegram, PEOPLE["张三"])
        assert len(texts) == 1 and "（II）" in texts[0]  # the II at once; the IV waits for the morning
        await h.advance_to(T0 + 15 * M)
        assert ["（II）" in t for t in _to(telegram, PEOPLE["李四"])] == [True]  # II escalates at night
        await h.advance_to(morning - timedelta(seconds=1))
        assert not any("（IV）" in t for t in _to(telegram, GROUP))
        await h.advance_to(morning)
        assert sum("（IV）" in t for t in _to(telegram, GROUP)) == 1  # held, not dropped
        assert sum("（IV）" in t for t in _to(telegram, PEOPLE["张三"])) == 1
        await h.advance_to(morning + 15 * M)
        assert sum("（IV）" in t for t in _to(telegram, PEOPLE["李四"])) == 1  # its wait counts from 07:30
        with Session(db) as s:
            due = s.exec(select(Deadline).where(Deadline.incident_id == iv)).one().due_at
            assert due == T0 + 48 * H  # the deadline clock itself never moves
            assert s.get(Incident, ii) is not None
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    [held] = [t for t in _to(telegram, PEOPLE["李四"]) if "（IV）" in t]
    assert "值班员 张三 15分钟未确认" in held


def test_a_missed_deadline_reaches_the_leaders(db: Engine, model: TextModel, settings: Settings,
                                               telegram: FakeTelegramServer) -> None:
    h, tg = _harness(db, model, settings, telegram, T0)

    async def scenario() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        with session_scope(db) as s:  # acknowledged and assigned at once: no escalation, the clocks run on
            assert actions.assess(s, 1, actor="张三", now=T0 + M, department="防火处").ok
        await h.advance_to(T0 + 5 * H)
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    assert _people(db, NotifyReason.ESCALATION) == []
    # reminders: the group, the duty officer on duty and the department's people — not the leaders
    assert _people(db, NotifyReason.REMINDER) == [None, "张三", "孙七"] * 2
    assert _people(db, NotifyReason.OVERDUE) == [None, "张三", "孙七", "王五", "赵六"]
    [overdue] = _to(telegram, PEOPLE["赵六"])
    assert overdue.startswith("【超时】权威信息发布 已超时")
    with Session(db) as s:
        d = s.exec(select(Deadline).where(Deadline.kind == "release_5h")).one()
        assert d.status == DeadlineStatus.MISSED and d.missed_reason == "时限内未标记完成；已报 王五、赵六"
        missed = s.exec(select(IncidentEvent).where(IncidentEvent.kind == "deadline_missed")).one()
        assert missed.detail["kind"] == "release_5h"
        notified = [e.detail for e in s.exec(select(IncidentEvent).where(IncidentEvent.kind == "notified"))]
        assert notified[-1]["leaders"] == ["王五", "赵六"]


def test_without_a_roster_nothing_escalates(db: Engine, model: TextModel, settings: Settings,
                                            telegram: FakeTelegramServer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="yuqing"):
        h, tg = _harness(db, model, settings, telegram, T0, roster=None)
    assert "escalation off: no duty roster" in caplog.text
    assert h.router is None

    async def scenario() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        await h.advance_to(T0 + 2 * H)
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    assert _incident(db).next_escalation_at is None
    assert {m["chat_id"] for m in telegram.messages} == {GROUP}
    assert _people(db, NotifyReason.OPENED) == [None]


# ---------------------------------------------------------------------------------------------- pure parts

CHAIN = [DutyRole.DUTY_OFFICER, DutyRole.SECTION_CHIEF, DutyRole.DEPUTY_LEADER, DutyRole.PRINCIPAL_LEADER]
A, B, C = (Person(n, DutyRole.DUTY_OFFICER) for n in ("甲", "乙", "丙"))


@pytest.mark.parametrize(("level", "reachable", "repeats", "expected"), [
    (0, {DutyRole.SECTION_CHIEF: [B], DutyRole.PRINCIPAL_LEADER: [C]}, {}, (1, ("乙",), 0, False)),
    # nobody reachable on 分管领导: skipped, straight to 主要领导 (the top)
    (1, {DutyRole.SECTION_CHIEF: [B], DutyRole.PRINCIPAL_LEADER: [C]}, {}, (3, ("丙",), 0, True)),
    (3, {DutyRole.PRINCIPAL_LEADER: [C]}, {3: 2}, (3, ("丙",), 2, True)),  # the third time at the top
    # the top is empty now (a leader's holiday shift ended): repeat the highest reachable rung below
    (3, {DutyRole.DUTY_OFFICER: [A], DutyRole.SECTION_CHIEF: [B]}, {1: 1}, (1, ("乙",), 1, True)),
])
def test_plan_step(level: int, reachable: dict[DutyRole, list[Person]], repeats: dict[int, int],
                   expected: tuple[int, tuple[str, ...], int, bool]) -> None:
    step = plan_step(CHAIN, level, reachable, repeats)
    assert step is not None
    assert (step.rung, tuple(p.name for p in step.people), step.repeat, step.top) == expected
    assert plan_step(CHAIN, level, {}, {}) is None


NIGHT = QuietHoursSettings(start="22:00", end="07:30")
NOON = QuietHoursSettings(start="12:00", end="14:00")


@pytest.mark.parametrize(("quiet", "severity", "local", "until"), [
    (NIGHT, Severity.IV, "2026-11-20 21:59", None),
    (NIGHT, Severity.IV, "2026-11-20 22:00", "2026-11-21 07:30"),  # crosses midnight
    (NIGHT, Severity.IV, "2026-11-21 02:31", "2026-11-21 07:30"),
    (NIGHT, Severity.IV, "2026-11-21 07:30", None),
    (NIGHT, Severity.III, "2026-11-21 02:31", None),  # I–III always at once
    (NOON, Severity.IV, "2026-11-21 12:30", "2026-11-21 14:00"),
    (NOON, Severity.IV, "2026-11-21 14:00", None),
    (None, Severity.IV, "2026-11-21 02:31", None),
])
def test_quiet_until(quiet: QuietHoursSettings | None, severity: Severity, local: str, until: str | None) -> None:
    sh = ZoneInfo("Asia/Shanghai")

    def utc(text: str) -> datetime:
        return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=sh).astimezone(UTC)

    assert quiet_until(quiet, severity, utc(local), sh) == (utc(until) if until else None)


def test_deliveries_name_their_people_and_robots_mention_mobiles(db: Engine) -> None:
    people = {"钱副厅长": Person("钱副厅长", DutyRole.DEPUTY_LEADER, telegram=1005, mobile="13800000005"),
              "周主任": Person("周主任", DutyRole.SECTION_CHIEF, email="zhou@example.gov.cn", mobile="13900000008"),
              "吴厅长": Person("吴厅长", DutyRole.PRINCIPAL_LEADER, email="wu@example.gov.cn")}
    router = Router(people, EscalationSettings(), {"telegram": "html", "dingtalk": "text"}, ZoneInfo("Asia/Shanghai"))
    group = [Receiver("telegram", "42", "html"), Receiver("dingtalk", "default", "text")]
    with session_scope(db) as s:
        enqueue(s, alert_key="k", reason=NotifyReason.ESCALATION, message=Message("正文", "<b>正文</b>"),
                receivers=group + router.receivers(list(people.values())), now=T0)
    with Session(db) as s:
        rows = {(d.channel, d.receiver): d for d in s.exec(select(Delivery))}
    assert set(rows) == {("telegram", "42"), ("telegram", "1005"), ("dingtalk", "default")}  # no email channel
    assert rows[("telegram", "1005")].person == "钱副厅长" and rows[("telegram", "42")].person is None
    robot = rows[("dingtalk", "default")]  # one group message, mentioning both mobiles
    assert robot.person == "钱副厅长、周主任" and robot.body == "正文\n@13800000005 @13900000008"
    assert router.receivers([people["吴厅长"]]) == []  # reachable on no active channel


def test_raising_a_held_iv_releases_it_at_once(db: Engine, model: TextModel, settings: Settings,
                                               telegram: FakeTelegramServer) -> None:
    h, tg = _harness(db, model, settings, telegram, T0, roster=QUIET)  # 02:31, inside quiet hours

    async def scenario() -> None:
        await h.start()
        inc_id = _open(h, Severity.IV, "iv")
        await h.advance_to(T0 + 29 * M)
        assert _to(telegram, PEOPLE["张三"]) == []  # held
        with session_scope(db) as s:
            assert actions.change_severity(s, inc_id, Severity.II, actor="张三", now=h.clock.now(), reason="研判").ok
            follow = h.engine.severity_changed(s, inc_id, h.clock.now())
        for item in follow:
            h.scheduler.schedule(item)
        await h.advance_to(T0 + 29 * M)
        opening, raised = _to(telegram, PEOPLE["张三"])  # the held opening notice goes out now, and the change
        assert opening.startswith("【一般舆情】") and raised.startswith("【等级调整】【重大舆情】")
        await h.advance_to(T0 + 44 * M)
        assert len(_to(telegram, PEOPLE["李四"])) == 1  # and escalation runs on from here, not from 07:30
        await tg.close()
        h.stop()

    asyncio.run(scenario())


def test_the_people_an_escalation_reached_are_told_who_acknowledged(db: Engine, model: TextModel, settings: Settings,
                                                                    telegram: FakeTelegramServer) -> None:
    from alerts.pickup import ChangePickup
    from models.enums import EventKind

    h, tg = _harness(db, model, settings, telegram, T0)
    pickup = ChangePickup(db, h.clock, h.scheduler.schedule,
                          announce={EventKind.ACKNOWLEDGED: h.engine.acknowledged})

    async def scenario() -> None:
        await h.start()
        inc_id = _open(h, Severity.II, "ii")
        await h.dispatcher.dispatch()
        await h.advance_to(T0 + 35 * M)  # 李四 and 王五 have been told
        with session_scope(db) as s:  # 赵六 is never reached: 王五's wait is not over
            assert actions.acknowledge(s, inc_id, actor="王五", now=h.clock.now()).ok
        pickup.run_once()  # what the running service does every 30 s (the bot and the CLI commit elsewhere)
        pickup.run_once()
        await h.dispatcher.dispatch()
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    for person in ("李四", "王五"):
        told = [t for t in _to(telegram, PEOPLE[person]) if t.startswith("【已确认】")]
        assert len(told) == 1 and "已由 王五 于 03:06 确认，逐级上报已停止。" in told[0]
    assert not any(t.startswith("【已确认】") for t in _to(telegram, PEOPLE["张三"]) + _to(telegram, GROUP))
    assert _to(telegram, PEOPLE["赵六"]) == []
