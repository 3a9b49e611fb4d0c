"""`yuqing silence add|list|expire`: officers hold back notices for a while (maintenance, a known flood).

A silence matches notices by incident, category, severity, reason and channel (every given matcher must
match) between its start and end; matching notices are logged as SILENCED and never sent (alerts/stages.py).
Decisions: a silence needs at least one matcher, a comment and an author (it is an audit record); it lasts
at most 7 days, so a forgotten one cannot hide alerts for good; an OVERDUE notice of a severity I/II
incident is never silenced (the CLI says so when a new silence could cover one). Output is for officers:
Simplified Chinese, times in the agency's zone.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from alerts.notifiers import NOTIFIERS
from alerts.stages import MATCHER_KEYS, validate_matchers
from config.durations import parse_duration
from config.env import Environment
from config.loader import load_config
from models.db import session_scope
from models.enums import CATEGORY_LABELS, SEVERITY_LABELS, NotifyReason
from models.migrate import open_database
from models.tables import Silence

MAX_SILENCE = timedelta(days=7)
_LABELS = {"incident_id": "事件", "category": "类别", "severity": "等级", "reason": "类型", "channel": "渠道"}


def add_silence(session: Session, matchers: dict[str, Any], *, starts_at: datetime, ends_at: datetime,
                created_by: str, comment: str, now: datetime) -> Silence:
    """Validate and store a silence. Does not commit. ValueError (in Chinese) when it cannot be accepted."""
    if all(v is None for v in matchers.values()):
        raise ValueError("至少指定一个匹配条件（--incident、--category、--severity、--reason 或 --channel）")
    try:
        canonical = validate_matchers(matchers)
    except ValueError as exc:
        raise ValueError(f"匹配条件无效：{exc}") from None
    if ends_at <= starts_at or ends_at <= now:
        raise ValueError("结束时间必须晚于开始时间和当前时间")
    if ends_at - max(starts_at, now) > MAX_SILENCE:
        raise ValueError("静默最长 7 天")
    if not created_by.strip() or not comment.strip():
        raise ValueError("必须注明创建人和原因")
    row = Silence(matchers=canonical, starts_at=starts_at, ends_at=ends_at, created_by=created_by.strip(),
                  created_at=now, comment=comment.strip())
    session.add(row)
    session.flush()
    return row


def expire_silence(session: Session, silence_id: int, now: datetime) -> Silence | None:
    """End a silence now (an ended one stays as it was). None when there is no such silence."""
    row = session.get(Silence, silence_id)
    if row is not None and row.ends_at > now:
        row.ends_at = max(now, row.starts_at)
    return row


def list_silences(session: Session, now: datetime, *, include_ended: bool = False) -> list[Silence]:
    query = select(Silence).order_by(col(Silence.id))
    if not include_ended:
        query = query.where(col(Silence.ends_at) > now)
    return list(session.exec(query).all())


def describe(matchers: dict[str, Any]) -> str:
    parts = []
    for key in MATCHER_KEYS:
        if key not in matchers:
            continue
        value = matchers[key]
        categories = {c.value: label for c, label in CATEGORY_LABELS.items()}
        shown = {"incident_id": f"#{value}", "category": categories.get(str(value), str(value)),
                 "severity": f"{value}级", "reason": _reason_label(str(value))}.get(key, str(value))
        parts.append(f"{_LABELS[key]}={shown}")
    return "，".join(parts)


def _reason_label(value: str) -> str:
    return {"opened": "新事件", "reminder": "提醒", "overdue": "超时", "escalation": "升级", "update": "进展",
            "health": "数据源", "audit": "巡检", "heartbeat": "心跳"}.get(value, value)


def covers_urgent_overdue(matchers: dict[str, Any]) -> bool:
    """Could this silence match an OVERDUE notice of a I/II incident (which it will not hold back)?"""
    return matchers.get("severity") in (None, "I", "II") and matchers.get("reason") in (None, "overdue")


# ------------------------------------------------------------------------------------------------- CLI glue
def _category(value: str) -> str:
    by_label = {label: cat.value for cat, label in CATEGORY_LABELS.items()}
    return by_label.get(value, value.upper())


def _severity(value: str) -> str:
    by_label = {label: sev.value for sev, label in SEVERITY_LABELS.items()}
    return by_label.get(value, value.upper())


def _when(value: str, tz: tzinfo) -> datetime:
    """An ISO 8601 time; without an offset it is the agency's local time."""
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _tz(args: argparse.Namespace) -> tzinfo:
    return ZoneInfo(load_config(getattr(args, "config", None)).settings.agency.timezone)


def _status(row: Silence, now: datetime) -> str:
    if row.ends_at <= now:
        return "已结束"
    return "生效中" if row.starts_at <= now else "未开始"


def cmd_add(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    tz = _tz(args)
    matchers = {"incident_id": args.incident, "category": args.category and _category(args.category),
                "severity": args.severity and _severity(args.severity), "reason": args.reason,
                "channel": args.channel}
    try:
        starts = _when(args.start, tz) if args.start else now
        ends = _when(args.until, tz) if args.until else starts + parse_duration(args.duration or "")
    except ValueError as exc:
        print(f"时长或时间无效：{exc}", file=sys.stderr)
        return 2
    db = open_database(Environment.from_environ().database_url)
    try:
        with session_scope(db) as s:
            row = add_silence(s, matchers, starts_at=starts, ends_at=ends, created_by=args.by, comment=args.comment,
                              now=now)
            line = (f"已创建静默 #{row.id}：{describe(row.matchers)}；"
                    f"{row.starts_at.astimezone(tz):%m-%d %H:%M} 至 {row.ends_at.astimezone(tz):%m-%d %H:%M}；"
                    f"创建人 {row.created_by}")
            urgent = covers_urgent_overdue(row.matchers)
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    finally:
        db.dispose()
    print(line)
    if urgent:
        print("注意：I、II级事件的超时通报（法定时限已过）不受静默影响，仍会发送。")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    tz = _tz(args)
    db = open_database(Environment.from_environ().database_url)
    with Session(db) as s:
        rows = list_silences(s, now, include_ended=args.all)
    db.dispose()
    if args.json:
        print(json.dumps([{"id": r.id, "matchers": r.matchers, "starts_at": r.starts_at.isoformat(),
                           "ends_at": r.ends_at.isoformat(), "created_by": r.created_by, "comment": r.comment,
                           "status": _status(r, now)} for r in rows], ensure_ascii=False, indent=2))
        return 0
    if not rows:
        print("没有生效或待生效的静默。" if not args.all else "没有静默记录。")
        return 0
    for r in rows:
        print(f"#{r.id}　{_status(r, now)}　{describe(r.matchers)}　"
              f"{r.starts_at.astimezone(tz):%m-%d %H:%M} 至 {r.ends_at.astimezone(tz):%m-%d %H:%M}　"
              f"创建人：{r.created_by}　原因：{r.comment}")
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    db = open_database(Environment.from_environ().database_url)
    with session_scope(db) as s:
        row = expire_silence(s, args.id, now)
    db.dispose()
    if row is None:
        print(f"没有编号为 {args.id} 的静默", file=sys.stderr)
        return 1
    print(f"静默 #{args.id} 已解除。")
    return 0


def add_commands(sub: Any) -> None:
    """Register `silence add|list|expire` on the `yuqing` parser's subcommands."""
    p = sub.add_parser("silence", help="hold back matching notices for a while (静默)")
    p_sub = p.add_subparsers(dest="silence_command", required=True)
    add = p_sub.add_parser("add", help="add a silence (at least one matcher; at most 7 days)")
    add.add_argument("--incident", type=int, metavar="ID", help="only notices about this incident")
    add.add_argument("--category", help="incident category (EMERGENCY … or 突发事件 …)")
    add.add_argument("--severity", help="incident severity (I–IV or 特别重大 …)")
    add.add_argument("--reason", choices=[r.value for r in NotifyReason], help="kind of notice")
    add.add_argument("--channel", choices=sorted(NOTIFIERS), help="only this channel")
    span = add.add_mutually_exclusive_group(required=True)
    span.add_argument("--for", dest="duration", metavar="DURATION", help="how long, e.g. 2h, 30m, 1d")
    span.add_argument("--until", metavar="TIME", help="until this time (ISO 8601; the agency's zone when no offset)")
    add.add_argument("--start", metavar="TIME", help="start later than now (ISO 8601)")
    add.add_argument("--by", default=getpass.getuser(), help="who sets it (default: the login name)")
    add.add_argument("--comment", required=True, help="why (kept with the silence)")
    add.add_argument("--config", help="config file (for the time zone)")
    add.set_defaults(func=cmd_add)
    lst = p_sub.add_parser("list", help="active and future silences")
    lst.add_argument("--all", action="store_true", help="include ended silences")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.add_argument("--config", help="config file (for the time zone)")
    lst.set_defaults(func=cmd_list)
    exp = p_sub.add_parser("expire", help="end a silence now")
    exp.add_argument("id", type=int)
    exp.set_defaults(func=cmd_expire)
