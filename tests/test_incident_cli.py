"""`yuqing incident list|show|ack|assess|release|press|update|close|dismiss` (alerts/commands.py), run in-process
through pipeline.main against the test database, and a running scheduler that picks up what the CLI changed:
the met deadline's trigger is a no-op (fenced by its token); a deadline the CLI created gets a trigger."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import pipeline
from alerts.clock import FakeClock
from alerts.deadlines import freeze_policy
from alerts.engine import AlertEngine
from alerts.incidents import OpenIncident
from alerts.notifiers.console import ConsoleNotifier
from alerts.outbox import Dispatcher, receivers_of
from alerts.pickup import ChangePickup
from alerts.scheduler import DeadlineScheduler
from config.loader import load_config
from models.db import session_scope
from models.enums import Category, DeadlineStatus, EventKind, IncidentStatus, NotifyReason, Sentiment, Severity
from models.tables import Deadline, Delivery, Incident, IncidentEvent
from tests.harness import SH

H = timedelta(hours=1)
URL = "https://lyj.example.gov.cn/tzgg/2026/1121.html"


class Service:
    """The parts of a running `yuqing run` that matter here, on a fake clock near wall time (the CLI acts at
    wall time)."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        self.clock = FakeClock(self.t0)
        self.out = io.StringIO()
        self.console = ConsoleNotifier(self.out)
        self.engine = AlertEngine(db, receivers_of([self.console]), SH)
        self.dispatcher = Dispatcher(db, [self.console], self.clock)
        self.scheduler = DeadlineScheduler(self.engine, self.dispatcher, self.clock)
        self.policy = freeze_policy(load_config().settings.response)

    def open(self, title: str, severity: Severity, first_seen: datetime) -> int:
        with session_scope(self.db) as s:
            change = OpenIncident(group_key=f"g:{title}", title=title, category=Category.EMERGENCY,
                                  severity=severity, sentiment=Sentiment.NEGATIVE, first_seen_at=first_seen,
                                  source="某市新闻网", source_url="https://news.example.cn/a/1.html", post_ids=())
            inc = self.engine.open_incident(s, change, self.policy, self.clock.now())
            s.flush()
            assert inc.id is not None
            return inc.id


@pytest.fixture
def cli_db(db: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv("YUQING_DATABASE_URL", db.url.render_as_string(hide_password=False))
    monkeypatch.delenv("YUQING_CONFIG", raising=False)
    return db


def yuqing(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = pipeline.main(["incident", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_puts_the_nearest_deadline_first_with_countdowns(cli_db: Engine,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    svc = Service(cli_db)
    later = svc.open("某市供水管道爆裂 部分小区停水", Severity.III, svc.t0)
    sooner = svc.open("某县林区发生森林火灾", Severity.II, svc.t0 - 2 * H)
    gone = svc.open("某地谣传大坝溃决", Severity.II, svc.t0)
    assert yuqing(capsys, "dismiss", str(gone), "谣言，已核实", "--by", "张三")[0] == 0
    code, out, _ = yuqing(capsys, "list")
    assert code == 0 and out.startswith("未结舆情事件 2 起")
    assert out.index(f"#{sooner}【II 重大】") < out.index(f"#{later}【III 较大】") and f"#{gone}【" not in out
    assert "距5小时权威信息发布时限还剩 2小时4" in out  # 2 h 40-50 min left, depending on the wall clock
    code, out, _ = yuqing(capsys, "list", "--json")
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [sooner, later]
    assert rows[0]["next_deadline"]["kind"] == "release_5h" and 9000 < rows[0]["next_deadline"]["remaining_s"] <= 10200
    _, out, _ = yuqing(capsys, "list", "--all", "--json")
    assert [r["id"] for r in json.loads(out)] == [sooner, later, gone]
    _, out, _ = yuqing(capsys, "list", "--all")
    assert out.startswith("全部舆情事件 3 起") and f"#{gone}【II 重大】某地谣传大坝溃决　已排除（误报）" in out


def test_actions_record_who_acted_and_refuse_bad_input(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    svc = Service(cli_db)
    inc_id = svc.open("某县林区发生森林火灾", Severity.IV, svc.t0)
    assert yuqing(capsys, "ack", str(inc_id), "--by", "张三")[:2] == (0, f"已确认事件 #{inc_id}\n")
    code, _, err = yuqing(capsys, "release", str(inc_id), "情况通报", "--by", "张三")
    assert code == 1 and "请提供发布内容的链接" in err
    assert yuqing(capsys, "ack", "999", "--by", "张三")[2] == "未找到舆情事件 #999\n"
    assert yuqing(capsys, "assess", str(inc_id), "--by", "张三")[0] == 1  # nothing to record
    code, out, _ = yuqing(capsys, "assess", str(inc_id), "--severity", "II", "--department", "防火处",
                          "--handling", "confusion", "--by", "李四")
    assert code == 0 and "已研判" in out
    with pytest.raises(SystemExit):  # argparse: a reason is required
        pipeline.main(["incident", "dismiss", str(inc_id), "--by", "张三"])
    capsys.readouterr()
    code, out, _ = yuqing(capsys, "show", str(inc_id), "--json")
    shown = json.loads(out)
    assert (shown["status"], shown["severity"], shown["department"], shown["acknowledged_by"]) == \
        ("assessed", "II", "防火处", "张三")
    assert shown["handling_advice"] == "主动发布权威信息，讲清事实"
    assert [d["kind"] for d in shown["deadlines"] if d["status"] == "pending"] == ["release_5h", "press_conference_24h"]
    assert [(e["kind"], e["actor"]) for e in shown["events"] if e["actor"] != "system"][:2] == \
        [("acknowledged", "张三"), ("severity_changed", "李四")]
    assert shown["deliveries"][0]["alert_key"] == f"incident:{inc_id}:opened"


def test_show_prints_details_timeline_and_deliveries(cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    svc = Service(cli_db)
    inc_id = svc.open("某县林区发生森林火灾 2名扑火队员失联", Severity.II, svc.t0)
    asyncio.run(svc.dispatcher.dispatch())
    assert yuqing(capsys, "release", str(inc_id), URL, "--by", "张三")[0] == 0
    code, out, _ = yuqing(capsys, "show", str(inc_id))
    assert code == 0 and out.startswith(f"#{inc_id} 某县林区发生森林火灾 2名扑火队员失联\n状态：已发布权威信息（张三 ")
    assert "等级：II 重大" in out and "涉事责任单位：未指定" in out and "分类处置：未研判" in out
    assert f"发布链接：{URL}" in out and "✅ 5小时权威信息发布：已于 " in out and "完成（张三）" in out
    assert "⏱ 距24小时新闻发布会时限还剩 23小时" in out
    timeline = out.split("时间线：")[1]
    assert "系统 发现并立案" in timeline and f"张三 发布权威信息：{URL}" in timeline
    assert f"console:stdout incident:{inc_id}:opened 已发送，尝试 1 次" in out.split("通知记录：")[1]
    assert yuqing(capsys, "show", "999")[:3] == (1, "", "未找到舆情事件 #999\n")


def test_a_running_scheduler_picks_up_what_the_cli_changed(cli_db: Engine,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    svc = Service(cli_db)
    inc_id = svc.open("某县林区发生森林火灾", Severity.II, svc.t0)
    pickup = ChangePickup(cli_db, svc.clock, svc.scheduler.schedule)

    async def running() -> None:
        svc.scheduler.start(paused=True)
        assert svc.scheduler.reconcile() == 2  # the 5 h and 24 h clocks have triggers in this "process"
        # another process (an officer at a terminal) records the release and the press conference
        assert yuqing(capsys, "release", str(inc_id), URL, "--by", "张三")[0] == 0
        assert yuqing(capsys, "press", str(inc_id), "--by", "张三")[0] == 0
        svc.clock.set(datetime.now(UTC))
        assert pickup.run_once() == 1  # the continuous update the press conference started
        await svc.scheduler.run_due(svc.clock, svc.t0 + 23 * H)
        svc.scheduler.shutdown()

    asyncio.run(running())
    with Session(cli_db) as s:
        clocks = {d.kind: d for d in s.exec(select(Deadline).order_by(col(Deadline.id))).all()}
        notices = s.exec(select(Delivery).where(col(Delivery.reason).in_([NotifyReason.REMINDER,
                                                                          NotifyReason.OVERDUE]))).all()
        inc = s.get(Incident, inc_id)
        assert inc is not None and inc.status == IncidentStatus.PRESS_HELD
        missed = s.exec(select(IncidentEvent).where(IncidentEvent.kind == "deadline_missed")).all()
    assert clocks["release_5h"].status == DeadlineStatus.MET and clocks["release_5h"].met_ref == URL
    assert clocks["press_conference_24h"].status == DeadlineStatus.MET
    assert missed == []
    # the stale triggers of the met clocks sent nothing; the update clock the CLI created did remind (at 22 h)
    assert [n.deadline_id for n in notices] == [clocks["update"].id]


def test_a_severity_raised_at_a_terminal_is_announced_once_by_the_running_service(
        cli_db: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    svc = Service(cli_db)
    inc_id = svc.open("某县林区发生森林火灾", Severity.III, svc.t0)
    pickup = ChangePickup(cli_db, svc.clock, svc.scheduler.schedule,
                          announce={EventKind.SEVERITY_CHANGED: svc.engine.severity_changed})

    async def running() -> None:
        svc.scheduler.start(paused=True)
        assert yuqing(capsys, "assess", str(inc_id), "--severity", "II", "--by", "张三")[0] == 0
        svc.clock.set(datetime.now(UTC))
        assert pickup.run_once() == 2  # the new 5 h and 24 h clocks
        pickup.run_once()  # a second look announces nothing again
        await svc.dispatcher.dispatch()
        svc.scheduler.shutdown()

    asyncio.run(running())
    out = svc.out.getvalue()
    assert out.count("【等级调整】【重大舆情】某县林区发生森林火灾") == 1
    assert "等级由 III 较大 调整为 II 重大（张三：研判）" in out
