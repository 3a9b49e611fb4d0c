"""Assembly of the response engine for `yuqing run`: the duty-roster router, and the single active scheduler
(lease, audit job and heartbeat) around a `Service`. `pipeline.serve` calls these; they hold no rules."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, tzinfo

from sqlalchemy.engine import Engine

from alerts.audit import Auditor
from alerts.clock import Clock
from alerts.engine import AlertEngine
from alerts.escalation import Router
from alerts.lease import Lease, LeaseKeeper, read_lease
from alerts.notifiers.base import Notifier
from alerts.roster import people_of, sync_config
from alerts.service import Service
from config.durations import format_duration
from config.schema import Settings
from models.db import session_scope

log = logging.getLogger("yuqing")


def build_router(db: Engine, settings: Settings, notifiers: list[Notifier], tz: tzinfo) -> Router | None:
    """The duty-roster router (None without a roster: alerts go to the configured channels only); writes the
    config's shifts to the database. Says once why escalation is off."""
    with session_scope(db) as s:
        sync_config(s, settings.roster, tz)
    router = Router(people_of(settings.roster), settings.escalation, {n.name: n.format for n in notifiers}, tz)
    why = router.why_off()
    if why:
        log.info("escalation off: %s", why)
        if not router.people:
            return None
    else:
        esc = settings.escalation
        reachable = sum(1 for p in router.people.values() if router.receivers([p]))
        log.info("escalation on: %d people (%d reachable on the active channels); wait %s, repeat every %s",
                 len(router.people), reachable, format_duration(esc.wait), format_duration(esc.repeat_every))
    return router


def single_active(service: Service, engine: AlertEngine, clock: Clock, tz: tzinfo,
                  refresh: Callable[[datetime], None]) -> Lease:
    """One active scheduler per database: the service runs behind a lease (`ops.lease_*`) and, while active,
    the audit job and the heartbeat. A standby refreshes its near-duplicate index when it takes over (posts
    were processed by the other process meanwhile)."""
    ops = service.settings.ops
    lease = Lease(service.db, ttl=ops.lease_ttl)
    service.auditor = Auditor(service.db, service.scheduler, clock, admin=engine.admin, tz=tz, grace=ops.audit_grace,
                              heartbeat_at=ops.heartbeat_time, holder=lease.holder)

    started = clock.now()

    async def take_over() -> None:
        if clock.now() - started > ops.lease_renew:  # not the first attempt at start-up: the index may be stale
            refresh(clock.now())
        await service.activate()

    service.keeper = LeaseKeeper(lease, clock, on_gain=take_over, on_loss=service.deactivate)
    return lease


async def run_once(service: Service, lease: Lease, clock: Clock) -> int:
    """`run --once` sends alerts too, so it needs the scheduler lease like the service does."""
    if not lease.try_acquire(clock.now()):
        info = read_lease(lease.db)
        holder = info.holder if info is not None else "?"
        log.error("another yuqing run (%s) is the active scheduler on this database; --once did nothing", holder)
        return 1
    try:
        service.keeper = None
        await service.start()
    finally:
        service.scheduler.shutdown()
        lease.release(clock.now())
    return 0
