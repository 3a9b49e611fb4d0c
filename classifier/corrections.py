"""Analyst corrections (the feedback loop): recorded with who and when, never overwriting the model's own
classification rows, and turned into training examples for the next `yuqing train`."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from classifier.train import Example
from models.enums import Category, Sentiment, Severity
from models.tables import Classification, Correction, Post


class CorrectionError(ValueError):
    """A correction cannot be recorded; the message says why in one line."""


def record_correction(
    session: Session, *, post_id: int, actor: str, now: datetime, category: str | None = None,
    severity: str | None = None, sentiment: str | None = None, note: str | None = None,
) -> Correction:
    """Validate and add one correction (not committed)."""
    if session.get(Post, post_id) is None:
        raise CorrectionError(f"post {post_id} does not exist")
    if category is None and severity is None and sentiment is None:
        raise CorrectionError("nothing to correct: give a category, a severity or a sentiment")
    if not actor.strip():
        raise CorrectionError("who corrects it must be named")
    try:
        fixed = Correction(
            post_id=post_id, actor=actor.strip()[:100], at=now, note=note,
            category=Category(category).value if category else None,
            severity=Severity(severity).value if severity else None,
            sentiment=Sentiment(sentiment).value if sentiment else None,
        )
    except ValueError as exc:
        raise CorrectionError(str(exc)) from None
    session.add(fixed)
    return fixed


def correction_examples(session: Session) -> list[Example]:
    """One training example per corrected post: the latest correction of each label, the rest from the
    post's latest classification."""
    rows = session.exec(select(Correction).order_by(col(Correction.at), col(Correction.id))).all()
    latest: dict[int, dict[str, str]] = {}
    for row in rows:
        labels = latest.setdefault(row.post_id, {})
        for name in ("category", "severity", "sentiment"):
            value = getattr(row, name)
            if value:
                labels[name] = value
    out = []
    for post_id, labels in latest.items():
        post = session.get(Post, post_id)
        if post is None:
            continue
        base = session.exec(
            select(Classification).where(Classification.post_id == post_id).order_by(col(Classification.id).desc())
        ).first()
        category = labels.get("category") or (base.category if base else None)
        if category is None:
            continue
        severity = None if category == Category.IRRELEVANT else (
            labels.get("severity") or (base.severity if base else None) or Severity.IV.value
        )
        sentiment = labels.get("sentiment") or (base.sentiment if base else Sentiment.NEUTRAL.value)
        text = f"{post.title}\n{post.text}" if post.title and not post.text.startswith(post.title) else post.text
        out.append(Example(text=text or post.title, category=category, sentiment=sentiment, severity=severity))
    return out
