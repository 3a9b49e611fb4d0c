"""SQLModel tables: the data types of ARCHITECTURE.md as rows.

All datetimes are timezone-aware UTC (`UTCDateTime`). Enums are stored as their string values.
Rows are created by the pipeline and alert engine; crawlers only insert `RawPost`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.db import UTCDateTime
from models.enums import DeadlineStatus, DeliveryOutcome, IncidentStatus, RawPostStatus, SourceHealth


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class RawPost(SQLModel, table=True):
    """Untrusted crawler output, one row per (source, url). Kept even when processing fails."""

    __tablename__ = "raw_post"
    __table_args__ = (UniqueConstraint("source", "url", name="uq_raw_post_source_url"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=100, index=True)
    url: str = Field(max_length=2000)
    fetched_at: datetime = _utc()
    payload: dict[str, Any] = _json()
    status: str = Field(default=RawPostStatus.NEW, max_length=16, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    processed_at: datetime | None = _utc(nullable=True)
    post_id: int | None = Field(default=None, foreign_key="post.id", index=True)


class Post(SQLModel, table=True):
    """A normalized post. Exact duplicates add to `spread_count` of the first copy instead of a new row."""

    __tablename__ = "post"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=100, index=True)
    url: str = Field(max_length=2000)
    url_key: str = Field(default="", max_length=2000, index=True)  # mobile/desktop and scheme folded together
    title: str = Field(default="", sa_column=Column(Text, nullable=False))
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str | None = Field(default=None, max_length=200)
    published_at: datetime | None = _utc(nullable=True)
    fetched_at: datetime = _utc(index=True)
    fingerprint: str = Field(max_length=64, unique=True)
    signature: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))  # near-dup sketch
    duplicate_of_id: int | None = Field(default=None, foreign_key="post.id")
    spread_count: int = 1
    metrics: dict[str, Any] = _json()
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)


class Classification(SQLModel, table=True):
    """One model's verdict on one post. A new model version adds rows; nothing is overwritten."""

    __tablename__ = "classification"
    __table_args__ = (UniqueConstraint("post_id", "model_version", name="uq_classification_post_model"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    model_version: str = Field(max_length=64)
    relevance: float
    category: str = Field(max_length=16, index=True)
    category_scores: dict[str, Any] = _json()
    severity: str | None = Field(default=None, max_length=4)
    sentiment: str = Field(max_length=16)
    explanation: dict[str, Any] = _json()
    created_at: datetime = _utc()


class Incident(SQLModel, table=True):
    """A cluster of posts about one event. `policy` is the deadline rule pack frozen at opening."""

    __tablename__ = "incident"

    id: int | None = Field(default=None, primary_key=True)
    group_key: str = Field(max_length=128, unique=True)
    title: str = Field(sa_column=Column(Text, nullable=False))
    category: str = Field(max_length=16, index=True)
    severity: str = Field(max_length=4)
    sentiment: str = Field(default="neutral", max_length=16)
    status: str = Field(default=IncidentStatus.NEW, max_length=16, index=True)
    first_seen_at: datetime = _utc()
    opened_at: datetime = _utc()
    updated_at: datetime = _utc()
    closed_at: datetime | None = _utc(nullable=True)
    source: str = Field(default="", max_length=100)
    source_url: str = Field(default="", max_length=2000)
    post_count: int = 1
    policy: dict[str, Any] = _json()
    drill: bool = False
    token: int = 0  # fencing token: bumped on every change that invalidates scheduled work
    # 研判 (assessment) and response
    department: str | None = Field(default=None, max_length=100)  # 涉事责任单位
    handling_type: str | None = Field(default=None, max_length=32)  # HandlingType (分类处置)
    acknowledged_at: datetime | None = _utc(nullable=True)
    acknowledged_by: str | None = Field(default=None, max_length=100)
    released_at: datetime | None = _utc(nullable=True)
    release_url: str | None = Field(default=None, max_length=2000)
    press_held_at: datetime | None = _utc(nullable=True)
    dismiss_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    merged_into_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    # correlation and heat
    last_post_at: datetime | None = _utc(nullable=True)
    source_count: int = 1  # distinct sources among its posts
    heat: float = 0.0
    heat_trend: str = Field(default="steady", max_length=8)  # rising / steady / falling
    features: dict[str, Any] = _json()  # what correlation matches on: keywords, places, entities
    # escalation (值班员 → 科室负责人 → 分管领导 → 主要领导) while nobody acknowledges
    escalation_level: int = 0  # rung of the chain last notified (0: the duty officer)
    next_escalation_at: datetime | None = _utc(nullable=True, index=True)


class IncidentEvent(SQLModel, table=True):
    """Append-only audit log: who did what when."""

    __tablename__ = "incident_event"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = _utc()
    actor: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    detail: dict[str, Any] = _json()


class Deadline(SQLModel, table=True):
    """A statutory clock. The database is the truth; scheduler jobs are rebuilt from pending rows.

    `notice_stage` is the index of the next notice (reminders in order, then the overdue notice) that has
    not been dispatched; `next_notice_at` is when it is due (None when nothing is left to send).
    """

    __tablename__ = "deadline"
    __table_args__ = (UniqueConstraint("incident_id", "kind", "seq", name="uq_deadline_incident_kind_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    kind: str = Field(max_length=40)
    seq: int = 0
    start_at: datetime = _utc()
    due_at: datetime = _utc(index=True)
    status: str = Field(default=DeadlineStatus.PENDING, max_length=16, index=True)
    met_at: datetime | None = _utc(nullable=True)
    met_by: str | None = Field(default=None, max_length=100)  # who took the matching action
    met_ref: str | None = Field(default=None, max_length=2000)  # its evidence (the release link …)
    missed_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    notice_stage: int = 0
    next_notice_at: datetime | None = _utc(nullable=True, index=True)
    token: int = 0


class Delivery(SQLModel, table=True):
    """Notification outbox and log: one row per (alert key, channel, receiver)."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("alert_key", "channel", "receiver", name="uq_delivery_key_receiver"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_key: str = Field(max_length=200, index=True)
    channel: str = Field(max_length=40)
    receiver: str = Field(max_length=200)
    reason: str = Field(max_length=16)
    incident_id: int | None = Field(default=None, foreign_key="incident.id", index=True)
    deadline_id: int | None = Field(default=None, foreign_key="deadline.id")
    outcome: str = Field(default=DeliveryOutcome.PENDING, max_length=16, index=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    attempts: int = 0
    body: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _utc()
    next_attempt_at: datetime | None = _utc(nullable=True)
    sent_at: datetime | None = _utc(nullable=True)
    # Stable per delivery and reused on every retry, so a receiver that de-duplicates (webhook
    # Idempotency-Key) sees one message however often a timed-out send is retried.
    idempotency_key: str | None = Field(default=None, max_length=64)
    external_id: str | None = Field(default=None, max_length=100)  # the channel's message id, when it gives one
    person: str | None = Field(default=None, max_length=100)  # roster person this went to (escalation)
    batch_of_id: int | None = Field(default=None)  # BATCHED rows: the delivery whose message carried this one


class Correction(SQLModel, table=True):
    """An analyst's correction of a post's classification: who changed which label to what, and when.
    The next `yuqing train` learns from it; the original classification rows stay as they were."""

    __tablename__ = "correction"

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    category: str | None = Field(default=None, max_length=16)
    severity: str | None = Field(default=None, max_length=4)
    sentiment: str | None = Field(default=None, max_length=16)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    actor: str = Field(max_length=100)
    at: datetime = _utc(index=True)


class SourceState(SQLModel, table=True):
    """What yuqing knows about one source between polls: conditional-GET validators, paging cursor, health."""

    __tablename__ = "source_state"

    source: str = Field(primary_key=True, max_length=100)
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    cursor: dict[str, Any] = _json()
    last_attempt_at: datetime | None = _utc(nullable=True)
    last_success_at: datetime | None = _utc(nullable=True)
    last_new_item_at: datetime | None = _utc(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    last_error_at: datetime | None = _utc(nullable=True)
    consecutive_errors: int = 0
    consecutive_empty: int = 0  # polls in a row that fetched pages but extracted no article (login/anti-bot wall)
    items_total: int = 0
    state: str = Field(default=SourceHealth.OK, max_length=16)
    state_since: datetime | None = _utc(nullable=True)


class Silence(SQLModel, table=True):
    """An officer's silence (Alertmanager-style): matching notices between starts_at and ends_at are not sent
    (logged as SILENCED). `matchers` keys: incident_id, category, severity, reason, channel (all must match)."""

    __tablename__ = "silence"

    id: int | None = Field(default=None, primary_key=True)
    matchers: dict[str, Any] = _json()
    starts_at: datetime = _utc()
    ends_at: datetime = _utc(index=True)
    created_by: str = Field(max_length=100)
    created_at: datetime = _utc()
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))


class DutyShift(SQLModel, table=True):
    """Who is on duty when (值班表), imported from CSV or config. People and their channels are in config."""

    __tablename__ = "duty_shift"

    id: int | None = Field(default=None, primary_key=True)
    person: str = Field(max_length=100, index=True)
    role: str = Field(max_length=32)  # DutyRole
    department: str = Field(default="", max_length=100)  # "" = the whole agency
    starts_at: datetime = _utc(index=True)
    ends_at: datetime = _utc(index=True)
    origin: str = Field(default="config", max_length=200)  # "config" or the imported file's name


class ActionLog(SQLModel, table=True):
    """Every action attempted through a channel (bot button, bot command, web), allowed or refused."""

    __tablename__ = "action_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _utc(index=True)
    channel: str = Field(max_length=40)
    user_id: str = Field(max_length=100)
    chat_id: str = Field(default="", max_length=100)
    action: str = Field(max_length=40)
    incident_id: int | None = Field(default=None)
    allowed: bool = True
    result: str = Field(default="", sa_column=Column(Text, nullable=False))


class SchedulerLease(SQLModel, table=True):
    """One active scheduler at a time: the holder renews its lease; a standby takes over when it expires."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=40)
    holder: str = Field(max_length=200)
    acquired_at: datetime = _utc()
    renewed_at: datetime = _utc()
    expires_at: datetime = _utc()


ALL_TABLES = (RawPost, Post, Classification, Incident, IncidentEvent, Deadline, Delivery, SourceState, Correction,
              Silence, DutyShift, ActionLog, SchedulerLease)
