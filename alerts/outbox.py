"""Notification outbox (Alertmanager-style stages): enqueue with de-duplication, dispatch with retries, log.

A notice is first written as one `Delivery` row per (alert key, channel, receiver) in the same transaction as
the state change that caused it; the dispatcher sends pending rows after commit and records the outcome. So a
crash loses nothing (pending rows are sent on restart) and the unique key stops a notice going out twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import Clock
from alerts.notifiers.base import DeliveryError, Notifier, SendMeta
from alerts.render import Message
from models.db import session_scope
from models.enums import DeliveryOutcome, NotifyReason
from models.tables import Delivery

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(minutes=10)


@dataclass(frozen=True)
class Receiver:
    channel: str
    receiver: str
    format: str  # "text" or "html"
    person: str | None = None  # the roster person this reaches (None: a configured group or address)
    mention: str | None = None  # a mobile to @-mention in a group robot's message


def receivers_of(notifiers: list[Notifier]) -> list[Receiver]:
    return [Receiver(n.name, r, n.format) for n in notifiers for r in n.receivers()]


def admin_receivers(notifiers: list[Notifier], telegram_admin_chats: list[int]) -> list[Receiver]:
    """Who gets operational alerts (source health): the console, and the admin chats when configured."""
    out = []
    for r in receivers_of(notifiers):
        if r.channel == "telegram" and telegram_admin_chats:
            continue
        out.append(r)
    if telegram_admin_chats and any(n.name == "telegram" for n in notifiers):
        out += [Receiver("telegram", str(c), "html") for c in telegram_admin_chats]
    return out


def enqueue(
    session: Session,
    *,
    alert_key: str,
    reason: NotifyReason,
    message: Message,
    receivers: list[Receiver],
    now: datetime,
    incident_id: int | None = None,
    deadline_id: int | None = None,
    not_before: datetime | None = None,
) -> int:
    """Add a pending delivery for each receiver that does not have this alert key yet. Does not commit.

    Receivers naming the same (channel, receiver) become one delivery: its `person` lists the people it
    reaches, and a group robot's text ends with a line of their @-mentions. `not_before` holds it back
    (quiet hours) by setting `next_attempt_at`."""
    have = set(session.exec(select(Delivery.channel, Delivery.receiver).where(Delivery.alert_key == alert_key)).all())
    merged: dict[tuple[str, str], list[Receiver]] = {}
    for r in receivers:
        merged.setdefault((r.channel, r.receiver), []).append(r)
    added = 0
    for (channel, receiver), group in merged.items():
        if (channel, receiver) in have:
            continue
        body = message.html if group[0].format == "html" else message.text
        mentions = list(dict.fromkeys(r.mention for r in group if r.mention))
        if mentions:
            body += "\n" + " ".join(f"@{m}" for m in mentions)
        people = "、".join(dict.fromkeys(r.person for r in group if r.person))
        session.add(
            Delivery(
                alert_key=alert_key, channel=channel, receiver=receiver, reason=reason.value,
                incident_id=incident_id, deadline_id=deadline_id, body=body, created_at=now,
                idempotency_key=idempotency_key(alert_key, channel, receiver), person=people[:100] or None,
                next_attempt_at=not_before,
            )
        )
        added += 1
    return added


def idempotency_key(alert_key: str, channel: str, receiver: str) -> str:
    """Stable for one delivery: the same on every retry, different for every (alert, channel, receiver)."""
    return hashlib.sha256(f"{alert_key}\x1f{channel}\x1f{receiver}".encode()).hexdigest()[:32]


# Reasons whose message is about one incident an officer can act on (buttons where the channel has them).
ACTIONABLE = frozenset({NotifyReason.OPENED, NotifyReason.REMINDER, NotifyReason.OVERDUE, NotifyReason.ESCALATION})


def send_meta(row: Delivery) -> SendMeta:
    return SendMeta(
        incident_id=row.incident_id, alert_key=row.alert_key, reason=row.reason,
        idempotency_key=row.idempotency_key or idempotency_key(row.alert_key, row.channel, row.receiver),
        actions=row.incident_id is not None and row.reason in ACTIONABLE,
    )


def record_superseded(session: Session, *, alert_key: str, reason: NotifyReason, now: datetime,
                      incident_id: int | None, deadline_id: int | None) -> None:
    """Log a notice that was due but made moot by a later one (e.g. after downtime); nothing is sent."""
    exists = session.exec(select(Delivery.id).where(Delivery.alert_key == alert_key)).first()
    if exists is None:
        session.add(
            Delivery(
                alert_key=alert_key, channel="-", receiver="-", reason=reason.value, incident_id=incident_id,
                deadline_id=deadline_id, outcome=DeliveryOutcome.SUPERSEDED, created_at=now,
            )
        )


@dataclass
class DispatchStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


class Dispatcher:
    """Sends pending deliveries. Channels are sent to concurrently, so a slow or dead one delays only itself."""

    def __init__(self, db: Engine, notifiers: list[Notifier], clock: Clock) -> None:
        self._db = db
        self._notifiers = {n.name: n for n in notifiers}
        self._clock = clock
        self._lock = asyncio.Lock()

    async def dispatch(self) -> DispatchStats:
        async with self._lock:
            now = self._clock.now()
            with session_scope(self._db) as s:
                rows = s.exec(
                    select(Delivery)
                    .where(Delivery.outcome == DeliveryOutcome.PENDING)
                    .where(or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now))
                    .order_by(col(Delivery.id))
                    .limit(1000)
                ).all()
            by_channel: dict[str, list[Delivery]] = defaultdict(list)
            for row in rows:
                by_channel[row.channel].append(row)
            stats = DispatchStats()
            await asyncio.gather(*(self._send_channel(ch, items, stats) for ch, items in by_channel.items()))
            return stats

    async def _send_channel(self, channel: str, rows: list[Delivery], stats: DispatchStats) -> None:
        notifier = self._notifiers.get(channel)
        for row in rows:
            if notifier is None:
                self._finish(row, DeliveryOutcome.FAILED, f"channel {channel!r} is not active", stats)
                continue
            try:
                await notifier.send(row.receiver, row.body or "", send_meta(row))
            except DeliveryError as exc:
                self._failed(row, exc, stats)
                if not exc.fatal:
                    break  # keep this channel's order; the rest wait for the retry
            else:
                self._finish(row, DeliveryOutcome.SENT, None, stats)

    def _failed(self, row: Delivery, exc: DeliveryError, stats: DispatchStats) -> None:
        attempts = row.attempts + 1
        if exc.fatal or attempts >= MAX_ATTEMPTS:
            log.warning("delivery %s to %s:%s failed for good: %s", row.alert_key, row.channel, row.receiver, exc)
            self._finish(row, DeliveryOutcome.FAILED, str(exc), stats)
            return
        delay = timedelta(seconds=exc.retry_after) if exc.retry_after else min(
            timedelta(seconds=5 * 2 ** (attempts - 1)), MAX_BACKOFF
        )
        if attempts == 1:
            log.warning("delivery %s to %s:%s will be retried: %s", row.alert_key, row.channel, row.receiver, exc)
        with session_scope(self._db) as s:
            db_row = s.get(Delivery, row.id)
            if db_row is not None:
                db_row.attempts = attempts
                db_row.error = str(exc)
                db_row.next_attempt_at = self._clock.now() + delay
        stats.retrying += 1

    def _finish(self, row: Delivery, outcome: DeliveryOutcome, error: str | None, stats: DispatchStats) -> None:
        with session_scope(self._db) as s:
            db_row = s.get(Delivery, row.id)
            if db_row is not None:
                db_row.outcome = outcome
                db_row.attempts = row.attempts + 1
                db_row.error = error
                if outcome is DeliveryOutcome.SENT:
                    db_row.sent_at = self._clock.now()
        if outcome is DeliveryOutcome.SENT:
            stats.sent += 1
        else:
            stats.failed += 1
