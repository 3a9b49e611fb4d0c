"""What an officer reads about incidents on demand (bot /list and 查看, `yuqing incident list|show`).

Loading (`open_overviews`, `load_detail`) reads rows in the caller's session; rendering is pure and returns a
`Message` (plain text and HTML, crawled text escaped) or JSON-able dicts. The open list is ordered by the nearest
pending deadline — "what is due next" — then by severity; incidents without a pending clock come last.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlmodel import Session, col, select

from alerts import deadlines as dl
from alerts.engine import deadline_view, incident_view
from alerts.handling import draft, handling_of
from alerts.render import Message, countdown_line, format_remaining, format_span
from models.enums import Category, DeadlineStatus, EventKind, IncidentStatus, Severity
from models.tables import Deadline, Delivery, Incident, IncidentEvent

Line = tuple[str, str]  # (plain, html)
_FAR = datetime.max.replace(tzinfo=None)
QUIET_EVENTS = frozenset({EventKind.NOTIFIED, EventKind.DEADLINE_PLANNED})  # left out of the short timeline

EVENT_LABELS: dict[EventKind, str] = {
    EventKind.OPENED: "发现并立案", EventKind.GREW: "新增相关信息", EventKind.SEVERITY_CHANGED: "等级调整",
    EventKind.DEADLINE_PLANNED: "设定时限", EventKind.DEADLINE_MET: "时限完成", EventKind.DEADLINE_MISSED: "时限超时",
    EventKind.DEADLINE_REPLANNED: "时限调整", EventKind.NOTIFIED: "发送通知", EventKind.ESCALATED: "逐级上报",
    EventKind.ACKNOWLEDGED: "值班确认", EventKind.ASSESSED: "研判", EventKind.RESPONDING: "进入处置",
    EventKind.RELEASED: "发布权威信息", EventKind.PRESS_HELD: "召开新闻发布会", EventKind.UPDATE_PUBLISHED: "持续发布",
    EventKind.CLOSED: "办结", EventKind.DISMISSED: "排除误报", EventKind.MERGED: "合并", EventKind.SPLIT: "拆分",
    EventKind.HEAT_CHANGED: "热度变化",
}


@dataclass(frozen=True)
class Overview:
    incident: Incident
    deadlines: list[Deadline]

    @property
    def next_due(self) -> Deadline | None:
        pending = [d for d in self.deadlines if d.status == DeadlineStatus.PENDING]
        return min(pending, key=lambda d: d.due_at) if pending else None

    def sort_key(self) -> tuple[datetime, int, int]:
        nxt = self.next_due
        due = nxt.due_at.replace(tzinfo=None) if nxt is not None else _FAR
        return due, Severity(self.incident.severity).rank, -(self.incident.id or 0)


@dataclass(frozen=True)
class Detail:
    overview: Overview
    events: list[IncidentEvent] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)


def open_overviews(s: Session, *, include_closed: bool = False) -> list[Overview]:
    """Open incidents (or every incident), nearest pending deadline first."""
    query = select(Incident)
    if not include_closed:
        query = query.where(col(Incident.status).in_([st.value for st in IncidentStatus if st.is_open]))
    incidents = list(s.exec(query).all())
    by_incident: dict[int, list[Deadline]] = {}
    ids = [i.id for i in incidents if i.id is not None]
    for chunk in (ids[i:i + 500] for i in range(0, len(ids), 500)):
        for d in s.exec(select(Deadline).where(col(Deadline.incident_id).in_(chunk))
                        .order_by(col(Deadline.due_at), col(Deadline.id))).all():
            by_incident.setdefault(d.incident_id, []).append(d)
    out = [Overview(i, by_incident.get(i.id or 0, [])) for i in incidents]
    return sorted(out, key=Overview.sort_key)


def load_detail(s: Session, incident_id: int) -> Detail | None:
    inc = s.get(Incident, incident_id)
    if inc is None:
        return None
    rows = list(s.exec(select(Deadline).where(Deadline.incident_id == incident_id)
                       .order_by(col(Deadline.due_at), col(Deadline.id))).all())
    events = list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                         .order_by(col(IncidentEvent.at), col(IncidentEvent.id))).all())
    deliveries = list(s.exec(select(Delivery).where(Delivery.incident_id == incident_id)
                             .order_by(col(Delivery.id))).all())
    return Detail(Overview(inc, rows), events, deliveries)


def pending_actions(s: Session, incident_id: int) -> set[str]:
    """The actions (release / press_conference / update) that would meet the incident's pending clocks."""
    inc = s.get(Incident, incident_id)
    if inc is None:
        return set()
    rows = s.exec(select(Deadline.kind).where(Deadline.incident_id == incident_id,
                                              Deadline.status == DeadlineStatus.PENDING)).all()
    return {dl.met_by(inc.policy, kind) for kind in rows}


# ---------------------------------------------------------------- rendering


def _p(text: str) -> Line:
    return text, html.escape(text)


def _message(head: str, lines: list[Line]) -> Message:
    return Message(text="\n".join([head, *(p for p, _ in lines)]),
                   html="\n".join([f"<b>{html.escape(head)}</b>", *(h for _, h in lines)]))


def local_time(moment: datetime, now: datetime, tz: tzinfo) -> str:
    """HH:MM in the display zone; 次日 / 昨日 or the date when it is not today."""
    local, today = moment.astimezone(tz), now.astimezone(tz).date()
    days = (local.date() - today).days
    if days == 0:
        return local.strftime("%H:%M")
    if days in (1, -1):
        return local.strftime(("次日" if days == 1 else "昨日") + " %H:%M")
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def deadline_name(inc: Incident, d: Deadline) -> str:
    sp = dl.spec(inc.policy, d.kind)
    seq = f"（第{d.seq}次）" if d.seq and d.kind == "update" else ""
    return f"{format_span(sp.within_s)}{sp.label}{seq}"


def deadline_line(inc: Incident, d: Deadline, *, now: datetime, tz: tzinfo) -> str:
    """One clock as it stands: a countdown, done (on time or late), missed or cancelled."""
    if d.status == DeadlineStatus.PENDING:
        return countdown_line(deadline_view(inc, d), incident_view(inc), now=now, tz=tz)
    name = deadline_name(inc, d)
    if d.status == DeadlineStatus.MET and d.met_at is not None:
        late = "（超时完成）" if d.met_at > d.due_at else ""
        return f"✅ {name}：已于 {local_time(d.met_at, now, tz)} 完成{late}（{d.met_by or '—'}）"
    if d.status == DeadlineStatus.MISSED:
        late = f"，{local_time(d.met_at, now, tz)} 补办（{d.met_by or '—'}）" if d.met_at else ""
        return f"❌ {name}：已超时（{local_time(d.due_at, now, tz)} 到期）{late}"
    return f"➖ {name}：已取消"


def _status_text(inc: Incident, now: datetime, tz: tzinfo) -> str:
    status = IncidentStatus(inc.status)
    text = f"状态：{status.label}"
    if inc.acknowledged_at is not None and inc.acknowledged_by:
        text += f"（{inc.acknowledged_by} {local_time(inc.acknowledged_at, now, tz)} 确认）"
    if status is IncidentStatus.DISMISSED and inc.dismiss_reason:
        text += f"　原因：{inc.dismiss_reason}"
    return text


def handling_text(inc: Incident) -> str:
    kind, assessed = handling_of(inc)
    if kind is None:
        return f"分类处置：{inc.handling_type}" if inc.handling_type else "分类处置：未研判"
    if not assessed:
        return f"分类处置：未研判　处置建议：{kind.label} → {kind.publish}"
    return f"分类处置：{kind.label}　处置建议：{kind.publish}"


def _link(label: str, url: str) -> Line:
    if url.startswith(("http://", "https://")):
        return f"{label}：{url}", f'{label}：<a href="{html.escape(url, quote=True)}">{html.escape(url)}</a>'
    return _p(f"{label}：{url}")


def render_detail(detail: Detail, *, now: datetime, tz: tzinfo, events: int = 8) -> Message:
    """One incident: status, severity, category, department, handling type and advice, clocks, last events."""
    inc = detail.overview.incident
    sev, cat = Severity(inc.severity), Category(inc.category)
    lines: list[Line] = [
        _p(_status_text(inc, now, tz)),
        _p(f"类别：{cat.label}　等级：{sev.value} {sev.label}　相关信息：{inc.post_count} 条"),
        _p(f"涉事责任单位：{inc.department or '未指定'}"),
        _p(handling_text(inc)),
        _p(f"首次发现：{local_time(inc.first_seen_at, now, tz)}（{inc.source}）"),
    ]
    if inc.source_url:
        lines.append(_link("原文", inc.source_url))
    if inc.release_url:
        lines.append(_link("发布链接", inc.release_url))
    lines.append(_p("时限："))
    lines += [_p(deadline_line(inc, d, now=now, tz=tz)) for d in detail.overview.deadlines] or [_p("（无）")]
    shown = [e for e in detail.events if _kind(e.kind) not in QUIET_EVENTS][-events:] if events > 0 else []
    if shown:
        lines.append(_p("最近动态："))
        lines += [_p(event_line(e, now=now, tz=tz)) for e in shown]
    return _message(f"#{inc.id} {_one_line(inc.title, 120)}", lines)


def render_list(items: list[Overview], *, now: datetime, tz: tzinfo, limit: int = 20,
                title: str = "未结舆情事件") -> Message:
    """The open incidents, nearest pending deadline first, one countdown each."""
    if not items:
        return Message(f"当前没有{title}。", f"当前没有{title}。")
    lines: list[Line] = []
    for o in items[:limit]:
        lines += [_p(row) for row in list_rows(o, now=now, tz=tz)]
    if len(items) > limit:
        lines.append(_p(f"……另有 {len(items) - limit} 起，完整列表见 yuqing incident list"))
    return _message(f"{title} {len(items)} 起（按最近时限排序）", lines)


def list_rows(o: Overview, *, now: datetime, tz: tzinfo) -> list[str]:
    inc = o.incident
    sev = Severity(inc.severity)
    head = f"#{inc.id}【{sev.value} {sev.label}】{_one_line(inc.title, 60)}　{IncidentStatus(inc.status).label}"
    nxt = o.next_due
    clock = deadline_line(inc, nxt, now=now, tz=tz) if nxt is not None else "　无待办时限"
    missed = sum(1 for d in o.deadlines if d.status == DeadlineStatus.MISSED and d.met_at is None)
    return [head, f"　{clock.strip()}" + (f"　❗已超时 {missed} 项" if missed else "")]


def event_line(e: IncidentEvent, *, now: datetime, tz: tzinfo) -> str:
    kind = _kind(e.kind)
    label = EVENT_LABELS.get(kind, e.kind) if kind is not None else e.kind
    actor = "系统" if e.actor == "system" else e.actor
    extra = _event_detail(e)
    return f"{local_time(e.at, now, tz)} {actor} {label}" + (f"：{extra}" if extra else "")


def _event_detail(e: IncidentEvent) -> str:
    d = e.detail or {}
    if d.get("url"):
        return str(d["url"])
    if "reason" in d and e.kind == EventKind.DISMISSED:
        return str(d["reason"])
    if e.kind == EventKind.SEVERITY_CHANGED:
        return f"{d.get('from')} → {d.get('to')}"
    if "kind" in d:
        return str(d["kind"])
    if e.kind == EventKind.ASSESSED:
        names = {"category": "类别", "department": "责任单位", "handling_type": "处置类型"}
        return "，".join(f"{names.get(k, k)} {v}" for k, v in d.items())
    return ""


def _kind(value: str) -> EventKind | None:
    try:
        return EventKind(value)
    except ValueError:
        return None


def fit(text: str, limit: int) -> str:
    """Keep a message under `limit` characters, cutting at a line (lines carry whole tags, so HTML stays valid)."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    for line in text.split("\n"):
        if size + len(line) + 1 > limit - 10:
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join([*kept, "……"])


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ---------------------------------------------------------------- JSON (the CLI's --json)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def deadline_json(inc: Incident, d: Deadline, now: datetime) -> dict[str, Any]:
    remaining = (d.due_at - now) * dl.scale(inc.policy)
    return {
        "id": d.id, "kind": d.kind, "seq": d.seq, "name": deadline_name(inc, d), "status": d.status,
        "due_at": _iso(d.due_at), "remaining_s": round(remaining.total_seconds()) if d.status == "pending" else None,
        "remaining": format_remaining(remaining) if d.status == "pending" and remaining > timedelta(0) else None,
        "met_at": _iso(d.met_at), "met_by": d.met_by, "met_ref": d.met_ref, "missed_reason": d.missed_reason,
    }


def overview_json(o: Overview, now: datetime) -> dict[str, Any]:
    inc = o.incident
    nxt = o.next_due
    kind, assessed = handling_of(inc)
    handling = kind if assessed else None  # advice once 研判 chose the type
    return {
        "id": inc.id, "title": inc.title, "status": inc.status, "status_label": IncidentStatus(inc.status).label,
        "severity": inc.severity, "category": inc.category, "department": inc.department,
        "handling_type": inc.handling_type, "handling_advice": handling.publish if handling else None,
        "first_seen_at": _iso(inc.first_seen_at), "acknowledged_by": inc.acknowledged_by,
        "acknowledged_at": _iso(inc.acknowledged_at), "release_url": inc.release_url,
        "next_deadline": deadline_json(inc, nxt, now) if nxt is not None else None,
        "deadlines": [deadline_json(inc, d, now) for d in o.deadlines],
    }


def detail_json(detail: Detail, now: datetime, tz: tzinfo = UTC) -> dict[str, Any]:
    out = overview_json(detail.overview, now)
    out["draft"] = draft(detail.overview.incident, now=now, tz=tz)
    out["events"] = [{"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "detail": e.detail} for e in detail.events]
    out["deliveries"] = [
        {"alert_key": d.alert_key, "channel": d.channel, "receiver": d.receiver, "reason": d.reason,
         "outcome": d.outcome, "attempts": d.attempts, "created_at": _iso(d.created_at), "sent_at": _iso(d.sent_at),
         "error": d.error}
        for d in detail.deliveries
    ]
    return out
