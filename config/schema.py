"""Typed settings. Every key here is documented in config/default.yaml (a test checks that).

Unknown keys, wrong types and contradictory values are rejected at load time. Secrets never live here:
they come from environment variables (see config.env).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.durations import Duration

SEVERITIES = ("I", "II", "III", "IV")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgencySettings(Strict):
    name: str = "某省林业厅"
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class SourceSettings(Strict):
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["feed"] = "feed"
    url: str = Field(min_length=1)
    interval: Duration = timedelta(minutes=10)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.\-]+", value):
            raise ValueError("use letters, digits, '-', '_' or '.' only")
        return value

    @field_validator("interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 1:
            raise ValueError("must be at least 1s")
        return value


class FetchSettings(Strict):
    user_agent: str = "yuqing/0.1 (+public-opinion monitor)"
    timeout: Duration = timedelta(seconds=20)
    max_bytes: int = Field(default=10_000_000, ge=1024)


class ClassifierSettings(Strict):
    model_dir: str = "var/models"
    relevance_threshold: float = Field(default=0.5, ge=0.0, le=1.0)


class DeadlineKindSettings(Strict):
    label: str = Field(min_length=1)
    within: Duration
    reminders: list[Duration] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reminders_inside(self) -> DeadlineKindSettings:
        if self.within.total_seconds() <= 0:
            raise ValueError("within: must be longer than 0s")
        for i, offset in enumerate(self.reminders):
            if offset.total_seconds() <= 0 or offset >= self.within:
                raise ValueError(
                    f"reminders[{i}]: a reminder must come between 0s and the deadline ({offset} vs {self.within})"
                )
        if len(set(self.reminders)) != len(self.reminders):
            raise ValueError("reminders: the same offset is listed twice")
        return self


def _default_kinds() -> dict[str, DeadlineKindSettings]:
    return {
        "release_5h": DeadlineKindSettings(
            label="权威信息发布", within=timedelta(hours=5), reminders=[timedelta(hours=1), timedelta(minutes=30)]
        ),
        "press_conference_24h": DeadlineKindSettings(
            label="新闻发布会", within=timedelta(hours=24), reminders=[timedelta(hours=4), timedelta(hours=1)]
        ),
        "response_48h": DeadlineKindSettings(
            label="回应", within=timedelta(hours=48), reminders=[timedelta(hours=12), timedelta(hours=2)]
        ),
    }


def _default_by_severity() -> dict[str, list[str]]:
    return {
        "I": ["release_5h", "press_conference_24h"],
        "II": ["release_5h", "press_conference_24h"],
        "III": ["response_48h"],
        "IV": ["response_48h"],
    }


class ResponseSettings(Strict):
    deadlines: dict[str, DeadlineKindSettings] = Field(default_factory=_default_kinds)
    by_severity: dict[str, list[str]] = Field(default_factory=_default_by_severity)

    @model_validator(mode="after")
    def _consistent(self) -> ResponseSettings:
        for sev in self.by_severity:
            if sev not in SEVERITIES:
                raise ValueError(f"by_severity.{sev}: unknown severity (use I, II, III or IV)")
        for sev in SEVERITIES:
            if sev not in self.by_severity:
                raise ValueError(f"by_severity.{sev}: missing; every severity needs a list (may be empty)")
            for kind in self.by_severity[sev]:
                if kind not in self.deadlines:
                    raise ValueError(f"by_severity.{sev}: deadline kind {kind!r} is not defined in deadlines")
        for kind in self.deadlines:
            if not re.fullmatch(r"[a-z0-9_]+", kind):
                raise ValueError(f"deadlines.{kind}: use lower-case letters, digits and '_' only")
        return self


class TelegramSettings(Strict):
    enabled: bool = True
    chat_ids: list[int] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=15)


class AlertSettings(Strict):
    console: bool = True
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)


class RuntimeSettings(Strict):
    batch_size: int = Field(default=500, ge=1, le=100_000)


class Settings(Strict):
    agency: AgencySettings = Field(default_factory=AgencySettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    fetch: FetchSettings = Field(default_factory=FetchSettings)
    classifier: ClassifierSettings = Field(default_factory=ClassifierSettings)
    response: ResponseSettings = Field(default_factory=ResponseSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        seen: set[str] = set()
        for i, src in enumerate(self.sources):
            if src.name in seen:
                raise ValueError(f"sources[{i}].name: duplicate source name {src.name!r}")
            seen.add(src.name)
        return self
