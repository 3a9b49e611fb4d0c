"""Raw-post store: one row per (source, url); a failed row is refreshed when new content arrives for its URL
and is not "known" to incremental crawling; failed rows can be queued again; source state rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from crawlers.items import RawItem
from crawlers.normalize import NormalizeError, normalize
from crawlers.store import items_since, known_urls, requeue_failed, source_state, store_raw
from models.db import session_scope
from models.enums import RawPostStatus
from models.tables import RawPost

T0 = datetime(2026, 11, 21, tzinfo=UTC)


def _item(url: str, title: str = "标题", **extra: object) -> RawItem:
    return RawItem(source="site", url=url, fetched_at=T0, title=title, body="正文", extra=dict(extra))


def _fail(db: Engine, url: str) -> None:
    with session_scope(db) as s:
        row = s.exec(select(RawPost).where(RawPost.url == url)).one()
        row.status, row.error = RawPostStatus.FAILED, "no article"


def test_store_once_per_source_and_url(db: Engine) -> None:
    with session_scope(db) as s:
        assert store_raw(s, [_item("u1"), _item("u1"), _item("u2")]) == 2
    with session_scope(db) as s:
        assert store_raw(s, [_item("u1"), _item("u3")]) == 1
        assert known_urls(s, "site") == {"u1", "u2", "u3"}
        assert items_since(s, "site", T0 - timedelta(hours=1)) == 3


def test_failed_row_is_refreshed_by_new_content_and_crawled_again(db: Engine) -> None:
    with session_scope(db) as s:
        assert store_raw(s, [_item("wall", title="", unextracted="login wall")]) == 1
    with Session(db) as s:
        kept = s.exec(select(RawPost)).one()
        assert kept.status == RawPostStatus.FAILED
        assert kept.error == "no article could be extracted from the page: login wall"
    with session_scope(db) as s:
        assert "wall" not in known_urls(s, "site")  # the next crawl fetches it again
        assert store_raw(s, [_item("wall", title="", unextracted="login wall")]) == 0  # same content: no churn
        assert store_raw(s, [_item("wall", title="今天能读到的文章")]) == 1
    with Session(db) as s:
        row = s.exec(select(RawPost)).one()
    assert row.status == RawPostStatus.NEW and row.error is None and row.payload["title"] == "今天能读到的文章"


def test_requeue_failed_and_source_state(db: Engine) -> None:
    with session_scope(db) as s:
        store_raw(s, [_item("a"), _item("b")])
        state = source_state(s, "site")
        assert state.state == "ok" and state.consecutive_errors == 0
    _fail(db, "a")
    with session_scope(db) as s:
        assert requeue_failed(s, "other") == 0
        assert requeue_failed(s) == 1


def test_a_kept_page_without_article_fails_processing_with_its_reason() -> None:
    item = RawItem(source="site", url="u", fetched_at=T0, extra={"unextracted": "登录后查看全文", "html": "<p>…</p>"})
    with pytest.raises(NormalizeError, match="no article could be extracted from the page: 登录后查看全文"):
        normalize("site", "u", T0, item.payload(), tz=ZoneInfo("Asia/Shanghai"))
