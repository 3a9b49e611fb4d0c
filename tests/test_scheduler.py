"""Restart safety: deadlines live in the database; a new scheduler instance on the same database rebuilds
every trigger, fires what came due while it was down once, and sends nothing twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.clock import FakeClock
from classifier.classify import Classifier
from classifier.model import TextModel
from config.schema import Settings
from models.enums import DeliveryOutcome
from models.tables import Deadline, Delivery
from tests.conftest import FIXTURES
from tests.harness import Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)
H = timedelta(hours=1)
FEED = FIXTURES / "feeds" / "mine_collapse.xml"


def _first_life(db: Engine, model: TextModel, settings: Settings, until: datetime) -> Harness:
    h = Harness(db, model, settings, FakeClock(T0))

    async def life() -> None:
        await h.start()
        h.ingest(FEED)
        await h.process()
        await h.advance_to(until)
        h.stop()  # the process dies here: in-memory jobs are gone

    asyncio.run(life())
    return h


def _second_life(db: Engine, model: TextModel, settings: Settings, restart_at: datetime, until: datetime) -> Harness:
    h = Harness(db, model, settings, FakeClock(restart_at))

    async def life() -> None:
        assert await h.start() == 2  # both pending deadlines rebuilt from the database
        await h.advance_to(until)
        h.stop()

    asyncio.run(life())
    return h


def _headlines(*harnesses: Harness) -> list[str]:
    return [m.splitlines()[0][:12] for h in harnesses for m in h.console_messages()]


def test_restart_between_reminders_loses_nothing_and_repeats_nothing(db: Engine, model: TextModel,
                                                                     settings: Settings) -> None:
    first = _first_life(db, model, settings, T0 + 4.2 * H)  # opening + 4 h reminder sent
    assert len(first.console_messages()) == 2
    second = _second_life(db, model, settings, T0 + 4.3 * H, T0 + 25 * H)
    msgs = second.console_messages()
    assert len(msgs) == 5  # 4.5 h reminder, overdue, then the press-conference clock: 2 reminders + overdue
    assert "还剩 30分" in msgs[0] and "权威信息发布 已超时" in msgs[1]
    with Session(db) as s:
        keys = [d.alert_key for d in s.exec(select(Delivery)).all()]
    assert len(keys) == len(set(keys)) == 7


def test_notice_due_while_down_fires_once_at_restart(db: Engine, model: TextModel, settings: Settings) -> None:
    _first_life(db, model, settings, T0 + 3 * H)
    second = _second_life(db, model, settings, T0 + 4.1 * H, T0 + 4.1 * H)
    [msg] = second.console_messages()
    assert msg.startswith("【提醒】") and "还剩 54分" in msg  # the countdown is right at the restart time


def test_long_outage_sends_only_the_latest_notice(db: Engine, model: TextModel, settings: Settings) -> None:
    _first_life(db, model, settings, T0 + H)
    second = _second_life(db, model, settings, T0 + 6 * H, T0 + 6 * H)
    [msg] = second.console_messages()
    assert msg.startswith("【超时】权威信息发布 已超时")
    with Session(db) as s:
        superseded = s.exec(select(Delivery).where(Delivery.outcome == DeliveryOutcome.SUPERSEDED)).all()
        assert len(superseded) == 2  # the two release reminders are logged, not sent
        release = s.exec(select(Deadline).where(Deadline.kind == "release_5h")).one()
        assert release.status == "missed"


def test_claimed_but_unsent_notice_is_sent_after_restart(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    h.ingest(FEED)
    from models.db import session_scope
    from pipeline import process_batch

    with session_scope(db) as s:  # the batch commits, then the process dies before dispatching
        process_batch(s, classifier=Classifier(model, settings), settings=settings, engine=h.engine, policy=h.policy,
                      now=T0, tz=h.engine.tz)
    assert h.console_messages() == []
    second = _second_life(db, model, settings, T0 + timedelta(minutes=1), T0 + timedelta(minutes=1))
    [msg] = second.console_messages()
    assert msg.startswith("【特别重大舆情】")


def test_firing_twice_is_a_no_op(db: Engine, model: TextModel, settings: Settings) -> None:
    h = _first_life(db, model, settings, T0)
    with Session(db) as s:
        d = s.exec(select(Deadline).where(Deadline.kind == "release_5h")).one()
    assert d.id is not None
    first = h.engine.fire(d.id, d.token, T0 + 4 * H)
    assert first is not None
    assert h.engine.fire(d.id, d.token, T0 + 4 * H) != []  # same answer, nothing new queued
    assert h.engine.fire(d.id, d.token + 1, T0 + 5 * H) == []  # a stale token does nothing
    with Session(db) as s:
        assert len(s.exec(select(Delivery).where(Delivery.deadline_id == d.id)).all()) == 1
