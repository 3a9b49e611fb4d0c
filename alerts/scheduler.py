"""Deadline scheduler: APScheduler 3.x jobs are only triggers; the database is the truth.

Job ids are `deadline:<id>` and `escalate:<incident id>` with replace_existing, so scheduling twice is
harmless; each job carries its fencing token, so a job made stale by a later change does nothing (an
escalation job re-arms from the database instead). `wake:<time>` jobs dispatch notices held back by quiet
hours. `reconcile()` rebuilds every job from the pending deadlines, unacknowledged escalations and held
notices at start-up; an overdue one is fired at once.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from alerts.clock import Clock, FakeClock
from alerts.engine import AlertEngine, Scheduled
from alerts.escalation import EscalationDue, Trigger, Wake
from alerts.outbox import Dispatcher
from config.durations import format_duration

log = logging.getLogger(__name__)
JOB_PREFIXES = ("deadline:", "escalate:", "wake:")  # the jobs run_due drives (not polling or dispatch)


class DeadlineScheduler:
    """`horizon`: only notices due within it get a job; `sweep()` (a periodic job of the service) adds the later
    ones as they come near, so start-up and memory stay small with many pending deadlines. None: every pending
    deadline gets its job at once (tests driving a fake clock)."""

    def __init__(self, engine: AlertEngine, dispatcher: Dispatcher, clock: Clock,
                 horizon: timedelta | None = None) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.clock = clock
        self.horizon = horizon
        self.aps = AsyncIOScheduler(timezone="UTC", job_defaults={"misfire_grace_time": None, "coalesce": True})

    def start(self, *, paused: bool = False) -> None:
        """Start APScheduler (needs a running event loop). Paused: jobs are kept but only run_due runs them."""
        self.aps.start(paused=paused)

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    def schedule(self, item: Trigger) -> None:
        if isinstance(item, Scheduled):
            job_id = f"deadline:{item.deadline_id}"
            if self.horizon is not None and item.at > self.clock.now() + self.horizon:
                with contextlib.suppress(JobLookupError):
                    self.aps.remove_job(job_id)  # an older trigger of this deadline; the sweep makes the new one
                return
            self.aps.add_job(self._fire, "date", run_date=item.at, args=[item.deadline_id, item.token], id=job_id,
                             replace_existing=True)
        elif isinstance(item, EscalationDue):
            self.aps.add_job(self._escalate, "date", run_date=item.at, args=[item.incident_id, item.token],
                             id=f"escalate:{item.incident_id}", replace_existing=True)
        elif isinstance(item, Wake):
            self.aps.add_job(self.dispatcher.dispatch, "date", run_date=item.at,
                             id=f"wake:{item.at.isoformat()}", replace_existing=True)

    def reconcile(self) -> int:
        """Re-create a job for every pending deadline (within the horizon), escalation and held notice; return
        how many."""
        now = self.clock.now()
        items = self.engine.reconcile(now, until=now + self.horizon if self.horizon is not None else None)
        for item in items:
            self.schedule(item)
        deadlines = [i for i in items if isinstance(i, Scheduled)]
        escalations = [i for i in items if isinstance(i, EscalationDue)]
        window = format_duration(self.horizon) if self.horizon is not None else ""
        later = f" (later ones are added as they come within {window})" if window else ""
        log.info("reconciled %d pending deadline trigger(s), %d due now%s; %d escalation(s), %d due now",
                 len(deadlines), sum(1 for i in deadlines if i.at <= now), later, len(escalations),
                 sum(1 for i in escalations if i.at <= now))
        return len(items)

    async def sweep(self) -> int:
        """Add the triggers that came within the horizon since the last sweep; return how many were added."""
        if self.horizon is None:
            return 0
        added = 0
        for item in self.engine.reconcile(until=self.clock.now() + self.horizon):
            if not isinstance(item, Scheduled):
                continue  # escalations and wake-ups have their jobs already
            job = self.aps.get_job(f"deadline:{item.deadline_id}")
            if job is None or tuple(job.args) != (item.deadline_id, item.token) or job.next_run_time != item.at:
                self.schedule(item)
                added += 1
        if added:
            log.info("deadline sweep: %d trigger(s) came within %s", added, format_duration(self.horizon))
        return added

    async def _fire(self, deadline_id: int, token: int) -> None:
        for item in self.engine.fire(deadline_id, token, self.clock.now()):
            self.schedule(item)
        await self.dispatcher.dispatch()

    async def _escalate(self, incident_id: int, token: int) -> None:
        for item in self.engine.escalate(incident_id, token, self.clock.now()):
            self.schedule(item)
        await self.dispatcher.dispatch()

    def pending_jobs(self) -> list[tuple[str, datetime]]:
        return sorted(
            ((job.id, job.next_run_time) for job in self.aps.get_jobs() if job.next_run_time is not None),
            key=lambda pair: pair[1],
        )

    async def run_due(self, clock: FakeClock, until: datetime) -> int:
        """Run, in time order, every deadline, escalation and wake job due up to `until`, moving the fake clock
        to each job's time.

        This drives the real APScheduler job store on a fake clock (tests, and replaying a drill); the
        scheduler must have been started paused so APScheduler does not also run the jobs on wall time.
        """
        ran = 0
        while True:
            jobs = [j for j in self.aps.get_jobs() if j.id.startswith(JOB_PREFIXES) and j.next_run_time is not None]
            if not jobs:
                break
            job = min(jobs, key=lambda j: (j.next_run_time, j.id))
            if job.next_run_time > until:
                break
            clock.set(max(clock.now(), job.next_run_time))
            job.remove()
            await job.func(*job.args)
            ran += 1
        if clock.now() < until:
            clock.set(until)
        return ran
