"""Notify stages (pure decisions, modelled on Alertmanager's notify pipeline); the glue is alerts/outbox.py.

For each pending delivery (a `Notice`) the dispatcher asks, in order:

1. **Silence** — `silenced_by(rules, notice, now)`: the first active silence whose matchers (incident_id,
   category, severity, reason, channel; all given must match) fit. An OVERDUE notice of a severity I/II
   incident is never silenced: it reports a missed statutory deadline (5 h / 24 h) that the leaders must
   hear about, and a silence set up for noise must not hide it. Silences are judged at send time, so a
   silence added after a notice was queued still stops it; a silenced notice is not sent later.
2. **Rate limit** — `SlidingWindows`: per channel, sliding windows "COUNT per SPAN" overall, per receiver
   and (Telegram, negative chat ids) per group chat. Time is an argument; nothing sleeps: a full window
   defers the row to `free_at` and the scheduler's dispatch job sends it then.
3. **Batch** — `plan_receiver(notices, room)`: when more notices wait for one receiver than its window has
   room for, the excess is folded into one message (`batch_body`: the first excess notice's own text plus
   "【汇总】另有 N 条告警：" and one line per folded notice). Opening alerts of I/II incidents are never
   folded: each keeps its own message and buttons.
4. **Retry** — `backoff(attempts, key, retry_after)`: exponential with deterministic jitter; the channel's
   Retry-After wins when it gives one.
5. **In doubt** — `resend_body(channel, body)`: a send whose outcome is unknown (a timeout after the request
   went out, or a crash between "sending" and "sent") is resent. Channels whose receiver de-duplicates by
   Idempotency-Key (the generic webhook) get the same text with the same key; every other channel gets the
   text prefixed with "（重发，可能重复）" so an officer knows it is the same alert.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts.notifiers.limits import Limit, measure, truncate
from config.schema import RateLimitSettings, parse_rate
from models.enums import Category, NotifyReason, Severity

RESEND_MARK = "（重发，可能重复）"
IDEMPOTENT_CHANNELS = frozenset({"webhook"})  # receivers that drop a repeated Idempotency-Key
MATCHER_KEYS = ("incident_id", "category", "severity", "reason", "channel")
URGENT = frozenset({Severity.I.value, Severity.II.value})
BASE_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=10)
JITTER = 0.2  # up to 20% added to a computed backoff, so retries of many rows spread out
UNLIMITED = 1_000_000


@dataclass(frozen=True)
class Notice:
    """What the stages know about one pending delivery."""

    id: int
    channel: str
    receiver: str
    reason: str
    body: str
    incident_id: int | None = None
    category: str | None = None  # the incident's, now
    severity: str | None = None


# ------------------------------------------------------------------------------------------------ silences
@dataclass(frozen=True)
class SilenceRule:
    id: int
    matchers: dict[str, Any]
    starts_at: datetime
    ends_at: datetime
    created_by: str = ""
    comment: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def validate_matchers(matchers: dict[str, Any]) -> dict[str, Any]:
    """The matchers in canonical form, or ValueError naming the bad one. At least one is required: a silence
    of everything would hide every alert."""
    unknown = set(matchers) - set(MATCHER_KEYS)
    if unknown:
        raise ValueError(f"unknown matcher(s): {', '.join(sorted(unknown))}")
    out = {k: v for k, v in matchers.items() if v is not None}
    if not out:
        raise ValueError("a silence needs at least one matcher")
    if "incident_id" in out:
        out["incident_id"] = int(out["incident_id"])
    if "category" in out:
        out["category"] = Category(out["category"]).value
    if "severity" in out:
        out["severity"] = Severity(out["severity"]).value
    if "reason" in out:
        out["reason"] = NotifyReason(out["reason"]).value
    return out


def matches(rule: SilenceRule, notice: Notice) -> bool:
    facts: dict[str, Any] = {"incident_id": notice.incident_id, "category": notice.category,
                             "severity": notice.severity, "reason": notice.reason, "channel": notice.channel}
    return all(facts.get(key) == value for key, value in rule.matchers.items())


def unsilenceable(notice: Notice) -> bool:
    """A missed statutory deadline of a severity I/II incident always goes out."""
    return notice.reason == NotifyReason.OVERDUE.value and notice.severity in URGENT


def silenced_by(rules: list[SilenceRule], notice: Notice, now: datetime) -> SilenceRule | None:
    if unsilenceable(notice):
        return None
    return next((r for r in rules if r.active(now) and matches(r, notice)), None)


# ----------------------------------------------------------------------------------------------- rate limits
@dataclass(frozen=True)
class Window:
    count: int
    span: timedelta


@dataclass(frozen=True)
class ChannelLimits:
    overall: tuple[Window, ...] = ()
    per_receiver: tuple[Window, ...] = ()
    per_group: tuple[Window, ...] = ()

    @classmethod
    def from_settings(cls, cfg: RateLimitSettings) -> ChannelLimits:
        def windows(items: list[str]) -> tuple[Window, ...]:
            return tuple(Window(*parse_rate(item)) for item in items)

        return cls(windows(cfg.overall), windows(cfg.per_receiver), windows(cfg.per_group))

    def for_receiver(self, receiver: str) -> tuple[Window, ...]:
        return self.per_receiver + (self.per_group if is_group(receiver) else ())


def is_group(receiver: str) -> bool:
    """Telegram group and supergroup chats have negative ids."""
    return receiver.startswith("-")


class SlidingWindows:
    """Send times of one channel, overall and per receiver; how much room each window has at `now`."""

    OVERALL = "\x00overall"

    def __init__(self, limits: ChannelLimits) -> None:
        self.limits = limits
        self._log: dict[str, deque[datetime]] = {}

    def _windows(self, receiver: str | None) -> tuple[Window, ...]:
        return self.limits.overall if receiver is None else self.limits.for_receiver(receiver)

    def _times(self, receiver: str | None, now: datetime) -> deque[datetime]:
        times = self._log.setdefault(self.OVERALL if receiver is None else receiver, deque())
        longest = max((w.span for w in self._windows(receiver)), default=timedelta(0))
        while times and times[0] <= now - longest:
            times.popleft()
        return times

    def room(self, receiver: str | None, now: datetime, *, longest: bool = False) -> int:
        """How many more sends fit now (receiver None: the channel as a whole); `longest`: in the longest
        window only (how many can go out soon, once the short windows have moved on)."""
        times = self._times(receiver, now)
        windows = self._windows(receiver)
        if longest and windows:
            span = max(w.span for w in windows)
            windows = tuple(w for w in windows if w.span == span)
        rooms = [w.count - sum(1 for t in times if t > now - w.span) for w in windows]
        return max(min(rooms, default=UNLIMITED), 0)

    def free_at(self, receiver: str | None, now: datetime) -> datetime:
        """When the fullest window next has room (now, when it has room already)."""
        times = sorted(self._times(receiver, now))
        later = now
        for w in self._windows(receiver):
            inside = [t for t in times if t > now - w.span]
            if len(inside) >= w.count:
                later = max(later, inside[len(inside) - w.count] + w.span)
        return later

    def record(self, receiver: str, at: datetime) -> None:
        for key in (self.OVERALL, receiver):
            self._log.setdefault(key, deque()).append(at)


# ------------------------------------------------------------------------------------------------- batching
@dataclass(frozen=True)
class Send:
    """One message: `carrier`'s own text, plus a summary of `folded` notices when there are any."""

    carrier: Notice
    folded: tuple[Notice, ...] = ()


@dataclass(frozen=True)
class ReceiverPlan:
    sends: list[Send]
    deferred: list[Notice]  # wait until the window has room


def never_folded(notice: Notice) -> bool:
    return notice.reason == NotifyReason.OPENED.value and notice.severity in URGENT


def plan_receiver(notices: list[Notice], room: int, soon: int | None = None) -> ReceiverPlan:
    """Which of one receiver's waiting notices (oldest first) go out now, and how. `room`: sends the windows
    allow now; `soon`: sends the longest window allows (default `room`). When all the notices fit `soon`,
    up to `room` go out alone and the rest wait a moment; otherwise the excess is folded into the last free
    slot. Opening alerts of I/II incidents are never folded (they wait for room instead)."""
    soon = room if soon is None else soon
    if len(notices) <= soon or room <= 0:
        return ReceiverPlan([Send(n) for n in notices[: max(room, 0)]], list(notices[max(room, 0):]))
    urgent = [n for n in notices if never_folded(n)]
    others = [n for n in notices if not never_folded(n)]
    if len(urgent) >= room or not others:
        return ReceiverPlan([Send(n) for n in urgent[:room]], urgent[room:] + others)
    alone = urgent + others[: room - len(urgent) - 1]
    excess = others[room - len(urgent) - 1:]
    sends = [Send(n) for n in alone] + [Send(excess[0], tuple(excess[1:]))]
    return ReceiverPlan(sorted(sends, key=lambda s: s.carrier.id), [])


_TAG = re.compile(r"<[^>]*>")


def headline(body: str, fmt: str, limit: int = 80) -> str:
    """The first non-empty line of a message as plain text (tags removed, entities decoded), shortened."""
    line = next((x.strip() for x in body.splitlines() if x.strip()), "")
    if fmt == "html":
        line = html.unescape(_TAG.sub("", line))
    return truncate(line, limit)


def batch_body(send: Send, fmt: str, limit: Limit | None, margin: int = 200) -> str:
    """The carrier's text followed by "【汇总】另有 N 条告警：" and one line per folded notice, listing as
    many as fit the channel's limit (the rest are counted)."""
    body = send.carrier.body
    if not send.folded:
        return body
    esc = html.escape if fmt == "html" else str
    title = f"【汇总】另有 {len(send.folded)} 条告警："
    lines = ["", "<b>" + esc(title) + "</b>" if fmt == "html" else title]
    budget = (limit.size - margin) if limit is not None else None
    used = measure(body + "\n".join(lines), limit.unit) if limit is not None else 0
    for i, n in enumerate(send.folded, 1):
        line = esc(f"{i}. {headline(n.body, fmt)}")
        tail = esc(f"……另有 {len(send.folded) - i + 1} 条未列出")
        if budget is not None and limit is not None and used + measure(line + tail, limit.unit) + 2 > budget:
            lines.append(tail)
            break
        lines.append(line)
        used += measure(line, limit.unit) + 1 if limit is not None else 0
    return body + "\n" + "\n".join(lines)


# -------------------------------------------------------------------------------------------- retry, doubt
def backoff(attempts: int, key: str, retry_after: float | None = None) -> timedelta:
    """Wait before attempt `attempts + 1`: the channel's Retry-After when given, else 5 s · 2^(n−1) capped at
    10 min, plus up to 20% jitter derived from the delivery's key (deterministic, different per row)."""
    if retry_after is not None:
        return timedelta(seconds=max(retry_after, 0.0))
    base = min(BASE_BACKOFF * (1 << max(attempts - 1, 0)), MAX_BACKOFF)
    digest = hashlib.sha256(f"{key}:{attempts}".encode()).digest()
    return base * (1 + JITTER * digest[0] / 256)


def resend_body(channel: str, body: str) -> str:
    """The text to resend when an earlier send may have arrived (see the module docstring)."""
    if channel in IDEMPOTENT_CHANNELS or body.startswith(RESEND_MARK):
        return body
    return RESEND_MARK + body
