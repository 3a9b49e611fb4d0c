"""Alert-path figures on this machine. Prints JSON.

    .venv/bin/python benchmarks/alerts.py [--incidents 1000] [--deadlines 100000] [--skip-burst] [--skip-reconcile]

(a) burst: `--incidents` incidents open in a burst (committed in batches of `--batch`, as the processing loop
    does), and again paced at 30 per second (the real Bot API's overall limit, so no queue builds up); they go
    out through the real dispatcher and python-telegram-bot to the in-process fake Bot API server.
    Latency per incident = the fake server's accept time of the first message naming it (its
    事件编号 #id, so batched messages count too) minus the commit time of its transaction; p50/p90/p99/max.
    `latency_without_queue_s` takes out the wait behind earlier messages to the same chat (sent one at a time,
    in order): from the later of its commit and the previous acceptance to its own acceptance.
    The fake server does not rate-limit, so these are figures outside rate-limit waits: the real Bot API
    accepts about 30 messages/s overall and 20/min per group, so a burst of 1,000 to one chat takes at
    least 33 s there unless the notification stage folds it into fewer messages.
(b) reconcile: `--deadlines` pending deadlines (two per incident, next notices spread over the next 48 h,
    2% already overdue) are reconciled at start-up by `DeadlineScheduler.reconcile()`: seconds and peak
    Python memory (tracemalloc, measured in a second run since tracing slows the code), for the default
    trigger horizon (`ops.schedule_horizon`, jobs only for notices due within it) and with every trigger
    made at once (horizon off). On SQLite, and on PostgreSQL too when YUQING_TEST_PG_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PTB_TIMEDELTA", "true")

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from alerts.clock import SystemClock
from alerts.deadlines import freeze_policy
from alerts.engine import AlertEngine
from alerts.incidents import OpenIncident
from alerts.notifiers.telegram import TelegramNotifier
from alerts.outbox import Dispatcher, Receiver
from alerts.scheduler import DeadlineScheduler
from config.schema import OpsSettings, ResponseSettings
from models.db import make_engine, session_scope
from models.enums import Category, Sentiment, Severity
from models.migrate import upgrade
from models.tables import Deadline, Incident
from tests.fake_telegram import FakeTelegramServer

SH = ZoneInfo("Asia/Shanghai")
TOKEN = "123456:BENCH-token-abcdefghijklmnop"
CHAT = 4242
ID_RE = re.compile(r"#(\d+)")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4)

    return {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": round(ordered[-1], 4),
            "mean": round(statistics.fmean(ordered), 4)}


# ---------------------------------------------------------------- (a) burst to the fake Bot API


def _opening(i: int, now: datetime) -> OpenIncident:
    return OpenIncident(group_key=f"bench-{i}", title=f"某地发生突发事件 第{i}起（基准测试）",
                        category=Category.EMERGENCY, severity=Severity.I if i % 2 else Severity.III,
                        sentiment=Sentiment.NEGATIVE,
                        first_seen_at=now, source="bench", source_url=f"https://bench.example.cn/{i}", post_ids=())


async def _burst(db: Engine, n: int, batch: int, server: FakeTelegramServer,
                 rate: float | None = None) -> dict[str, Any]:
    """Open `n` incidents, `batch` per transaction, back to back (or `rate` transactions per second), dispatching
    after each commit as the processing loop does; wait until the fake server has accepted them all."""
    notifier = TelegramNotifier(TOKEN, [CHAT], base_url=server.base_url, timeout=15)
    clock = SystemClock()
    engine = AlertEngine(db, [Receiver("telegram", str(CHAT), "html")], SH)
    dispatcher = Dispatcher(db, [notifier], clock)
    policy = freeze_policy(ResponseSettings())
    await notifier.send(str(CHAT), "warm-up")  # connect once (getMe), as a running service already has
    server.clear()
    committed: dict[int, float] = {}
    sends: list[asyncio.Task[Any]] = []
    start = time.time()
    for k, first in enumerate(range(0, n, batch)):
        if rate is not None:
            await asyncio.sleep(max(0.0, start + k / rate - time.time()))
        now = clock.now()
        with session_scope(db) as s:
            ids = [engine.open_incident(s, _opening(i, now), policy, now).id
                   for i in range(first, min(n, first + batch))]
        at = time.time()
        committed.update({i: at for i in ids if i is not None})
        sends.append(asyncio.create_task(dispatcher.dispatch()))  # what process_pending does after each pass
        await asyncio.sleep(0)
    while True:  # the service's periodic dispatch picks up what a busy pass left
        await asyncio.gather(*sends)
        accepted = _accepted(server)
        if len(accepted) >= n or time.time() - start > 240:
            break
        sends = [asyncio.create_task(dispatcher.dispatch())]
    await notifier.close()
    return _figures(committed, accepted, start, len(server.messages)) | {"incidents": n, "commit_batch": batch}


def _figures(committed: dict[int, float], accepted: dict[int, float], start: float, messages: int) -> dict[str, Any]:
    latencies = [accepted[i] - committed[i] for i in committed if i in accepted]
    # own time: from the later of its commit and the previous acceptance (the chat's queue ahead of it) to its
    # acceptance, i.e. the latency with the queueing of a one-chat burst taken out
    order = sorted((accepted[i], committed[i]) for i in committed if i in accepted)
    own = [acc - max(com, prev) for (acc, com), prev in zip(order, [0.0] + [a for a, _ in order[:-1]], strict=True)]
    span = max(accepted.values()) - start if accepted else 0.0
    return {
        "delivered": len(latencies), "messages": messages, "seconds": round(span, 2),
        "messages_per_s": round(messages / span, 1) if span else None,
        "latency_s": percentiles(latencies) if latencies else None,
        "latency_without_queue_s": percentiles(own) if own else None,
    }


def _accepted(server: FakeTelegramServer) -> dict[int, float]:
    """Incident id -> accept time of the first message naming it (事件编号：#id)."""
    out: dict[int, float] = {}
    for m in server.messages:
        for found in ID_RE.findall(m.get("plain_text") or ""):
            out.setdefault(int(found), float(m["at"]))
    return out


# ---------------------------------------------------------------- (b) reconcile at start-up


def _seed_deadlines(db: Engine, n: int, now: datetime) -> None:
    """n pending deadlines, two per incident, next notices spread over 48 h (2% overdue)."""
    policy = freeze_policy(ResponseSettings())
    incidents = n // 2
    chunk = 5000
    for first in range(0, incidents, chunk):
        rows = [dict(id=i + 1, group_key=f"rec-{i}", title=f"待办事件 {i}", category="EMERGENCY", severity="I",
                     sentiment="negative", status="new", first_seen_at=now, opened_at=now, updated_at=now,
                     source="bench", source_url="", post_count=1, policy=policy, drill=False, token=0,
                     source_count=1, heat=0.0,
                     heat_trend="steady", features={}, escalation_level=0)
                for i in range(first, min(incidents, first + chunk))]
        with db.begin() as conn:
            conn.execute(insert(Incident.__table__), rows)  # type: ignore[attr-defined]
    span = 48 * 3600
    for first in range(0, n, chunk * 2):
        rows = []
        for j in range(first, min(n, first + chunk * 2)):
            offset = -60 if j % 50 == 0 else (j * 7919) % span  # deterministic spread
            at = now + timedelta(seconds=offset)
            rows.append(dict(incident_id=j // 2 + 1, kind="release_5h" if j % 2 else "press_conference_24h", seq=0,
                             start_at=now, due_at=at + timedelta(hours=1), status="pending", notice_stage=0,
                             next_notice_at=at, token=0))
        with db.begin() as conn:
            conn.execute(insert(Deadline.__table__), rows)  # type: ignore[attr-defined]


async def _reconcile_once(db: Engine, horizon: timedelta | None, trace: bool) -> dict[str, Any]:
    clock = SystemClock()
    sched = DeadlineScheduler(AlertEngine(db, [], SH), Dispatcher(db, [], clock), clock, horizon=horizon)
    sched.start(paused=True)  # as the service does, but nothing may fire during the measurement
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    jobs = sched.reconcile()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    if trace:
        tracemalloc.stop()
    sched.shutdown()
    return {"jobs": jobs, "seconds": round(seconds, 2), "peak_mib": round(peak / 2**20, 1)}


def _reconcile(db: Engine, n: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    _seed_deadlines(db, n, now)
    seeded = time.perf_counter() - t0
    out: dict[str, Any] = {"pending_deadlines": n, "seed_seconds": round(seeded, 1)}
    for name, horizon in (("horizon_" + _fmt(OpsSettings().schedule_horizon), OpsSettings().schedule_horizon),
                          ("all_at_once", None)):
        timed = asyncio.run(_reconcile_once(db, horizon, trace=False))
        traced = asyncio.run(_reconcile_once(db, horizon, trace=True))
        out[name] = {"jobs": timed["jobs"], "seconds": timed["seconds"], "peak_python_mib": traced["peak_mib"]}
    return out


def _fmt(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 3600)}h"


# ---------------------------------------------------------------- databases and main


def _sqlite(work: Path, name: str) -> Engine:
    db = make_engine(f"sqlite:///{work / name}")
    upgrade(db)
    return db


def _postgres(url: str) -> tuple[Engine, Callable[[], None]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    base = make_engine(url)
    with base.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    db = make_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
    upgrade(db)

    def drop() -> None:
        db.dispose()
        with base.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        base.dispose()

    return db, drop


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50, help="incidents per committed transaction in the burst")
    ap.add_argument("--deadlines", type=int, default=100_000)
    ap.add_argument("--skip-burst", action="store_true")
    ap.add_argument("--skip-reconcile", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="yuqing-bench-alerts-"))
    result: dict[str, Any] = {"load_average": [round(x, 2) for x in os.getloadavg()], "cpus": os.cpu_count()}
    t0 = time.perf_counter()
    if not args.skip_burst:
        with FakeTelegramServer() as server:
            result["burst_sqlite"] = asyncio.run(_burst(_sqlite(work, "burst.db"), args.incidents, args.batch, server))
        with FakeTelegramServer() as server:  # as fast as the real Bot API would accept them: no queue builds up
            result["paced_30_per_s_sqlite"] = asyncio.run(_burst(_sqlite(work, "paced.db"), args.incidents, 1, server,
                                                                 rate=30.0))
    if not args.skip_reconcile:
        result["reconcile_sqlite"] = _reconcile(_sqlite(work, "reconcile.db"), args.deadlines)
        pg_url = os.environ.get("YUQING_TEST_PG_URL")
        if pg_url:
            db, drop = _postgres(pg_url)
            try:
                result["reconcile_postgresql"] = _reconcile(db, args.deadlines)
            finally:
                drop()
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
