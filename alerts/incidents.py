"""Correlation stage (pure): classified posts become incident changes — one incident per real-world event.

`correlate(candidates, open_incidents, *, now, params, extractor)` returns, in candidate order:

- `JoinIncident` for a relevant post that belongs to an open incident: posted within `params.window` of the
  incident's last post, of the same or a compatible category, about the same thing (cosine of keyword
  weights ≥ `min_topic`, and topic + `place_bonus` for each place (at most two) it shares with the incident
  ≥ `join_score`),
  and not naming a different place (another province; or cities/counties only, none the incident's). The best
  scoring incident wins. It carries the incident's updated `features` and the post's severity (the pipeline
  raises the incident's severity when the post's is higher).
- `OpenIncident` for relevant posts that match nothing open: posts of one batch about the same event open one
  incident together (its severity the highest of theirs, its first detection the earliest).

Exact and near copies never get here: the pipeline's de-duplication folds them into their first post.
`Incident.features` (JSON) holds what an incident matches on: `terms` (the summed keyword vectors of its
posts, strongest `TERMS_PER_INCIDENT`), `places` (stem → level) and `n` (posts absorbed); other keys (the heat
reading) are kept as they are. Closed, dismissed and merged incidents are never joined.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.features import FeatureExtractor, PostFeatures
from classifier.model import Verdict
from config.schema import Settings
from crawlers.normalize import NormalizedPost
from models.enums import Category, IncidentStatus, Sentiment, Severity

TERMS_PER_INCIDENT = 48
PLACES_PER_INCIDENT = 24


@dataclass(frozen=True)
class Candidate:
    """A post that has just been stored and classified."""

    post_id: int
    post: NormalizedPost
    verdict: Verdict


@dataclass(frozen=True)
class IncidentState:
    """An open incident as correlation sees it."""

    id: int
    category: Category
    severity: Severity
    first_seen_at: datetime
    last_post_at: datetime | None
    title: str = ""
    features: Mapping[str, Any] = field(default_factory=dict)
    status: IncidentStatus = IncidentStatus.NEW
    group_key: str = ""


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
    features: dict[str, Any] = field(default_factory=dict)
    last_post_at: datetime | None = None
    # the first heat reading, filled in by the pipeline before the incident is opened
    heat: float = 0.0
    heat_trend: str = "steady"
    source_count: int = 1


@dataclass(frozen=True)
class JoinIncident:
    incident_id: int
    post_id: int
    severity: Severity | None = None
    score: float = 1.0
    matched: dict[str, Any] = field(default_factory=dict)  # shared places and keywords (for the timeline)
    features: dict[str, Any] | None = None  # the incident's features with this post absorbed


IncidentChange = OpenIncident | JoinIncident


@dataclass(frozen=True)
class CorrelationParams:
    relevance_threshold: float = 0.5
    window: timedelta = timedelta(hours=48)
    min_topic: float = 0.2
    join_score: float = 0.45
    place_bonus: float = 0.2
    compatible: frozenset[frozenset[Category]] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> CorrelationParams:
        inc = settings.incidents
        return cls(settings.classifier.relevance_threshold, inc.window, inc.min_topic, inc.join_score,
                   inc.place_bonus, frozenset(frozenset(pair) for pair in inc.compatible_categories))

    def compatible_with(self, a: Category, b: Category) -> bool:
        return a == b or frozenset((a, b)) in self.compatible


def group_key(post: NormalizedPost) -> str:
    return f"fp:{post.fingerprint[:32]}"


# ---------------------------------------------------------------- incident features


def absorb(features: Mapping[str, Any], post: PostFeatures) -> dict[str, Any]:
    """The incident's features with one more post: keyword vectors summed, places united."""
    terms = {str(k): float(v) for k, v in (features.get("terms") or {}).items()}
    for k, v in post.terms.items():
        terms[k] = terms.get(k, 0.0) + v
    kept = sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:TERMS_PER_INCIDENT]
    places = dict(features.get("places") or {})
    for stem, level in post.places.items():
        if len(places) < PLACES_PER_INCIDENT:
            places.setdefault(stem, level)
    return {**features, "terms": {k: round(v, 4) for k, v in kept}, "places": places,
            "n": int(features.get("n", 0)) + 1}


def union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Features of two incidents merged into one (terms summed, places united)."""
    other = PostFeatures({str(k): float(v) for k, v in (b.get("terms") or {}).items()}, dict(b.get("places") or {}))
    out = absorb(a, other)
    out["n"] = int(a.get("n", 0)) + int(b.get("n", 0))
    return out


def features_of(extractor: FeatureExtractor, texts: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Features of an incident made of these (title, text) posts."""
    out: dict[str, Any] = {}
    for title, text in texts:
        out = absorb(out, extractor.extract(title, text))
    return out


# ---------------------------------------------------------------- matching


@dataclass
class _Cluster:
    """An incident during one correlate call: an open one (id > 0) or one this batch opens (id < 0)."""

    id: int
    category: Category
    last_at: datetime
    features: dict[str, Any]
    norm: float = 0.0
    members: list[Candidate] = field(default_factory=list)

    def refresh(self) -> None:
        self.norm = math.sqrt(sum(v * v for v in self.features.get("terms", {}).values()))


@dataclass(frozen=True)
class _Match:
    cluster: _Cluster
    score: float
    places: tuple[str, ...]
    keywords: tuple[str, ...]


class _Index:
    """Weighted postings from keywords to clusters: a post's topical similarity to every incident that shares a
    keyword with it is summed term by term (an accumulator), so it is never compared with the others."""

    def __init__(self) -> None:
        self.postings: dict[str, dict[int, float]] = defaultdict(dict)
        self.clusters: dict[int, _Cluster] = {}
        self._terms: dict[int, tuple[str, ...]] = {}

    def add(self, c: _Cluster) -> None:
        """Index a cluster, or re-index it after its features changed."""
        for term in self._terms.get(c.id, ()):
            self.postings[term].pop(c.id, None)
        c.refresh()
        self.clusters[c.id] = c
        terms: Mapping[str, float] = c.features.get("terms", {})
        self._terms[c.id] = tuple(terms)
        for term, weight in terms.items():
            self.postings[term][c.id] = weight

    def topics(self, post: PostFeatures) -> dict[int, float]:
        """Cosine similarity of the post to each cluster sharing a keyword with it."""
        acc: dict[int, float] = defaultdict(float)
        for term, weight in post.terms.items():
            for cid, w in self.postings.get(term, {}).items():
                acc[cid] += weight * w
        return {cid: dot / self.clusters[cid].norm for cid, dot in acc.items() if self.clusters[cid].norm}


def place_relation(post: PostFeatures, places: Mapping[str, str]) -> tuple[tuple[str, ...], bool]:
    """(places both name, whether the post names a different place): another province, or cities/counties
    of which the incident names none. A post may name an incident's place bare (宾川 for 宾川县)."""
    shared = tuple(sorted(s for s in places if s in post.places or s in post.tokens))
    if shared:
        levels = {places[s] for s in shared}
        mine = {s for s, lv in post.places.items() if lv == "province"}
        theirs = {s for s, lv in places.items() if lv == "province"}
        return shared, bool(mine and theirs and mine.isdisjoint(theirs)) and "local" not in levels
    for level in ("province", "local"):
        mine = {s for s, lv in post.places.items() if lv == level}
        theirs = {s for s, lv in places.items() if lv == level}
        if mine and theirs:
            return (), True
    return (), False


def score(post: PostFeatures, c: _Cluster, topic: float, params: CorrelationParams) -> _Match | None:
    """The join score of a post for a cluster it is `topic` similar to (None: it may not join)."""
    if topic < params.min_topic:
        return None
    shared, conflict = place_relation(post, c.features.get("places", {}))
    if conflict:
        return None
    total = topic + params.place_bonus * min(len(shared), 2)
    if total < params.join_score:
        return None
    terms: Mapping[str, float] = c.features.get("terms", {})
    common = sorted((k for k in post.terms if k in terms), key=lambda k: -post.terms[k] * terms[k])
    return _Match(c, round(total, 4), shared, tuple(common[:5]))


def correlate(candidates: list[Candidate], open_incidents: Iterable[IncidentState], *, now: datetime,
              params: CorrelationParams, extractor: FeatureExtractor) -> list[IncidentChange]:
    """Decide which candidates join open incidents and which open new ones (see the module docstring)."""
    index = _Index()
    by_key: dict[str, int] = {}
    for inc in open_incidents:
        if not inc.status.is_open or inc.category is Category.IRRELEVANT:
            continue
        known = dict(inc.features) if inc.features.get("terms") else {
            **inc.features, **absorb({}, extractor.extract(inc.title))}
        index.add(_Cluster(inc.id, inc.category, inc.last_post_at or inc.first_seen_at, known))
        if inc.group_key:
            by_key[inc.group_key] = inc.id
    changes: list[IncidentChange | _Cluster] = []
    fresh = 0
    for cand in candidates:
        v = cand.verdict
        if v.category is Category.IRRELEVANT or v.severity is None or v.relevance < params.relevance_threshold:
            continue
        feats = extractor.extract(cand.post.title, cand.post.text)
        at = cand.post.fetched_at
        match = _best(feats, index, v.category, at, params)
        key = group_key(cand.post)
        if match is None and key in by_key:
            match = _Match(index.clusters[by_key[key]], 1.0, (), ())
        if match is None:
            fresh -= 1
            cluster = _Cluster(fresh, v.category, at, absorb({}, feats), members=[cand])
            index.add(cluster)
            changes.append(cluster)
            continue
        c = match.cluster
        c.features, c.last_at = absorb(c.features, feats), max(c.last_at, at)
        index.add(c)
        if c.id < 0:
            c.members.append(cand)
        else:
            changes.append(JoinIncident(c.id, cand.post_id, v.severity, match.score,
                                        {"places": list(match.places), "keywords": list(match.keywords)},
                                        dict(c.features)))
    return [_opening(x) if isinstance(x, _Cluster) else x for x in changes]


def _best(feats: PostFeatures, index: _Index, category: Category, at: datetime,
          params: CorrelationParams) -> _Match | None:
    best: _Match | None = None
    for cid, topic in index.topics(feats).items():
        c = index.clusters[cid]
        if topic < params.min_topic or at - c.last_at > params.window \
                or not params.compatible_with(category, c.category):
            continue
        m = score(feats, c, topic, params)
        if m is not None and (best is None or (m.score, -m.cluster.id) > (best.score, -best.cluster.id)):
            best = m
    return best


def _opening(c: _Cluster) -> OpenIncident:
    first = min(c.members, key=lambda m: (m.post.fetched_at, m.post_id))
    worst = min(c.members, key=lambda m: (m.verdict.severity or Severity.IV).rank)
    p, v = first.post, first.verdict
    return OpenIncident(
        group_key=group_key(p), title=(p.title or p.text[:80]).strip(), category=v.category,
        severity=worst.verdict.severity or Severity.IV, sentiment=v.sentiment, first_seen_at=p.fetched_at,
        source=p.source, source_url=p.url, post_ids=tuple(m.post_id for m in c.members), features=c.features,
        last_post_at=max(m.post.fetched_at for m in c.members),
    )
