"""Deadline planning (pure): a severity and a frozen policy give statutory clocks and their notices.

The policy is a JSON-able snapshot of the response rule pack taken when the incident opens, so later config
changes never move an open incident's clocks. `time_scale` > 1 compresses every duration (drill mode):
5 h at time_scale 3600 is 5 s. Durations in the policy are nominal (unscaled) seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from config.schema import UPDATE_KIND, ResponseSettings
from models.enums import NotifyReason, Severity


@dataclass(frozen=True)
class DeadlineSpec:
    kind: str
    label: str
    within_s: float  # nominal seconds from the start
    reminders_s: tuple[float, ...]  # nominal seconds before the deadline, most distant first
    met_by: str = "release"  # the action that meets it: release / press_conference / update


@dataclass(frozen=True)
class Scheduled:
    """A scheduler trigger derived from a pending deadline row (job id `deadline:<id>`, fenced by `token`)."""

    deadline_id: int
    token: int
    at: datetime


@dataclass(frozen=True)
class PlannedDeadline:
    kind: str
    start_at: datetime
    due_at: datetime
    seq: int = 0


@dataclass(frozen=True)
class Notice:
    """One scheduled message for a deadline: reminders in order, then the overdue notice (last index)."""

    index: int
    at: datetime
    reason: NotifyReason
    before_s: float  # nominal seconds before the deadline (0 for overdue)


def freeze_policy(response: ResponseSettings, *, time_scale: float = 1.0, drill: bool = False) -> dict[str, Any]:
    """Snapshot the rule pack as JSON for an incident."""
    return {
        "time_scale": time_scale,
        "drill": drill,
        "deadlines": {
            kind: {
                "label": spec.label,
                "within_s": spec.within.total_seconds(),
                "reminders_s": sorted((r.total_seconds() for r in spec.reminders), reverse=True),
                "met_by": spec.met_by,
            }
            for kind, spec in response.deadlines.items()
        },
        "by_severity": {sev: list(kinds) for sev, kinds in response.by_severity.items()},
        "updates": {
            "label": response.updates.label,
            "within_s": response.updates.every.total_seconds(),
            "reminders_s": sorted((r.total_seconds() for r in response.updates.reminders), reverse=True),
            "met_by": "update",
            "after": response.updates.after,
            "severities": [s.value for s in response.updates.severities],
        },
    }


def spec(policy: dict[str, Any], kind: str) -> DeadlineSpec:
    raw = policy["updates"] if kind == UPDATE_KIND else policy["deadlines"][kind]
    return DeadlineSpec(kind, raw["label"], float(raw["within_s"]), tuple(float(x) for x in raw["reminders_s"]),
                        str(raw.get("met_by", "release")))


def met_by(policy: dict[str, Any], kind: str) -> str:
    """The action that meets deadlines of `kind` (policies frozen before met_by existed: release)."""
    return spec(policy, kind).met_by if kind == UPDATE_KIND or kind in policy["deadlines"] else "release"


def next_update(policy: dict[str, Any], severity: Severity, after_kind: str, seq: int,
                start_at: datetime) -> PlannedDeadline | None:
    """The continuous-update deadline that follows `after_kind` ending at `start_at` (None when the policy gives
    this severity no updates, or `after_kind` does not start them). `seq` numbers the updates 1, 2, …"""
    upd = policy.get("updates")
    if not upd or severity.value not in upd.get("severities", []):
        return None
    if after_kind not in (upd["after"], UPDATE_KIND):
        return None
    return PlannedDeadline(UPDATE_KIND, start_at, start_at + timedelta(seconds=float(upd["within_s"]) / scale(policy)),
                           seq)


def scale(policy: dict[str, Any]) -> float:
    return float(policy.get("time_scale", 1.0)) or 1.0


def plan(policy: dict[str, Any], severity: Severity, start_at: datetime) -> list[PlannedDeadline]:
    """The deadlines an incident of `severity` gets, counted from `start_at` (first detection)."""
    factor = scale(policy)
    return [
        PlannedDeadline(kind, start_at, start_at + timedelta(seconds=spec(policy, kind).within_s / factor))
        for kind in policy["by_severity"].get(severity.value, [])
    ]


def replan(policy: dict[str, Any], severity: Severity, start_at: datetime, existing: set[str]) -> list[PlannedDeadline]:
    """Deadlines a raised severity adds (counted from the original start, so they may already be overdue)."""
    return [d for d in plan(policy, severity, start_at) if d.kind not in existing]


def notices(policy: dict[str, Any], kind: str, due_at: datetime) -> list[Notice]:
    """Every notice of one deadline, in time order; the last is the overdue notice at `due_at`."""
    factor = scale(policy)
    sp = spec(policy, kind)
    out = [
        Notice(i, due_at - timedelta(seconds=before / factor), NotifyReason.REMINDER, before)
        for i, before in enumerate(sp.reminders_s)
    ]
    out.append(Notice(len(out), due_at, NotifyReason.OVERDUE, 0.0))
    return out


def due_now(all_notices: list[Notice], stage: int, now: datetime) -> tuple[Notice | None, list[Notice], Notice | None]:
    """Split the notices from `stage` on: (the one to send now, earlier ones it supersedes, the next one).

    When several came due while nobody was looking (a restart), only the latest is sent: a stale
    "1 hour left" next to "overdue" helps no one. The superseded ones are recorded, not sent.
    """
    pending = [n for n in all_notices if n.index >= stage]
    due = [n for n in pending if n.at <= now]
    upcoming = [n for n in pending if n.at > now]
    send = due[-1] if due else None
    return send, due[:-1], (upcoming[0] if upcoming else None)
