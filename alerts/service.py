"""The long-running service (`yuqing run`): one asyncio process owning the scheduler, the source pollers,
the processing loop and the notifiers. Sources are polled once at start-up, then on their own interval.

Processing is injected (`process`), so this module holds no business rules of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine

from alerts.clock import Clock
from alerts.engine import Scheduled
from alerts.scheduler import DeadlineScheduler
from config.schema import FetchSettings, SourceSettings
from crawlers.feeds import poll_feed
from crawlers.store import store_raw
from models.db import session_scope

log = logging.getLogger(__name__)
DISPATCH_EVERY_S = 5


@dataclass
class ProcessOutcome:
    """What one processing pass did; `scheduled` are triggers for deadlines created in it."""

    posts: int = 0
    duplicates: int = 0
    failed: int = 0
    incidents: int = 0
    scheduled: list[Scheduled] = field(default_factory=list)

    def merge(self, other: ProcessOutcome) -> None:
        self.posts += other.posts
        self.duplicates += other.duplicates
        self.failed += other.failed
        self.incidents += other.incidents
        self.scheduled.extend(other.scheduled)


Process = Callable[[datetime], ProcessOutcome]


class Service:
    def __init__(
        self, *, db: Engine, sources: list[SourceSettings], fetch: FetchSettings, base_dir: Path,
        scheduler: DeadlineScheduler, process: Process, clock: Clock,
    ) -> None:
        self.db = db
        self.sources = sources
        self.fetch = fetch
        self.base_dir = base_dir
        self.scheduler = scheduler
        self.process = process
        self.clock = clock
        self._busy = asyncio.Lock()

    async def start(self) -> None:
        """Reconcile deadlines, flush the outbox left by a previous run, poll every source once."""
        self.scheduler.start()
        self.scheduler.reconcile()
        await self.scheduler.dispatcher.dispatch()
        await self.process_pending()
        for src in self.sources:
            await self.poll(src)
            self.scheduler.aps.add_job(
                self.poll, "interval", args=[src], seconds=src.interval.total_seconds(), id=f"source:{src.name}",
                replace_existing=True, max_instances=1,
            )
        self.scheduler.aps.add_job(self.scheduler.dispatcher.dispatch, "interval", seconds=DISPATCH_EVERY_S,
                                   id="dispatch", replace_existing=True, max_instances=1)

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        log.info("running; %d source(s); press Ctrl-C to stop", len(self.sources))
        await stop.wait()
        self.scheduler.shutdown()

    async def poll(self, src: SourceSettings) -> None:
        now = self.clock.now()
        result = await asyncio.to_thread(poll_feed, src, self.fetch, base_dir=self.base_dir, now=now)
        if result.error:
            log.warning("source %s: %s", src.name, result.error)
        for warning in result.warnings:
            log.warning("source %s: %s (good entries kept)", src.name, warning)
        with session_scope(self.db) as s:
            added = store_raw(s, result.items)
        log.info("source %s: %d item(s), %d new", src.name, len(result.items), added)
        if added:
            await self.process_pending()

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
