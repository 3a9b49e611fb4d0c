"""Wires the real components on a fake clock: the same pieces `yuqing run` builds, minus wall time."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from alerts.assembly import build_router
from alerts.clock import FakeClock
from alerts.deadlines import freeze_policy
from alerts.engine import AlertEngine
from alerts.notifiers.base import Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.outbox import Dispatcher, receivers_of
from alerts.scheduler import DeadlineScheduler
from alerts.service import ProcessOutcome
from classifier.classify import Classifier
from classifier.model import TextModel
from config.loader import parse_config
from config.schema import FeedSource, FetchSettings, Settings
from crawlers.feeds import poll_feed
from crawlers.neardup import NearDupIndex
from crawlers.store import store_raw
from models.db import session_scope
from pipeline import process_batch

SH = ZoneInfo("Asia/Shanghai")


class Harness:
    """One "process" of yuqing. Build a second one on the same database to simulate a restart."""

    def __init__(self, db: Engine, model: TextModel, settings: Settings, clock: FakeClock,
                 notifiers: list[Notifier] | None = None, *, time_scale: float = 1.0,
                 roster: Path | None = None) -> None:
        if roster is not None:  # a YAML file with `roster:` (and `escalation:`) sections
            extra = parse_config(roster.read_text(encoding="utf-8"), roster)
            settings = settings.model_copy(update={"roster": extra.roster, "escalation": extra.escalation})
        self.db, self.model, self.settings, self.clock = db, model, settings, clock
        self.console = io.StringIO()
        self.notifiers: list[Notifier] = notifiers if notifiers is not None else []
        self.notifiers.append(ConsoleNotifier(self.console))
        self.router = build_router(db, settings, self.notifiers, SH)
        self.engine = AlertEngine(db, receivers_of(self.notifiers), SH, router=self.router)
        self.dispatcher = Dispatcher(db, self.notifiers, clock)
        self.scheduler = DeadlineScheduler(self.engine, self.dispatcher, clock)
        self.policy = freeze_policy(settings.response, time_scale=time_scale, drill=time_scale != 1.0)
        self.neardup: NearDupIndex | None = None  # tests that exercise near-duplicates set one

    async def start(self) -> int:
        """Start paused (the fake clock drives jobs), rebuild jobs from the database, flush the outbox."""
        self.scheduler.start(paused=True)
        count = self.scheduler.reconcile()
        await self.dispatcher.dispatch()
        return count

    def stop(self) -> None:
        self.scheduler.shutdown()

    def ingest(self, feed: Path) -> int:
        result = poll_feed(FeedSource(name=feed.stem, url=str(feed)), FetchSettings(), base_dir=feed.parent,
                           now=self.clock.now())
        with session_scope(self.db) as s:
            return store_raw(s, result.items)

    async def process(self) -> ProcessOutcome:
        with session_scope(self.db) as s:
            out = process_batch(s, classifier=Classifier(self.model, self.settings), settings=self.settings,
                                engine=self.engine,
                                policy=self.policy, now=self.clock.now(), tz=SH, neardup=self.neardup)
        for item in out.scheduled:
            self.scheduler.schedule(item)
        await self.dispatcher.dispatch()
        return out

    async def advance_to(self, when: datetime) -> int:
        return await self.scheduler.run_due(self.clock, when)

    def console_messages(self) -> list[str]:
        rule = "─" * 40
        return [m.strip() for m in self.console.getvalue().split(rule) if m.strip()]
