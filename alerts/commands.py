"""Incident commands of the `yuqing` CLI (registered by pipeline.py) for duty officers at a terminal:

    yuqing incident list [--all] [--json]          open incidents, nearest pending deadline first
    yuqing incident show ID [--json]               details, the whole timeline and the deliveries
    yuqing incident ack|assess|release|press|update|close|dismiss ID … --by NAME

Actions call alerts/actions.py in one transaction, like the bot and the web app. A running `yuqing run` picks
the change up by itself: a met or cancelled deadline's trigger is fenced by its token (a no-op when it fires),
and new clocks (a re-planned severity, the next continuous update) are picked up by alerts/pickup.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from sqlmodel import Session

from alerts import actions, overview
from alerts.actions import ActionResult
from alerts.handling import draft
from config.env import Environment
from config.loader import load_config
from models.db import session_scope
from models.enums import Category, DeliveryOutcome, HandlingType, Severity
from models.migrate import open_database

Act = Callable[[Session, argparse.Namespace, datetime], ActionResult]

OUTCOME_LABELS: dict[DeliveryOutcome, str] = {
    DeliveryOutcome.PENDING: "待发送", DeliveryOutcome.SENDING: "发送中（结果未知）", DeliveryOutcome.SENT: "已发送",
    DeliveryOutcome.SILENCED: "已静默", DeliveryOutcome.BATCHED: "已合并发送", DeliveryOutcome.FAILED: "发送失败",
    DeliveryOutcome.SUPERSEDED: "已被后续通知取代",
}


def _tz(args: argparse.Namespace) -> tzinfo:
    return ZoneInfo(load_config(args.config).settings.agency.timezone)


def cmd_list(args: argparse.Namespace) -> int:
    tz, now = _tz(args), datetime.now(UTC)
    db = open_database(Environment.from_environ().database_url)
    try:
        with session_scope(db) as s:
            items = overview.open_overviews(s, include_closed=args.all)
            if args.json:
                print(json.dumps([overview.overview_json(o, now) for o in items], ensure_ascii=False, indent=2))
            else:
                title = "全部舆情事件" if args.all else "未结舆情事件"
                print(overview.render_list(items, now=now, tz=tz, limit=max(len(items), 1), title=title).text)
    finally:
        db.dispose()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    tz, now = _tz(args), datetime.now(UTC)
    db = open_database(Environment.from_environ().database_url)
    try:
        with session_scope(db) as s:
            detail = overview.load_detail(s, args.id)
            if detail is None:
                print(f"未找到舆情事件 #{args.id}", file=sys.stderr)
                return 1
            if args.json:
                print(json.dumps(overview.detail_json(detail, now, tz), ensure_ascii=False, indent=2))
            else:
                print(show_text(detail, now=now, tz=tz))
    finally:
        db.dispose()
    return 0


def show_text(detail: overview.Detail, *, now: datetime, tz: tzinfo) -> str:
    """The details, then every event and every delivery (the bot shows only the last few events)."""
    lines = [overview.render_detail(detail, now=now, tz=tz, events=0).text]
    text = draft(detail.overview.incident, now=now, tz=tz)
    if text:
        lines += ["", "发布稿参考（请补全【】内容）：", f"　{text}"]
    lines += ["", "时间线："]
    lines += [f"　{overview.event_line(e, now=now, tz=tz)}" for e in detail.events] or ["　（无）"]
    lines += ["", "通知记录："]
    for d in detail.deliveries:
        when = overview.local_time(d.sent_at or d.created_at, now, tz)
        label = OUTCOME_LABELS.get(DeliveryOutcome(d.outcome), d.outcome)
        error = f"（{d.error}）" if d.error and d.outcome != DeliveryOutcome.SENT else ""
        lines.append(f"　{when} {d.channel}:{d.receiver} {d.alert_key} {label}，尝试 {d.attempts} 次{error}")
    if not detail.deliveries:
        lines.append("　（无）")
    return "\n".join(lines)


def _act(run: Act) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        db = open_database(Environment.from_environ().database_url)
        try:
            with session_scope(db) as s:
                result = run(s, args, datetime.now(UTC))
                if not result.ok:
                    s.rollback()
        finally:
            db.dispose()
        print(result.message, file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1
    return command


def _actor(args: argparse.Namespace) -> str:
    return str(args.by).strip()[:100]


def _assess(s: Session, a: argparse.Namespace, now: datetime) -> ActionResult:
    if not (a.severity or a.category or a.department or a.handling):
        return ActionResult(False, "请至少给出一项研判结论：--severity / --category / --department / --handling", a.id)
    return actions.assess(s, a.id, actor=_actor(a), now=now, category=Category(a.category) if a.category else None,
                          severity=Severity(a.severity) if a.severity else None, department=a.department,
                          handling_type=HandlingType(a.handling) if a.handling else None)


ACTIONS: dict[str, tuple[str, Act]] = {
    "ack": ("值班确认（停止逐级上报）",
            lambda s, a, now: actions.acknowledge(s, a.id, actor=_actor(a), now=now)),
    "assess": ("研判：确认等级和类别，指定涉事责任单位和分类处置类型", _assess),
    "release": ("已发布权威信息（附链接），满足5小时/48小时时限",
                lambda s, a, now: actions.release(s, a.id, actor=_actor(a), now=now, url=a.url)),
    "press": ("已召开新闻发布会，满足24小时时限",
              lambda s, a, now: actions.press_conference(s, a.id, actor=_actor(a), now=now, url=a.url)),
    "update": ("已持续发布（附链接）",
               lambda s, a, now: actions.publish_update(s, a.id, actor=_actor(a), now=now, url=a.url)),
    "close": ("办结，取消全部未到期时限",
              lambda s, a, now: actions.close(s, a.id, actor=_actor(a), now=now, note=a.note or "")),
    "dismiss": ("排除误报（须填原因），取消全部时限",
                lambda s, a, now: actions.dismiss(s, a.id, actor=_actor(a), now=now, reason=" ".join(a.reason))),
}


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    inc = sub.add_parser("incident", help="list, show and act on incidents (ack, assess, release, close …)")
    isub = inc.add_subparsers(dest="incident_command", required=True)
    ls = isub.add_parser("list", help="open incidents, nearest pending deadline first, with countdowns")
    ls.add_argument("--all", action="store_true", help="closed and dismissed incidents too")
    ls.add_argument("--json", action="store_true", help="one JSON array instead of text")
    ls.add_argument("--config")
    ls.set_defaults(func=cmd_list)
    sh = isub.add_parser("show", help="one incident: details, timeline of events, deliveries")
    sh.add_argument("id", type=int)
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--config")
    sh.set_defaults(func=cmd_show)
    for name, (help_text, run) in ACTIONS.items():
        p = isub.add_parser(name, help=help_text)
        p.add_argument("id", type=int, help="incident id (事件编号)")
        _action_arguments(name, p)
        p.add_argument("--by", required=True, metavar="NAME", help="who acts (recorded in the timeline)")
        p.set_defaults(func=_act(run))


def _action_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("release", "update"):
        p.add_argument("url", help="link to what was published")
    elif name == "press":
        p.add_argument("url", nargs="?", help="link to the press conference (optional)")
    elif name == "close":
        p.add_argument("--note", help="closing note")
    elif name == "dismiss":
        p.add_argument("reason", nargs="+", help="why it is a false positive (误报原因)")
    elif name == "assess":
        p.add_argument("--severity", choices=[s.value for s in Severity])
        p.add_argument("--category", choices=[c.value for c in Category])
        p.add_argument("--department", help="responsible department (涉事责任单位)")
        p.add_argument("--handling", choices=[h.value for h in HandlingType],
                       help="handling type: " + ", ".join(f"{h.value}={h.label}" for h in HandlingType))
