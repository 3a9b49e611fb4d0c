"""End-to-end timeline on a fake clock, through python-telegram-bot and the fake Bot API server:
post at t=0 → opening alert → reminders at 4 h and 4.5 h → overdue at 5 h → press-conference clock to 24 h."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.clock import FakeClock
from alerts.notifiers.telegram import TelegramNotifier
from classifier.model import TextModel
from config.schema import Settings
from models.enums import DeadlineStatus
from models.tables import Deadline, IncidentEvent
from tests.conftest import FIXTURES, TOKEN
from tests.fake_telegram import FakeTelegramServer
from tests.harness import Harness

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
