"""Named outcomes and states used across yuqing.

Every state and every "why" is an enum, so code, the database and messages agree on one vocabulary.
Values are stored as their string value; Chinese labels are for rendering only.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Priority categories of public opinion (舆情收集重点)."""

    MAJOR_POLICY = "MAJOR_POLICY"
    LIVELIHOOD = "LIVELIHOOD"
    GOV_IMAGE = "GOV_IMAGE"
    EMERGENCY = "EMERGENCY"
    FALSE_INFO = "FALSE_INFO"
    IRRELEVANT = "IRRELEVANT"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS: dict[Category, str] = {
    Category.MAJOR_POLICY: "重大决策部署",
    Category.LIVELIHOOD: "民生利益",
    Category.GOV_IMAGE: "政府形象公信力",
    Category.EMERGENCY: "突发事件",
    Category.FALSE_INFO: "虚假信息",
    Category.IRRELEVANT: "无关",
}


class Severity(StrEnum):
    """Emergency-plan severity scale; I is the most severe."""

    I = "I"  # noqa: E741 - the official name of the level
    II = "II"
    III = "III"
    IV = "IV"

    @property
    def label(self) -> str:
        return SEVERITY_LABELS[self]

    @property
    def rank(self) -> int:
        """1 for I (most severe) … 4 for IV."""
        return ("I", "II", "III", "IV").index(self.value) + 1

    @classmethod
    def from_rank(cls, rank: int) -> Severity:
        return cls(("I", "II", "III", "IV")[min(max(rank, 1), 4) - 1])

    def at_least(self, other: Severity) -> bool:
        """True when self is as severe as other or more."""
        return self.rank <= other.rank


SEVERITY_LABELS: dict[Severity, str] = {
    Severity.I: "特别重大",
    Severity.II: "重大",
    Severity.III: "较大",
    Severity.IV: "一般",
}


class Sentiment(StrEnum):
    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"

    @property
    def label(self) -> str:
        return {"negative": "负面", "neutral": "中性", "positive": "正面"}[self.value]


class RawPostStatus(StrEnum):
    NEW = "new"  # waiting for the pipeline
    PROCESSED = "processed"  # became a post (or a duplicate of one)
    FAILED = "failed"  # normalization failed; error recorded, row kept for re-processing


class IncidentStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ASSESSED = "assessed"
    RESPONDING = "responding"
    CLOSED = "closed"
    DISMISSED = "dismissed"

    @property
    def is_open(self) -> bool:
        return self not in (IncidentStatus.CLOSED, IncidentStatus.DISMISSED)


class DeadlineStatus(StrEnum):
    PENDING = "pending"
    MET = "met"
    MISSED = "missed"
    CANCELLED = "cancelled"


class EventKind(StrEnum):
    """What happened to an incident (append-only audit log)."""

    OPENED = "opened"
    GREW = "grew"
    SEVERITY_CHANGED = "severity_changed"
    DEADLINE_PLANNED = "deadline_planned"
    DEADLINE_MET = "deadline_met"
    DEADLINE_MISSED = "deadline_missed"
    NOTIFIED = "notified"
    ACKNOWLEDGED = "acknowledged"
    RELEASED = "released"
    CLOSED = "closed"


class NotifyReason(StrEnum):
    """Why a message is sent."""

    OPENED = "opened"  # a new incident, with its countdowns
    REMINDER = "reminder"  # a deadline approaches
    OVERDUE = "overdue"  # a deadline passed unmet
    HEALTH = "health"  # a source changed health state (to the admin channel)


class DeliveryOutcome(StrEnum):
    PENDING = "pending"  # claimed in the outbox, not yet handed to the channel
    SENT = "sent"
    FAILED = "failed"  # gave up (fatal error or retries exhausted)
    SUPERSEDED = "superseded"  # a later notice for the same deadline made this one moot


class SourceHealth(StrEnum):
    """A source's state as the health check sees it."""

    OK = "ok"
    SILENT = "silent"  # nothing new for longer than its expected period
    FAILING = "failing"  # polls keep failing (network, HTTP errors, unreadable data)
    BLOCKED = "blocked"  # pages arrive but hold no extractable article (login wall, anti-bot page, new layout)

    @property
    def label(self) -> str:
        return {"ok": "正常", "silent": "静默", "failing": "抓取失败", "blocked": "疑似被拦截"}[self.value]
