"""The long-running service (`yuqing run`): one asyncio process owning the scheduler, the source pollers,
the processing loop and the notifiers. Sources are polled once at start-up, then on their own interval.

Processing is injected (`process`), so this module holds no business rules of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.audit import Auditor
from alerts.clock import Clock
from alerts.escalation import Trigger
from alerts.lease import LeaseKeeper
from alerts.render import SourceHealthView
from alerts.scheduler import DeadlineScheduler
from config.schema import Settings, SiteSource, SourceSettings
from crawlers.health import assess, record_poll, transition
from crawlers.items import FetchResult
from crawlers.sources import poll_source
from crawlers.store import DAY, fetch_state, items_since, source_state, store_raw
from models.db import session_scope
from models.tables import SourceState

log = logging.getLogger(__name__)
DISPATCH_EVERY_S = 5
HEALTH_EVERY_S = 300
PROCESS_EVERY_S = 15
CRAWL_MIN_TIMEOUT_S = 600
DRAIN_TIMEOUT_S = 20


@dataclass
class ProcessOutcome:
    """What one processing pass did; `scheduled` are triggers for deadlines and escalations created in it."""

    posts: int = 0
    duplicates: int = 0  # exact and near copies folded into a first post
    failed: int = 0
    incidents: int = 0
    scheduled: list[Trigger] = field(default_factory=list)

    def merge(self, other: ProcessOutcome) -> None:
        self.posts += other.posts
        self.duplicates += other.duplicates
        self.failed += other.failed
        self.incidents += other.incidents
        self.scheduled.extend(other.scheduled)


Process = Callable[[datetime], ProcessOutcome]


class Hook(Protocol):
    """A component living as long as the service (the Telegram bot): started after reconcile, stopped first."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Service:
    def __init__(
        self, *, db: Engine, sources: list[SourceSettings], settings: Settings, base_dir: Path,
        scheduler: DeadlineScheduler, process: Process, clock: Clock, crawl_command: list[str] | None = None,
        hooks: Sequence[Hook] = (), keeper: LeaseKeeper | None = None, auditor: Auditor | None = None,
    ) -> None:
        self.db = db
        self.sources = sources
        self.settings = settings
        self.base_dir = base_dir
        self.scheduler = scheduler
        self.process = process
        self.clock = clock
        self.crawl_command = crawl_command or []  # argv prefix running `yuqing crawl NAME` in a new process
        self._busy = asyncio.Lock()
        self.hooks = list(hooks)
        self._hooks_on = False
        # One active scheduler per database: without a keeper this process is always active (tests, --once
        # callers that took the lease themselves).
        self.keeper = keeper
        self.auditor = auditor
        self._running_jobs = 0
        scheduler.aps.add_listener(self._count_job, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def _count_job(self, event: JobExecutionEvent | JobSubmissionEvent) -> None:
        self._running_jobs += 1 if event.code == EVENT_JOB_SUBMITTED else -1

    async def _drain(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop: remove every job, then let the ones already running finish (a send cut off half-way would be
        sent again by the next active scheduler)."""
        self.scheduler.aps.remove_all_jobs()
        deadline = asyncio.get_running_loop().time() + timeout
        while self._running_jobs > 0 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self._running_jobs > 0:
            log.warning("stopping with %d job(s) still running", self._running_jobs)

    async def start_hooks(self) -> None:
        """Start the hooks (the Telegram bot, the pickup of changes made by other processes): only the active
        scheduler runs them, since one bot may poll Telegram's updates at a time."""
        if self._hooks_on:
            return
        self._hooks_on = True
        for hook in self.hooks:
            await hook.start()

    async def stop_hooks(self) -> None:
        if not self._hooks_on:
            return
        self._hooks_on = False
        for hook in reversed(self.hooks):
            try:
                await hook.stop()
            except Exception:
                log.exception("stopping %s failed", type(hook).__name__)

    async def start(self) -> None:
        """Reconcile deadlines, flush the outbox left by a previous run, poll every source once (and wait for
        it: `--once` relies on that), then install the periodic jobs."""
        if not self.scheduler.aps.running:
            self.scheduler.start()
        self.scheduler.reconcile()
        await self.scheduler.dispatcher.dispatch()
        await self.start_hooks()  # before the first polls, which may take long: officers can act at once
        await self.process_pending()
        for src in self.sources:
            await self.poll(src)
        await self._install_jobs(first_run=None)

    async def activate(self) -> None:
        """Become the active scheduler (the lease was acquired): rebuild the deadline jobs from the database and
        install every periodic job, each running once at once (polls run in the background, so the lease keeps
        being renewed however slow a source is)."""
        if not self.scheduler.aps.running:
            self.scheduler.start()
        self.scheduler.reconcile()
        await self.start_hooks()
        await self._install_jobs(first_run=self.clock.now())

    async def deactivate(self) -> None:
        """Stop being the active scheduler: drop every job (deadlines, polls, dispatch, audit …) at once."""
        self.scheduler.aps.remove_all_jobs()
        await self.stop_hooks()
        log.warning("scheduler jobs stopped: no deadline notices, polling or dispatch from this process")

    async def _install_jobs(self, first_run: datetime | None) -> None:
        aps = self.scheduler.aps
        at = {"next_run_time": first_run} if first_run is not None else {}
        for src in self.sources:
            aps.add_job(self.poll, "interval", args=[src], seconds=src.interval.total_seconds(),
                        id=f"source:{src.name}", replace_existing=True, max_instances=1, **at)
        aps.add_job(self.scheduler.dispatcher.dispatch, "interval", seconds=DISPATCH_EVERY_S, id="dispatch",
                    replace_existing=True, max_instances=1, **at)
        aps.add_job(self.check_health, "interval", seconds=HEALTH_EVERY_S, id="health", replace_existing=True,
                    max_instances=1)
        # raw posts written by other processes (imports, manual leads, site crawls) are picked up here
        aps.add_job(self.process_pending, "interval", seconds=PROCESS_EVERY_S, id="process", replace_existing=True,
                    max_instances=1, **at)
        horizon = self.scheduler.horizon
        if horizon is not None:
            aps.add_job(self.scheduler.sweep, "interval", seconds=max(horizon.total_seconds() / 4, 30),
                        id="deadline-sweep", replace_existing=True, max_instances=1)
        if self.auditor is not None:
            await self.auditor.install(self.settings.ops.audit_every)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            if self.keeper is None:
                await self.start()
                log.info("running; %d source(s); press Ctrl-C to stop", len(self.sources))
                await stop.wait()
                await self._drain()
            else:
                await self._run_with_lease(stop)
        finally:
            await self.stop_hooks()
            self.scheduler.shutdown()

    async def _run_with_lease(self, stop: asyncio.Event) -> None:
        """Hold (or wait for) the scheduler lease, renewing it every `ops.lease_renew` until stopped."""
        assert self.keeper is not None
        self.scheduler.start()
        renew = self.settings.ops.lease_renew.total_seconds()
        log.info("%d source(s); scheduler lease holder id %s; press Ctrl-C to stop", len(self.sources),
                 self.keeper.lease.holder)
        while not stop.is_set():
            await self.keeper.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=renew)
        await self._drain()
        await self.keeper.release()

    async def poll(self, src: SourceSettings) -> None:
        now = self.clock.now()
        with session_scope(self.db) as s:
            state = fetch_state(source_state(s, src.name))
        if isinstance(src, SiteSource):
            result = await self._crawl_in_subprocess(src)
        else:
            result = await asyncio.to_thread(poll_source, src, self.settings.fetch, base_dir=self.base_dir,
                                             now=now, state=state)
        if result.error:
            log.warning("source %s: %s", src.name, result.error)
        for warning in result.warnings:
            log.warning("source %s: %s (good entries kept)", src.name, warning)
        with session_scope(self.db) as s:
            added = store_raw(s, result.items) + result.stored
            row = source_state(s, src.name)
            if not isinstance(src, SiteSource):  # a crawl process records its own poll
                record_poll(row, result, new_items=added, now=now)
            self._judge(s, src, row, now)
        log.info("source %s: %d item(s), %d new", src.name, len(result.items) + result.stored, added)
        if added:
            await self.process_pending()
        else:
            await self.scheduler.dispatcher.dispatch()

    async def check_health(self) -> None:
        """Periodic sweep: a source whose polls stopped altogether still turns silent."""
        now = self.clock.now()
        with session_scope(self.db) as s:
            for src in self.sources:
                self._judge(s, src, source_state(s, src.name), now)
        await self.scheduler.dispatcher.dispatch()

    def _judge(self, s: Session, src: SourceSettings, row: SourceState, now: datetime) -> None:
        verdict = assess(row, src, failing_after=self.settings.health.failing_after, now=now)
        if transition(row, verdict, now=now) and row.state_since is not None:
            log.warning("source %s is now %s: %s", src.name, verdict.state.value, verdict.reason)
            view = SourceHealthView(
                source=src.name, kind=src.kind, state=verdict.state.value, state_label=verdict.state.label,
                reason=verdict.reason, last_success_at=row.last_success_at, last_error=row.last_error,
                items_last_day=items_since(s, src.name, now - DAY),
            )
            self.scheduler.engine.source_health(s, view, row.state_since, now)

    async def _crawl_in_subprocess(self, src: SiteSource) -> FetchResult:
        """Scrapy owns its reactor, so each site crawl runs as `yuqing crawl NAME` in its own process."""
        if not self.crawl_command:
            return FetchResult(source=src.name, items=[], error="site crawling is not available in this process")
        proc = await asyncio.create_subprocess_exec(*self.crawl_command, src.name, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        limit = max(src.interval.total_seconds() * 3, CRAWL_MIN_TIMEOUT_S)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=limit)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return FetchResult(source=src.name, items=[], error=f"crawl took longer than {limit:g}s and was stopped")
        try:
            summary = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            return FetchResult(source=src.name, items=[], error=f"crawl exited {proc.returncode}: {tail[0]}")
        return FetchResult(source=src.name, items=[], error=summary.get("error"), warnings=summary.get("warnings", []),
                           pages=summary.get("pages", 0), empty_pages=summary.get("empty_pages", 0),
                           stored=summary.get("stored", 0))

    async def process_pending(self) -> ProcessOutcome:
        async with self._busy:
            total = ProcessOutcome()
            while True:
                outcome = self.process(self.clock.now())
                total.merge(outcome)
                if outcome.posts + outcome.duplicates + outcome.failed == 0:
                    break
            for item in total.scheduled:
                self.scheduler.schedule(item)
            if total.posts or total.duplicates or total.failed:
                log.info("processed: %d new post(s), %d duplicate(s), %d failed, %d incident(s) opened",
                         total.posts, total.duplicates, total.failed, total.incidents)
            await self.scheduler.dispatcher.dispatch()
            return total
