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
    """new → acknowledged (值班确认) → assessed (研判) → responding → released → press_held → closed.

    `dismissed` ends a false positive (with a reason); `merged` ends an incident folded into another."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ASSESSED = "assessed"
    RESPONDING = "responding"
    RELEASED = "released"  # authoritative information published (权威信息已发布)
    PRESS_HELD = "press_held"  # press conference held (新闻发布会已召开)
    CLOSED = "closed"
    DISMISSED = "dismissed"
    MERGED = "merged"

    @property
    def is_open(self) -> bool:
        return self not in (IncidentStatus.CLOSED, IncidentStatus.DISMISSED, IncidentStatus.MERGED)

    @property
    def label(self) -> str:
        return INCIDENT_STATUS_LABELS[self]


INCIDENT_STATUS_LABELS: dict[IncidentStatus, str] = {
    IncidentStatus.NEW: "待确认",
    IncidentStatus.ACKNOWLEDGED: "已确认",
    IncidentStatus.ASSESSED: "已研判",
    IncidentStatus.RESPONDING: "处置中",
    IncidentStatus.RELEASED: "已发布权威信息",
    IncidentStatus.PRESS_HELD: "已召开发布会",
    IncidentStatus.CLOSED: "已办结",
    IncidentStatus.DISMISSED: "已排除（误报）",
    IncidentStatus.MERGED: "已合并",
}


class HandlingType(StrEnum):
    """分类处置: how an incident is answered, and what must be published for it."""

    ADOPTED_SUGGESTION = "adopted_suggestion"  # 合理建议 → 采纳并公布
    REAL_DIFFICULTY = "real_difficulty"  # 实际困难 → 公布解决方案
    MAJOR_PROBLEM = "major_problem"  # 重大问题 → 公布调查结果
    CONFUSION = "confusion"  # 模糊认识 → 发布权威信息
    WRONG_VIEW = "wrong_view"  # 错误看法 → 澄清纠正
    FALSE_INFO = "false_info"  # 虚假信息 → 辟谣并移交公安机关

    @property
    def label(self) -> str:
        return HANDLING_LABELS[self][0]

    @property
    def publish(self) -> str:
        """What must be published for this type (shown as 处置建议)."""
        return HANDLING_LABELS[self][1]


HANDLING_LABELS: dict[HandlingType, tuple[str, str]] = {
    HandlingType.ADOPTED_SUGGESTION: ("合理建议", "吸纳采纳，并公开采纳情况"),
    HandlingType.REAL_DIFFICULTY: ("实际困难", "研究解决，并公开解决方案"),
    HandlingType.MAJOR_PROBLEM: ("重大问题", "调查处理，并公开调查结果"),
    HandlingType.CONFUSION: ("模糊认识", "主动发布权威信息，讲清事实"),
    HandlingType.WRONG_VIEW: ("错误看法", "及时澄清，纠正错误认识"),
    HandlingType.FALSE_INFO: ("虚假信息", "发布辟谣信息，并移交公安机关依法处理"),
}


# What an officer is advised to do before 研判, from the category (shown as 处置建议 in the opening alert):
# an emergency and a policy leave the public unsure (authoritative information), a rumour is refuted, a
# government-image matter needs its investigation published, a livelihood matter its solution.
SUGGESTED_HANDLING: dict[Category, HandlingType] = {
    Category.EMERGENCY: HandlingType.CONFUSION,
    Category.MAJOR_POLICY: HandlingType.CONFUSION,
    Category.FALSE_INFO: HandlingType.FALSE_INFO,
    Category.GOV_IMAGE: HandlingType.MAJOR_PROBLEM,
    Category.LIVELIHOOD: HandlingType.REAL_DIFFICULTY,
}


class DutyRole(StrEnum):
    """The escalation chain's rungs (值班员 → 科室负责人 → 分管领导 → 主要领导)."""

    DUTY_OFFICER = "duty_officer"
    SECTION_CHIEF = "section_chief"
    DEPUTY_LEADER = "deputy_leader"
    PRINCIPAL_LEADER = "principal_leader"

    @property
    def label(self) -> str:
        return {"duty_officer": "值班员", "section_chief": "科室负责人", "deputy_leader": "分管领导",
                "principal_leader": "主要领导"}[self.value]


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
    DEADLINE_REPLANNED = "deadline_replanned"
    NOTIFIED = "notified"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    ASSESSED = "assessed"
    RESPONDING = "responding"
    RELEASED = "released"
    PRESS_HELD = "press_held"
    UPDATE_PUBLISHED = "update_published"
    CLOSED = "closed"
    DISMISSED = "dismissed"
    MERGED = "merged"  # this incident absorbed others (detail: merged ids) or was absorbed (detail: into)
    SPLIT = "split"  # posts moved out into a new incident (detail: new id, post ids)
    HEAT_CHANGED = "heat_changed"


class NotifyReason(StrEnum):
    """Why a message is sent."""

    OPENED = "opened"  # a new incident, with its countdowns
    REMINDER = "reminder"  # a deadline approaches
    OVERDUE = "overdue"  # a deadline passed unmet
    ESCALATION = "escalation"  # nobody acknowledged: the alert climbs the chain
    UPDATE = "update"  # a lifecycle change people should know of (acknowledged, released, severity raised …)
    HEALTH = "health"  # a source changed health state (to the admin channel)
    AUDIT = "audit"  # the audit job found deadlines that passed without firing (to the admin channel)
    HEARTBEAT = "heartbeat"  # the service is alive (to the admin channel)


class DeliveryOutcome(StrEnum):
    PENDING = "pending"  # claimed in the outbox, not yet handed to the channel
    SENDING = "sending"  # handed to the channel; outcome unknown until recorded (in doubt after a crash)
    SENT = "sent"
    SILENCED = "silenced"  # matched an active silence; not sent
    BATCHED = "batched"  # folded into another delivery's message (burst to one chat); see batch_of_id
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
