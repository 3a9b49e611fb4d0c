"""Pick up what other processes changed (`yuqing incident …` at a terminal, a web app): a service hook.

Their actions commit to the database but cannot reach this process's scheduler. Two cases:
- a deadline met, cancelled or re-planned elsewhere: its old trigger here is fenced by the deadline's token, so
  it does nothing when it fires — nothing to pick up;
- a deadline created elsewhere (the next continuous update after a press conference, clocks added by a raised
  severity): it needs a trigger here. Every `every` seconds the hook schedules the pending deadlines of
  incidents updated since the last look (one period of overlap; scheduling twice is harmless, job ids are
  `deadline:<id>` with replace_existing);
- a change to announce (`announce`, by event kind): a severity changed elsewhere (`yuqing incident assess
  --severity`: the engine's `severity_changed` tells the groups and the people on duty and lifts a quiet-hours
  hold), an acknowledgement (the bot's 确认, `yuqing incident ack`: `acknowledged` tells the people an
  escalation reached that it stopped). Each notice's alert key names the change, so looking twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import Clock
from alerts.deadlines import Scheduled
from alerts.escalation import Trigger
from models.db import session_scope
from models.enums import DeadlineStatus, EventKind
from models.tables import Deadline, Incident, IncidentEvent

log = logging.getLogger(__name__)


def changed_triggers(s: Session, since: datetime) -> list[Scheduled]:
    """Triggers of the pending deadlines of incidents updated at or after `since`."""
    changed = select(Incident.id).where(col(Incident.updated_at) >= since)
    rows = s.exec(select(Deadline.id, Deadline.token, Deadline.next_notice_at)
                  .where(col(Deadline.incident_id).in_(changed))
                  .where(Deadline.status == DeadlineStatus.PENDING)
                  .where(col(Deadline.next_notice_at).is_not(None))).all()
    return [Scheduled(i, t, at) for i, t, at in rows if i is not None and at is not None]


Announce = Callable[[Session, int, datetime], list[Trigger]]


def changed_by(s: Session, kind: EventKind, since: datetime) -> list[int]:
    """Incidents with an event of `kind` at or after `since`."""
    rows = s.exec(select(IncidentEvent.incident_id).distinct()
                  .where(IncidentEvent.kind == kind.value)
                  .where(col(IncidentEvent.at) >= since)).all()
    return sorted(rows)


class ChangePickup:
    def __init__(self, db: Engine, clock: Clock, schedule: Callable[[Trigger], None], *,
                 every: timedelta = timedelta(seconds=30),
                 announce: Mapping[EventKind, Announce] | None = None) -> None:
        self.db, self.clock, self._schedule, self.every = db, clock, schedule, every
        self._announce = dict(announce or {})
        self._since = clock.now()
        self._task: asyncio.Task[None] | None = None

    def run_once(self) -> int:
        """Schedule what changed since the last look; returns how many triggers were (re)made."""
        now = self.clock.now()
        with session_scope(self.db) as s:
            items: list[Trigger] = list(changed_triggers(s, self._since - self.every))
            for kind, announce in self._announce.items():
                for incident_id in changed_by(s, kind, self._since - self.every):
                    items += announce(s, incident_id, now)
        for item in items:
            self._schedule(item)
        self._since = now
        return len(items)

    async def start(self) -> None:
        self._since = self.clock.now()
        self._task = asyncio.create_task(self._loop(), name="change-pickup")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every.total_seconds())
            try:
                self.run_once()
            except Exception:  # a database hiccup: try again next period
                log.exception("picking up changes made by other processes failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
