"""Merging and splitting incidents, and re-measuring an incident from its posts.

Conventions of alerts/actions.py: each runs in the caller's transaction (never commits), records incident
events with the actor, and returns an `ActionResult` whose `scheduled` triggers the caller hands to the
scheduler after commit; refusals are results with a Chinese message.

- `merge(s, target_id, other_ids, actor=…, now=…)`: the others' posts move to the target; the others end as
  MERGED (`merged_into_id`) with their pending clocks cancelled. The statutory clock runs from the earliest
  detection of the event: when a merged incident was detected earlier, the target takes its first detection
  (and its source) and its pending clocks are re-planned from there; when one was more severe, the target's
  severity is raised (re-planned the same way). MERGED events on both sides.
- `split(s, incident_id, post_ids, actor=…, now=…)`: the posts (and their near copies) move into a new
  incident with its own clocks from their earliest fetch time, its category and severity from their
  classifications; the original keeps its clocks (a split never moves a running statutory clock later).
  SPLIT events on both sides.
- `measure_heat` / `post_mentions`: the heat of an incident read from its posts and every copy of them
  (raw rows); used here and by the pipeline after posts join. `open_incident_states`, `with_copies` and
  `adopt_copies` are the pipeline's other reads and writes of incident rows around correlation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from alerts import actions, clocks, heat
from alerts import deadlines as dl
from alerts.actions import ActionResult
from alerts.deadlines import Scheduled
from alerts.events import record
from alerts.features import FeatureExtractor
from alerts.incidents import IncidentState, features_of, union
from config.schema import UPDATE_KIND
from models.enums import Category, DeadlineStatus, EventKind, IncidentStatus, Severity
from models.tables import Classification, Incident, Post, RawPost


@dataclass(frozen=True)
class Remeasure:
    """What is needed to re-measure heat and features after posts move (None: keep them as they are)."""

    heat: heat.HeatParams
    extractor: FeatureExtractor | None = None


# ---------------------------------------------------------------- heat from the database


def post_mentions(s: Session, post_ids: Iterable[int]) -> list[heat.Mention]:
    """Every sighting of these posts: their raw rows (the post itself and each exact copy), or the post row
    itself (counted `spread_count` times) when it has none."""
    ids = list(set(post_ids))
    if not ids:
        return []
    posts = s.exec(select(Post).where(col(Post.id).in_(ids))).all()
    author = col(RawPost.payload)["author"].as_string()
    columns = (col(RawPost.post_id), col(RawPost.source), col(RawPost.url), col(RawPost.fetched_at), author)
    raws = s.execute(sa_select(*columns).where(col(RawPost.post_id).in_(ids))).all()
    out: list[heat.Mention] = []
    seen: set[int] = set()
    for post_id, source, url, at, author in raws:
        seen.add(post_id or 0)
        out.append(heat.Mention(at, source, _host(url), author))
    for p in posts:
        if p.id not in seen:
            out += [heat.Mention(p.fetched_at, p.source, _host(p.url), p.author)] * max(p.spread_count, 1)
    return out


def incident_post_ids(s: Session, incident_id: int) -> list[int]:
    return [i for i in s.exec(select(Post.id).where(Post.incident_id == incident_id)).all() if i is not None]


def measure_heat(s: Session, inc: Incident, now: datetime, params: heat.HeatParams, *,
                 actor: str = "system") -> heat.HeatReading:
    """Re-measure the incident's heat, store it (heat, trend, source count, last post) and record HEAT_CHANGED
    when the trend changed or the score crossed a band."""
    assert inc.id is not None
    mentions = post_mentions(s, incident_post_ids(s, inc.id))
    reading = heat.measure(mentions, now=now, params=params)
    if "heat" in inc.features and heat.changed(inc.heat, inc.heat_trend, reading, params.bands):
        record(s, inc.id, now, EventKind.HEAT_CHANGED,
               {**reading.detail(), "from_score": inc.heat, "from_trend": inc.heat_trend}, actor=actor)
    inc.heat, inc.heat_trend, inc.source_count = reading.score, reading.trend.value, max(reading.sources, 1)
    inc.features = {**inc.features, "heat": reading.detail()}
    if mentions:
        inc.last_post_at = max(m.at for m in mentions)
    return reading


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


# ---------------------------------------------------------------- incident rows for the pipeline


def open_incident_states(session: Session, since: datetime) -> list[IncidentState]:
    """Open incidents whose last post is recent enough to be joined, as correlation sees them."""
    open_states = [st.value for st in IncidentStatus if st.is_open]
    last = func.coalesce(col(Incident.last_post_at), col(Incident.updated_at))
    rows = session.exec(select(Incident).where(col(Incident.status).in_(open_states)).where(last >= since)).all()
    return [IncidentState(inc.id, Category(inc.category), Severity(inc.severity), inc.first_seen_at,
                          inc.last_post_at or inc.updated_at, inc.title, inc.features, IncidentStatus(inc.status),
                          inc.group_key) for inc in rows if inc.id is not None]


def with_copies(session: Session, post_ids: Iterable[int]) -> list[int]:
    """The posts and their near copies."""
    ids = list(post_ids)
    copies = session.exec(select(Post.id).where(col(Post.duplicate_of_id).in_(ids))).all()
    return ids + [i for i in copies if i is not None]


def adopt_copies(session: Session, post_ids: Iterable[int], incident_id: int) -> None:
    """Near copies stored in the same batch as their first post follow it into its incident."""
    for copy in session.exec(select(Post).where(col(Post.duplicate_of_id).in_(list(post_ids)))
                             .where(col(Post.incident_id).is_(None))).all():
        copy.incident_id = incident_id


# ---------------------------------------------------------------- merge


def merge(s: Session, target_id: int, other_ids: list[int], *, actor: str, now: datetime,
          remeasure: Remeasure | None = None) -> ActionResult:
    """Fold `other_ids` into `target_id` (see the module docstring)."""
    others_wanted = list(dict.fromkeys(other_ids))
    if not others_wanted:
        return ActionResult(False, "请指定要合并进来的事件", target_id)
    if target_id in others_wanted:
        return ActionResult(False, f"事件 #{target_id} 不能合并到自身", target_id)
    target = _open(s, target_id)
    if isinstance(target, ActionResult):
        return target
    others: list[Incident] = []
    for oid in others_wanted:
        other = _open(s, oid)
        if isinstance(other, ActionResult):
            return other
        others.append(other)
    moved = 0
    for other in others:
        moved += _absorb(s, target, other, actor=actor, now=now)
    scheduled = _align_clocks(s, target, others, actor=actor, now=now)
    target.post_count += sum(o.post_count for o in others)
    target.updated_at, target.token = now, target.token + 1
    record(s, target_id, now, EventKind.MERGED,
           {"merged": [o.id for o in others], "posts": moved, "first_seen_at": target.first_seen_at.isoformat()},
           actor=actor)
    if remeasure is not None:
        measure_heat(s, target, now, remeasure.heat, actor=actor)
    s.flush()
    ids = "、".join(f"#{o.id}" for o in others)
    return ActionResult(True, f"已将事件 {ids} 合并到事件 #{target_id}（移入 {moved} 条信息）", target_id,
                        scheduled)


def _absorb(s: Session, target: Incident, other: Incident, *, actor: str, now: datetime) -> int:
    """Move `other`'s posts to the target and end it as merged; return how many posts moved."""
    assert other.id is not None and target.id is not None
    posts = s.exec(select(Post).where(Post.incident_id == other.id)).all()
    for p in posts:
        p.incident_id = target.id
    target.features = union(target.features, other.features)
    clocks.cancel_pending(s, other, now, actor=actor, reason="merged")
    other.status, other.merged_into_id, other.closed_at = IncidentStatus.MERGED, target.id, now
    other.next_escalation_at, other.updated_at, other.token = None, now, other.token + 1
    record(s, other.id, now, EventKind.MERGED, {"into": target.id, "posts": len(posts)}, actor=actor)
    return len(posts)


def _align_clocks(s: Session, target: Incident, others: list[Incident], *, actor: str,
                  now: datetime) -> list[Scheduled]:
    """Earliest first detection and highest severity of the merged event, with the target's clocks re-planned."""
    assert target.id is not None
    earliest = min(others, key=lambda o: o.first_seen_at)
    moved_start = earliest.first_seen_at < target.first_seen_at
    if moved_start:
        target.first_seen_at, target.source, target.source_url = (earliest.first_seen_at, earliest.source,
                                                                   earliest.source_url)
        late = {d.kind for d in clocks.rows(s, target.id) if d.status == DeadlineStatus.PENDING
                and d.kind != UPDATE_KIND and d.start_at > target.first_seen_at}
        if late:
            clocks.cancel_pending(s, target, now, actor=actor, reason="merged: earlier first detection", kinds=late)
    worst = min([Severity(o.severity) for o in others], key=lambda sev: sev.rank)
    if worst.rank < Severity(target.severity).rank:
        ids = "、".join(f"#{o.id}" for o in others)
        return actions.change_severity(s, target.id, worst, actor=actor, now=now, reason=f"合并事件 {ids}").scheduled
    if not moved_start:
        return []
    new_rows = clocks.replan(s, target, Severity(target.severity), now, actor=actor)
    s.flush()
    return clocks.triggers(new_rows)


def _open(s: Session, incident_id: int) -> Incident | ActionResult:
    inc = s.get(Incident, incident_id, with_for_update=True)
    if inc is None:
        return ActionResult(False, f"未找到舆情事件 #{incident_id}", incident_id)
    if not IncidentStatus(inc.status).is_open:
        return ActionResult(False, f"事件 #{incident_id} 已{IncidentStatus(inc.status).label}，无法合并或拆分",
                            incident_id)
    return inc


# ---------------------------------------------------------------- split


def split(s: Session, incident_id: int, post_ids: list[int], *, actor: str, now: datetime,
          remeasure: Remeasure | None = None) -> ActionResult:
    """Move `post_ids` (and their near copies) out of `incident_id` into a new incident with its own clocks."""
    inc = _open(s, incident_id)
    if isinstance(inc, ActionResult):
        return inc
    wanted = set(post_ids)
    if not wanted:
        return ActionResult(False, "请指定要拆分出去的信息编号", incident_id)
    posts = list(s.exec(select(Post).where(Post.incident_id == incident_id)
                        .where(or_(col(Post.id).in_(wanted), col(Post.duplicate_of_id).in_(wanted)))).all())
    missing = wanted - {p.id for p in posts}
    if missing:
        return ActionResult(False, f"信息 {'、'.join(f'#{i}' for i in sorted(missing))} 不属于事件 #{incident_id}",
                            incident_id)
    remaining = s.exec(select(Post.id).where(Post.incident_id == incident_id)
                       .where(col(Post.id).not_in([p.id for p in posts]))).first()
    if remaining is None:
        return ActionResult(False, "不能拆分出事件的全部信息（至少保留一条）", incident_id)
    new = _new_incident(s, inc, posts, now)
    assert new.id is not None
    for p in posts:
        p.incident_id = new.id
    moved = sum(max(p.spread_count, 1) for p in posts if p.duplicate_of_id is None)
    new.post_count = max(moved, 1)
    inc.post_count = max(inc.post_count - moved, 1)
    rows = [clocks.add(s, new, planned, now, actor=actor)
            for planned in dl.plan(new.policy, Severity(new.severity), new.first_seen_at)]
    ids = sorted(p.id for p in posts if p.id is not None)
    record(s, incident_id, now, EventKind.SPLIT, {"new_incident": new.id, "posts": ids}, actor=actor)
    record(s, new.id, now, EventKind.SPLIT, {"from": incident_id, "posts": ids}, actor=actor)
    inc.updated_at, inc.token = now, inc.token + 1
    if remeasure is not None:
        if remeasure.extractor is not None:
            new.features = features_of(remeasure.extractor, [(p.title, p.text) for p in posts])
        measure_heat(s, new, now, remeasure.heat, actor=actor)
        measure_heat(s, inc, now, remeasure.heat, actor=actor)
    s.flush()
    return ActionResult(True, f"已从事件 #{incident_id} 拆分出新事件 #{new.id}（{len(posts)} 条信息）", new.id,
                        clocks.triggers(rows))


def _new_incident(s: Session, inc: Incident, posts: list[Post], now: datetime) -> Incident:
    first = min(posts, key=lambda p: (p.fetched_at, p.id or 0))
    category, severity, sentiment = _labels(s, [p.id for p in posts if p.id is not None], inc)
    new = Incident(
        group_key=f"split:{inc.id}:{first.id}:{inc.token}", title=(first.title or first.text[:80]).strip(),
        category=category, severity=severity, sentiment=sentiment, status=IncidentStatus.NEW,
        first_seen_at=first.fetched_at, opened_at=now, updated_at=now, source=first.source,
        source_url=first.url, policy=inc.policy, drill=inc.drill, last_post_at=max(p.fetched_at for p in posts),
        features={},
    )
    s.add(new)
    s.flush()
    return new


def _labels(s: Session, post_ids: list[int], inc: Incident) -> tuple[str, str, str]:
    """Category of the earliest classified post, the highest severity among them (the incident's as fallback)."""
    rows = s.exec(select(Classification).where(col(Classification.post_id).in_(post_ids))
                  .order_by(col(Classification.post_id), col(Classification.created_at))).all()
    relevant = [r for r in rows if r.category != Category.IRRELEVANT]
    category = relevant[0].category if relevant else inc.category
    sentiment = relevant[0].sentiment if relevant else inc.sentiment
    levels = [Severity(r.severity) for r in relevant if r.severity]
    severity = min(levels, key=lambda sev: sev.rank).value if levels else inc.severity
    return category, severity, sentiment
