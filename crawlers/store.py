"""Raw-post landing (I/O adapter): crawlers only insert raw posts; one row per (source, url)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, tuple_
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from config.durations import format_duration
from config.schema import Settings
from crawlers.items import FetchState, RawItem
from crawlers.neardup import NearDupIndex
from models.db import session_scope
from models.enums import RawPostStatus
from models.tables import Post, RawPost, SourceState

log = logging.getLogger(__name__)


def store_raw(session: Session, items: Iterable[RawItem]) -> int:
    """Insert items whose (source, url) is new; return how many were inserted. Does not commit.

    A page kept without an article (`extra["unextracted"]`: a login wall, an anti-bot page) is stored as failed
    with the reason. A failed row is refreshed when different content arrives for the same URL (a page that
    was a login wall yesterday may be an article today): it goes back to the queue and counts as new."""
    batch: dict[tuple[str, str], RawItem] = {}
    for item in items:
        batch.setdefault((item.source, item.url[:2000]), item)
    if not batch:
        return 0
    keys = list(batch)
    existing: dict[tuple[str, str], tuple[int | None, str]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(RawPost.source, RawPost.url, RawPost.id, RawPost.status)
            .where(tuple_(col(RawPost.source), col(RawPost.url)).in_(chunk))
        )
        existing.update(((r[0], r[1]), (r[2], r[3])) for r in rows)
    added = 0
    for key, item in batch.items():
        if key not in existing:
            unextracted = item.extra.get("unextracted")
            session.add(RawPost(
                source=key[0], url=key[1], fetched_at=item.fetched_at, payload=item.payload(),
                status=RawPostStatus.FAILED if unextracted else RawPostStatus.NEW,
                error=_no_article(item) if unextracted else None,
            ))
            added += 1
        elif existing[key][1] == RawPostStatus.FAILED and _refresh(session, existing[key][0], item):
            added += 1
    session.flush()
    return added


def _refresh(session: Session, row_id: int | None, item: RawItem) -> bool:
    row = session.get(RawPost, row_id)
    if row is None or row.payload == item.payload():
        return False
    row.payload, row.fetched_at = item.payload(), item.fetched_at
    row.status, row.error, row.processed_at = RawPostStatus.NEW, None, None
    if item.extra.get("unextracted"):
        row.status, row.error = RawPostStatus.FAILED, _no_article(item)
    return True


def _no_article(item: RawItem) -> str:
    return f"no article could be extracted from the page: {item.extra['unextracted']}"


def source_state(session: Session, source: str) -> SourceState:
    """The state row of a source, created on first use (not committed)."""
    row = session.get(SourceState, source)
    if row is None:
        row = SourceState(source=source)
        session.add(row)
    return row


def fetch_state(row: SourceState) -> FetchState:
    return FetchState(etag=row.etag, last_modified=row.last_modified, cursor=dict(row.cursor or {}))


def items_since(session: Session, source: str, since: datetime) -> int:
    """Raw posts a source delivered since a moment (e.g. the last day)."""
    query = select(func.count()).select_from(RawPost).where(RawPost.source == source, RawPost.fetched_at >= since)
    return int(session.exec(query).one())


def known_urls(session: Session, source: str) -> set[str]:
    """URLs stored for a source that incremental crawling never fetches again (failed ones are retried)."""
    query = select(RawPost.url).where(RawPost.source == source, RawPost.status != RawPostStatus.FAILED)
    return set(session.exec(query).all())


def requeue_failed(session: Session, source: str | None = None) -> int:
    """Mark failed raw posts as new again so the pipeline re-processes them (after a fix)."""
    query = select(RawPost).where(RawPost.status == RawPostStatus.FAILED)
    if source:
        query = query.where(RawPost.source == source)
    rows = session.exec(query).all()
    for row in rows:
        row.status, row.error, row.processed_at = RawPostStatus.NEW, None, None
    return len(rows)


def first_copy_signatures(session: Session, since: datetime) -> list[tuple[int, bytes, datetime]]:
    """(post id, near-duplicate signature, fetched at) of first copies fetched since a moment, oldest first:
    what the near-duplicate index is rebuilt from at start-up."""
    rows = session.exec(
        select(Post.id, Post.signature, Post.fetched_at)
        .where(col(Post.signature).is_not(None), col(Post.duplicate_of_id).is_(None), Post.fetched_at >= since)
        .order_by(col(Post.id))
    ).all()
    return [(i, sig, at) for i, sig, at in rows if i is not None and sig is not None]


DAY = timedelta(days=1)


def near_index(db: Engine, settings: Settings, now: datetime) -> NearDupIndex:
    """The near-duplicate index of `yuqing run`, rebuilt from the first copies stored within the window."""
    d = settings.dedup
    index = NearDupIndex(d.near_window, d.near_threshold, containment=d.near_containment)
    with session_scope(db) as s:
        outcome = index.rebuild(first_copy_signatures(s, now - d.near_window))
    index.evict(now)
    log.info("near-duplicate index: %d post(s) from the last %s (%d expired, %d unusable)", len(index),
             format_duration(d.near_window), outcome.expired, outcome.unindexable + outcome.invalid)
    return index


def refresh_near_index(index: NearDupIndex, db: Engine, settings: Settings, now: datetime) -> None:
    """Start the index again from the database (after a failed batch, or posts another process stored)."""
    with session_scope(db) as s:
        index.rebuild(first_copy_signatures(s, now - settings.dedup.near_window))
