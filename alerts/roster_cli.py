"""The `yuqing roster` commands (registered by pipeline.py): import a duty-roster CSV, show who is on duty.

`yuqing roster import FILE` reads columns 日期, 开始, 结束, 姓名, 角色, 部门 (or date, start, end, person,
role, department; 角色 and 部门 default to the person's own). Each bad row is reported with its line number
and the rest are imported; importing the same file (by name) again replaces that file's rows only.
Exit status: 0 all rows imported, 1 some rows bad, 2 nothing imported.

`yuqing roster show [--at "2026-10-01 02:00"] [--department D]` prints, per rung of the chain, who is on
duty at that local time (default: now), through which shift or "常备" (no shift covers the role then).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.roster import (
    OnDuty,
    ShiftError,
    decode,
    load,
    local_span,
    parse_csv,
    people_of,
    replace_shifts,
    sync_config,
)
from config.env import Environment
from config.loader import load_config
from models.db import session_scope
from models.migrate import open_database


def _db() -> Engine:
    return open_database(Environment.from_environ().database_url)


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_config(args.config).settings
    tz = ZoneInfo(settings.agency.timezone)
    path = Path(args.file)
    try:
        text = decode(path.read_bytes())
    except OSError as exc:
        print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    report = parse_csv(text, people_of(settings.roster), tz, origin=path.name)
    for line, reason in report.errors:
        print(f"第{line}行：{reason}" if line else reason, file=sys.stderr)
    if not report.shifts:
        print(json.dumps({"file": path.name, "rows": report.rows, "imported": 0, "errors": len(report.errors)}))
        return 2
    with session_scope(_db()) as s:
        sync_config(s, settings.roster, tz)
        n = replace_shifts(s, path.name, report.shifts)
    print(json.dumps({"file": path.name, "rows": report.rows, "imported": n, "errors": len(report.errors)},
                     ensure_ascii=False))
    return 1 if report.errors else 0


def cmd_show(args: argparse.Namespace) -> int:
    settings = load_config(args.config).settings
    tz = ZoneInfo(settings.agency.timezone)
    if args.at:
        day, _, clock = args.at.strip().partition(" ")
        try:
            at, _ = local_span(day, clock or "00:00", "次日00:00", tz)
        except ShiftError as exc:
            print(f"error: --at: {exc.reason}", file=sys.stderr)
            return 2
    else:
        at = datetime.now(UTC)
    people = people_of(settings.roster)
    if not people:
        print("未配置值班表（roster.people 为空）：告警只发往已配置的渠道，不升级。")
        return 0
    with session_scope(_db()) as s:
        sync_config(s, settings.roster, tz)
    with Session(_db()) as s:
        roster = load(s, people, at)
    dept = args.department or None
    where = f"　部门：{dept}" if dept else ""
    print(f"值班情况 {at.astimezone(tz):%Y-%m-%d %H:%M}（{settings.agency.timezone}）{where}")
    for role in settings.escalation.chain_for(dept):
        duty = roster.on_duty(role, dept, at)
        shown = "、".join(_who(d, tz) for d in duty) or "（无人）"
        print(f"{role.label}\t{shown}")
    return 0


def _who(d: OnDuty, tz: ZoneInfo) -> str:
    if d.shift is None:
        return f"{d.person.name}（常备）"
    start, end = d.shift.starts_at.astimezone(tz), d.shift.ends_at.astimezone(tz)
    ends = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%m-%d %H:%M}"
    return f"{d.person.name}（值班 {start:%m-%d %H:%M}–{ends}）"


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    roster = sub.add_parser("roster", help="duty roster (值班表): import shifts, show who is on duty")
    rsub = roster.add_subparsers(dest="roster_command", required=True)
    imp = rsub.add_parser("import", help="import shifts from a CSV file (日期,开始,结束,姓名,角色,部门)")
    imp.add_argument("file", help="CSV file (UTF-8 or GBK)")
    imp.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    imp.set_defaults(func=cmd_import)
    show = rsub.add_parser("show", help="who is on duty per rung of the escalation chain")
    show.add_argument("--at", metavar="'YYYY-MM-DD HH:MM'", help="local time to look at (default: now)")
    show.add_argument("--department", help="an incident department (its own chain and people)")
    show.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    show.set_defaults(func=cmd_show)
