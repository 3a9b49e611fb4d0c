"""Deadline planning: clocks by severity, drill compression, notice order, and what is due after downtime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.deadlines import due_now, freeze_policy, notices, plan
from config.schema import ResponseSettings
from models.enums import NotifyReason, Severity

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)
H = timedelta(hours=1)


def test_severe_incidents_get_release_and_press_conference() -> None:
    policy = freeze_policy(ResponseSettings())
    for sev in (Severity.I, Severity.II):
        planned = {d.kind: d.due_at for d in plan(policy, sev, T0)}
        assert planned == {"release_5h": T0 + 5 * H, "press_conference_24h": T0 + 24 * H}


def test_ordinary_incidents_get_48h_response() -> None:
    policy = freeze_policy(ResponseSettings())
    for sev in (Severity.III, Severity.IV):
        assert [(d.kind, d.due_at) for d in plan(policy, sev, T0)] == [("response_48h", T0 + 48 * H)]


def test_drill_compresses_every_clock() -> None:
    policy = freeze_policy(ResponseSettings(), time_scale=3600, drill=True)
    [release, press] = plan(policy, Severity.II, T0)
    assert release.due_at == T0 + timedelta(seconds=5)
    assert press.due_at == T0 + timedelta(seconds=24)
    assert [n.at for n in notices(policy, "release_5h", release.due_at)] == [
        T0 + timedelta(seconds=4), T0 + timedelta(seconds=4.5), T0 + timedelta(seconds=5)
    ]


def test_notices_are_reminders_then_overdue() -> None:
    policy = freeze_policy(ResponseSettings())
    ns = notices(policy, "release_5h", T0 + 5 * H)
    assert [(n.index, n.at, n.reason) for n in ns] == [
        (0, T0 + 4 * H, NotifyReason.REMINDER),
        (1, T0 + 4.5 * H, NotifyReason.REMINDER),
        (2, T0 + 5 * H, NotifyReason.OVERDUE),
    ]


def test_due_now_sends_latest_and_supersedes_the_rest() -> None:
    ns = notices(freeze_policy(ResponseSettings()), "release_5h", T0 + 5 * H)
    send, superseded, upcoming = due_now(ns, 0, T0 + 4.6 * H)
    assert send == ns[1] and superseded == [ns[0]] and upcoming == ns[2]
    send, superseded, upcoming = due_now(ns, 2, T0 + 4.6 * H)
    assert send is None and superseded == [] and upcoming == ns[2]
    send, superseded, upcoming = due_now(ns, 0, T0 + 6 * H)
    assert send == ns[2] and len(superseded) == 2 and upcoming is None


def test_policy_is_a_frozen_snapshot() -> None:
    policy = freeze_policy(ResponseSettings())
    assert policy["deadlines"]["release_5h"] == {"label": "权威信息发布", "within_s": 18000.0,
                                                 "reminders_s": [3600.0, 1800.0], "met_by": "release"}
    assert policy["deadlines"]["press_conference_24h"]["met_by"] == "press_conference"
    assert policy["updates"] == {"label": "持续发布", "within_s": 86400.0, "reminders_s": [7200.0], "met_by": "update",
                                 "after": "press_conference_24h", "severities": ["I", "II"]}
    assert policy["time_scale"] == 1.0 and policy["drill"] is False
