"""Composition root and the `yuqing` command line.

Loads config, builds components, owns the database transaction of each processing batch and calls the
stages in order: normalize → de-duplicate → classify → correlate → plan deadlines and notices. It holds no
business rules; those live in the stage modules.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from alerts import clocks, heat
from alerts.actions import change_severity
from alerts.assembly import build_router, run_once, single_active
from alerts.bot import build_bot
from alerts.clock import Clock, SystemClock
from alerts.commands import add_commands as add_incident_commands
from alerts.deadlines import freeze_policy
from alerts.engine import AlertEngine
from alerts.escalation import Trigger
from alerts.features import extractor_for
from alerts.heat import HeatParams
from alerts.incident_merge_cli import add_commands as add_merge_commands
from alerts.incidents import Candidate, CorrelationParams, JoinIncident, OpenIncident, correlate
from alerts.merge import adopt_copies, measure_heat, open_incident_states, post_mentions, with_copies
from alerts.notifiers import build_notifiers
from alerts.ops_cli import add_commands as add_ops_commands
from alerts.outbox import Dispatcher, admin_receivers, receivers_of
from alerts.pickup import ChangePickup
from alerts.roster import people_of
from alerts.roster_cli import add_commands as add_roster_commands
from alerts.scheduler import DeadlineScheduler
from alerts.service import Hook, ProcessOutcome, Service
from alerts.silence_cli import add_commands as add_silence_commands
from classifier.classify import Classifier, PostInput
from classifier.commands import add_commands as add_classifier_commands
from classifier.commands import load_model
from classifier.model import ModelNotFoundError
from classifier.train import CorpusError
from config.env import EnvError, Environment
from config.loader import ConfigError, LoadedConfig, load_config
from config.schema import FeedSource, Settings, SourceSettings
from crawlers.commands import add_commands as add_ingest_commands
from crawlers.encoding import nfkc_key
from crawlers.neardup import NearDupIndex, signature
from crawlers.normalize import NormalizedPost, NormalizeError, normalize
from crawlers.store import near_index, refresh_near_index
from models.db import session_scope
from models.enums import EventKind, RawPostStatus, Severity
from models.migrate import open_database
from models.tables import Classification, Incident, IncidentEvent, Post, RawPost

log = logging.getLogger("yuqing")


# ---------------------------------------------------------------- processing (one batch, one transaction)


def process_batch(
    session: Session, *, classifier: Classifier, settings: Settings, engine: AlertEngine, policy: dict[str, Any],
    now: datetime, tz: tzinfo, neardup: NearDupIndex | None = None,
) -> ProcessOutcome:
    """Process up to `runtime.batch_size` new raw posts inside the caller's transaction."""
    out = ProcessOutcome()
    raws = session.exec(
        select(RawPost).where(RawPost.status == RawPostStatus.NEW).order_by(col(RawPost.id))
        .limit(settings.runtime.batch_size)
    ).all()
    fresh: list[tuple[RawPost, NormalizedPost]] = []
    for raw in raws:
        raw.processed_at = now
        try:
            fresh.append((raw, normalize(raw.source, raw.url, raw.fetched_at, raw.payload, tz=tz)))
        except NormalizeError as exc:
            raw.status, raw.error = RawPostStatus.FAILED, str(exc)
            out.failed += 1
    new_posts = _dedup(session, fresh, out, now, neardup)
    verdicts = classifier.classify([
        PostInput(p.full_text, source=p.source, author=p.author, url=p.url, metrics=p.metrics) for _, p, _ in new_posts
    ])
    candidates = []
    for (_raw, norm, post), verdict in zip(new_posts, verdicts, strict=True):
        assert post.id is not None
        session.add(Classification(
            post_id=post.id, model_version=verdict.model_version, relevance=verdict.relevance,
            category=verdict.category.value, category_scores=verdict.category_scores,
            severity=verdict.severity.value if verdict.severity else None, sentiment=verdict.sentiment.value,
            explanation={"severity_reasons": verdict.severity_reasons, "secondary": verdict.secondary},
            created_at=now,
        ))
        candidates.append(Candidate(post.id, norm, verdict))
    out.posts = len(new_posts)
    _apply_changes(session, candidates, engine, policy, settings, now, out)
    return out


def _dedup(
    session: Session, fresh: list[tuple[RawPost, NormalizedPost]], out: ProcessOutcome, now: datetime,
    neardup: NearDupIndex | None,
) -> list[tuple[RawPost, NormalizedPost, Post]]:
    """Exact copies add to the first copy's spread count; near copies get a post of their own that points at
    the first one and joins its incident; the rest become new posts (flushed and added to the index)."""
    known = _known_posts(session, fresh)
    new_posts: list[tuple[RawPost, NormalizedPost, Post]] = []
    copies: list[tuple[RawPost, Post, Post | None]] = []  # (raw, first copy, the near copy's own post)
    for raw, norm in fresh:
        raw.status = RawPostStatus.PROCESSED
        same = known.get(norm.fingerprint) or _same_article(known.get(f"url:{norm.url_key}"), norm)
        if same is not None:
            copies.append((raw, same, None))
            continue
        post = _post(norm, signature(norm.full_text))
        session.add(post)
        known[norm.fingerprint] = known[f"url:{norm.url_key}"] = post
        first = _near_copy_of(session, neardup, post.signature or b"", now)
        if first is not None:
            post.duplicate_of_id, post.incident_id = first.id, first.incident_id
            copies.append((raw, first, post))
        else:
            new_posts.append((raw, norm, post))
    session.flush()
    for raw, _, post in new_posts:
        raw.post_id = post.id
        if neardup is not None and post.id is not None and post.signature:
            neardup.add(post.id, post.signature, post.fetched_at)
    for raw, first, own in copies:
        first.spread_count += 1
        raw.post_id = own.id if own is not None else first.id
        out.duplicates += 1
        if first.incident_id is not None:
            _grow(session, first.incident_id, now)
    return new_posts


def _known_posts(session: Session, fresh: list[tuple[RawPost, NormalizedPost]]) -> dict[str, Post]:
    """Stored posts an incoming one may be an exact copy of: same fingerprint, or same URL key (the same
    article reached through its mobile and desktop hosts), keyed by fingerprint and by "url:<key>"."""
    prints = list({p.fingerprint for _, p in fresh})
    keys = list({p.url_key for _, p in fresh})
    known: dict[str, Post] = {}
    for post in session.exec(select(Post).where(col(Post.fingerprint).in_(prints))).all():
        known[post.fingerprint] = post
    for post in session.exec(select(Post).where(col(Post.url_key).in_(keys), col(Post.duplicate_of_id).is_(None))):
        known.setdefault(f"url:{post.url_key}", post)
    return known


def _same_article(post: Post | None, norm: NormalizedPost) -> Post | None:
    """A post at the same URL key is the same article only when the URL names a page (not a site's home page,
    which some feeds give as every entry's link) and the titles agree."""
    if post is None or urlsplit(norm.url).path in ("", "/") or not norm.title:
        return None
    return post if nfkc_key(post.title) == nfkc_key(norm.title) else None


def _post(norm: NormalizedPost, sig: bytes) -> Post:
    return Post(source=norm.source, url=norm.url, url_key=norm.url_key, title=norm.title, text=norm.text,
                author=norm.author, published_at=norm.published_at, fetched_at=norm.fetched_at,
                fingerprint=norm.fingerprint, metrics=norm.metrics, signature=sig)


def _near_copy_of(session: Session, neardup: NearDupIndex | None, sig: bytes, now: datetime) -> Post | None:
    if neardup is None:
        return None
    match = neardup.find(sig, now=now)
    return session.get(Post, match) if match is not None else None


def _apply_changes(
    session: Session, candidates: list[Candidate], engine: AlertEngine, policy: dict[str, Any], settings: Settings,
    now: datetime, out: ProcessOutcome,
) -> None:
    """Correlate the batch's candidates with the open incidents, open and grow incidents (raising severity when
    a joining post shows more: its clocks are re-planned from first detection), then re-measure the heat of every
    incident that grew in this batch."""
    heat_params = HeatParams.from_settings(settings.incidents.heat)
    extractor = extractor_for(tuple(settings.profile.jurisdiction))
    states = open_incident_states(session, now - settings.incidents.window)
    for change in correlate(candidates, states, now=now, params=CorrelationParams.from_settings(settings),
                            extractor=extractor):
        if isinstance(change, OpenIncident):
            reading = heat.measure(post_mentions(session, with_copies(session, change.post_ids)), now=now,
                                   params=heat_params)
            change = replace(change, features={**change.features, "heat": reading.detail()}, heat=reading.score,
                             heat_trend=reading.trend.value, source_count=max(reading.sources, 1))
            inc = engine.open_incident(session, change, policy, now)
            assert inc.id is not None
            adopt_copies(session, change.post_ids, inc.id)
            out.incidents += 1
            out.scheduled += clocks.triggers(clocks.rows(session, inc.id))
            out.scheduled += engine.triggers(session, inc, now)
        elif isinstance(change, JoinIncident):
            out.scheduled += _join(session, engine, change, now)
    for incident_id in sorted(session.info.pop(_GREWN, set())):
        grown = session.get(Incident, incident_id)
        if grown is not None:
            measure_heat(session, grown, now, heat_params)


def _join(session: Session, engine: AlertEngine, change: JoinIncident, now: datetime) -> list[Trigger]:
    """A post joins an open incident; a more severe post raises the incident's severity."""
    post = session.get(Post, change.post_id)
    inc = session.get(Incident, change.incident_id)
    if post is None or inc is None:
        return []
    post.incident_id = change.incident_id
    adopt_copies(session, (change.post_id,), change.incident_id)
    if change.features is not None:
        inc.features = dict(change.features)  # other keys (the heat reading) ride along; re-measured below
    _grow(session, change.incident_id, now, count=max(post.spread_count, 1),
          detail={"post_id": change.post_id, "score": change.score, **change.matched})
    if change.severity is None or not change.severity.rank < Severity(inc.severity).rank:
        return []
    title = " ".join((post.title or post.text[:40]).split())[:60]
    result = change_severity(session, change.incident_id, change.severity, actor="system", now=now,
                             reason=f"新信息 #{change.post_id}「{title}」显示等级为 {change.severity.value}")
    return [*result.scheduled, *engine.severity_changed(session, change.incident_id, now)]


_GREWN = "yuqing.grown_incidents"  # session.info key: incidents whose heat is re-measured at the end of the batch


def _grow(session: Session, incident_id: int, now: datetime, *, count: int = 1,
          detail: dict[str, Any] | None = None) -> None:
    inc = session.get(Incident, incident_id)
    if inc is not None:
        inc.post_count += count
        inc.updated_at = now
        inc.last_post_at = max(inc.last_post_at or now, now)
        session.info.setdefault(_GREWN, set()).add(incident_id)
        session.add(IncidentEvent(incident_id=incident_id, at=now, actor="system", kind=EventKind.GREW.value,
                                  detail={"post_count": inc.post_count, **(detail or {})}))


# ---------------------------------------------------------------- building components


def feed_sources(urls: Iterable[str]) -> list[SourceSettings]:
    """Sources for `run --feed`: a path typed on the command line is relative to the working directory."""
    return [
        FeedSource(name=f"feed-{i}", url=u if "://" in u else str(Path(u).resolve()))
        for i, u in enumerate(urls, 1)
    ]


async def serve(loaded: LoadedConfig, env: Environment, *, feeds: list[str], drill: float | None,
                once: bool, clock: Clock) -> int:
    settings = loaded.settings
    tz = ZoneInfo(settings.agency.timezone)
    db = open_database(env.database_url)
    classifier = Classifier(load_model(settings, train_if_missing=True), settings)
    notifiers = build_notifiers(settings, env)
    router = build_router(db, settings, notifiers, tz)
    engine = AlertEngine(db, receivers_of(notifiers), tz, admin_receivers(notifiers, settings.health.admin_chat_ids),
                         router=router)
    policy = freeze_policy(settings.response, time_scale=drill or 1.0, drill=drill is not None)
    if drill:
        log.info("drill mode: every clock runs %gx faster; messages are marked 【演练】", drill)

    neardup = near_index(db, settings, clock.now())

    def process(now: datetime) -> ProcessOutcome:
        try:
            with session_scope(db) as s:
                out = process_batch(s, classifier=classifier, settings=settings, engine=engine, policy=policy,
                                    now=now, tz=tz, neardup=neardup)
        except Exception:  # ids flushed in the failed batch may not exist: start again from the db
            refresh_near_index(neardup, db, settings, now)
            raise
        neardup.evict(now)
        return out

    sources = feed_sources(feeds) if feeds else [s for s in settings.sources if s.enabled]
    dispatcher = Dispatcher(db, notifiers, clock, settings.alerts.rate_limits, settings.alerts.retry_for)
    scheduler = DeadlineScheduler(engine, dispatcher, clock, horizon=settings.ops.schedule_horizon)
    crawl = [sys.executable, "-m", "pipeline", "crawl", "--config", str(loaded.path)]
    announce = {EventKind.SEVERITY_CHANGED: engine.severity_changed, EventKind.ACKNOWLEDGED: engine.acknowledged}
    hooks: list[Hook] = [] if once else [ChangePickup(db, clock, scheduler.schedule, announce=announce)]
    names = {p.telegram: p.name for p in people_of(settings.roster).values() if p.telegram is not None}
    bot = None if once else build_bot(settings, env, db=db, clock=clock, tz=tz, schedule=scheduler.schedule,
                                      dispatch=scheduler.dispatcher.dispatch, names=names)
    service = Service(db=db, sources=sources, settings=settings, base_dir=loaded.base_dir,
                      scheduler=scheduler, process=process, clock=clock, crawl_command=crawl,
                      hooks=hooks + ([bot] if bot is not None else []))
    lease = single_active(service, engine, clock, tz,
                          refresh=lambda now: refresh_near_index(neardup, db, settings, now))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if once:
            return await run_once(service, lease, clock)
        await service.run(stop)
        return 0
    finally:
        for n in notifiers:
            await n.close()
        db.dispose()


# ---------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config)
    if args.drill is not None and args.drill <= 0:
        raise SystemExit("yuqing run: --drill must be a positive number")
    return asyncio.run(serve(loaded, Environment.from_environ(), feeds=args.feed or [], drill=args.drill,
                             once=args.once, clock=SystemClock()))


def cmd_check_config(args: argparse.Namespace) -> int:
    loaded = load_config(args.path)
    enabled = sum(1 for s in loaded.settings.sources if s.enabled)
    print(f"ok: {loaded.path} ({enabled} enabled source(s))")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    db = open_database(Environment.from_environ().database_url)
    print(f"database at {db.url.render_as_string(hide_password=True)} is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yuqing", description="政务舆情 monitoring with statutory response deadlines")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the service: poll sources, classify, open incidents, send alerts")
    run.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    run.add_argument("--feed", action="append", metavar="URL", help="watch only this feed (repeatable)")
    run.add_argument("--drill", type=float, metavar="N", help="drill: every clock runs N times faster")
    run.add_argument("--once", action="store_true", help="poll and process once, send due alerts, then exit")
    run.set_defaults(func=cmd_run)
    chk = sub.add_parser("check-config", help="validate a config file")
    chk.add_argument("path", nargs="?", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    chk.set_defaults(func=cmd_check_config)
    db = sub.add_parser("db", help="database commands")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate the database schema to the latest version").set_defaults(func=cmd_db)
    add_classifier_commands(sub)
    add_ingest_commands(sub)
    add_roster_commands(sub)
    add_incident_commands(sub)
    add_merge_commands(sub)
    add_ops_commands(sub)
    add_silence_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PTB_TIMEDELTA", "true")  # python-telegram-bot's opt-in to timedelta durations
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "alembic", "httpx", "telegram", "jieba"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except EnvError as exc:
        print(f"environment error: {exc}", file=sys.stderr)
        return 2
    except (CorpusError, ModelNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
