"""`yuqing status`: what an administrator checks first — which process is the active scheduler, when it
last renewed its lease and sent a heartbeat, the pending deadlines, the next one due, and the outbox.

Read-only (besides bringing the schema up to date like every command). Exit status 0 when a scheduler holds
an unexpired lease, 1 when none does (no `yuqing run` is active on this database), so monitoring can use it.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from alerts.audit import OpsSummary, ops_summary
from alerts.clock import SystemClock
from alerts.lease import LeaseInfo, read_lease
from config.env import Environment
from config.loader import load_config
from models.db import session_scope
from models.migrate import open_database


def status_lines(lease: LeaseInfo | None, summary: OpsSummary, *, now: datetime, tz: tzinfo) -> list[str]:
    """The report in Chinese, one fact per line."""
    if lease is None:
        held = "调度租约：无（从未有 yuqing run 在此数据库上运行）"
    elif lease.active(now):
        held = f"调度租约：{lease.holder}（有效至 {_t(lease.expires_at, tz)}）"
    else:
        held = (f"调度租约：已过期（上一持有者 {lease.holder}，过期于 {_t(lease.expires_at, tz)}）"
                "——当前没有活动的调度实例")
    lines = [held]
    if lease is not None:
        lines.append(f"最近续约：{_t(lease.renewed_at, tz)}　取得租约：{_t(lease.acquired_at, tz)}")
    beat = _t(summary.last_heartbeat_at, tz) if summary.last_heartbeat_at else "无"
    lines.append(f"最近心跳：{beat}")
    lines.append(f"未结事件：{summary.open_incidents} 起　待到期时限：{summary.pending_deadlines} 个")
    if summary.next_due is not None:
        n = summary.next_due
        lines.append(f"最近到期：#{n.incident_id} {n.title} {n.label}（{_t(n.due_at, tz)}）")
    else:
        lines.append("最近到期：无")
    lines.append(f"投递：待发送 {summary.deliveries_pending} 条　近24小时失败 {summary.deliveries_failed_last_day} 条")
    return lines


def status_json(lease: LeaseInfo | None, summary: OpsSummary, *, now: datetime) -> dict[str, Any]:
    nxt = summary.next_due
    return {
        "lease": None if lease is None else {
            "holder": lease.holder, "active": lease.active(now), "acquired_at": lease.acquired_at.isoformat(),
            "renewed_at": lease.renewed_at.isoformat(), "expires_at": lease.expires_at.isoformat(),
        },
        "last_heartbeat_at": summary.last_heartbeat_at.isoformat() if summary.last_heartbeat_at else None,
        "open_incidents": summary.open_incidents,
        "pending_deadlines": summary.pending_deadlines,
        "next_due": None if nxt is None else {"incident_id": nxt.incident_id, "title": nxt.title,
                                              "label": nxt.label, "due_at": nxt.due_at.isoformat()},
        "deliveries_pending": summary.deliveries_pending,
        "deliveries_failed_last_day": summary.deliveries_failed_last_day,
    }


def _t(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def cmd_status(args: argparse.Namespace) -> int:
    tz = ZoneInfo(load_config(args.config).settings.agency.timezone)
    db = open_database(Environment.from_environ().database_url)
    now = SystemClock().now()
    try:
        lease = read_lease(db)
        with session_scope(db) as s:
            summary = ops_summary(s, now)
    finally:
        db.dispose()
    if args.json:
        print(json.dumps(status_json(lease, summary, now=now), ensure_ascii=False, indent=2))
    else:
        print("\n".join(status_lines(lease, summary, now=now, tz=tz)))
    return 0 if lease is not None and lease.active(now) else 1


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    st = sub.add_parser("status", help="the active scheduler, last heartbeat, pending deadlines and the outbox "
                                       "(exit 1 when no scheduler is active)")
    st.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    st.add_argument("--json", action="store_true", help="print JSON instead of text")
    st.set_defaults(func=cmd_status)
