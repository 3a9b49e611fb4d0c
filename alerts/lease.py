"""One active scheduler per database: a lease row in `scheduler_lease` (name "scheduler").

The holder (`host:pid:random`) renews the lease every `ops.lease_renew`; it expires `ops.lease_ttl` after the
last renewal. Acquiring is a compare-and-set `UPDATE … WHERE name = :name AND (expires_at < :now OR holder =
:me)` (plus an INSERT the very first time, where the primary key settles a race), so on SQLite and on
PostgreSQL at most one process holds an unexpired lease. Renewing is `UPDATE … WHERE holder = :me`: once
another process has taken the lease, the old holder's renewal fails and it stops at once.

`LeaseKeeper` turns lease outcomes into the service's state: it calls `on_gain` when this process becomes
the active scheduler and `on_loss` when it stops being one (also when renewals keep failing until the last
known expiry passes, e.g. the database is unreachable: after that another process may take over).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import case, insert, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from alerts.clock import Clock
from models.db import UTCDateTime
from models.tables import SchedulerLease

log = logging.getLogger(__name__)
SCHEDULER = "scheduler"
_TABLE = SchedulerLease.__table__  # type: ignore[attr-defined]


def make_holder() -> str:
    """A holder id unique to this process: host:pid:random (a restarted process never reuses one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime

    def active(self, now: datetime) -> bool:
        return self.expires_at >= now


class LeaseState(StrEnum):
    ACTIVE = "active"  # this process holds the lease and runs the scheduler
    STANDBY = "standby"  # another process holds it (or it could not be read); this one waits


def read_lease(db: Engine, name: str = SCHEDULER) -> LeaseInfo | None:
    with db.connect() as conn:
        row = conn.execute(select(_TABLE).where(_TABLE.c.name == name)).mappings().first()
    return LeaseInfo(**row) if row is not None else None


class Lease:
    """Database operations on one named lease for one holder."""

    def __init__(self, db: Engine, *, ttl: timedelta, holder: str | None = None, name: str = SCHEDULER) -> None:
        self.db = db
        self.ttl = ttl
        self.holder = holder or make_holder()
        self.name = name

    def try_acquire(self, now: datetime) -> bool:
        """Take the lease when it is free, expired or already ours; True when this holder now has it."""
        c = _TABLE.c
        with self.db.begin() as conn:
            taken = conn.execute(
                update(_TABLE)
                .where(c.name == self.name, (c.expires_at < now) | (c.holder == self.holder))
                .values(holder=self.holder, renewed_at=now, expires_at=now + self.ttl,
                        acquired_at=case((c.holder == self.holder, c.acquired_at), else_=literal(now, UTCDateTime())))
            ).rowcount
        if taken == 1:
            return True
        try:
            with self.db.begin() as conn:
                conn.execute(insert(_TABLE).values(name=self.name, holder=self.holder, acquired_at=now,
                                                   renewed_at=now, expires_at=now + self.ttl))
        except IntegrityError:
            return False  # a row exists (held by someone else), or another process inserted it first
        return True

    def renew(self, now: datetime) -> bool:
        """Extend the lease; False when another holder has taken it (or it is gone)."""
        c = _TABLE.c
        with self.db.begin() as conn:
            return conn.execute(
                update(_TABLE).where(c.name == self.name, c.holder == self.holder)
                .values(renewed_at=now, expires_at=now + self.ttl)
            ).rowcount == 1

    def release(self, now: datetime) -> None:
        """Give the lease up (clean shutdown): a standby can take over at once instead of after the ttl."""
        c = _TABLE.c
        with self.db.begin() as conn:
            conn.execute(update(_TABLE).where(c.name == self.name, c.holder == self.holder)
                         .values(expires_at=now - timedelta(microseconds=1)))


Hook = Callable[[], Awaitable[None]]


class LeaseKeeper:
    """Drives a `Lease` one step at a time (`tick`), calling `on_gain` / `on_loss` on state changes."""

    def __init__(self, lease: Lease, clock: Clock, *, on_gain: Hook, on_loss: Hook) -> None:
        self.lease = lease
        self.clock = clock
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.state = LeaseState.STANDBY
        self.valid_until: datetime | None = None  # the expiry this process last wrote
        self._waiting_logged: str | None = None

    async def tick(self) -> LeaseState:
        now = self.clock.now()
        if self.state is LeaseState.ACTIVE:
            await self._renew(now)
        else:
            await self._acquire(now)
        return self.state

    async def _acquire(self, now: datetime) -> None:
        try:
            got = self.lease.try_acquire(now)
        except SQLAlchemyError as exc:
            log.warning("scheduler lease: cannot reach the database (%s); staying standby", exc.__class__.__name__)
            return
        if not got:
            self._log_waiting(now)
            return
        self.state, self.valid_until, self._waiting_logged = LeaseState.ACTIVE, now + self.lease.ttl, None
        log.info("scheduler lease acquired by %s (expires after %ss without renewal); this process is the "
                 "active scheduler", self.lease.holder, int(self.lease.ttl.total_seconds()))
        try:
            await self.on_gain()
        except Exception:
            log.exception("taking over as the active scheduler failed; giving the lease up and retrying")
            await self.on_loss()
            await self.release()

    async def _renew(self, now: datetime) -> None:
        try:
            if self.lease.renew(now):
                self.valid_until = now + self.lease.ttl
                return
            reason = "another process holds it now"
        except SQLAlchemyError as exc:
            if self.valid_until is not None and now < self.valid_until:
                log.warning("scheduler lease: renewal failed (%s); retrying until %s", exc.__class__.__name__,
                            self.valid_until.isoformat(timespec="seconds"))
                return
            reason = "renewals failed until it expired"
        log.error("scheduler lease lost (%s): stopping deadline jobs and dispatch; this process is a standby now",
                  reason)
        self.state, self.valid_until = LeaseState.STANDBY, None
        await self.on_loss()

    def _log_waiting(self, now: datetime) -> None:
        info = read_lease(self.lease.db, self.lease.name)
        if info is None or info.holder == self._waiting_logged:
            return
        self._waiting_logged = info.holder
        left = max(int((info.expires_at - now).total_seconds()), 0)
        log.warning("scheduler lease held by %s (expires in %ds unless renewed); this process waits as a "
                    "standby: no deadline jobs, no polling, no dispatch", info.holder, left)

    async def release(self) -> None:
        if self.state is LeaseState.ACTIVE:
            try:
                self.lease.release(self.clock.now())
                log.info("scheduler lease released by %s", self.lease.holder)
            except SQLAlchemyError as exc:
                log.warning("scheduler lease: could not release (%s); it expires on its own", exc.__class__.__name__)
            self.state, self.valid_until = LeaseState.STANDBY, None
