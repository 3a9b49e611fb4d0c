"""Alert engine: turns incident and deadline state into notices in the outbox.

`open_incident` runs inside the caller's transaction (the pipeline's batch). `fire` and `reconcile` own
their transactions: they are called by the scheduler, reload the deadline, lock it, re-check its status and
fencing token, and only then act — so a stale or repeated job is a no-op.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import clocks
from alerts import deadlines as dl
from alerts.deadlines import Scheduled as Scheduled
from alerts.incidents import OpenIncident
from alerts.outbox import Receiver, enqueue, record_superseded
from alerts.render import DeadlineView, IncidentView, SourceHealthView, render, render_health
from models.db import session_scope
from models.enums import (
    Category,
    DeadlineStatus,
    EventKind,
    IncidentStatus,
    NotifyReason,
    Sentiment,
    Severity,
)
from models.tables import Deadline, Incident, IncidentEvent, Post

SYSTEM = "system"


class AlertEngine:
    def __init__(self, db: Engine, receivers: list[Receiver], tz: tzinfo,
                 admin: list[Receiver] | None = None) -> None:
        self.db = db
        self.receivers = receivers
        self.admin = receivers if admin is None else admin
        self.tz = tz
        self._follow_ups: list[Scheduled] = []

    def source_health(self, session: Session, view: SourceHealthView, since: datetime, now: datetime) -> None:
        """Queue a health alert for a source that changed state. Does not commit."""
        message = render_health(view, now=now, tz=self.tz)
        enqueue(session, alert_key=f"health:{view.source}:{view.state}:{since.isoformat()}",
                reason=NotifyReason.HEALTH, message=message, receivers=self.admin, now=now)

    def open_incident(self, session: Session, change: OpenIncident, policy: dict[str, Any], now: datetime) -> Incident:
        """Create the incident, its deadlines and its opening notice. Does not commit."""
        inc = Incident(
            group_key=change.group_key, title=change.title, category=change.category.value,
            severity=change.severity.value, sentiment=change.sentiment.value, status=IncidentStatus.NEW,
            first_seen_at=change.first_seen_at, opened_at=now, updated_at=now, source=change.source,
            source_url=change.source_url, post_count=len(change.post_ids), policy=policy,
            drill=bool(policy.get("drill")),
        )
        session.add(inc)
        session.flush()
        assert inc.id is not None
        copies = 0
        for post_id in change.post_ids:
            post = session.get(Post, post_id)
            if post is not None:
                post.incident_id = inc.id
                copies += post.spread_count  # copies seen before the incident existed count too
        inc.post_count = max(copies, 1)
        _event(session, inc.id, now, EventKind.OPENED,
               {"severity": inc.severity, "category": inc.category, "post_count": inc.post_count})
        rows = [clocks.add(session, inc, planned, now) for planned in dl.plan(policy, change.severity,
                                                                              change.first_seen_at)]
        session.flush()
        message = render(NotifyReason.OPENED, incident_view(inc), [deadline_view(inc, d) for d in rows],
                         now=now, tz=self.tz)
        enqueue(session, alert_key=f"incident:{inc.id}:opened", reason=NotifyReason.OPENED, message=message,
                receivers=self.receivers, now=now, incident_id=inc.id)
        return inc

    def fire(self, deadline_id: int, token: int | None, now: datetime) -> list[Scheduled]:
        """Dispatch whatever notice of this deadline is due; return the triggers to make next: this deadline's
        next notice and, when it was just missed, the continuous update that follows (empty when done)."""
        self._follow_ups = []
        following = self._fire_one(deadline_id, token, now)
        return ([following] if following is not None else []) + self._follow_ups

    def _fire_one(self, deadline_id: int, token: int | None, now: datetime) -> Scheduled | None:
        with session_scope(self.db) as s:
            d = s.get(Deadline, deadline_id, with_for_update=True)
            if d is None or d.status != DeadlineStatus.PENDING or (token is not None and d.token != token):
                return None
            inc = s.get(Incident, d.incident_id)
            if inc is None:
                return None
            send, superseded, upcoming = dl.due_now(dl.notices(inc.policy, d.kind, d.due_at), d.notice_stage, now)
            for n in superseded:
                record_superseded(s, alert_key=_notice_key(d, n), reason=n.reason, now=now,
                                  incident_id=inc.id, deadline_id=d.id)
            if send is not None:
                self._send_notice(s, inc, d, send, now)
            d.next_notice_at = upcoming.at if upcoming is not None and d.status == DeadlineStatus.PENDING else None
            if d.next_notice_at is None or d.id is None:
                return None
            return Scheduled(d.id, d.token, d.next_notice_at)

    def _send_notice(self, s: Session, inc: Incident, d: Deadline, notice: dl.Notice, now: datetime) -> None:
        assert inc.id is not None and d.id is not None
        d.notice_stage = notice.index + 1
        if notice.reason is NotifyReason.OVERDUE:
            d.status = DeadlineStatus.MISSED
            d.missed_reason = d.missed_reason or "时限内未标记完成"
            d.token += 1
            _event(s, inc.id, now, EventKind.DEADLINE_MISSED, {"kind": d.kind, "due_at": d.due_at.isoformat()})
            follow = clocks.follow_up(s, inc, d, now)
            s.flush()
            self._follow_ups += clocks.triggers(follow)
        all_rows = s.exec(select(Deadline).where(Deadline.incident_id == inc.id).order_by(col(Deadline.due_at))).all()
        views = [deadline_view(inc, row) for row in all_rows]
        subject = next(v for v, row in zip(views, all_rows, strict=True) if row.id == d.id)
        message = render(notice.reason, incident_view(inc), views, now=now, tz=self.tz, subject=subject)
        key = _notice_key(d, notice)
        enqueue(s, alert_key=key, reason=notice.reason, message=message, receivers=self.receivers, now=now,
                incident_id=inc.id, deadline_id=d.id)
        _event(s, inc.id, now, EventKind.NOTIFIED, {"alert_key": key})

    def reconcile(self, until: datetime | None = None) -> list[Scheduled]:
        """Triggers for every pending deadline (overdue ones included: the scheduler fires them at once), or only
        for those whose next notice is due by `until`."""
        query = (select(Deadline.id, Deadline.token, Deadline.next_notice_at)
                 .where(Deadline.status == DeadlineStatus.PENDING)
                 .where(col(Deadline.next_notice_at).is_not(None)))
        if until is not None:
            query = query.where(col(Deadline.next_notice_at) <= until)
        with session_scope(self.db) as s:
            rows = s.exec(query).all()
        return [Scheduled(i, t, at) for i, t, at in rows if i is not None and at is not None]


def _notice_key(d: Deadline, notice: dl.Notice) -> str:
    return f"deadline:{d.id}:{notice.reason.value}:{notice.index}"


def _event(s: Session, incident_id: int, now: datetime, kind: EventKind, detail: dict[str, Any]) -> None:
    s.add(IncidentEvent(incident_id=incident_id, at=now, actor=SYSTEM, kind=kind.value, detail=detail))


def incident_view(inc: Incident) -> IncidentView:
    assert inc.id is not None
    return IncidentView(
        id=inc.id, title=inc.title, category=Category(inc.category), severity=Severity(inc.severity),
        sentiment=Sentiment(inc.sentiment), first_seen_at=inc.first_seen_at, source=inc.source,
        source_url=inc.source_url, post_count=inc.post_count, drill=inc.drill, time_scale=dl.scale(inc.policy),
    )


def deadline_view(inc: Incident, d: Deadline) -> DeadlineView:
    sp = dl.spec(inc.policy, d.kind)
    return DeadlineView(kind=d.kind, label=sp.label, within_s=sp.within_s, start_at=d.start_at, due_at=d.due_at,
                        pending=d.status == DeadlineStatus.PENDING)
