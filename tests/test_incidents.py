"""Correlation (alerts/incidents.py): table-driven cases from tests/fixtures/incidents/ — reports of one forest
fire from many sources join one incident; a fire in another province or county, or another event in the same
county, does not; the window runs from an incident's last post; categories must be compatible. Then the
pipeline end to end: related posts of one feed open one incident, a later related post joins it and raises
its severity with re-planned clocks."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import FakeClock
from alerts.features import FeatureExtractor, extractor_for
from alerts.incidents import (
    Candidate,
    CorrelationParams,
    IncidentState,
    JoinIncident,
    OpenIncident,
    absorb,
    correlate,
)
from classifier.model import TextModel, Verdict
from config.durations import parse_duration
from config.schema import Settings
from crawlers.dedup import fingerprint
from crawlers.normalize import NormalizedPost
from models.enums import Category, DeadlineStatus, IncidentStatus, Sentiment, Severity
from models.tables import Deadline, Incident, IncidentEvent, Post
from tests.conftest import FIXTURES
from tests.harness import Harness

CASES = sorted((FIXTURES / "incidents").glob("*.json"))
T0 = datetime(2026, 11, 20, 18, 31, tzinfo=UTC)  # 02:31 in Shanghai
JURISDICTION = ("云南省", "云南", "大理白族自治州", "大理州", "宾川县", "昆明市", "昆明", "安宁市")


def _params(window: str | None = None) -> CorrelationParams:
    base = CorrelationParams.from_settings(Settings())
    return base if window is None else CorrelationParams(**{**base.__dict__, "window": parse_duration(window)})


def _candidate(i: int, p: dict[str, Any]) -> Candidate:
    at = T0 + timedelta(minutes=p["minutes"])
    post = NormalizedPost(source=p["source"], url=p["url"], title=p["title"], text=p["text"], author=None,
                          published_at=at, fetched_at=at, fingerprint=fingerprint(p["title"], p["text"]))
    severity = Severity(p["severity"]) if p.get("severity") else None
    verdict = Verdict(relevance=p.get("relevance", 0.9), category=Category(p["category"]), category_scores={},
                      severity=severity, severity_reasons=[], sentiment=Sentiment.NEGATIVE, model_version="test")
    return Candidate(i, post, verdict)


@dataclass
class _World:
    """The incidents a sequence of correlate calls builds, kept as the pipeline keeps them."""

    incidents: dict[int, IncidentState] = field(default_factory=dict)
    members: dict[int, int] = field(default_factory=dict)  # post id → incident id

    def apply(self, changes: list[OpenIncident | JoinIncident]) -> None:
        for ch in changes:
            if isinstance(ch, OpenIncident):
                iid = len(self.incidents) + 1
                self.incidents[iid] = IncidentState(iid, ch.category, ch.severity, ch.first_seen_at,
                                                    ch.last_post_at, ch.title, ch.features)
                self.members.update({pid: iid for pid in ch.post_ids})
            else:
                old = self.incidents[ch.incident_id]
                severity = min(old.severity, ch.severity or old.severity, key=lambda s: s.rank)
                at = max(old.last_post_at or old.first_seen_at, T0)  # refined below by the caller
                self.incidents[ch.incident_id] = IncidentState(old.id, old.category, severity, old.first_seen_at,
                                                               at, old.title, ch.features or old.features)
                self.members[ch.post_id] = ch.incident_id

    def touch(self, incident_id: int, at: datetime) -> None:
        old = self.incidents[incident_id]
        last = max(old.last_post_at or at, at)
        self.incidents[incident_id] = IncidentState(old.id, old.category, old.severity, old.first_seen_at, last,
                                                    old.title, old.features)


def _run(case: dict[str, Any], extractor: FeatureExtractor) -> tuple[_World, list[Candidate]]:
    cands = [_candidate(i, p) for i, p in enumerate(case["posts"], 1)]
    batches: dict[int, list[Candidate]] = {}
    for i, (c, p) in enumerate(zip(cands, case["posts"], strict=True)):
        batches.setdefault(p.get("batch", 1000 + i), []).append(c)
    world = _World()
    params = _params(case.get("window"))
    for _, batch in sorted(batches.items()):
        now = max(c.post.fetched_at for c in batch)
        world.apply(correlate(batch, list(world.incidents.values()), now=now, params=params, extractor=extractor))
        for c in batch:
            if c.post_id in world.members:
                world.touch(world.members[c.post_id], c.post.fetched_at)
    return world, cands


@pytest.fixture(scope="module")
def extractor() -> FeatureExtractor:
    return extractor_for(JURISDICTION)


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_correlation_case(path: Path, extractor: FeatureExtractor) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    world, cands = _run(case, extractor)
    by_label: dict[str, set[int]] = {}
    for c, p in zip(cands, case["posts"], strict=True):
        got = world.members.get(c.post_id)
        if p["expect"] is None:
            assert got is None, f"{p['key']}: should open or join nothing, joined #{got}"
            continue
        assert got is not None, f"{p['key']}: opened or joined nothing"
        by_label.setdefault(p["expect"], set()).add(got)
    for label, ids in by_label.items():
        assert len(ids) == 1, f"{label}: split over incidents {sorted(ids)}: {_who(world, cands, case)}"
    owners = [next(iter(ids)) for ids in by_label.values()]
    assert len(set(owners)) == len(owners), f"different events share an incident: {_who(world, cands, case)}"
    assert len(world.incidents) == len(by_label)
    for label, severity in case.get("severity", {}).items():
        assert world.incidents[next(iter(by_label[label]))].severity == Severity(severity), label


def _who(world: _World, cands: list[Candidate], case: dict[str, Any]) -> str:
    return ", ".join(f"{p['key']}→#{world.members.get(c.post_id)}" for c, p in zip(cands, case["posts"],
                                                                                   strict=True))


def test_batch_opening_takes_the_earliest_detection_and_the_highest_severity(extractor: FeatureExtractor) -> None:
    case = json.loads((FIXTURES / "incidents" / "one_batch.json").read_text(encoding="utf-8"))
    cands = [_candidate(i, p) for i, p in enumerate(case["posts"], 1)]
    changes = correlate(cands, [], now=T0 + timedelta(minutes=5), params=_params(), extractor=extractor)
    fire = next(c for c in changes if isinstance(c, OpenIncident) and 1 in c.post_ids)
    assert fire.post_ids == (1, 2) and fire.first_seen_at == T0 and fire.severity is Severity.II
    assert fire.source == "weibo" and fire.features["places"]["宾川"] == "local"
    assert fire.last_post_at == T0 + timedelta(minutes=3)


def _fire_state(extractor: FeatureExtractor, status: IncidentStatus, **kw: Any) -> IncidentState:
    feats = absorb({}, extractor.extract("宾川县鸡足山林区发生森林火灾 2名扑火队员失联",
                                         "大理州宾川县鸡足山镇林区突发森林火灾，2名扑火队员失联。"))
    return IncidentState(7, kw.get("category", Category.EMERGENCY), Severity.III, T0, T0, "fire", feats, status)


FOLLOW_UP = {"minutes": 30, "source": "weibo", "url": "https://weibo.example.cn/u/1/status/1", "title": "",
             "text": "宾川鸡足山森林火灾还在烧，失联的2名扑火队员仍在搜寻", "category": "EMERGENCY", "severity": "II"}


@pytest.mark.parametrize("status", [IncidentStatus.CLOSED, IncidentStatus.DISMISSED, IncidentStatus.MERGED])
def test_never_joins_an_ended_incident(extractor: FeatureExtractor, status: IncidentStatus) -> None:
    changes = correlate([_candidate(1, FOLLOW_UP)], [_fire_state(extractor, status)], now=T0 + timedelta(hours=1),
                        params=_params(), extractor=extractor)
    assert [type(c) for c in changes] == [OpenIncident]


def test_join_carries_severity_score_and_what_matched(extractor: FeatureExtractor) -> None:
    [join] = correlate([_candidate(1, FOLLOW_UP)], [_fire_state(extractor, IncidentStatus.ACKNOWLEDGED)],
                       now=T0 + timedelta(hours=1), params=_params(), extractor=extractor)
    assert isinstance(join, JoinIncident) and join.incident_id == 7 and join.severity is Severity.II
    assert "宾川" in join.matched["places"] and "扑火" in join.matched["keywords"]
    assert join.features is not None and join.features["n"] == 2


def test_incompatible_category_opens_its_own(extractor: FeatureExtractor) -> None:
    state = _fire_state(extractor, IncidentStatus.NEW, category=Category.MAJOR_POLICY)
    changes = correlate([_candidate(1, FOLLOW_UP)], [state], now=T0 + timedelta(hours=1), params=_params(),
                        extractor=extractor)
    assert [type(c) for c in changes] == [OpenIncident]


def test_an_incident_without_features_matches_on_its_title(extractor: FeatureExtractor) -> None:
    """Incidents opened before correlation stored features are matched on their title."""
    state = IncidentState(3, Category.EMERGENCY, Severity.III, T0, None, "宾川县鸡足山林区发生森林火灾 2名扑火队员失联")
    [change] = correlate([_candidate(1, FOLLOW_UP)], [state], now=T0 + timedelta(hours=1), params=_params(),
                         extractor=extractor)
    assert isinstance(change, JoinIncident) and change.incident_id == 3


# ---------------------------------------------------------------- through the pipeline


def test_related_reports_open_one_incident_and_a_severe_one_raises_it(db: Engine, model: TextModel,
                                                                      settings: Settings) -> None:
    # a rule pack where II gets the 48 h response and I the 5 h/24 h clocks, so raising II → I re-plans
    by_severity = {"I": ["release_5h", "press_conference_24h"], "II": ["response_48h"], "III": ["response_48h"],
                   "IV": ["response_48h"]}
    settings = settings.model_copy(update={"response": settings.response.model_copy(
        update={"by_severity": by_severity})})
    h = Harness(db, model, settings, FakeClock(T0))
    h.ingest(FIXTURES / "incidents" / "feeds" / "fire_first.xml")
    first = asyncio.run(h.process())
    with Session(db) as s:
        [inc] = s.exec(select(Incident)).all()
        assert inc.id is not None and first.incidents == 1
        assert inc.post_count == 3 and inc.source_count == 3
        assert inc.features["places"]["宾川"] == "local" and inc.heat > 0 and inc.heat_trend == "rising"
        assert inc.severity == "II"  # the model's verdict on the first reports
    [msg] = h.console_messages()
    assert "热度：↑ 3条/10分钟，来源 3 个" in msg.splitlines()[1]
    h.clock.advance(timedelta(minutes=40))
    h.ingest(FIXTURES / "incidents" / "feeds" / "fire_later.xml")
    later = asyncio.run(h.process())
    assert later.incidents == 0
    with Session(db) as s:
        inc2 = s.get(Incident, inc.id)
        assert inc2 is not None
        assert inc2.post_count == 4 and inc2.source_count == 4
        assert inc2.last_post_at == T0 + timedelta(minutes=40)
        assert inc2.severity == "I"  # 31 dead in the central-media report
        events = s.exec(select(IncidentEvent).where(IncidentEvent.incident_id == inc.id)
                        .order_by(col(IncidentEvent.id))).all()
        grew = [e for e in events if e.kind == "grew"]
        assert len(grew) == 1 and "宾川" in grew[0].detail["places"]
        raised = [e for e in events if e.kind == "severity_changed"]
        assert raised and raised[0].actor == "system" and "新信息 #" in raised[0].detail["reason"]
        pending = s.exec(select(Deadline).where(Deadline.incident_id == inc.id)
                         .where(Deadline.status == DeadlineStatus.PENDING)).all()
        assert {d.kind for d in pending} == {"release_5h", "press_conference_24h"}
        assert all(d.start_at == T0 for d in pending)  # re-planned from first detection
        assert {t.deadline_id for t in later.scheduled} == {d.id for d in pending}
        cancelled = s.exec(select(Deadline).where(Deadline.incident_id == inc.id)
                           .where(Deadline.status == DeadlineStatus.CANCELLED)).all()
        assert [d.kind for d in cancelled] == ["response_48h"]
        assert len(s.exec(select(Post).where(col(Post.incident_id) == inc.id)).all()) == 4
