"""Correlation stage (pure): classified posts become incident changes.

This first version opens one incident per relevant post and joins later copies of the same post (same
group key) to it; near-duplicate and topical clustering come in a later stage behind the same signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from classifier.model import Verdict
from crawlers.normalize import NormalizedPost
from models.enums import Category, Sentiment, Severity


@dataclass(frozen=True)
class Candidate:
    """A post that has just been stored and classified."""

    post_id: int
    post: NormalizedPost
    verdict: Verdict


@dataclass(frozen=True)
class OpenIncident:
    group_key: str
    title: str
    category: Category
    severity: Severity
    sentiment: Sentiment
    first_seen_at: datetime
    source: str
    source_url: str
    post_ids: tuple[int, ...]


@dataclass(frozen=True)
class JoinIncident:
    incident_id: int
    post_id: int


IncidentChange = OpenIncident | JoinIncident


def group_key(post: NormalizedPost) -> str:
    return f"fp:{post.fingerprint[:32]}"


def correlate(candidates: list[Candidate], open_groups: dict[str, int], *, threshold: float) -> list[IncidentChange]:
    """Decide which candidates open incidents and which join open ones (`open_groups`: group key → id)."""
    changes: list[IncidentChange] = []
    opened: set[str] = set()
    for cand in candidates:
        v = cand.verdict
        if v.category is Category.IRRELEVANT or v.severity is None or v.relevance < threshold:
            continue
        key = group_key(cand.post)
        if key in open_groups:
            changes.append(JoinIncident(open_groups[key], cand.post_id))
        elif key not in opened:
            opened.add(key)
            p = cand.post
            changes.append(
                OpenIncident(
                    group_key=key,
                    title=(p.title or p.text[:80]).strip(),
                    category=v.category,
                    severity=v.severity,
                    sentiment=v.sentiment,
                    first_seen_at=p.fetched_at,
                    source=p.source,
                    source_url=p.url,
                    post_ids=(cand.post_id,),
                )
            )
    return changes
