"""The base of every settings section: unknown keys are rejected and settings are immutable once loaded."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

SEVERITIES = ("I", "II", "III", "IV")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
