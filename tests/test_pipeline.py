"""Processing batch: raw posts → posts → classifications → incidents; duplicates fold into the first copy;
a malformed entry keeps its raw row with the error; running the stage twice is harmless."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.clock import FakeClock
from classifier.model import TextModel
from config.schema import Settings
from models.enums import Category, DeadlineStatus, RawPostStatus
from models.tables import Classification, Deadline, Delivery, Incident, IncidentEvent, Post, RawPost
from tests.conftest import FIXTURES
from tests.harness import Harness

FEEDS = FIXTURES / "feeds"
T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)


def test_mixed_feed_end_to_end(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    assert h.ingest(FEEDS / "mixed.rss") == 4
    out = asyncio.run(h.process())
    assert (out.posts, out.duplicates, out.failed, out.incidents) == (2, 1, 1, 1)
    with Session(db) as s:
        posts = {p.title: p for p in s.exec(select(Post)).all()}
        fire = posts["某县林区发生森林火灾 2名扑火队员失联"]
        assert fire.spread_count == 2
        inc = s.exec(select(Incident)).one()
        assert inc.post_count == 2 and inc.category == Category.EMERGENCY
        assert fire.incident_id == inc.id
        gossip = posts["某顶流明星官宣恋情 粉丝心态爆炸"]
        verdict = s.exec(select(Classification).where(Classification.post_id == gossip.id)).one()
        assert verdict.category == Category.IRRELEVANT and gossip.incident_id is None
        failed = s.exec(select(RawPost).where(RawPost.status == RawPostStatus.FAILED)).one()
        assert failed.url == "https://mixed.example.cn/empty.html" and "neither title nor text" in (failed.error or "")
        events = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id)).all()
        assert [e.kind for e in events] == ["opened", "deadline_planned", "deadline_planned"]
        assert events[0].detail["post_count"] == 2


def test_processing_twice_is_harmless(db: Engine, model: TextModel, settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    h.ingest(FEEDS / "mine_collapse.xml")
    asyncio.run(h.process())
    assert h.ingest(FEEDS / "mine_collapse.xml") == 0  # same (source, url): not stored again
    again = asyncio.run(h.process())
    assert (again.posts, again.duplicates, again.incidents) == (0, 0, 0)
    with Session(db) as s:
        assert len(s.exec(select(Incident)).all()) == 1
        assert len(s.exec(select(Delivery)).all()) == 1  # one opening notice on the console


def test_major_accident_opens_severe_incident_with_both_clocks(db: Engine, model: TextModel,
                                                               settings: Settings) -> None:
    h = Harness(db, model, settings, FakeClock(T0))
    h.ingest(FEEDS / "mine_collapse.xml")
    asyncio.run(h.process())
    with Session(db) as s:
        inc = s.exec(select(Incident)).one()
        assert inc.severity == "I" and inc.category == Category.EMERGENCY
        assert inc.first_seen_at == T0
        assert inc.policy["deadlines"]["release_5h"]["within_s"] == 18000
        deadlines = {d.kind: d for d in s.exec(select(Deadline)).all()}
        assert set(deadlines) == {"release_5h", "press_conference_24h"}
        assert all(d.status == DeadlineStatus.PENDING for d in deadlines.values())
    [msg] = h.console_messages()
    assert msg.startswith("【特别重大舆情】某县煤矿发生坍塌事故 已致35人遇难")
    assert "距5小时权威信息发布时限还剩 5小时" in msg


def test_near_copies_join_the_first_posts_incident(db: Engine, model: TextModel, settings: Settings) -> None:
    from crawlers.neardup import NearDupIndex

    h = Harness(db, model, settings, FakeClock(T0))
    h.neardup = NearDupIndex(settings.dedup.near_window)
    h.ingest(FEEDS / "mixed.rss")
    asyncio.run(h.process())
    h.clock.advance(timedelta(minutes=10))
    h.ingest(FEEDS / "reposts.xml")
    out = asyncio.run(h.process())
    assert out.duplicates == 1  # the repost with a //@ prefix and a truncation
    with Session(db) as s:
        inc = s.exec(select(Incident)).all()
        fire = next(i for i in inc if "森林火灾" in i.title)
        assert fire.post_count == 3  # the original, its exact copy in the first feed, the repost
        repost = s.exec(select(Post).where(Post.url == "https://weibo.example.cn/u/2001/status/9")).one()
        assert repost.duplicate_of_id is not None and repost.incident_id == fire.id
        meeting = s.exec(select(Post).where(Post.url == "https://weibo.example.cn/u/2002/status/10")).one()
        assert meeting.duplicate_of_id is None  # same topic, different post


def test_same_article_on_mobile_and_desktop_hosts_is_one_post(db: Engine, model: TextModel,
                                                              settings: Settings, tmp_path: Path) -> None:
    desktop = (FEEDS / "mine_collapse.xml").read_text(encoding="utf-8")
    mobile = desktop.replace("https://news.example.cn/", "https://m.news.example.cn/").replace(
        "多人被困井下。", "多人被困井下。（手机版）")
    (tmp_path / "desktop.xml").write_text(desktop, encoding="utf-8")
    (tmp_path / "mobile.xml").write_text(mobile, encoding="utf-8")
    (tmp_path / "homepage.xml").write_bytes((FEEDS / "shared_links.rss").read_bytes())
    h = Harness(db, model, settings, FakeClock(T0))
    for name in ("desktop.xml", "mobile.xml", "homepage.xml"):
        h.ingest(tmp_path / name)
    out = asyncio.run(h.process())
    assert out.duplicates == 1  # the mobile copy; the two home-page entries stay two posts
    with Session(db) as s:
        assert len(s.exec(select(Post)).all()) == 3
