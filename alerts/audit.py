"""The audit job and the daily heartbeat: how an administrator notices a dead scheduler.

`Auditor.audit()` (every `ops.audit_every`) looks for pending deadlines whose next notice should have fired
more than `ops.audit_grace` ago, re-creates their triggers due now (so the scheduler's own firing path sends
them, fenced by the deadline token as always) and sends one 【系统告警】 to the admin receivers listing
them. Its alert key is derived from the (deadline, notice stage) pairs found, so finding the same stuck
notices again — after a restart, or because firing failed — never repeats the message.

`Auditor.heartbeat()` sends one 【系统心跳】 per local day at `ops.heartbeat_at` with a short summary (open
incidents, pending deadlines, the next one due, deliveries failed in the last day). Its key is the local
date, and it is also tried when the service becomes active, so a restart neither repeats nor skips a day's
heartbeat (one that was due while the service was down is sent late, once).
"""

from __future__ import annotations

import hashlib
import html
import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import deadlines as dl
from alerts.clock import Clock
from alerts.deadlines import Scheduled
from alerts.outbox import Receiver, enqueue
from alerts.render import Message
from alerts.scheduler import DeadlineScheduler
from models.db import session_scope
from models.enums import DeadlineStatus, DeliveryOutcome, IncidentStatus, NotifyReason
from models.tables import Deadline, Delivery, Incident

log = logging.getLogger(__name__)
DAY = timedelta(days=1)
LISTED = 20  # incidents named in one audit alert; the rest are counted
OPEN_STATUSES = [s.value for s in IncidentStatus if s.is_open]


@dataclass(frozen=True)
class LateNotice:
    """A pending deadline whose next notice is overdue: it should have fired at `at`."""

    deadline_id: int
    token: int
    stage: int
    at: datetime
    incident_id: int
    title: str
    label: str


@dataclass(frozen=True)
class NextDue:
    incident_id: int
    title: str
    label: str
    due_at: datetime


@dataclass(frozen=True)
class OpsSummary:
    open_incidents: int
    pending_deadlines: int
    next_due: NextDue | None
    deliveries_pending: int
    deliveries_failed_last_day: int
    last_heartbeat_at: datetime | None


def find_late(s: Session, now: datetime, grace: timedelta) -> list[LateNotice]:
    """Pending deadlines whose next notice time passed more than `grace` ago, oldest first."""
    rows = s.exec(
        select(Deadline, Incident).join(Incident, col(Incident.id) == col(Deadline.incident_id))
        .where(Deadline.status == DeadlineStatus.PENDING)
        .where(col(Deadline.next_notice_at) < now - grace)
        .order_by(col(Deadline.next_notice_at), col(Deadline.id))
    ).all()
    return [LateNotice(d.id, d.token, d.notice_stage, d.next_notice_at, inc.id, inc.title, _label(inc.policy, d.kind))
            for d, inc in rows if d.id is not None and inc.id is not None and d.next_notice_at is not None]


def _label(policy: dict[str, Any], kind: str) -> str:
    try:
        return dl.spec(policy, kind).label
    except KeyError:
        return kind


def audit_key(late: list[LateNotice]) -> str:
    """The same stuck notices give the same key (no repeated alert); a new stuck notice gives a new one."""
    pairs = ",".join(f"{n.deadline_id}:{n.stage}" for n in sorted(late, key=lambda n: (n.deadline_id, n.stage)))
    return f"audit:{hashlib.sha256(pairs.encode()).hexdigest()[:24]}"


def render_audit(late: list[LateNotice], *, now: datetime, tz: tzinfo) -> Message:
    head = f"【系统告警】发现 {len(late)} 个时限提醒未按时触发，已补发"
    lines = [f"检查时间：{_local(now, tz)}。调度器可能曾停止或出错，请检查服务日志。"]
    for n in late[:LISTED]:
        lines.append(f"#{n.incident_id} {_short(n.title)}：{n.label}提醒应于 {_local(n.at, tz)} 发出")
    if len(late) > LISTED:
        lines.append(f"另有 {len(late) - LISTED} 个未列出")
    return _message(head, lines)


def ops_summary(s: Session, now: datetime) -> OpsSummary:
    """What the heartbeat and `yuqing status` report."""
    open_n = s.exec(select(func.count()).select_from(Incident)
                    .where(col(Incident.status).in_(OPEN_STATUSES))).one()
    pending = s.exec(select(func.count()).select_from(Deadline).where(Deadline.status == DeadlineStatus.PENDING)).one()
    first = s.exec(
        select(Deadline, Incident).join(Incident, col(Incident.id) == col(Deadline.incident_id))
        .where(Deadline.status == DeadlineStatus.PENDING).order_by(col(Deadline.due_at), col(Deadline.id)).limit(1)
    ).first()
    nxt = None
    if first is not None and first[1].id is not None:
        d, inc = first
        nxt = NextDue(first[1].id, inc.title, _label(inc.policy, d.kind), d.due_at)
    waiting = s.exec(select(func.count()).select_from(Delivery).where(
        col(Delivery.outcome).in_([DeliveryOutcome.PENDING.value, DeliveryOutcome.SENDING.value]))).one()
    failed = s.exec(select(func.count()).select_from(Delivery).where(
        Delivery.outcome == DeliveryOutcome.FAILED, col(Delivery.created_at) >= now - DAY)).one()
    beat = s.exec(select(func.max(Delivery.created_at)).where(Delivery.reason == NotifyReason.HEARTBEAT.value)).one()
    return OpsSummary(open_n, pending, nxt, waiting, failed, beat)


def render_heartbeat(summary: OpsSummary, *, now: datetime, tz: tzinfo, holder: str) -> Message:
    head = "【系统心跳】舆情监测服务运行正常"
    lines = [
        f"时间：{_local(now, tz)}　调度实例：{holder}",
        f"未结事件：{summary.open_incidents} 起　待到期时限：{summary.pending_deadlines} 个",
    ]
    if summary.next_due is not None:
        n = summary.next_due
        lines.append(f"最近到期：#{n.incident_id} {_short(n.title)} {n.label}（{_local(n.due_at, tz)}）")
    lines.append(f"近24小时投递失败：{summary.deliveries_failed_last_day} 条　待发送：{summary.deliveries_pending} 条")
    return _message(head, lines)


def heartbeat_due(now: datetime, at: tuple[int, int], tz: tzinfo) -> str | None:
    """Today's heartbeat key once today's heartbeat time has come (local time), else None."""
    local = now.astimezone(tz)
    if local.time() < time(*at):
        return None
    return f"heartbeat:{local.date().isoformat()}"


def _local(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%m-%d %H:%M")


def _short(title: str, limit: int = 40) -> str:
    flat = " ".join(title.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _message(head: str, lines: list[str]) -> Message:
    return Message(text="\n".join([head, *lines]),
                   html="\n".join([f"<b>{html.escape(head)}</b>", *(html.escape(x) for x in lines)]))


class Auditor:
    """The periodic audit and the daily heartbeat of the active scheduler (see the module docstring)."""

    def __init__(self, db: Engine, scheduler: DeadlineScheduler, clock: Clock, *, admin: list[Receiver], tz: tzinfo,
                 grace: timedelta, heartbeat_at: tuple[int, int] | None, holder: str) -> None:
        self.db, self.scheduler, self.clock = db, scheduler, clock
        self.admin, self.tz, self.grace = admin, tz, grace
        self.heartbeat_at, self.holder = heartbeat_at, holder

    async def audit(self) -> list[LateNotice]:
        """Re-fire stuck notices through the scheduler and tell the admins once; returns what was found."""
        now = self.clock.now()
        with session_scope(self.db) as s:
            late = find_late(s, now, self.grace)
            if late:
                enqueue(s, alert_key=audit_key(late), reason=NotifyReason.AUDIT,
                        message=render_audit(late, now=now, tz=self.tz), receivers=self.admin, now=now)
        if not late:
            return []
        log.error("audit: %d deadline notice(s) did not fire on time (oldest due %s); re-firing them now",
                  len(late), late[0].at.isoformat(timespec="seconds"))
        for n in late:
            self.scheduler.schedule(Scheduled(n.deadline_id, n.token, now))
        await self.scheduler.dispatcher.dispatch()
        return late

    async def heartbeat(self) -> bool:
        """Queue today's heartbeat once its time has come; True when one was queued now."""
        if self.heartbeat_at is None:
            return False
        now = self.clock.now()
        key = heartbeat_due(now, self.heartbeat_at, self.tz)
        if key is None:
            return False
        with session_scope(self.db) as s:
            if s.exec(select(Delivery.id).where(Delivery.alert_key == key)).first() is not None:
                return False
            message = render_heartbeat(ops_summary(s, now), now=now, tz=self.tz, holder=self.holder)
            added = enqueue(s, alert_key=key, reason=NotifyReason.HEARTBEAT, message=message, receivers=self.admin,
                            now=now)
        log.info("heartbeat %s queued for %d admin receiver(s)", key, added)
        await self.scheduler.dispatcher.dispatch()
        return added > 0

    async def install(self, every: timedelta) -> None:
        """Add the audit and heartbeat jobs to the (running) scheduler; send today's heartbeat if it is due."""
        aps = self.scheduler.aps
        aps.add_job(self.audit, "interval", seconds=every.total_seconds(), id="audit", replace_existing=True,
                    max_instances=1)
        if self.heartbeat_at is not None:
            hour, minute = self.heartbeat_at
            aps.add_job(self.heartbeat, "cron", hour=hour, minute=minute, timezone=self.tz, id="heartbeat",
                        replace_existing=True, max_instances=1)
            await self.heartbeat()
