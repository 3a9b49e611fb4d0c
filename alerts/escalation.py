"""Escalation through the duty roster: who gets which notice, when the next rung is due, and quiet hours.

Routing (`Router`): an opening notice goes to the configured group chats plus the people on duty at the
chain's first rung (值班员); reminders to the groups, the duty officers and — once an incident has a
department — that department's reachable people; an overdue notice to all of those plus the leaders of
`escalation.missed_to` (分管领导, 主要领导). A person is reached on every active channel they have: Telegram
(their user/chat id), email (their address), WeCom/DingTalk (the group robot's message with an @-mention of
their mobile: a last line "@13800000000 …", sent as WeCom's mentioned_mobile_list and DingTalk's
at.atMobiles so those members are notified; Feishu shows the line as text).

Escalation: while nobody acknowledges, every `escalation.wait` the notice climbs to the next rung of the
incident department's chain (default 值班员 → 科室负责人 → 分管领导 → 主要领导) with nobody reachable on it
skipped; at the top it repeats every `escalation.repeat_every`. `Incident.escalation_level` is the rung last
notified, `next_escalation_at` when the next step is due (None: stopped); each step is an ESCALATED event
(rung, role, people, repeat). A step that comes due after downtime is sent once, not once per missed wait.
Drills compress the waits by the incident's time scale.

Quiet hours (`escalation.quiet_hours`, local time) hold back severity IV notices only: one due inside the
period is queued with `next_attempt_at` at its end (a `Wake` trigger dispatches it then); an escalation step
due inside it is moved to its end. Deadlines never move; I–III always go out at once; drills are never held.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from sqlmodel import Session, col, select

from alerts.deadlines import Scheduled
from alerts.outbox import Receiver
from alerts.roster import Person, Roster, load
from config.schema import EscalationSettings, QuietHoursSettings
from models.enums import DutyRole, EventKind, Severity
from models.tables import Incident, IncidentEvent

log = logging.getLogger(__name__)
ROBOTS_WITH_MENTIONS = ("wecom", "dingtalk")


@dataclass(frozen=True)
class EscalationDue:
    """A scheduler trigger for the next escalation step (job id `escalate:<incident_id>`, fenced by the
    incident's token)."""

    incident_id: int
    token: int
    at: datetime


@dataclass(frozen=True)
class Wake:
    """Dispatch the outbox at `at` (notices held back by quiet hours become due then)."""

    at: datetime


Trigger = Scheduled | EscalationDue | Wake


@dataclass(frozen=True)
class Step:
    """One escalation step: notify `people` at chain index `rung` (the `repeat`-th time at that rung)."""

    rung: int
    role: DutyRole
    people: tuple[Person, ...]
    repeat: int
    top: bool  # no higher rung: the next step repeats


@dataclass(frozen=True)
class Previous:
    """Who was notified last and when (they did not acknowledge)."""

    role: DutyRole
    names: tuple[str, ...]
    at: datetime


def plan_step(chain: list[DutyRole], level: int, reachable: Mapping[DutyRole, list[Person]],
              repeats: Mapping[int, int]) -> Step | None:
    """The next step from rung `level`: the first higher rung with someone reachable, else the highest
    reachable rung at or below `level` again (a repeat). None when nobody on the chain is reachable."""
    for i in range(level + 1, len(chain)):
        if reachable.get(chain[i]):
            return Step(i, chain[i], tuple(reachable[chain[i]]), repeats.get(i, 0), _top(chain, i, reachable))
    for i in range(min(level, len(chain) - 1), -1, -1):
        if reachable.get(chain[i]):
            return Step(i, chain[i], tuple(reachable[chain[i]]), repeats.get(i, 0), True)
    return None


def _top(chain: list[DutyRole], rung: int, reachable: Mapping[DutyRole, list[Person]]) -> bool:
    return not any(reachable.get(role) for role in chain[rung + 1:])


def quiet_until(quiet: QuietHoursSettings | None, severity: Severity, now: datetime, tz: tzinfo) -> datetime | None:
    """When a severity-IV notice due at `now` may go out (the end of the quiet period), or None: send now."""
    if quiet is None or severity is not Severity.IV:
        return None
    local = now.astimezone(tz)
    start, end = (_at(local, text) for text in (quiet.start, quiet.end))
    if start < end:
        return end.astimezone(now.tzinfo) if start <= local < end else None
    if local >= start:
        return (end + timedelta(days=1)).astimezone(now.tzinfo)
    return end.astimezone(now.tzinfo) if local < end else None


def _at(local: datetime, hhmm: str) -> datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return local.replace(hour=hours, minute=minutes, second=0, microsecond=0)


class Router:
    """Who gets what: the roster's people on the active channels, by escalation settings. Loads the shifts
    of the moment from the database on each call (imports by another process are seen at once)."""

    def __init__(self, people: Mapping[str, Person], settings: EscalationSettings, channels: Mapping[str, str],
                 tz: tzinfo) -> None:
        self.people = dict(people)
        self.settings = settings
        self.channels = dict(channels)  # active channel name → format
        self.tz = tz

    @property
    def escalates(self) -> bool:
        return self.settings.enabled and bool(self.people)

    def why_off(self) -> str | None:
        if not self.people:
            return "no duty roster (roster.people is empty): alerts go to the configured channels only"
        if not self.settings.enabled:
            return "escalation.enabled is false"
        return None

    def roster(self, s: Session, at: datetime) -> Roster:
        return load(s, self.people, at)

    def receivers(self, people: list[Person] | tuple[Person, ...]) -> list[Receiver]:
        """Every active channel of each person (a person with none yields nothing)."""
        out: list[Receiver] = []
        for p in people:
            if p.telegram is not None and "telegram" in self.channels:
                out.append(Receiver("telegram", str(p.telegram), self.channels["telegram"], person=p.name))
            if p.email and "email" in self.channels:
                out.append(Receiver("email", p.email, self.channels["email"], person=p.name))
            if p.mobile:
                out += [Receiver(ch, "default", self.channels[ch], person=p.name, mention=p.mobile)
                        for ch in ROBOTS_WITH_MENTIONS if ch in self.channels]
        return out

    def reachable(self, roster: Roster, role: DutyRole, department: str | None, at: datetime) -> list[Person]:
        return [d.person for d in roster.on_duty(role, department, at) if self.receivers([d.person])]

    def first_rung(self, roster: Roster, inc: Incident, at: datetime) -> list[Person]:
        return self.reachable(roster, self.settings.chain_for(inc.department)[0], inc.department, at)

    def duty_and_department(self, roster: Roster, inc: Incident, at: datetime) -> list[Person]:
        """The agency's duty officers on duty, and the incident department's reachable people."""
        people = self.reachable(roster, DutyRole.DUTY_OFFICER, None, at)
        if inc.department:
            people += roster.department_people(inc.department, at)
        return list(dict.fromkeys(people))

    def leaders(self, roster: Roster, inc: Incident, at: datetime) -> list[Person]:
        people: list[Person] = []
        for role in self.settings.missed_to:
            people += self.reachable(roster, role, inc.department, at)
        return list(dict.fromkeys(people))

    def next_step(self, s: Session, inc: Incident, at: datetime) -> Step | None:
        roster = self.roster(s, at)
        chain = self.settings.chain_for(inc.department)
        reachable = {role: self.reachable(roster, role, inc.department, at) for role in set(chain)}
        return plan_step(chain, inc.escalation_level, reachable, repeat_counts(s, inc))

    def wait_after(self, step_top: bool, scale: float) -> timedelta:
        wait = self.settings.repeat_every if step_top else self.settings.wait
        return wait / scale

    def quiet_until(self, inc: Incident, now: datetime, scale: float) -> datetime | None:
        if scale != 1.0:
            return None  # a drill is never held back
        return quiet_until(self.settings.quiet_hours, Severity(inc.severity), now, self.tz)


def repeat_counts(s: Session, inc: Incident) -> dict[int, int]:
    """How many escalation steps each rung has had (for unique alert keys per repeat)."""
    counts: dict[int, int] = {}
    for ev in _escalations(s, inc):
        rung = int(ev.detail.get("rung", 0))
        counts[rung] = counts.get(rung, 0) + 1
    return counts


def previous(s: Session, inc: Incident, chain: list[DutyRole]) -> Previous:
    """The last people notified on the chain: the last escalation step, else the opening notice."""
    steps = _escalations(s, inc)
    if steps:
        last = steps[-1]
        return Previous(DutyRole(last.detail["role"]), tuple(last.detail.get("people", [])), last.at)
    opened = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id,
                                                IncidentEvent.kind == EventKind.NOTIFIED.value)
                    .order_by(col(IncidentEvent.id))).all()
    first = next((e for e in opened if "rung" in e.detail), None)
    if first is None:
        return Previous(chain[0], (), inc.opened_at)
    held = first.detail.get("held_until")
    sent = datetime.fromisoformat(held) if held else first.at
    return Previous(chain[0], tuple(first.detail.get("people", [])), sent)


def _escalations(s: Session, inc: Incident) -> list[IncidentEvent]:
    return list(s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id,
                                                   IncidentEvent.kind == EventKind.ESCALATED.value)
                       .order_by(col(IncidentEvent.id))).all())
