"""The duty roster (`roster:`: people, their channels, dated shifts) and escalation (`escalation:`: the
chain of roles, waits, quiet hours). Roles are accepted by value or Chinese label; local times as written."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator, model_validator

from config.base import Strict
from config.durations import Duration
from models.enums import DutyRole

ROLE_LABELS = {r.label: r for r in DutyRole}


def parse_role(value: object) -> DutyRole:
    """A duty role by its value (duty_officer …) or its Chinese label (值班员 …); ValueError names both."""
    if isinstance(value, DutyRole):
        return value
    text = str(value).strip()
    if text in ROLE_LABELS:
        return ROLE_LABELS[text]
    try:
        return DutyRole(text.lower())
    except ValueError:
        known = ", ".join(f"{r.value} ({r.label})" for r in DutyRole)
        raise ValueError(f"unknown role {text!r} (use {known})") from None


Role = Annotated[DutyRole, BeforeValidator(parse_role)]


def _local_text(value: object) -> object:
    """YAML reads 22:00 as the sexagesimal number 1320 and 2026-10-01 as a date: give them back as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and 0 <= value <= 24 * 60:
        return f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return value


LocalText = Annotated[str, BeforeValidator(_local_text)]  # a local date or time of day, as written
_HHMM = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d$")


class PersonSettings(Strict):
    """One person of the duty roster and how to reach them directly."""

    role: Role
    department: str = ""  # "" = the whole agency
    telegram: int | None = None  # Telegram user or chat id (the bot must have been started by the person)
    email: str | None = None
    mobile: str | None = None  # for @-mentions by the WeCom / DingTalk group robots

    @field_validator("mobile")
    @classmethod
    def _digits(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\+?\d{5,20}", value.strip()):
            raise ValueError("a mobile number is digits only (e.g. 13800000000)")
        return value.strip() if value else None


class ShiftSettings(Strict):
    """A dated duty shift in the agency's local time. `start`/`end` are HH:MM on `date` (end "次日HH:MM" or
    "24:00" for an overnight shift) or full "YYYY-MM-DD HH:MM"."""

    person: str = Field(min_length=1)
    date: LocalText | None = None
    start: LocalText
    end: LocalText
    role: Role | None = None  # default: the person's role
    department: str | None = None  # default: the person's department


class RosterSettings(Strict):
    people: dict[str, PersonSettings] = Field(default_factory=dict)
    shifts: list[ShiftSettings] = Field(default_factory=list)


def _default_chain() -> list[DutyRole]:
    return [DutyRole.DUTY_OFFICER, DutyRole.SECTION_CHIEF, DutyRole.DEPUTY_LEADER, DutyRole.PRINCIPAL_LEADER]


class QuietHoursSettings(Strict):
    """Local times; the period may cross midnight (22:00–07:30)."""

    start: LocalText
    end: LocalText

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not _HHMM.fullmatch(str(value).strip()):
            raise ValueError(f"{value!r} is not a time of day (use HH:MM, e.g. 22:00)")
        return str(value).strip()

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHoursSettings:
        if self.start == self.end:
            raise ValueError("end: must differ from start")
        return self


class EscalationSettings(Strict):
    enabled: bool = True
    wait: Duration = timedelta(minutes=15)
    repeat_every: Duration = timedelta(minutes=30)
    chain: list[Role] = Field(default_factory=_default_chain, min_length=1)
    chains: dict[str, list[Role]] = Field(default_factory=dict)  # department → its own chain
    missed_to: list[Role] = Field(default_factory=lambda: [DutyRole.DEPUTY_LEADER, DutyRole.PRINCIPAL_LEADER])
    quiet_hours: QuietHoursSettings | None = None

    @field_validator("wait", "repeat_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value

    @field_validator("chains")
    @classmethod
    def _chains_not_empty(cls, value: dict[str, list[DutyRole]]) -> dict[str, list[DutyRole]]:
        for dept, roles in value.items():
            if not roles:
                raise ValueError(f"{dept}: a chain needs at least one role")
        return value

    def chain_for(self, department: str | None) -> list[DutyRole]:
        return list(self.chains.get(department or "", self.chain))
