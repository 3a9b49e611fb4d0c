"""The incident timeline: append-only `IncidentEvent` rows saying who did what when (never updated or deleted)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from models.enums import EventKind
from models.tables import IncidentEvent

SYSTEM = "system"


def record(s: Session, incident_id: int, now: datetime, kind: EventKind, detail: dict[str, Any] | None = None,
           *, actor: str = SYSTEM) -> IncidentEvent:
    """Append one event. Does not commit."""
    event = IncidentEvent(incident_id=incident_id, at=now, actor=actor, kind=kind.value, detail=detail or {})
    s.add(event)
    return event
