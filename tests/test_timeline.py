"""End-to-end timelines on a fake clock, through python-telegram-bot and the fake Bot API server: post at t=0 →
opening alert → reminders at 4 h and 4.5 h → overdue at 5 h → press-conference clock to 24 h; and the whole
response engine on one incident: escalation, acknowledgement by a Telegram callback, 研判 raising the severity,
/release, a missed deadline reaching the leaders, and a restart in the middle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.clock import FakeClock
from alerts.deadlines import Scheduled
from alerts.notifiers.telegram import TelegramNotifier
from classifier.model import TextModel
from config.schema import Settings
from models.enums import DeadlineStatus
from models.tables import Deadline, IncidentEvent
from tests.conftest import FIXTURES, TOKEN
from tests.fake_telegram import FakeTelegramServer
from tests.harness import SH, Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)  # 02:31 in Shanghai
H = timedelta(hours=1)


def _texts(server: FakeTelegramServer) -> list[str]:
    return [m["plain_text"] for m in server.messages]


def test_timeline_post_alert_reminders_overdue(db: Engine, model: TextModel, settings: Settings,
                                               telegram: FakeTelegramServer) -> None:
    clock = FakeClock(T0)
    tg = TelegramNotifier(TOKEN, [42], base_url=telegram.base_url, timeout=5)
    h = Harness(db, model, settings, clock, [tg])

    async def scenario() -> None:
        await h.start()
        h.ingest(FIXTURES / "feeds" / "mine_collapse.xml")
        clock.advance(timedelta(seconds=2))
        await h.process()
        texts = _texts(telegram)
        assert len(texts) == 1
        assert texts[0].startswith("【特别重大舆情】某县煤矿发生坍塌事故 已致35人遇难 多人被困井下")
        assert "距5小时权威信息发布时限还剩 4小时59分（07:31 前）" in texts[0]
        assert "距24小时新闻发布会时限还剩 23小时59分（次日 02:31 前）" in texts[0]

        await h.advance_to(T0 + 4 * H - timedelta(seconds=1))
        assert len(_texts(telegram)) == 1  # nothing early
        await h.advance_to(T0 + 4 * H)
        assert "【提醒】" in _texts(telegram)[1] and "还剩 1小时（07:31 前）" in _texts(telegram)[1]
        await h.advance_to(T0 + 4.5 * H)
        assert "还剩 30分" in _texts(telegram)[2]
        await h.advance_to(T0 + 5 * H)
        overdue = _texts(telegram)[3]
        assert overdue.startswith("【超时】权威信息发布 已超时：某县煤矿发生坍塌事故")
        assert "距24小时新闻发布会时限还剩 19小时" in overdue
        await h.advance_to(T0 + 30 * H)
        await tg.close()
        h.stop()

    asyncio.run(scenario())
    texts = _texts(telegram)
    assert len(texts) == 7
    assert "距24小时新闻发布会时限还剩 4小时" in texts[4] and "还剩 1小时" in texts[5]
    assert texts[6].startswith("【超时】新闻发布会 已超时")
    assert [m["chat_id"] for m in telegram.messages] == [42] * 7
    with Session(db) as s:
        status = {(d.kind, d.seq): d.status for d in s.exec(select(Deadline)).all()}
        # both statutory clocks missed; continuous updates are now due every 24 h from the missed press conference
        assert status == {("release_5h", 0): DeadlineStatus.MISSED, ("press_conference_24h", 0): DeadlineStatus.MISSED,
                          ("update", 1): DeadlineStatus.PENDING}
        missed = s.exec(select(IncidentEvent).where(IncidentEvent.kind == "deadline_missed")).all()
        assert [e.detail["kind"] for e in missed] == ["release_5h", "press_conference_24h"]


def test_drill_compresses_the_timeline_and_marks_messages(db: Engine, model: TextModel, settings: Settings) -> None:
    clock = FakeClock(T0)
    h = Harness(db, model, settings, clock, time_scale=3600)

    async def scenario() -> None:
        await h.start()
        h.ingest(FIXTURES / "feeds" / "mine_collapse.xml")
        await h.process()
        await h.advance_to(T0 + timedelta(seconds=5))
        h.stop()

    asyncio.run(scenario())
    msgs = h.console_messages()
    assert len(msgs) == 4  # opening, two reminders, overdue at 5 s
    assert all(m.startswith("【演练】") for m in msgs)
    assert "权威信息发布 已超时" in msgs[-1]


# ---------------------------------------------------------------- the whole response engine, one incident

# 张三 值班员 1001, 李四 科室负责人 1002, 王五 分管领导 1003, 赵六 主要领导 1004
ROSTER = FIXTURES / "roster" / "escalation.yaml"
GROUP = 42
ZHANG, LI, WANG, ZHAO = 1001, 1002, 1003, 1004
M = timedelta(minutes=1)
RELEASE_URL = "https://lyj.example.gov.cn/tzgg/2026/1121.html"


class Life:
    """One yuqing process on the shared database: harness (engine, outbox, paused scheduler on the fake clock)
    plus the real Telegram bot polling the fake Bot API server."""

    def __init__(self, db: Engine, model: TextModel, settings: Settings, server: FakeTelegramServer,
                 clock: FakeClock) -> None:
        from alerts.bot import IncidentBot
        from alerts.bot_commands import AccessPolicy

        self.tg = TelegramNotifier(TOKEN, [GROUP], base_url=server.base_url, timeout=5)
        self.h = Harness(db, model, settings, clock, [self.tg], roster=ROSTER)
        names = {p.telegram: name for name, p in self.h.settings.roster.people.items() if p.telegram}
        self.bot = IncidentBot(TOKEN, base_url=server.base_url, db=db, clock=clock, tz=SH,
                               access=AccessPolicy(frozenset({GROUP}), frozenset({ZHANG, LI, WANG, ZHAO})),
                               schedule=self.h.scheduler.schedule, dispatch=self.h.dispatcher.dispatch,
                               names=names, timeout=5, poll_timeout=1)

    async def start(self) -> None:
        await self.h.start()
        await self.bot.start()

    async def stop(self) -> None:
        await self.bot.stop()
        await self.tg.close()
        self.h.stop()


def _to(server: FakeTelegramServer, chat: int) -> list[str]:
    return [m["plain_text"] for m in server.messages if m["chat_id"] == chat and m["method"] == "sendMessage"]


def _open_iii(life: Life) -> int:
    """A 较大 (III) forest fire, as the pipeline opens it (classification is tested elsewhere)."""
    from alerts.incidents import OpenIncident
    from models.db import session_scope
    from models.enums import Category, Sentiment, Severity

    h = life.h
    with session_scope(h.db) as s:
        change = OpenIncident(group_key="g:fire", title="某县林区发生森林火灾 <b>多处</b>起火",
                              category=Category.EMERGENCY, severity=Severity.III, sentiment=Sentiment.NEGATIVE,
                              first_seen_at=h.clock.now(),
                              source="某市新闻网", source_url="https://news.example.cn/a/1.html", post_ids=())
        inc = h.engine.open_incident(s, change, h.policy, h.clock.now())
        s.flush()
        assert inc.id is not None
        rows = s.exec(select(Deadline).where(Deadline.incident_id == inc.id)).all()
        triggers = [Scheduled(d.id, d.token, d.next_notice_at) for d in rows if d.next_notice_at and d.id]
        triggers += h.engine.triggers(s, inc, h.clock.now())
        inc_id = inc.id
    for item in triggers:
        h.scheduler.schedule(item)
    return inc_id


def test_response_timeline_escalation_ack_release_raise_miss_restart(
        db: Engine, model: TextModel, settings: Settings, telegram: FakeTelegramServer) -> None:
    """t=0 a III incident opens → nobody acknowledges: 15/30 min up the chain → restart → 45 min the top rung →
    the principal leader presses 确认 (Telegram callback): escalation stops → 研判 raises it to II: the 5 h and
    24 h clocks are planned from t=0 → 4 h reminder → /release meets the 5 h clock (no 4.5 h reminder, no
    overdue) → the press conference is missed at 24 h and the leaders are told. Every message exactly once."""
    from alerts import actions
    from models.db import session_scope
    from models.enums import Severity

    clock = FakeClock(T0)
    state: dict[str, int] = {}

    async def first_life() -> None:
        life = Life(db, model, settings, telegram, clock)
        await life.start()
        state["id"] = inc_id = _open_iii(life)
        await life.h.dispatcher.dispatch()
        assert _to(telegram, GROUP)[0].startswith("【较大舆情】某县林区发生森林火灾 <b>多处</b>起火")  # escaped
        assert _to(telegram, ZHANG)[0].startswith("【较大舆情】")
        await life.h.advance_to(T0 + 35 * M)
        assert len(_to(telegram, LI)) == 1 and len(_to(telegram, WANG)) == 1 and _to(telegram, ZHAO) == []
        assert inc_id
        await life.stop()  # the process dies here; its in-memory jobs are gone

    async def second_life() -> None:
        life = Life(db, model, settings, telegram, clock)
        await life.start()
        inc_id = state["id"]
        await life.h.advance_to(T0 + 45 * M)
        assert len(_to(telegram, ZHAO)) == 1 and "现报主要领导 赵六" in _to(telegram, ZHAO)[0]
        clock.set(T0 + 50 * M)
        telegram.push_callback_query(GROUP, ZHAO, f"ack:{inc_id}", first_name="Liu")
        await asyncio.to_thread(telegram.wait_for, lambda _m: telegram.callback_answers or None, 10)
        await life.h.advance_to(T0 + 2 * H)  # the top rung would have repeated at 1:15 and 1:45
        assert len(_to(telegram, ZHAO)) == 1
        with session_scope(db) as s:  # 研判 at 02:31 + 2 h 20 min: it is a 重大 (II) event after all
            clock.set(T0 + 140 * M)
            out = actions.assess(s, inc_id, actor="张三", now=clock.now(), severity=Severity.II, department="防火处")
            later = out.scheduled + life.h.engine.severity_changed(s, inc_id, clock.now())
        for item in later:
            life.h.scheduler.schedule(item)
        await life.h.advance_to(T0 + 4 * H)
        assert sum("【提醒】" in t and "权威信息发布" in t for t in _to(telegram, GROUP)) == 1
        clock.set(T0 + 250 * M)
        telegram.push_message(GROUP, ZHANG, f"/release {inc_id} {RELEASE_URL}")
        await asyncio.to_thread(telegram.wait_for, lambda _m: [t for t in _to(telegram, GROUP) if "已记录事件" in t]
                                or None, 10)
        await life.h.advance_to(T0 + 25 * H)
        await life.stop()

    asyncio.run(first_life())
    asyncio.run(second_life())

    group = _to(telegram, GROUP)
    assert "处置建议：模糊认识 → 主动发布权威信息，讲清事实" in group[0]  # from the category, before 研判
    [raised] = [t for t in group if t.startswith("【等级调整】【重大舆情】")]
    assert "等级由 III 较大 调整为 II 重大（张三：研判）" in raised
    assert "距5小时权威信息发布时限还剩 2小时40分" in raised  # counted from first detection
    assert not any("已超时" in t and "权威信息发布" in t.splitlines()[0] for t in group)  # met on time
    assert sum("还剩 30分" in t for t in group) == 0  # the 4.5 h reminder never went out
    overdue = [t for t in group if t.startswith("【超时】新闻发布会 已超时")]
    assert len(overdue) == 1
    for leader in (WANG, ZHAO):  # a missed statutory deadline reaches the leaders
        assert sum(t.startswith("【超时】新闻发布会") for t in _to(telegram, leader)) == 1
    everything = [(m["chat_id"], m["plain_text"]) for m in telegram.messages if m["method"] == "sendMessage"]
    assert len(everything) == len(set(everything))  # nothing twice, across the restart
    with Session(db) as s:
        rows = {(d.kind, d.seq): d for d in s.exec(select(Deadline)).all()}
        assert rows[("response_48h", 0)].status == DeadlineStatus.CANCELLED
        assert rows[("release_5h", 0)].status == DeadlineStatus.MET
        assert rows[("release_5h", 0)].due_at == T0 + 5 * H  # planned from first detection, not from the raise
        assert rows[("release_5h", 0)].met_by == "张三" and rows[("release_5h", 0)].met_ref == RELEASE_URL
        assert rows[("press_conference_24h", 0)].status == DeadlineStatus.MISSED
        events = [(e.kind, e.actor) for e in s.exec(select(IncidentEvent).order_by(IncidentEvent.id)).all()]
    assert ("acknowledged", "赵六") in events and ("severity_changed", "张三") in events
    assert ("released", "张三") in events and ("deadline_missed", "system") in events
    escalated = [k for k, _ in events if k == "escalated"]
    assert len(escalated) == 3  # 李四, 王五, 赵六 — and nothing after the acknowledgement
