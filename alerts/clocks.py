"""Deadline rows of one incident: create, meet, cancel, re-plan, follow up. Each runs in the caller's
transaction (never commits) and returns the rows whose scheduler trigger must be (re)made after commit.

A deadline is met by the matching action only (`met_by` in the frozen policy), never by silence. Raising the
severity re-plans from the incident's original start, so a new clock may already be overdue: its trigger is
then due at once and the scheduler sends the overdue notice immediately.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlmodel import Session, col, select

from alerts import deadlines as dl
from alerts.deadlines import Scheduled
from alerts.events import SYSTEM, record
from config.schema import UPDATE_KIND
from models.enums import DeadlineStatus, EventKind, IncidentStatus, Severity
from models.tables import Deadline, Incident


def rows(s: Session, incident_id: int) -> list[Deadline]:
    return list(s.exec(select(Deadline).where(Deadline.incident_id == incident_id)
                       .order_by(col(Deadline.due_at), col(Deadline.id))).all())


def triggers(items: list[Deadline]) -> list[Scheduled]:
    """Scheduler triggers for the pending rows among `items` (call after flush, so ids exist)."""
    return [Scheduled(d.id, d.token, d.next_notice_at) for d in items
            if d.id is not None and d.next_notice_at is not None and d.status == DeadlineStatus.PENDING]


def add(s: Session, inc: Incident, planned: dl.PlannedDeadline, now: datetime, *, actor: str = SYSTEM) -> Deadline:
    """Create a pending deadline with its first notice time. Does not commit."""
    assert inc.id is not None
    first = dl.notices(inc.policy, planned.kind, planned.due_at)[0]
    row = Deadline(incident_id=inc.id, kind=planned.kind, seq=planned.seq, start_at=planned.start_at,
                   due_at=planned.due_at, next_notice_at=first.at)
    s.add(row)
    record(s, inc.id, now, EventKind.DEADLINE_PLANNED,
           {"kind": planned.kind, "seq": planned.seq, "due_at": planned.due_at.isoformat()}, actor=actor)
    return row


def meet(s: Session, inc: Incident, action: str, now: datetime, *, actor: str, ref: str | None) -> list[Deadline]:
    """Mark every pending deadline that `action` meets as met (a missed one keeps MISSED but records the late
    action). Continuous updates follow a met deadline that starts them. Returns new rows to schedule."""
    assert inc.id is not None
    new_rows: list[Deadline] = []
    for d in rows(s, inc.id):
        if dl.met_by(inc.policy, d.kind) != action:
            continue
        if d.status == DeadlineStatus.PENDING:
            d.status, d.met_at, d.met_by, d.met_ref = DeadlineStatus.MET, now, actor, ref
            d.token += 1
            d.next_notice_at = None
            record(s, inc.id, now, EventKind.DEADLINE_MET,
                   {"kind": d.kind, "seq": d.seq, "due_at": d.due_at.isoformat(), "on_time": now <= d.due_at},
                   actor=actor)
            new_rows += follow_up(s, inc, d, now)
        elif d.status == DeadlineStatus.MISSED and d.met_at is None:
            d.met_at, d.met_by, d.met_ref = now, actor, ref  # late: stays missed, the action is on record
    return new_rows


def follow_up(s: Session, inc: Incident, ended: Deadline, now: datetime) -> list[Deadline]:
    """The next continuous-update deadline after `ended` was met or missed (none when the policy gives none).
    A met deadline starts the interval at the action; a missed one at its due time."""
    if not IncidentStatus(inc.status).is_open:
        return []
    start = ended.met_at if ended.status == DeadlineStatus.MET and ended.met_at else ended.due_at
    seq = ended.seq + 1 if ended.kind == UPDATE_KIND else 1
    planned = dl.next_update(inc.policy, Severity(inc.severity), ended.kind, seq, start)
    if planned is None:
        return []
    exists = s.exec(select(Deadline.id).where(Deadline.incident_id == inc.id, Deadline.kind == UPDATE_KIND,
                                              Deadline.seq == seq)).first()
    if exists is not None:
        return []
    return [add(s, inc, planned, now)]


def cancel_pending(s: Session, inc: Incident, now: datetime, *, actor: str, reason: str,
                   kinds: set[str] | None = None) -> int:
    """Cancel pending deadlines (all, or those of `kinds`); their triggers become no-ops (token bumped)."""
    assert inc.id is not None
    n = 0
    for d in rows(s, inc.id):
        if d.status == DeadlineStatus.PENDING and (kinds is None or d.kind in kinds):
            d.status, d.next_notice_at = DeadlineStatus.CANCELLED, None
            d.token += 1
            n += 1
            record(s, inc.id, now, EventKind.DEADLINE_REPLANNED,
                   {"kind": d.kind, "seq": d.seq, "cancelled": True, "reason": reason}, actor=actor)
    return n


def replan(s: Session, inc: Incident, severity: Severity, now: datetime, *, actor: str) -> list[Deadline]:
    """Bring the clocks in line with `severity`, counted from the original start (first detection): pending
    clocks the new level does not have are cancelled; the ones it adds are created, possibly overdue already."""
    assert inc.id is not None
    wanted = {p.kind: p for p in dl.plan(inc.policy, severity, inc.first_seen_at)}
    current = rows(s, inc.id)
    stale = {d.kind for d in current if d.status == DeadlineStatus.PENDING and d.kind not in wanted
             and d.kind != UPDATE_KIND}
    if stale:
        cancel_pending(s, inc, now, actor=actor, reason=f"severity {severity.value}", kinds=stale)
    have = {d.kind for d in current if d.status != DeadlineStatus.CANCELLED}
    last_seq: dict[str, int] = {}
    for d in current:
        last_seq[d.kind] = max(last_seq.get(d.kind, -1), d.seq)
    # a clock cancelled by an earlier change comes back as a new row (seq + 1): the history stays as it was
    return [add(s, inc, replace(p, seq=last_seq.get(kind, -1) + 1), now, actor=actor)
            for kind, p in wanted.items() if kind not in have]
