"""Message rendering (pure): what the duty officer reads, in Simplified Chinese, as plain text and HTML.

Wording is a contract: deadlines are named by their label (权威信息发布, 新闻发布会, 回应), a countdown reads
"距5小时权威信息发布时限还剩 4小时59分", an overdue notice contains "已超时" and the label, and drill messages
start with 【演练】. Crawled text is untrusted and escaped in HTML. In the opening alert a measured incident's
heat follows the facts on their line: "热度：↑ 37条/10分钟，来源 9 个" (it is measured as posts arrive, so later
notices, hours on, leave it out rather than show a stale speed).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from models.enums import Category, HandlingType, NotifyReason, Sentiment, Severity

DRILL_MARK = "【演练】"
_TITLE_MARK = {
    Severity.I: "【特别重大舆情】",
    Severity.II: "【重大舆情】",
    Severity.III: "【较大舆情】",
    Severity.IV: "【一般舆情】",
}


@dataclass(frozen=True)
class IncidentView:
    id: int
    title: str
    category: Category
    severity: Severity
    sentiment: Sentiment
    first_seen_at: datetime
    source: str
    source_url: str
    post_count: int
    drill: bool
    time_scale: float
    # heat (热度), shown on the facts line when measured: "热度：↑ 37条/10分钟，来源 9 个"
    heat: float | None = None
    heat_trend: str = "steady"  # rising / steady / falling
    heat_recent: int = 0  # posts in the last heat window
    heat_window_s: float = 600.0
    source_count: int = 0
    handling: HandlingType | None = None  # assessed (研判) or suggested from the category
    handling_assessed: bool = False


@dataclass(frozen=True)
class DeadlineView:
    kind: str
    label: str
    within_s: float
    start_at: datetime
    due_at: datetime
    pending: bool


@dataclass(frozen=True)
class EscalationView:
    """Who did not acknowledge, for how long (nominal), and who is told now."""

    unacked_role: str  # the role label, e.g. 值班员
    unacked: tuple[str, ...]  # their names (may be empty: nobody was reachable)
    waited: timedelta
    role: str  # the rung notified now
    people: tuple[str, ...]
    repeat: int  # 0 the first time at this rung


@dataclass(frozen=True)
class Message:
    text: str
    html: str


def render(
    reason: NotifyReason,
    incident: IncidentView,
    deadlines: list[DeadlineView],
    *,
    now: datetime,
    tz: tzinfo,
    subject: DeadlineView | None = None,
    escalation: EscalationView | None = None,
    change: str | None = None,
) -> Message:
    """Render one notice. `subject` is the deadline a reminder or overdue notice is about; `escalation` says
    who did not acknowledge an escalation notice; `change` what changed (an UPDATE notice: severity raised)."""
    head = _headline(reason, incident, subject)
    lines: list[tuple[str, str]] = []  # (plain, html) pairs
    if escalation is not None:
        text = escalation_line(escalation)
        lines.append((text, html.escape(text)))
    if change:
        lines.append((change, html.escape(change)))
    if reason is NotifyReason.OVERDUE and subject is not None:
        due = _display_due(subject)
        text = f"{_deadline_name(subject)}时限已于 {_when(due, now, incident, tz)} 到期，尚未标记完成。"
        lines.append((text, html.escape(text)))
    lines.append(_facts(incident, heat=reason is NotifyReason.OPENED))
    if incident.handling is not None and reason in (NotifyReason.OPENED, NotifyReason.ESCALATION,
                                                    NotifyReason.UPDATE):
        text = handling_line(incident)
        lines.append((text, html.escape(text)))
    seen = f"首次发现：{_when(incident.first_seen_at, now, incident, tz)}（{incident.source}）"
    lines.append((seen, html.escape(seen)))
    shown = [subject] if reason is NotifyReason.REMINDER and subject is not None else deadlines
    for d in shown:
        if d.pending and (reason is not NotifyReason.OVERDUE or d is not subject):
            text = countdown_line(d, incident, now=now, tz=tz)
            lines.append((text, html.escape(text)))
    lines.append(_link(incident.source_url))
    ref = f"事件编号：#{incident.id}　相关信息 {incident.post_count} 条"
    lines.append((ref, html.escape(ref)))
    return Message(
        text="\n".join([head, *(p for p, _ in lines)]),
        html="\n".join([f"<b>{html.escape(head)}</b>", *(h for _, h in lines)]),
    )


def countdown_line(d: DeadlineView, incident: IncidentView, *, now: datetime, tz: tzinfo) -> str:
    remaining = (d.due_at - now) * incident.time_scale
    due = _when(_display_due(d), now, incident, tz)
    if remaining.total_seconds() <= 0:
        return f"⏱ {_deadline_name(d)}时限 已超时（{due} 到期）"
    return f"⏱ 距{_deadline_name(d)}时限还剩 {format_remaining(remaining)}（{due} 前）"


def format_remaining(delta: timedelta) -> str:
    """Whole hours and minutes, rounded down: 4小时59分, 59分, 不足1分."""
    minutes = math.floor(delta.total_seconds() / 60)
    if minutes < 1:
        return "不足1分"
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours}小时{mins}分"
    return f"{hours}小时" if hours else f"{mins}分"


def escalation_line(e: EscalationView) -> str:
    """"值班员 张三 15分钟未确认，现报科室负责人 李四（第2次）"."""
    who = f"{e.unacked_role} {'、'.join(e.unacked)}" if e.unacked else f"{e.unacked_role}（无人在岗）"
    now = f"，现报{e.role} {'、'.join(e.people)}" if e.role != e.unacked_role or e.people != e.unacked else ""
    again = f"（第{e.repeat + 1}次）" if e.repeat else ""
    return f"{who} {format_elapsed(e.waited)}未确认{now}{again}"


def format_elapsed(delta: timedelta) -> str:
    """Whole minutes as officers say them: 15分钟, 1小时30分钟, 2小时."""
    minutes = max(math.floor(delta.total_seconds() / 60 + 1e-6), 1)
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours}小时{mins}分钟"
    return f"{hours}小时" if hours else f"{mins}分钟"


def format_span(seconds: float) -> str:
    """A nominal duration as officers say it: 5小时, 24小时, 30分钟, 2天."""
    total = round(seconds)
    if total % 86400 == 0 and total >= 86400 * 3:
        return f"{total // 86400}天"
    if total % 3600 == 0:
        return f"{total // 3600}小时"
    if total % 60 == 0:
        return f"{total // 60}分钟"
    return f"{total}秒"


def _deadline_name(d: DeadlineView) -> str:
    return f"{format_span(d.within_s)}{d.label}"


def _display_due(d: DeadlineView) -> datetime:
    """The due time on the (simulated) clock: start + nominal duration; equals due_at outside drills."""
    return d.start_at + timedelta(seconds=d.within_s)


def _headline(reason: NotifyReason, incident: IncidentView, subject: DeadlineView | None) -> str:
    drill = DRILL_MARK if incident.drill else ""
    title = _one_line(incident.title, 120)
    if reason is NotifyReason.OVERDUE and subject is not None:
        return f"{drill}【超时】{subject.label} 已超时：{title}"
    if reason is NotifyReason.REMINDER:
        return f"{drill}【提醒】{_TITLE_MARK[incident.severity]}{title}"
    if reason is NotifyReason.ESCALATION:
        return f"{drill}【升级】{_TITLE_MARK[incident.severity]}{title}"
    if reason is NotifyReason.UPDATE:
        return f"{drill}【等级调整】{_TITLE_MARK[incident.severity]}{title}"
    return f"{drill}{_TITLE_MARK[incident.severity]}{title}"


def _facts(incident: IncidentView, *, heat: bool = False) -> tuple[str, str]:
    text = (
        f"类别：{incident.category.label}　等级：{incident.severity.value} {incident.severity.label}"
        f"　情感：{incident.sentiment.label}"
    )
    if heat and incident.heat is not None:  # measured as posts arrive: current in the opening alert only
        text += f"　{heat_text(incident)}"
    return text, html.escape(text)


def handling_line(incident: IncidentView) -> str:
    """处置建议：模糊认识 → 主动发布权威信息，讲清事实 (处置类型 once 研判 chose it)."""
    assert incident.handling is not None
    name = "处置类型" if incident.handling_assessed else "处置建议"
    return f"{name}：{incident.handling.label} → {incident.handling.publish}"


_TREND_ARROW = {"rising": "↑", "steady": "→", "falling": "↓"}


def heat_text(incident: IncidentView) -> str:
    """热度：↑ 37条/10分钟，来源 9 个 — the trend, posts in the last window, distinct sources."""
    arrow = _TREND_ARROW.get(incident.heat_trend, "→")
    return (f"热度：{arrow} {incident.heat_recent}条/{format_span(incident.heat_window_s)}，"
            f"来源 {incident.source_count} 个")


def _link(url: str) -> tuple[str, str]:
    if url.startswith(("http://", "https://")):
        return f"链接：{url}", f'链接：<a href="{html.escape(url, quote=True)}">查看原文</a>'
    return f"链接：{url}", html.escape(f"链接：{url}")


def _when(moment: datetime, now: datetime, incident: IncidentView, tz: tzinfo) -> str:
    """HH:MM in the display zone, with 次日 or a date when it is not today (on the simulated clock)."""
    sim_now = incident.first_seen_at + (now - incident.first_seen_at) * incident.time_scale
    local, today = moment.astimezone(tz), sim_now.astimezone(tz).date()
    if local.date() == today:
        return local.strftime("%H:%M")
    if (local.date() - today).days == 1:
        return local.strftime("次日 %H:%M")
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class SourceHealthView:
    source: str
    kind: str
    state: str  # SourceHealth value
    state_label: str
    reason: str
    last_success_at: datetime | None
    last_error: str | None
    items_last_day: int


def render_health(view: SourceHealthView, *, now: datetime, tz: tzinfo) -> Message:
    """A source changed health state (to the admin channel)."""
    head = f"【数据源恢复】{view.source}" if view.state == "ok" else f"【数据源告警】{view.source}：{view.state_label}"
    last = view.last_success_at.astimezone(tz).strftime("%m-%d %H:%M") if view.last_success_at else "从未成功"
    lines = [
        head,
        f"类型：{view.kind}　原因：{view.reason}",
        f"最近成功：{last}　近24小时条数：{view.items_last_day}",
    ]
    if view.last_error and view.state != "ok":
        lines.append(f"最近错误：{_one_line(view.last_error, 300)}")
    return Message(text="\n".join(lines), html="\n".join([f"<b>{html.escape(head)}</b>",
                                                         *(html.escape(x) for x in lines[1:])]))
