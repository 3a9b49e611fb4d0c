"""One active scheduler per database: the lease is a compare-and-set on `scheduler_lease`; a second scheduler on
the same database is a standby with no jobs, takes over (and rebuilds the deadline jobs) once the lease
expired, and the old holder stops at once when it finds the lease gone. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from alerts.audit import Auditor
from alerts.clock import FakeClock
from alerts.lease import Lease, LeaseKeeper, LeaseState, read_lease
from alerts.service import ProcessOutcome, Service
from classifier.model import TextModel
from config.schema import Settings
from tests.conftest import FIXTURES
from tests.harness import SH, Harness

T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)
TTL = timedelta(seconds=30)
FEED = FIXTURES / "feeds" / "mine_collapse.xml"


def test_only_one_holder_until_the_lease_expires(db: Engine) -> None:
    a, b = Lease(db, ttl=TTL, holder="host-a:1:aa"), Lease(db, ttl=TTL, holder="host-b:2:bb")
    assert a.try_acquire(T0) and not b.try_acquire(T0)
    assert a.try_acquire(T0 + timedelta(seconds=5))  # re-acquiring one's own lease extends it
    assert a.renew(T0 + timedelta(seconds=20))
    assert not b.try_acquire(T0 + timedelta(seconds=45))  # renewed at 20 s: valid until 50 s
    assert b.try_acquire(T0 + timedelta(seconds=51))
    assert not a.renew(T0 + timedelta(seconds=52))  # the old holder learns it lost the lease
    info = read_lease(db)
    assert info is not None and info.holder == "host-b:2:bb"
    assert info.acquired_at == T0 + timedelta(seconds=51) and info.expires_at == T0 + timedelta(seconds=81)


def test_release_lets_a_standby_take_over_at_once(db: Engine) -> None:
    a, b = Lease(db, ttl=TTL), Lease(db, ttl=TTL)
    assert a.holder != b.holder
    assert a.try_acquire(T0)
    a.release(T0 + timedelta(seconds=1))
    assert b.try_acquire(T0 + timedelta(seconds=1))
    info = read_lease(db)
    assert info is not None and info.holder == b.holder and info.active(T0 + timedelta(seconds=2))


@pytest.mark.parametrize("expired_row", [False, True], ids=["first-insert", "expired-update"])
def test_racing_acquirers_get_exactly_one_lease(db: Engine, expired_row: bool) -> None:
    if expired_row:
        old = Lease(db, ttl=TTL, holder="dead:1:00")
        assert old.try_acquire(T0 - timedelta(minutes=5))
    leases = [Lease(db, ttl=TTL, holder=f"racer:{i}:00") for i in range(6)]
    barrier = threading.Barrier(len(leases))
    results: dict[str, bool] = {}

    def race(lease: Lease) -> None:
        barrier.wait()
        results[lease.holder] = lease.try_acquire(T0)

    threads = [threading.Thread(target=race, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    winners = [holder for holder, won in results.items() if won]
    assert len(results) == len(leases) and len(winners) == 1
    info = read_lease(db)
    assert info is not None and info.holder == winners[0]


class Node:
    """One `yuqing run` process on the fake clock: a Service with its own scheduler and a lease keeper."""

    def __init__(self, db: Engine, model: TextModel, settings: Settings, clock: FakeClock, name: str) -> None:
        self.harness = Harness(db, model, settings, clock)
        self.harness.scheduler.start(paused=True)  # jobs exist, only run_due would run them
        sched = self.harness.scheduler
        auditor = Auditor(db, sched, clock, admin=self.harness.engine.admin, tz=SH,
                          grace=settings.ops.audit_grace, heartbeat_at=None, holder=name)
        self.service = Service(db=db, sources=[], settings=settings, base_dir=Path("."), scheduler=sched,
                               process=lambda now: ProcessOutcome(), clock=clock, auditor=auditor)
        self.keeper = LeaseKeeper(Lease(db, ttl=TTL, holder=name), clock, on_gain=self.service.activate,
                                  on_loss=self.service.deactivate)
        self.service.keeper = self.keeper

    def jobs(self) -> set[str]:
        return {job.id for job in self.harness.scheduler.aps.get_jobs()}

    def deadline_jobs(self) -> set[str]:
        return {j for j in self.jobs() if j.startswith("deadline:")}


def test_standby_runs_nothing_and_takes_over_after_expiry(db: Engine, model: TextModel, settings: Settings) -> None:
    clock = FakeClock(T0)

    async def scenario() -> None:
        a = Node(db, model, settings, clock, "host-a:1:aa")
        assert await a.keeper.tick() is LeaseState.ACTIVE
        a.harness.ingest(FEED)
        await a.harness.process()  # an incident with two deadlines, scheduled on the active node
        assert len(a.deadline_jobs()) == 2 and {"dispatch", "audit", "process"} <= a.jobs()

        b = Node(db, model, settings, clock, "host-b:2:bb")
        assert await b.keeper.tick() is LeaseState.STANDBY
        assert b.jobs() == set()  # a standby: no deadline jobs, no polling, no dispatch, no audit

        clock.advance(timedelta(seconds=10))
        assert await a.keeper.tick() is LeaseState.ACTIVE  # renewed: valid 30 s from now
        clock.advance(timedelta(seconds=25))
        assert await b.keeper.tick() is LeaseState.STANDBY and b.jobs() == set()

        clock.advance(timedelta(seconds=10))  # a stopped renewing (hung, or the machine died): expired
        assert await b.keeper.tick() is LeaseState.ACTIVE
        assert b.deadline_jobs() == a.deadline_jobs()  # reconcile rebuilt every trigger from the database

        assert await a.keeper.tick() is LeaseState.STANDBY  # renewal fails: a stops everything at once
        assert a.jobs() == set()
        a.harness.stop()
        b.harness.stop()

    asyncio.run(scenario())


def test_clean_stop_hands_over_without_waiting(db: Engine, model: TextModel, settings: Settings) -> None:
    clock = FakeClock(T0)

    async def scenario() -> None:
        a = Node(db, model, settings, clock, "host-a:1:aa")
        b = Node(db, model, settings, clock, "host-b:2:bb")
        assert await a.keeper.tick() is LeaseState.ACTIVE
        assert await b.keeper.tick() is LeaseState.STANDBY
        await a.keeper.release()  # what `yuqing run` does on SIGTERM
        assert await b.keeper.tick() is LeaseState.ACTIVE
        a.harness.stop()
        b.harness.stop()

    asyncio.run(scenario())


def test_status_command_names_the_holder(db: Engine, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import main

    monkeypatch.setenv("YUQING_DATABASE_URL", db.url.render_as_string(hide_password=False))
    assert main(["status"]) == 1  # nobody ever held the lease
    assert "调度租约：无" in capsys.readouterr().out
    now = datetime.now(UTC)
    Lease(db, ttl=TTL, holder="host-a:1:aa").try_acquire(now)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "调度租约：host-a:1:aa" in out and "最近续约" in out and "待到期时限：0 个" in out
    Lease(db, ttl=TTL, holder="host-a:1:aa").release(now)
    assert main(["status", "--json"]) == 1
    assert '"active": false' in capsys.readouterr().out


def test_failed_take_over_gives_the_lease_back(db: Engine) -> None:
    clock = FakeClock(T0)
    calls: list[str] = []

    async def gain() -> None:
        calls.append("gain")
        if len(calls) == 1:
            raise RuntimeError("reconcile failed")  # e.g. the database went away half-way

    async def loss() -> None:
        calls.append("loss")

    async def scenario() -> None:
        keeper = LeaseKeeper(Lease(db, ttl=TTL, holder="host-a:1:aa"), clock, on_gain=gain, on_loss=loss)
        assert await keeper.tick() is LeaseState.STANDBY
        info = read_lease(db)
        assert info is not None and not info.active(clock.now())  # released: another node may take over now
        clock.advance(timedelta(seconds=10))
        assert await keeper.tick() is LeaseState.ACTIVE

    asyncio.run(scenario())
    assert calls == ["gain", "loss", "gain"]
