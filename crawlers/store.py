"""Raw-post landing (I/O adapter): crawlers only insert raw posts; one row per (source, url)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import tuple_
from sqlmodel import Session, col, select

from crawlers.items import RawItem
from models.tables import RawPost


def store_raw(session: Session, items: Iterable[RawItem]) -> int:
    """Insert items whose (source, url) is new; return how many were inserted. Does not commit."""
    batch: dict[tuple[str, str], RawItem] = {}
    for item in items:
        batch.setdefault((item.source, item.url[:2000]), item)
    if not batch:
        return 0
    keys = list(batch)
    existing: set[tuple[str, str]] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(RawPost.source, RawPost.url).where(tuple_(col(RawPost.source), col(RawPost.url)).in_(chunk))
        )
        existing.update((r[0], r[1]) for r in rows)
    new = [(key, item) for key, item in batch.items() if key not in existing]
    for (source, url), item in new:
        session.add(RawPost(source=source, url=url, fetched_at=item.fetched_at, payload=item.payload()))
    session.flush()
    return len(new)
