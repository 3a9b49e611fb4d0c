"""What people do to an incident — shared by the Telegram bot, the CLI and the web app (never duplicated there).

Lifecycle: new → acknowledged (值班确认) → assessed (研判) → responding → released (权威信息已发布) → press_held →
closed; or dismissed (误报, with a reason). Each action runs in the caller's transaction (never commits), appends
an incident event with the actor, meets the deadlines its `met_by` names, and returns an `ActionResult` whose
`scheduled` triggers the caller hands to the scheduler after commit. Refusals are results (`ok=False`) with a
message in Chinese for the officer, not exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session

from alerts import clocks
from alerts.deadlines import Scheduled
from alerts.events import record
from models.enums import Category, EventKind, HandlingType, IncidentStatus, Severity
from models.tables import Deadline, Incident

_ORDER = (IncidentStatus.NEW, IncidentStatus.ACKNOWLEDGED, IncidentStatus.ASSESSED, IncidentStatus.RESPONDING,
          IncidentStatus.RELEASED, IncidentStatus.PRESS_HELD, IncidentStatus.CLOSED)


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str  # for the officer, in Chinese
    incident_id: int | None = None
    scheduled: list[Scheduled] = field(default_factory=list)


def _load(s: Session, incident_id: int) -> Incident | ActionResult:
    inc = s.get(Incident, incident_id, with_for_update=True)
    if inc is None:
        return ActionResult(False, f"未找到舆情事件 #{incident_id}", incident_id)
    if not IncidentStatus(inc.status).is_open:
        return ActionResult(False, f"事件 #{incident_id} 已{IncidentStatus(inc.status).label}，无法操作", incident_id)
    return inc


def _advance(inc: Incident, target: IncidentStatus, now: datetime) -> None:
    """Move the status forward (never back: a late acknowledgement does not undo a release)."""
    current = IncidentStatus(inc.status)
    if current in _ORDER and _ORDER.index(target) > _ORDER.index(current):
        inc.status = target
    inc.updated_at = now
    inc.token += 1


def _done(inc: Incident, message: str, new_rows: list[Deadline], s: Session) -> ActionResult:
    s.flush()
    return ActionResult(True, message, inc.id, clocks.triggers(new_rows))


def acknowledge(s: Session, incident_id: int, *, actor: str, now: datetime) -> ActionResult:
    """值班确认: stops the escalation of this incident's alerts. Acknowledging twice is harmless."""
    inc = _load(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    if inc.acknowledged_at is not None:
        return ActionResult(True, f"事件 #{incident_id} 已由 {inc.acknowledged_by} 确认", incident_id)
    inc.acknowledged_at, inc.acknowledged_by, inc.next_escalation_at = now, actor, None
    _advance(inc, IncidentStatus.ACKNOWLEDGED, now)
    record(s, incident_id, now, EventKind.ACKNOWLEDGED, {"escalation_level": inc.escalation_level}, actor=actor)
    return _done(inc, f"已确认事件 #{incident_id}", [], s)


def assess(s: Session, incident_id: int, *, actor: str, now: datetime, category: Category | None = None,
           severity: Severity | None = None, department: str | None = None,
           handling_type: HandlingType | None = None) -> ActionResult:
    """研判: confirm category and severity, assign the responsible department and the handling type.
    Implies acknowledgement. A changed severity re-plans the clocks from the original start."""
    inc = _load(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    if inc.acknowledged_at is None:
        inc.acknowledged_at, inc.acknowledged_by, inc.next_escalation_at = now, actor, None
        record(s, incident_id, now, EventKind.ACKNOWLEDGED, {"implied_by": "assess"}, actor=actor)
    detail: dict[str, str] = {}
    if category is not None and category.value != inc.category:
        detail["category"] = f"{inc.category}→{category.value}"
        inc.category = category.value
    if department:
        inc.department = detail["department"] = department.strip()[:100]
    if handling_type is not None:
        inc.handling_type = detail["handling_type"] = handling_type.value
    new_rows: list[Deadline] = []
    if severity is not None and severity.value != inc.severity:
        new_rows = _set_severity(s, inc, severity, now, actor=actor, reason="研判")
    _advance(inc, IncidentStatus.ASSESSED, now)
    record(s, incident_id, now, EventKind.ASSESSED, detail, actor=actor)
    return _done(inc, f"已研判事件 #{incident_id}", new_rows, s)


def change_severity(s: Session, incident_id: int, severity: Severity, *, actor: str, now: datetime,
                    reason: str) -> ActionResult:
    """Raise or lower the severity (the pipeline raises it when later posts show more). Re-plans the clocks."""
    inc = _load(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    if severity.value == inc.severity:
        return ActionResult(True, f"事件 #{incident_id} 等级未变", incident_id)
    new_rows = _set_severity(s, inc, severity, now, actor=actor, reason=reason)
    inc.updated_at = now
    return _done(inc, f"事件 #{incident_id} 等级调整为 {severity.value} {severity.label}", new_rows, s)


def _set_severity(s: Session, inc: Incident, severity: Severity, now: datetime, *, actor: str,
                  reason: str) -> list[Deadline]:
    assert inc.id is not None
    record(s, inc.id, now, EventKind.SEVERITY_CHANGED, {"from": inc.severity, "to": severity.value, "reason": reason},
           actor=actor)
    inc.severity = severity.value
    inc.token += 1
    return clocks.replan(s, inc, severity, now, actor=actor)


def start_response(s: Session, incident_id: int, *, actor: str, now: datetime) -> ActionResult:
    inc = _load(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    _advance(inc, IncidentStatus.RESPONDING, now)
    record(s, incident_id, now, EventKind.RESPONDING, {}, actor=actor)
    return _done(inc, f"事件 #{incident_id} 进入处置", [], s)


def _load_published(s: Session, incident_id: int, url: str | None) -> Incident | ActionResult:
    """The incident, for recording a publication whose link (when given) must be a web address."""
    bad = _check_url(url) if url is not None else None
    return ActionResult(False, bad, incident_id) if bad else _load(s, incident_id)


def release(s: Session, incident_id: int, *, actor: str, now: datetime, url: str) -> ActionResult:
    """权威信息已发布 (with the link): meets the release deadlines (5 h, 48 h response). Recorded once: pressing
    it again with the same link changes nothing, with another link is refused (that is a follow-up)."""
    inc = _load_published(s, incident_id, url)
    if isinstance(inc, ActionResult):
        return inc
    if inc.released_at is not None:  # the first release stands: its time is what timeliness is judged by
        if url == inc.release_url:
            return ActionResult(True, f"事件 #{incident_id} 的权威信息发布已记录", incident_id)
        return ActionResult(False, f"事件 #{incident_id} 已记录权威信息发布（{inc.release_url}）；新的发布请记为"
                                   f"后续发布：/update {incident_id} 发布链接", incident_id)
    if inc.acknowledged_at is None:
        inc.acknowledged_at, inc.acknowledged_by, inc.next_escalation_at = now, actor, None
    inc.released_at, inc.release_url = now, url
    new_rows = clocks.meet(s, inc, "release", now, actor=actor, ref=url)
    _advance(inc, IncidentStatus.RELEASED, now)
    record(s, incident_id, now, EventKind.RELEASED, {"url": url}, actor=actor)
    return _done(inc, f"已记录事件 #{incident_id} 权威信息发布", new_rows, s)


def press_conference(s: Session, incident_id: int, *, actor: str, now: datetime,
                     url: str | None = None) -> ActionResult:
    """新闻发布会已召开: meets the press-conference deadline; continuous updates follow."""
    inc = _load_published(s, incident_id, url or None)
    if isinstance(inc, ActionResult):
        return inc
    inc.press_held_at = now
    new_rows = clocks.meet(s, inc, "press_conference", now, actor=actor, ref=url)
    _advance(inc, IncidentStatus.PRESS_HELD, now)
    record(s, incident_id, now, EventKind.PRESS_HELD, {"url": url} if url else {}, actor=actor)
    return _done(inc, f"已记录事件 #{incident_id} 新闻发布会", new_rows, s)


def publish_update(s: Session, incident_id: int, *, actor: str, now: datetime, url: str) -> ActionResult:
    """持续发布: a follow-up was published; meets the pending update deadline and plans the next one."""
    inc = _load_published(s, incident_id, url)
    if isinstance(inc, ActionResult):
        return inc
    new_rows = clocks.meet(s, inc, "update", now, actor=actor, ref=url)
    inc.updated_at = now
    record(s, incident_id, now, EventKind.UPDATE_PUBLISHED, {"url": url}, actor=actor)
    return _done(inc, f"已记录事件 #{incident_id} 后续发布", new_rows, s)


def close(s: Session, incident_id: int, *, actor: str, now: datetime, note: str = "") -> ActionResult:
    """办结: cancels every pending clock."""
    inc = _load(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    clocks.cancel_pending(s, inc, now, actor=actor, reason="closed")
    inc.status, inc.closed_at, inc.next_escalation_at = IncidentStatus.CLOSED, now, None
    inc.updated_at, inc.token = now, inc.token + 1
    record(s, incident_id, now, EventKind.CLOSED, {"note": note} if note else {}, actor=actor)
    return _done(inc, f"事件 #{incident_id} 已办结", [], s)


def dismiss(s: Session, incident_id: int, *, actor: str, now: datetime, reason: str) -> ActionResult:
    """排除误报 (a reason is required): cancels every pending clock."""
    if not reason.strip():
        return ActionResult(False, "排除误报须填写原因", incident_id)
    inc = _load(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    clocks.cancel_pending(s, inc, now, actor=actor, reason="dismissed")
    inc.status, inc.closed_at, inc.next_escalation_at = IncidentStatus.DISMISSED, now, None
    inc.dismiss_reason, inc.updated_at, inc.token = reason.strip(), now, inc.token + 1
    record(s, incident_id, now, EventKind.DISMISSED, {"reason": reason.strip()}, actor=actor)
    return _done(inc, f"事件 #{incident_id} 已排除（误报）", [], s)


def _check_url(url: str) -> str | None:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "请提供发布内容的链接（http:// 或 https:// 开头）"
    return None
