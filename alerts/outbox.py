"""Notification outbox (Alertmanager-style stages): enqueue with de-duplication, dispatch through the stages of
alerts/stages.py (silence, rate limit and batch, send, retry, in-doubt resend), log.

A notice is first written as one `Delivery` row per (alert key, channel, receiver) in the same transaction as
the state change that caused it; the dispatcher sends pending rows after commit and records the outcome. So a
crash loses nothing (pending rows are sent on restart) and the unique key stops a notice going out twice: the
alert key names the notice and its reason (`incident:7:opened`, `deadline:3:reminder:0`), so the same notice
enqueued again — after a restart, by a repeated job — adds nothing. Outcomes: SENT, SILENCED, BATCHED (see
`batch_of_id`), FAILED, SUPERSEDED; SENDING while a send is under way (in doubt if found at start-up).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import Clock
from alerts.notifiers.base import DeliveryError, Notifier, SendMeta
from alerts.notifiers.limits import LIMITS
from alerts.render import Message
from alerts.stages import (
    ChannelLimits,
    Notice,
    Send,
    SilenceRule,
    SlidingWindows,
    backoff,
    batch_body,
    plan_receiver,
    resend_body,
    silenced_by,
)
from config.schema import RateLimits, RateLimitSettings
from models.db import session_scope
from models.enums import DeliveryOutcome, NotifyReason
from models.tables import Delivery, Incident, Silence

log = logging.getLogger(__name__)
RETRY_FOR = timedelta(hours=6)  # a notice still undelivered this long after it was queued is given up


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
ACTIONABLE = frozenset({NotifyReason.OPENED, NotifyReason.REMINDER, NotifyReason.OVERDUE, NotifyReason.ESCALATION,
                        NotifyReason.UPDATE})


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
    """What dispatching did; every drop, silence, batch, deferral and retry is counted here."""

    sent: int = 0  # messages handed to a channel and accepted
    retrying: int = 0  # transient failures, retried later
    failed: int = 0  # fatal failures or retries exhausted
    dropped: int = 0  # the channel is not active
    silenced: int = 0  # matched an active silence
    batched: int = 0  # folded into another delivery's message
    deferred: int = 0  # a rate-limit window was full: waits for room
    in_doubt: int = 0  # may have been delivered already (timeout, crash mid-send): resent

    def add(self, other: DispatchStats) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Dispatcher:
    """Sends due deliveries through the stages of alerts/stages.py: silence, rate limit and batch, send,
    retry. Channels, and the receivers of one channel, are sent to concurrently, and a channel still busy
    with one pass is skipped by the next, so a slow or dead one delays only its own messages; one
    receiver's messages keep their order (the rest wait behind a failed one instead of hammering it).

    Safe retries: a row is marked SENDING (committed) before its send and SENT (with the channel's message
    id) after. A row found SENDING when a dispatcher starts was interrupted by a crash, so it may or may not
    have arrived; a send that timed out is in the same doubt. Such a row is resent: to the webhook with the
    same Idempotency-Key (its receiver drops the repeat), to every other channel once more with
    "（重发，可能重复）" in front, so an officer recognises the repeat; each is logged and counted (in_doubt).
    """

    def __init__(self, db: Engine, notifiers: list[Notifier], clock: Clock,
                 rate_limits: RateLimits | None = None, retry_for: timedelta = RETRY_FOR) -> None:
        """`rate_limits`: per-channel windows (None: unlimited); `retry_for`: how long transient failures are
        retried before a delivery is given up (backoff is capped at 10 minutes, so a channel that comes back
        gets its messages within minutes)."""
        self._db = db
        self._retry_for = retry_for
        self._notifiers = {n.name: n for n in notifiers}
        self._clock = clock
        self._busy: set[str] = set()  # channels a dispatch pass is sending on
        cfg = rate_limits or RateLimits(**{f: RateLimitSettings() for f in RateLimits.model_fields})
        self._windows = {n: SlidingWindows(ChannelLimits.from_settings(getattr(cfg, n, RateLimitSettings())))
                         for n in self._notifiers}
        self._started = False
        self._rows: dict[int, Delivery] = {}  # the rows of the passes under way
        self._silences: list[SilenceRule] = []
        self._logged: set[tuple[str, str]] = set()
        self.totals = DispatchStats()

    @property
    def busy(self) -> frozenset[str]:
        """Channels a dispatch pass is sending on right now (a stuck one stays here while it hangs)."""
        return frozenset(self._busy)

    async def dispatch(self) -> DispatchStats:
        """Send what is due now. Passes may overlap (the dispatch job, a fired deadline, a processing batch):
        a channel still busy with an earlier pass is left to it, so a stalled channel holds up no one else."""
        now = self._clock.now()
        stats = DispatchStats()
        if not self._started:
            self._start(now, stats)
        notices = [n for n in self._due(now) if not self._silence(n, now, stats)]
        by_channel: dict[str, list[Notice]] = defaultdict(list)
        for n in notices:
            by_channel[n.channel].append(n)
        self._busy |= set(by_channel)
        await asyncio.gather(*(self._send_channel(ch, items, now, stats) for ch, items in by_channel.items()))
        self.totals.add(stats)
        return stats

    # -- start-up: in-doubt rows and the rate windows of the previous run ----------------------------------
    def _start(self, now: datetime, stats: DispatchStats) -> None:
        longest = max((w.span for sw in self._windows.values()
                       for w in sw.limits.overall + sw.limits.per_receiver + sw.limits.per_group),
                      default=timedelta(0))
        with session_scope(self._db) as s:
            for row in s.exec(select(Delivery).where(Delivery.outcome == DeliveryOutcome.SENDING)).all():
                log.warning("delivery %s to %s:%s was interrupted mid-send; resending (it may arrive twice)",
                            row.alert_key, row.channel, row.receiver)
                row.body = resend_body(row.channel, row.body or "")
                row.outcome, row.next_attempt_at = DeliveryOutcome.PENDING, None
                stats.in_doubt += 1
            if longest:
                recent = s.exec(select(Delivery.channel, Delivery.receiver, Delivery.sent_at)
                                .where(Delivery.outcome == DeliveryOutcome.SENT)
                                .where(col(Delivery.sent_at) > now - longest)).all()
                for channel, receiver, at in recent:
                    if channel in self._windows and at is not None:
                        self._windows[channel].record(receiver, at)
        self._started = True

    def _due(self, now: datetime) -> list[Notice]:
        """The deliveries due now (oldest first), with their incident's current category and severity, and the
        silences active now."""
        query = (select(Delivery).where(Delivery.outcome == DeliveryOutcome.PENDING)
                 .where(or_(col(Delivery.next_attempt_at).is_(None), col(Delivery.next_attempt_at) <= now)))
        if self._busy:
            query = query.where(col(Delivery.channel).not_in(self._busy))
        with session_scope(self._db) as s:
            rows = s.exec(query.order_by(col(Delivery.id)).limit(1000)).all()
            ids = {r.incident_id for r in rows if r.incident_id is not None}
            facts: dict[int | None, tuple[str | None, str | None]] = {}
            if ids:
                found = select(Incident.id, Incident.category, Incident.severity).where(col(Incident.id).in_(ids))
                facts = {i: (c, v) for i, c, v in s.exec(found)}
            silences = s.exec(select(Silence).where(col(Silence.starts_at) <= now).where(col(Silence.ends_at) > now))
            self._silences = [SilenceRule(r.id or 0, r.matchers, r.starts_at, r.ends_at, r.created_by, r.comment)
                              for r in silences]
        self._rows.update({r.id: r for r in rows if r.id is not None})
        return [Notice(r.id or 0, r.channel, r.receiver, r.reason, r.body or "", r.incident_id,
                       *facts.get(r.incident_id, (None, None))) for r in rows]

    def _silence(self, n: Notice, now: datetime, stats: DispatchStats) -> bool:
        rule = silenced_by(self._silences, n, now)
        if rule is None:
            return False
        self._once("silence", str(rule.id), "silence #%d (%s: %s) holds back notices; first: %s to %s:%s",
                   rule.id, rule.created_by, rule.comment, self._rows[n.id].alert_key, n.channel, n.receiver)
        self._update([n.id], outcome=DeliveryOutcome.SILENCED, error=f"silence #{rule.id}")
        self._rows.pop(n.id, None)
        stats.silenced += 1
        return True

    # -- sending -------------------------------------------------------------------------------------------
    async def _send_channel(self, channel: str, notices: list[Notice], now: datetime, stats: DispatchStats) -> None:
        try:
            notifier = self._notifiers.get(channel)
            if notifier is None:
                self._once("inactive", channel, "channel %r is not active; its deliveries are dropped", channel)
                self._update([n.id for n in notices], outcome=DeliveryOutcome.FAILED,
                             error=f"channel {channel!r} is not active")
                stats.dropped += len(notices)
                return
            by_receiver: dict[str, list[Notice]] = defaultdict(list)
            for n in notices:
                by_receiver[n.receiver].append(n)
            await asyncio.gather(*(self._send_receiver(notifier, r, items, now, stats)
                                   for r, items in by_receiver.items()))
        finally:
            for n in notices:
                self._rows.pop(n.id, None)
            self._busy.discard(channel)

    async def _send_receiver(self, notifier: Notifier, receiver: str, notices: list[Notice], now: datetime,
                             stats: DispatchStats) -> None:
        windows = self._windows[notifier.name]
        plan = plan_receiver(notices, windows.room(receiver, now), windows.room(receiver, now, longest=True))
        self._defer(plan.deferred, windows.free_at(receiver, now), stats, "receiver")
        for i, send in enumerate(plan.sends):
            if windows.room(None, now) <= 0:
                rest = [n for later in plan.sends[i:] for n in (later.carrier, *later.folded)]
                self._defer(rest, windows.free_at(None, now), stats, "channel")
                return
            windows.record(receiver, now)
            retry_at = await self._deliver(notifier, send, stats)
            if retry_at is not None:  # hold the rest of this receiver's queue behind the failed one
                self._update([n.id for later in plan.sends[i + 1:] for n in (later.carrier, *later.folded)]
                             + [n.id for n in send.folded], next_attempt_at=retry_at)
                return

    async def _deliver(self, notifier: Notifier, send: Send, stats: DispatchStats) -> datetime | None:
        """Send one message; returns when to retry after a transient failure, else None."""
        row = self._rows[send.carrier.id]
        body = batch_body(send, notifier.format, LIMITS.get(notifier.name))
        if not self._claim(row):
            self._once("claimed", f"{row.channel}:{row.receiver}", "delivery %s to %s:%s was taken by another "
                       "dispatcher (scheduler hand-over); not sent here", row.alert_key, row.channel, row.receiver)
            return None
        try:
            external = await notifier.send(row.receiver, body, send_meta(row))
        except DeliveryError as exc:
            return self._failed(row, exc, stats)
        now = self._clock.now()
        self._update([row.id or 0], outcome=DeliveryOutcome.SENT, error=None, sent_at=now, external_id=external)
        stats.sent += 1
        if send.folded:
            self._once("batch", f"{row.channel}:{row.receiver}", "burst to %s:%s: %d notice(s) folded into one",
                       row.channel, row.receiver, len(send.folded))
            self._update([n.id for n in send.folded], outcome=DeliveryOutcome.BATCHED, batch_of_id=row.id,
                         sent_at=now)
            stats.batched += len(send.folded)
        return None

    def _failed(self, row: Delivery, exc: DeliveryError, stats: DispatchStats) -> datetime | None:
        attempts = row.attempts  # this attempt included (counted when the row was marked SENDING)
        if exc.fatal or self._clock.now() - row.created_at >= self._retry_for:
            log.warning("delivery %s to %s:%s failed for good: %s", row.alert_key, row.channel, row.receiver, exc)
            self._update([row.id or 0], outcome=DeliveryOutcome.FAILED, error=str(exc))
            stats.failed += 1
            return None
        retry_at = self._clock.now() + backoff(attempts, row.idempotency_key or row.alert_key, exc.retry_after)
        changes: dict[str, object] = {"outcome": DeliveryOutcome.PENDING, "error": str(exc),
                                      "next_attempt_at": retry_at}
        if exc.maybe_delivered:
            log.warning("delivery %s to %s:%s may have arrived (%s); it will be resent as such",
                        row.alert_key, row.channel, row.receiver, exc)
            changes["body"] = resend_body(row.channel, row.body or "")
            stats.in_doubt += 1
        else:
            self._once("retry", f"{row.channel}:{row.receiver}", "delivery %s to %s:%s will be retried: %s",
                       row.alert_key, row.channel, row.receiver, exc)
        self._update([row.id or 0], **changes)
        stats.retrying += 1
        return retry_at

    def _defer(self, notices: list[Notice], until: datetime, stats: DispatchStats, scope: str) -> None:
        if not notices:
            return
        n = notices[0]
        self._once("defer", f"{n.channel}:{scope}", "rate limit of %s (%s) reached; messages wait until %s",
                   n.channel, scope, until.isoformat())
        self._update([x.id for x in notices], next_attempt_at=until)
        stats.deferred += len(notices)

    # -- helpers -------------------------------------------------------------------------------------------
    def _claim(self, row: Delivery) -> bool:
        """pending → sending, in one conditional UPDATE: of two dispatchers on one database (a lease hand-over)
        only one wins a row. Counts the attempt."""
        with session_scope(self._db) as s:
            result = s.execute(update(Delivery).where(col(Delivery.id) == row.id)
                               .where(col(Delivery.outcome) == DeliveryOutcome.PENDING.value)
                               .values(outcome=DeliveryOutcome.SENDING.value, attempts=row.attempts + 1))
            won = bool(getattr(result, "rowcount", 0) == 1)
        if won:
            row.outcome, row.attempts = DeliveryOutcome.SENDING, row.attempts + 1
        return won

    def _update(self, ids: list[int], **changes: object) -> None:
        """Apply `changes` to the rows `ids` in one committed transaction (and to the loaded copies)."""
        if not ids:
            return
        with session_scope(self._db) as s:
            for row_id in ids:
                db_row = s.get(Delivery, row_id)
                if db_row is not None:
                    for name, value in changes.items():
                        setattr(db_row, name, value)
                loaded = self._rows.get(row_id)
                if loaded is not None:
                    for name, value in changes.items():
                        setattr(loaded, name, value)

    def _once(self, kind: str, key: str, message: str, *args: object) -> None:
        """Log the first occurrence of (kind, key) in this process; the rest are only counted."""
        if (kind, key) not in self._logged:
            self._logged.add((kind, key))
            log.warning(message, *args)
