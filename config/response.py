"""The statutory response clocks as a rule pack (`response:`): deadline kinds with their reminders and the
action that meets each, which severities get which, and continuous updates. Frozen into each incident."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, model_validator

from config.base import SEVERITIES, Strict
from config.durations import Duration
from models.enums import Severity

# The officer's action that meets a deadline (a deadline is met by the matching action, never by silence).
MetBy = Literal["release", "press_conference", "update"]


class DeadlineKindSettings(Strict):
    label: str = Field(min_length=1)
    within: Duration
    reminders: list[Duration] = Field(default_factory=list)
    met_by: MetBy = "release"

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
            label="新闻发布会", within=timedelta(hours=24), reminders=[timedelta(hours=4), timedelta(hours=1)],
            met_by="press_conference",
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


class UpdateSettings(Strict):
    """Continuous updates (持续发布): after the `after` deadline is met or missed, one update is due every
    `every` until the incident is closed. Severities not listed get none."""

    label: str = Field(default="持续发布", min_length=1)
    every: Duration = timedelta(hours=24)
    reminders: list[Duration] = Field(default_factory=lambda: [timedelta(hours=2)])
    after: str = "press_conference_24h"
    severities: list[Severity] = Field(default_factory=lambda: [Severity.I, Severity.II])

    @model_validator(mode="after")
    def _reminders_inside(self) -> UpdateSettings:
        if self.every.total_seconds() <= 0:
            raise ValueError("every: must be longer than 0s")
        for i, offset in enumerate(self.reminders):
            if offset.total_seconds() <= 0 or offset >= self.every:
                raise ValueError(f"reminders[{i}]: a reminder must come between 0s and the interval")
        return self


class ResponseSettings(Strict):
    deadlines: dict[str, DeadlineKindSettings] = Field(default_factory=_default_kinds)
    by_severity: dict[str, list[str]] = Field(default_factory=_default_by_severity)
    updates: UpdateSettings = Field(default_factory=UpdateSettings)

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
            if kind == UPDATE_KIND:
                raise ValueError(f"deadlines.{kind}: reserved for continuous updates (configure response.updates)")
        if self.updates.after not in self.deadlines:
            raise ValueError(f"updates.after: deadline kind {self.updates.after!r} is not defined in deadlines")
        return self


UPDATE_KIND = "update"  # the deadline kind of continuous updates (seq 1, 2, …)
