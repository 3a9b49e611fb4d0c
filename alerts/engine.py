"""Alert engine: turns incident and deadline state into notices in the outbox.

`open_incident` runs inside the caller's transaction (the pipeline's batch). `fire`, `escalate` and
`reconcile` own their transactions: they are called by the scheduler, reload the deadline (or incident), lock
it, re-check its status and fencing token, and only then act — so a stale or repeated job is a no-op.
With a duty roster (`router`), notices also reach the people on duty and unacknowledged incidents escalate
(see alerts/escalation.py); without one, notices go to the configured channels only.
"""

from __future__ import annotations

import html
import logging
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts import clocks
from alerts import deadlines as dl
from alerts import escalation as esc
from alerts.deadlines import Scheduled as Scheduled
from alerts.escalation import EscalationDue, Router, Trigger, Wake
from alerts.events import record
from alerts.heat import view_fields
from alerts.incidents import OpenIncident
from alerts.outbox import Receiver, enqueue, record_superseded
from alerts.render import (
    DRILL_MARK,
    DeadlineView,
    EscalationView,
    IncidentView,
    Message,
    SourceHealthView,
    render,
    render_health,
)
from alerts.roster import Person
from models.db import session_scope
from models.enums import (
    SUGGESTED_HANDLING,
    Category,
    DeadlineStatus,
    DeliveryOutcome,
    EventKind,
    HandlingType,
    IncidentStatus,
    NotifyReason,
    Sentiment,
    Severity,
)
from models.tables import Deadline, Delivery, Incident, IncidentEvent, Post

log = logging.getLogger(__name__)


class AlertEngine:
    def __init__(self, db: Engine, receivers: list[Receiver], tz: tzinfo,
                 admin: list[Receiver] | None = None, router: Router | None = None) -> None:
        self.db = db
        self.receivers = receivers
        self.admin = receivers if admin is None else admin
        self.tz = tz
        self.router = router
        self._follow_ups: list[Trigger] = []

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
            drill=bool(policy.get("drill")), features=dict(change.features),
            last_post_at=change.last_post_at or change.first_seen_at, heat=change.heat,
            heat_trend=change.heat_trend, source_count=change.source_count,
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
        record(session, inc.id, now, EventKind.OPENED,
               {"severity": inc.severity, "category": inc.category, "post_count": inc.post_count})
        rows = [clocks.add(session, inc, planned, now) for planned in dl.plan(policy, change.severity,
                                                                              change.first_seen_at)]
        session.flush()
        message = render(NotifyReason.OPENED, incident_view(inc), [deadline_view(inc, d) for d in rows],
                         now=now, tz=self.tz)
        key = f"incident:{inc.id}:opened"
        receivers, hold = self.receivers, None
        if self.router is not None:
            hold = self.router.quiet_until(inc, now, dl.scale(policy))
            duty = self.router.first_rung(self.router.roster(session, now), inc, now)
            receivers = self.receivers + self.router.receivers(duty)
            record(session, inc.id, now, EventKind.NOTIFIED, _notified(key, 0, duty, hold))
            if self.router.escalates:
                inc.next_escalation_at = (hold or now) + self.router.wait_after(False, dl.scale(policy))
        enqueue(session, alert_key=key, reason=NotifyReason.OPENED, message=message, receivers=receivers, now=now,
                incident_id=inc.id, not_before=hold)
        return inc

    def triggers(self, session: Session, inc: Incident, now: datetime) -> list[Trigger]:
        """Escalation and quiet-hours triggers of a just-opened incident, to schedule after commit."""
        out: list[Trigger] = []
        if inc.id is not None and inc.next_escalation_at is not None:
            out.append(EscalationDue(inc.id, inc.token, inc.next_escalation_at))
        held = session.exec(select(Delivery.next_attempt_at).where(Delivery.incident_id == inc.id)
                            .where(Delivery.outcome == DeliveryOutcome.PENDING)
                            .where(col(Delivery.next_attempt_at) > now)).all()
        return out + [Wake(at) for at in sorted({at for at in held if at is not None})]

    def fire(self, deadline_id: int, token: int | None, now: datetime) -> list[Trigger]:
        """Dispatch whatever notice of this deadline is due; return the triggers to make next: this deadline's
        next notice and, when it was just missed, the continuous update that follows (empty when done)."""
        self._follow_ups = []
        following = self._fire_one(deadline_id, token, now)
        out: list[Trigger] = [following] if following is not None else []
        return out + self._follow_ups

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
            record(s, inc.id, now, EventKind.DEADLINE_MISSED, {"kind": d.kind, "due_at": d.due_at.isoformat()})
            follow = clocks.follow_up(s, inc, d, now)
            s.flush()
            self._follow_ups += clocks.triggers(follow)
        all_rows = s.exec(select(Deadline).where(Deadline.incident_id == inc.id).order_by(col(Deadline.due_at))).all()
        views = [deadline_view(inc, row) for row in all_rows]
        subject = next(v for v, row in zip(views, all_rows, strict=True) if row.id == d.id)
        message = render(notice.reason, incident_view(inc), views, now=now, tz=self.tz, subject=subject)
        key = _notice_key(d, notice)
        receivers, hold, detail = self.receivers, None, {"alert_key": key}
        if self.router is not None:
            receivers, hold, detail = self._routed(s, inc, d, notice, now, key)
        enqueue(s, alert_key=key, reason=notice.reason, message=message, receivers=receivers, now=now,
                incident_id=inc.id, deadline_id=d.id, not_before=hold)
        record(s, inc.id, now, EventKind.NOTIFIED, detail)

    def _routed(self, s: Session, inc: Incident, d: Deadline, notice: dl.Notice, now: datetime,
                key: str) -> tuple[list[Receiver], datetime | None, dict[str, Any]]:
        """Reminders: the groups, the duty officers and the department; overdue: the leaders too."""
        assert self.router is not None
        roster = self.router.roster(s, now)
        people = self.router.duty_and_department(roster, inc, now)
        detail: dict[str, Any] = {"alert_key": key}
        if notice.reason is NotifyReason.OVERDUE:
            leaders = self.router.leaders(roster, inc, now)
            people = list(dict.fromkeys(people + leaders))
            detail["leaders"] = [p.name for p in leaders]
            if leaders:
                d.missed_reason = f"{d.missed_reason}；已报 {'、'.join(p.name for p in leaders)}"
        detail["people"] = [p.name for p in people]
        hold = self.router.quiet_until(inc, now, dl.scale(inc.policy))
        if hold is not None:
            detail["held_until"] = hold.isoformat()
            self._follow_ups.append(Wake(hold))
        return self.receivers + self.router.receivers(people), hold, detail

    def reconcile(self, now: datetime | None = None, until: datetime | None = None) -> list[Trigger]:
        """Triggers for every pending deadline (or only those whose next notice is due by `until`) and every
        escalation (overdue ones included: the scheduler fires them at once), and a wake-up for each time notices
        are held back to (quiet hours)."""
        query = (select(Deadline.id, Deadline.token, Deadline.next_notice_at)
                 .where(Deadline.status == DeadlineStatus.PENDING)
                 .where(col(Deadline.next_notice_at).is_not(None)))
        if until is not None:
            query = query.where(col(Deadline.next_notice_at) <= until)
        with session_scope(self.db) as s:
            rows = s.exec(query).all()
            ups = s.exec(select(Incident.id, Incident.token, Incident.next_escalation_at)
                         .where(col(Incident.next_escalation_at).is_not(None))
                         .where(col(Incident.acknowledged_at).is_(None))).all()
            held = s.exec(select(Delivery.next_attempt_at).distinct()
                          .where(Delivery.outcome == DeliveryOutcome.PENDING, Delivery.attempts == 0)
                          .where(col(Delivery.next_attempt_at).is_not(None))).all()
        out: list[Trigger] = [Scheduled(i, t, at) for i, t, at in rows if i is not None and at is not None]
        out += [EscalationDue(i, t, at) for i, t, at in ups if i is not None and at is not None]
        return out + [Wake(at) for at in held if at is not None and (now is None or at > now)]

    def escalate(self, incident_id: int, token: int, now: datetime) -> list[Trigger]:
        """Take the next escalation step if it is still due; return the trigger of the one after. A stale job
        (the incident changed since it was made) sends nothing and re-arms from the database."""
        if self.router is None or not self.router.escalates:
            return []
        with session_scope(self.db) as s:
            inc = s.get(Incident, incident_id, with_for_update=True)
            if inc is None or inc.id is None or inc.acknowledged_at is not None or inc.next_escalation_at is None:
                return []
            if IncidentStatus(inc.status) is not IncidentStatus.NEW:  # closed, or someone already acted on it
                inc.next_escalation_at = None
                return []
            if inc.token != token or inc.next_escalation_at > now:
                return [EscalationDue(inc.id, inc.token, inc.next_escalation_at)]
            hold = self.router.quiet_until(inc, now, dl.scale(inc.policy))
            if hold is not None:
                inc.next_escalation_at = hold
                return [EscalationDue(inc.id, inc.token, hold)]
            self._step(s, inc, now)
            assert inc.next_escalation_at is not None
            return [EscalationDue(inc.id, inc.token, inc.next_escalation_at)]

    def severity_changed(self, s: Session, incident_id: int, now: datetime) -> list[Trigger]:
        """After `actions.change_severity` (same transaction): tell the groups and the people on duty what
        changed and which clocks now run (a raised incident may be overdue already: its trigger fires at once).
        An incident no longer IV loses its quiet-hours hold — held notices go out now and a held escalation
        step comes due one wait from now. Returns the triggers to schedule after commit. Does not commit."""
        inc = s.get(Incident, incident_id)
        if inc is None or inc.id is None:
            return []
        self._severity_notice(s, inc, now)
        if self.router is None or Severity(inc.severity) is Severity.IV:
            return []
        held = s.exec(select(Delivery).where(Delivery.incident_id == inc.id, Delivery.attempts == 0,
                                             Delivery.outcome == DeliveryOutcome.PENDING)
                      .where(col(Delivery.next_attempt_at) > now)).all()
        for row in held:
            row.next_attempt_at = None
        out: list[Trigger] = [Wake(now)] if held else []
        soon = now + self.router.wait_after(False, dl.scale(inc.policy))
        if inc.next_escalation_at is not None and inc.next_escalation_at > soon and inc.acknowledged_at is None:
            inc.next_escalation_at = soon
            out.append(EscalationDue(inc.id, inc.token, soon))
        return out

    def acknowledged(self, s: Session, incident_id: int, now: datetime) -> list[Trigger]:
        """Someone acknowledged an incident whose alert had climbed the chain: tell the people it reached that
        the escalation stopped, and who acted (once per incident). Does not commit; returns no triggers."""
        inc = s.get(Incident, incident_id)
        if self.router is None or inc is None or inc.id is None or inc.acknowledged_at is None:
            return []
        names = s.exec(select(Delivery.person).where(Delivery.incident_id == inc.id,
                                                     Delivery.reason == NotifyReason.ESCALATION.value)).all()
        reached = dict.fromkeys(n for row in names if row for n in row.split("、"))
        people = [self.router.people[n] for n in reached if n in self.router.people]
        if not people:
            return []
        when = inc.acknowledged_at.astimezone(self.tz).strftime("%H:%M")
        head = f"{DRILL_MARK if inc.drill else ''}【已确认】{' '.join(inc.title.split())[:120]}"
        body = f"已由 {inc.acknowledged_by} 于 {when} 确认，逐级上报已停止。\n事件编号：#{inc.id}"
        message = Message(text=f"{head}\n{body}",
                          html=f"<b>{html.escape(head)}</b>\n{html.escape(body)}")
        enqueue(s, alert_key=f"acknowledged:{inc.id}", reason=NotifyReason.UPDATE, message=message,
                receivers=self.router.receivers(people), now=now, incident_id=inc.id)
        return []

    def _severity_notice(self, s: Session, inc: Incident, now: datetime) -> None:
        """【等级调整】: the latest severity change of `inc` (its SEVERITY_CHANGED event), once per change."""
        assert inc.id is not None
        event = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id,
                                                   IncidentEvent.kind == EventKind.SEVERITY_CHANGED.value)
                       .order_by(col(IncidentEvent.id).desc())).first()
        if event is None or event.id is None:
            return
        old, new = Severity(event.detail["from"]), Severity(event.detail["to"])
        why = event.detail.get("reason") or ""
        change = (f"等级由 {old.value} {old.label} 调整为 {new.value} {new.label}（{event.actor}：{why}），"
                  "时限自首次发现起重新计算")
        rows = s.exec(select(Deadline).where(Deadline.incident_id == inc.id).order_by(col(Deadline.due_at))).all()
        message = render(NotifyReason.UPDATE, incident_view(inc), [deadline_view(inc, d) for d in rows],
                         now=now, tz=self.tz, change=change)
        receivers = self.receivers
        if self.router is not None:
            roster = self.router.roster(s, now)
            receivers = receivers + self.router.receivers(self.router.duty_and_department(roster, inc, now))
        enqueue(s, alert_key=f"severity:{inc.id}:{event.id}", reason=NotifyReason.UPDATE, message=message,
                receivers=receivers, now=now, incident_id=inc.id)

    def _step(self, s: Session, inc: Incident, now: datetime) -> None:
        assert self.router is not None and inc.id is not None
        scale = dl.scale(inc.policy)
        chain = self.router.settings.chain_for(inc.department)
        step = self.router.next_step(s, inc, now)
        if step is None:
            log.warning("incident %s: nobody on the escalation chain is reachable; trying again later", inc.id)
            inc.next_escalation_at = now + self.router.wait_after(True, scale)
            return
        before = esc.previous(s, inc, chain)
        view = EscalationView(before.role.label, before.names, (now - before.at) * scale, step.role.label,
                              tuple(p.name for p in step.people), step.repeat)
        rows = s.exec(select(Deadline).where(Deadline.incident_id == inc.id).order_by(col(Deadline.due_at))).all()
        message = render(NotifyReason.ESCALATION, incident_view(inc), [deadline_view(inc, d) for d in rows],
                         now=now, tz=self.tz, escalation=view)
        key = f"escalation:{inc.id}:{step.rung}:{step.repeat}"
        console = [r for r in self.receivers if r.channel == "console"]
        enqueue(s, alert_key=key, reason=NotifyReason.ESCALATION, message=message, now=now, incident_id=inc.id,
                receivers=console + self.router.receivers(step.people))
        record(s, inc.id, now, EventKind.ESCALATED, {
            "alert_key": key, "rung": step.rung, "role": step.role.value, "people": [p.name for p in step.people],
            "repeat": step.repeat, "unacked": list(before.names), "waited_s": view.waited.total_seconds()})
        inc.escalation_level = step.rung
        inc.token += 1
        inc.next_escalation_at = now + self.router.wait_after(step.top, scale)


def _notified(key: str, rung: int, people: list[Person], hold: datetime | None) -> dict[str, Any]:
    detail: dict[str, Any] = {"alert_key": key, "rung": rung, "people": [p.name for p in people]}
    if hold is not None:
        detail["held_until"] = hold.isoformat()
    return detail


def _notice_key(d: Deadline, notice: dl.Notice) -> str:
    return f"deadline:{d.id}:{notice.reason.value}:{notice.index}"


def incident_view(inc: Incident) -> IncidentView:
    assert inc.id is not None
    return IncidentView(
        id=inc.id, title=inc.title, category=Category(inc.category), severity=Severity(inc.severity),
        sentiment=Sentiment(inc.sentiment), first_seen_at=inc.first_seen_at, source=inc.source,
        source_url=inc.source_url, post_count=inc.post_count, drill=inc.drill, time_scale=dl.scale(inc.policy),
        **view_fields(heat=inc.heat, trend=inc.heat_trend, source_count=inc.source_count, features=inc.features),
        handling=HandlingType(inc.handling_type) if inc.handling_type
        else SUGGESTED_HANDLING.get(Category(inc.category)),
        handling_assessed=bool(inc.handling_type),
    )


def deadline_view(inc: Incident, d: Deadline) -> DeadlineView:
    sp = dl.spec(inc.policy, d.kind)
    return DeadlineView(kind=d.kind, label=sp.label, within_s=sp.within_s, start_at=d.start_at, due_at=d.due_at,
                        pending=d.status == DeadlineStatus.PENDING)
