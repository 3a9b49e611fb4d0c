"""The Telegram bot (alerts/bot.py): the real python-telegram-bot Application polling the fake Bot API server,
with the real alert engine, outbox and scheduler on a fake clock. Buttons on alerts, 确认 by an allowed user and
by a stranger, /release stopping the 5 h reminders, /list ordering, and Chinese usage messages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import actions, overview
from alerts.bot import IncidentBot, build_bot
from alerts.bot_commands import AccessPolicy, BotAction, Verdict, parse_command
from alerts.clock import FakeClock
from alerts.deadlines import Scheduled, freeze_policy
from alerts.engine import AlertEngine
from alerts.incidents import OpenIncident
from alerts.notifiers.telegram import TelegramNotifier
from alerts.outbox import Dispatcher, receivers_of
from alerts.scheduler import DeadlineScheduler
from alerts.service import ProcessOutcome, Service
from config.env import Environment
from config.loader import load_config, parse_config
from config.schema import Settings
from models.db import session_scope
from models.enums import Category, DeadlineStatus, HandlingType, IncidentStatus, Sentiment, Severity
from models.tables import ActionLog, Deadline, Incident
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegramServer
from tests.harness import SH

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)  # 02:31 in Shanghai
H = timedelta(hours=1)
GROUP, OTHER_GROUP = -1001234567890, -1009999999999
OFFICER, STRANGER = 1111, 6666
URL = "https://lyj.example.gov.cn/tzgg/2026/1121.html"
JSON = dict[str, Any]


class World:
    """One yuqing process: engine, outbox, paused scheduler (driven by the fake clock) and the bot."""

    def __init__(self, db: Engine, server: FakeTelegramServer, *, retry_start: float = 5.0) -> None:
        self.db, self.server = db, server
        self.clock = FakeClock(T0)
        self.tg = TelegramNotifier(TOKEN, [GROUP], base_url=server.base_url, timeout=5)
        self.engine = AlertEngine(db, receivers_of([self.tg]), SH)
        self.dispatcher = Dispatcher(db, [self.tg], self.clock)
        self.scheduler = DeadlineScheduler(self.engine, self.dispatcher, self.clock)
        self.policy = freeze_policy(load_config().settings.response)
        access = AccessPolicy(frozenset({GROUP}), frozenset({OFFICER}))
        self.bot = IncidentBot(TOKEN, base_url=server.base_url, db=db, clock=self.clock, tz=SH, access=access,
                               schedule=self.scheduler.schedule, dispatch=self.dispatcher.dispatch,
                               names={OFFICER: "张三"}, timeout=5, poll_timeout=1, retry_start=retry_start)

    async def open(self, title: str, severity: Severity, first_seen: datetime = T0) -> int:
        with session_scope(self.db) as s:
            change = OpenIncident(group_key=f"g:{title}", title=title, category=Category.EMERGENCY,
                                  severity=severity, sentiment=Sentiment.NEGATIVE, first_seen_at=first_seen,
                                  source="某市新闻网", source_url="https://news.example.cn/a/1.html", post_ids=())
            inc = self.engine.open_incident(s, change, self.policy, self.clock.now())
            s.flush()
            rows = s.exec(select(Deadline).where(Deadline.incident_id == inc.id)).all()
            triggers = [Scheduled(d.id, d.token, d.next_notice_at) for d in rows
                        if d.id is not None and d.next_notice_at is not None]
            assert inc.id is not None
            inc_id = inc.id
        for item in triggers:
            self.scheduler.schedule(item)
        await self.dispatcher.dispatch()
        return inc_id

    async def wait(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Bounded wait (no fixed sleep) until the fake server has recorded what `predicate` looks for."""
        return await asyncio.to_thread(self.server.wait_for, lambda _messages: predicate(), timeout)

    async def reply(self, needle: str) -> JSON:
        """The bot's message containing `needle` (sent or edited)."""
        return await self.wait(lambda: next((m for m in self.server.messages if m["text"] is not None
                                             and needle in m["plain_text"]), None))

    async def answer(self, count: int = 1) -> JSON:
        answers = await self.wait(lambda: self.server.callback_answers[count - 1:] or None)
        return dict(answers[0])


def run(db: Engine, server: FakeTelegramServer, scenario: Callable[[World], Awaitable[None]], *,
        retry_start: float = 5.0) -> World:
    world = World(db, server, retry_start=retry_start)

    async def main() -> None:
        world.scheduler.start(paused=True)
        await world.bot.start()
        try:
            await scenario(world)
        finally:
            await world.bot.stop()
            await world.tg.close()
            world.scheduler.shutdown()

    asyncio.run(main())
    return world


def _log(db: Engine) -> list[ActionLog]:
    with Session(db) as s:
        return list(s.exec(select(ActionLog).order_by(col(ActionLog.id))).all())


def _incident(db: Engine, inc_id: int) -> Incident:
    with Session(db) as s:
        inc = s.get(Incident, inc_id)
        assert inc is not None
        return inc


def _alerts(server: FakeTelegramServer) -> list[str]:
    """Reminder and overdue notices sent so far."""
    return [t for t in server.sent_texts if "【提醒】" in t or "【超时】" in t]


def test_opening_alert_carries_the_action_buttons(db: Engine, telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾 2名扑火队员失联", Severity.II)
        opening = await w.reply("某县林区发生森林火灾")
        assert opening["reply_markup"] == {"inline_keyboard": [[
            {"text": "确认", "callback_data": f"ack:{inc_id}"},
            {"text": "已发布", "callback_data": f"rel:{inc_id}"},
            {"text": "查看", "callback_data": f"view:{inc_id}"},
        ]]}
        assert {c["command"] for c in telegram.commands} >= {"ack", "status", "list", "release", "help"}

    run(db, telegram, scenario)


def test_ack_button_by_an_allowed_user_acknowledges_and_edits_the_alert(db: Engine,
                                                                       telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾 2名扑火队员失联", Severity.II)
        await w.reply("某县林区发生森林火灾")
        w.clock.advance(timedelta(minutes=14))  # 02:45
        telegram.push_callback_query(GROUP, OFFICER, f"ack:{inc_id}", first_name="San", username="zhangsan")
        answer = await w.answer()
        assert answer["text"] == f"已确认事件 #{inc_id}"
        edited = await w.wait(lambda: [m for m in telegram.messages if m["method"] == "editMessageText"])
        assert edited[0]["plain_text"].startswith("【重大舆情】某县林区发生森林火灾")  # the alert is kept
        assert edited[0]["plain_text"].endswith("✅ 张三 已确认 02:45")
        assert any(e["type"] == "bold" for e in edited[0]["entities"])  # its formatting too
        assert [b["text"] for b in edited[0]["reply_markup"]["inline_keyboard"][0]] == ["已发布", "查看"]

    w = run(db, telegram, scenario)
    inc = _incident(db, 1)
    assert inc.status == IncidentStatus.ACKNOWLEDGED and inc.acknowledged_by == "张三"
    assert inc.acknowledged_at == w.clock.now()
    [row] = _log(db)
    assert (row.action, row.user_id, row.chat_id, row.allowed, row.incident_id) == \
        ("ack", str(OFFICER), str(GROUP), True, 1)


def test_a_stranger_is_refused_logged_and_changes_nothing(db: Engine, telegram: FakeTelegramServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="alerts.bot")

    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾", Severity.II)
        await w.reply("某县林区发生森林火灾")
        telegram.push_callback_query(GROUP, STRANGER, f"ack:{inc_id}")
        answer = await w.answer()
        assert "无权" in answer["text"] and answer["show_alert"] is True
        telegram.push_message(OTHER_GROUP, OFFICER, f"/ack {inc_id}")  # an allowed user, a foreign chat
        await w.reply("本会话未获授权")
        telegram.push_message(GROUP, STRANGER, f"/release {inc_id} {URL}")
        await w.reply("您无权执行此操作")
        telegram.push_message(GROUP, STRANGER, "/list")  # reading is open to the group
        await w.reply("未结舆情事件 1 起")

    run(db, telegram, scenario)
    assert not any(m["method"] == "editMessageText" for m in telegram.messages)
    inc = _incident(db, 1)
    assert inc.status == IncidentStatus.NEW and inc.acknowledged_at is None
    rows = [(r.action, r.user_id, r.chat_id, r.allowed) for r in _log(db)]
    assert rows == [("ack", str(STRANGER), str(GROUP), False), ("ack", str(OFFICER), str(OTHER_GROUP), False),
                    ("release", str(STRANGER), str(GROUP), False), ("list", str(STRANGER), str(GROUP), True)]
    assert all("refused" in r.result for r in _log(db)[:3])
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) == 2  # three refusals, two callers: each logged once
    with Session(db) as s:
        assert s.exec(select(Deadline).where(Deadline.status == DeadlineStatus.MET)).all() == []


def test_release_command_meets_the_5h_clock_and_stops_its_reminders(db: Engine,
                                                                    telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾", Severity.II)
        w.clock.advance(H)
        telegram.push_message(GROUP, OFFICER, f"/release {inc_id} {URL}")
        reply = await w.reply("已记录事件")
        assert "距24小时新闻发布会时限还剩 23小时" in reply["plain_text"]  # what is left, at once
        await w.scheduler.run_due(w.clock, T0 + 6 * H)  # past the 4 h and 4.5 h reminders and the 5 h deadline
        assert _alerts(telegram) == []
        await w.scheduler.run_due(w.clock, T0 + 20 * H)  # the press-conference clock still runs
        assert len(_alerts(telegram)) == 1 and "新闻发布会" in _alerts(telegram)[0]

    run(db, telegram, scenario)
    with Session(db) as s:
        release = s.exec(select(Deadline).where(Deadline.kind == "release_5h")).one()
    assert release.status == DeadlineStatus.MET and release.met_ref == URL and release.met_by == "张三"
    assert release.met_at == T0 + H
    assert _incident(db, 1).status == IncidentStatus.RELEASED


def test_assess_from_the_phone_raises_the_severity_and_assigns_the_department(db: Engine,
                                                                             telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾", Severity.III)
        w.clock.advance(H)
        telegram.push_message(GROUP, OFFICER, f"/assess {inc_id} 等级=II 部门=防火处 处置=模糊认识")
        reply = await w.reply("已研判事件")
        assert "距5小时权威信息发布时限还剩 4小时" in reply["plain_text"]  # the new clocks, from first detection

    run(db, telegram, scenario)
    inc = _incident(db, 1)
    assert (inc.severity, inc.department, inc.handling_type) == ("II", "防火处", "confusion")
    assert inc.status == IncidentStatus.ASSESSED and inc.acknowledged_by == "张三"
    with Session(db) as s:
        kinds = {d.kind: d.status for d in s.exec(select(Deadline)).all()}
    assert kinds == {"response_48h": DeadlineStatus.CANCELLED, "release_5h": DeadlineStatus.PENDING,
                     "press_conference_24h": DeadlineStatus.PENDING}
    assert [(r.action, r.allowed) for r in _log(db)] == [("assess", True)]


def test_list_orders_open_incidents_by_the_nearest_deadline(db: Engine, telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        later = await w.open("某市供水管道爆裂 部分小区停水", Severity.III)  # 48 h
        sooner = await w.open("某县林区发生森林火灾", Severity.II, first_seen=T0 - 2 * H)  # 5 h from 00:31
        middle = await w.open("某景区游客被困索道", Severity.I, first_seen=T0 - H)
        closed = await w.open("某地谣传大坝溃决", Severity.II)
        with session_scope(w.db) as s:
            actions.dismiss(s, closed, actor="张三", now=w.clock.now(), reason="谣言，已核实")
        telegram.push_message(GROUP, OFFICER, "/list")
        text = (await w.reply("未结舆情事件"))["plain_text"]
        assert text.startswith("未结舆情事件 3 起")
        positions = [text.index(f"#{i}【") for i in (sooner, middle, later)]
        assert positions == sorted(positions) and f"#{closed}【" not in text
        assert "距5小时权威信息发布时限还剩 3小时（05:31 前）" in text

    run(db, telegram, scenario)


def test_bad_input_gets_a_chinese_usage_message(db: Engine, telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾", Severity.II)
        cases = [
            (f"/release {inc_id}", "用法：/release 事件编号 发布链接"),
            ("/release abc https://x.example.cn/1", "事件编号应为数字"),
            ("/ack 999", "未找到舆情事件 #999"),
            (f"/release {inc_id} 情况通报", "请提供发布内容的链接"),
            ("/dismiss 1", "用法：/dismiss 事件编号 原因"),
            ("/status", "用法：/status 事件编号"),
            ("/ack", "请提供事件编号"),
        ]
        for text, expected in cases:
            telegram.push_message(GROUP, OFFICER, text)
            await w.reply(expected)

    run(db, telegram, scenario)
    assert _incident(db, 1).status == IncidentStatus.NEW
    assert len(_log(db)) == 7 and all(r.allowed for r in _log(db))


def test_view_button_shows_details_escaped_and_release_button_asks_for_the_link(
        db: Engine, telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("<script>alert(1)</script> 某县林区 & 火灾", Severity.II)
        with session_scope(w.db) as s:
            actions.assess(s, inc_id, actor="张三", now=w.clock.now(), department="防火处",
                           handling_type=HandlingType.CONFUSION)
        telegram.push_callback_query(GROUP, STRANGER, f"view:{inc_id}")  # reading is open to the group
        detail = (await w.reply("涉事责任单位"))["plain_text"]
        assert detail.startswith(f"#{inc_id} <script>alert(1)</script> 某县林区 & 火灾")
        assert "状态：已研判（张三 02:31 确认）" in detail
        assert "等级：II 重大" in detail and "类别：突发事件" in detail and "涉事责任单位：防火处" in detail
        assert "分类处置：模糊认识　处置建议：主动发布权威信息，讲清事实" in detail
        assert "距5小时权威信息发布时限还剩 5小时（07:31 前）" in detail
        assert "02:31 张三 研判" in detail
        telegram.push_callback_query(GROUP, OFFICER, f"rel:{inc_id}")
        prompt = await w.reply("粘贴发布链接")
        assert f"/release {inc_id} 链接地址" in prompt["plain_text"]
        assert (await w.answer(2))["text"] == "请发送发布链接"
        _reply_to(telegram, prompt, OFFICER, f"情况通报 {URL}")
        await w.reply("已记录事件")

    run(db, telegram, scenario)
    assert [(r.action, r.allowed) for r in _log(db)] == [("status", True), ("release_prompt", True),
                                                         ("release", True)]
    assert _incident(db, 1).release_url == URL


def _reply_to(server: FakeTelegramServer, prompt: JSON, user: int, text: str) -> None:
    """The officer swipes to reply to the bot's prompt and pastes `text`."""
    chat = {"id": GROUP, "type": "supergroup", "title": "值班群"}
    bot_user = {"id": int(TOKEN.split(":")[0]), "is_bot": True, "first_name": "Yuqing Test Bot"}
    server.push_update({"message": {
        "message_id": 10_000 + prompt["message_id"], "date": 0, "chat": chat, "text": text,
        "from": {"id": user, "is_bot": False, "first_name": "San"},
        "reply_to_message": {"message_id": prompt["message_id"], "date": 0, "from": bot_user, "chat": chat,
                             "text": prompt["plain_text"]},
    }})


def test_published_means_a_continuous_update_once_only_updates_are_due(db: Engine,
                                                                       telegram: FakeTelegramServer) -> None:
    async def scenario(w: World) -> None:
        inc_id = await w.open("某县林区发生森林火灾", Severity.II)
        with session_scope(w.db) as s:
            actions.release(s, inc_id, actor="张三", now=T0 + H, url=URL)
            actions.press_conference(s, inc_id, actor="张三", now=T0 + 2 * H)
        telegram.push_callback_query(GROUP, OFFICER, f"rel:{inc_id}")
        prompt = await w.reply("粘贴发布链接")
        assert f"/update {inc_id} 链接地址" in prompt["plain_text"]
        _reply_to(telegram, prompt, OFFICER, "https://lyj.example.gov.cn/tzgg/2026/1122.html")
        await w.reply("已记录事件 #1 后续发布")

    run(db, telegram, scenario)
    with Session(db) as s:
        update = s.exec(select(Deadline).where(Deadline.kind == "update", Deadline.seq == 1)).one()
    assert update.status == DeadlineStatus.MET and update.met_ref.endswith("1122.html")


def test_the_bot_starts_once_telegram_is_reachable_again(db: Engine, telegram: FakeTelegramServer) -> None:
    telegram.down = True  # 502 Bad Gateway: the service starts anyway, the bot keeps trying

    async def scenario(w: World) -> None:
        assert not w.bot.app.running
        telegram.down = False
        await w.wait(lambda: any(r["method"] == "getUpdates" for r in telegram.requests))
        telegram.push_message(GROUP, OFFICER, "/help")
        await w.reply("舆情值班机器人 — 可用命令")

    run(db, telegram, scenario, retry_start=0.05)


PRIVATE_OFFICER = OFFICER  # a private chat's id is the user's id


@pytest.mark.parametrize(("chat", "private", "user", "write", "allow_private", "verdict"), [
    (GROUP, False, OFFICER, True, True, Verdict.ALLOWED),
    (GROUP, False, STRANGER, False, True, Verdict.ALLOWED),  # reading is open to the allowed group
    (GROUP, False, STRANGER, True, True, Verdict.USER_REFUSED),
    (OTHER_GROUP, False, OFFICER, True, True, Verdict.CHAT_REFUSED),
    (OTHER_GROUP, False, OFFICER, False, True, Verdict.CHAT_REFUSED),
    (PRIVATE_OFFICER, True, OFFICER, True, True, Verdict.ALLOWED),
    (PRIVATE_OFFICER, True, OFFICER, True, False, Verdict.CHAT_REFUSED),
    (STRANGER, True, STRANGER, False, True, Verdict.CHAT_REFUSED),
])
def test_access_policy(chat: int, private: bool, user: int, write: bool, allow_private: bool,
                       verdict: Verdict) -> None:
    policy = AccessPolicy(frozenset({GROUP}), frozenset({OFFICER}), allow_private)
    assert policy.check(chat_id=chat, private=private, user_id=user, write=write) is verdict


@pytest.mark.parametrize(("text", "action", "inc_id", "error"), [
    ("/ack 12", BotAction.ACK, 12, ""),
    ("/ack@yuqing_test_bot #12", BotAction.ACK, 12, ""),
    ("/ack １２", BotAction.ACK, 12, ""),  # full-width digits from a Chinese keyboard
    ("/release 12 https://a.example.cn/1", BotAction.RELEASE, 12, ""),
    ("/release 12", BotAction.RELEASE, 12, "参数不正确。用法：/release 事件编号 发布链接"),
    ("/press 12", BotAction.PRESS, 12, ""),
    ("/assess 12 等级=II 部门=防火处 处置=模糊认识", BotAction.ASSESS, 12, ""),
    ("/assess 12 severity=ii category=EMERGENCY handling=confusion", BotAction.ASSESS, 12, ""),
    ("/assess 12 等级=V", BotAction.ASSESS, 12, "参数不正确。用法：/assess 事件编号"),
    ("/assess 12 防火处", BotAction.ASSESS, 12, "参数不正确"),
    ("/assess 12", BotAction.ASSESS, 12, "参数不正确"),
    ("/update 12 a b", BotAction.UPDATE, 12, "参数不正确"),
    ("/close 12 已妥善处置", BotAction.CLOSE, 12, ""),
    ("/dismiss 12 影视 剧情", BotAction.DISMISS, 12, ""),
    ("/dismiss x", BotAction.DISMISS, None, "事件编号应为数字"),
    ("/list", None, None, ""),
])
def test_parse_command(text: str, action: BotAction | None, inc_id: int | None, error: str) -> None:
    parsed = parse_command(text)
    assert (parsed.action, parsed.incident_id) == (action, inc_id)
    assert error in parsed.error and (parsed.runner is None) == bool(error or action is None)


async def _nothing() -> None:
    return None


def test_build_bot_follows_the_config() -> None:
    db = create_engine("sqlite://")
    settings = parse_config("alerts:\n  telegram:\n    chat_ids: [-100]\n    allowed_user_ids: [7]\n")
    env = Environment(telegram_token=TOKEN, telegram_api_base="http://127.0.0.1:9/bot")
    clock = FakeClock(T0)

    def build(s: Settings, e: Environment) -> IncidentBot | None:
        return build_bot(s, e, db=db, clock=clock, tz=SH, schedule=lambda item: None, dispatch=_nothing)

    bot = build(settings, env)
    assert bot is not None and bot.access == AccessPolicy(frozenset({-100}), frozenset({7}), True)
    assert build(settings, Environment()) is None  # no token
    off = parse_config("alerts:\n  telegram:\n    bot: false\n")
    assert build(off, env) is None


def test_long_replies_are_cut_at_a_line_and_stay_valid_html() -> None:
    lines = ["<b>未结舆情事件 300 起</b>"] + [f'#{i} <a href="https://x.example.cn/{i}">原文</a>' for i in range(300)]
    cut = overview.fit("\n".join(lines), 4000)
    assert len(cut) <= 4000 and cut.endswith("\n……")
    assert all(line in lines for line in cut.split("\n")[:-1])


def test_the_service_starts_the_bot_and_stops_it(db: Engine, telegram: FakeTelegramServer) -> None:
    w = World(db, telegram)
    service = Service(db=db, sources=[], settings=load_config().settings, base_dir=Path("."),
                      scheduler=w.scheduler, process=lambda now: ProcessOutcome(), clock=w.clock, hooks=[w.bot])

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        telegram.push_message(GROUP, OFFICER, "/help")
        await w.reply("舆情值班机器人 — 可用命令")
        stop.set()
        await running
        await w.tg.close()

    asyncio.run(main())
    assert not w.bot.app.running and not w.scheduler.aps.running
