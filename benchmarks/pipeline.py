"""Throughput of the processing path on this machine: normalize → dedup → classify → correlate → plan,
with storage in SQLite (or YUQING_DATABASE_URL), plus classifier-only speed. Prints JSON.

    .venv/bin/python benchmarks/pipeline.py [--posts 5000] [--batch 500]

Posts are synthetic (~100 characters) and built from the shipped seed corpus with random suffixes so that
every one is new; a tenth are exact copies, to exercise de-duplication.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.deadlines import freeze_policy
from alerts.engine import AlertEngine
from alerts.outbox import Receiver
from classifier.classify import Classifier
from classifier.train import load_examples, seed_files, train
from config.schema import Settings
from crawlers.items import RawItem
from crawlers.store import store_raw
from models.db import make_engine, session_scope
from models.migrate import upgrade
from pipeline import process_batch


def synthetic_items(n: int, now: datetime, seed: int = 7) -> list[RawItem]:
    rng = random.Random(seed)
    texts = [e.text.replace("\n", " ") for e in load_examples(seed_files())]
    items = []
    for i in range(n):
        if i % 10 == 9 and items:
            base = items[rng.randrange(len(items))]
            items.append(RawItem("bench", f"https://bench.example.cn/copy/{i}", now, base.title, base.body))
            continue
        text = rng.choice(texts)
        while len(text) < 100:
            text += " " + rng.choice(texts)
        items.append(RawItem("bench", f"https://bench.example.cn/{i}", now, text[:30], f"{text[:100]} #{i}"))
    return items


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="yuqing-bench-"))
    now = datetime.now(UTC)
    t = time.perf_counter()
    model = train(load_examples(seed_files()), work / "models")
    train_s = time.perf_counter() - t

    items = synthetic_items(args.posts, now)
    texts = [f"{i.title}\n{i.body}" for i in items]
    t = time.perf_counter()
    model.predict(texts)
    classify_s = time.perf_counter() - t

    db = make_engine(os.environ.get("YUQING_DATABASE_URL") or f"sqlite:///{work / 'bench.db'}")
    upgrade(db)
    settings = Settings.model_validate({"runtime": {"batch_size": args.batch}})
    engine = AlertEngine(db, [Receiver("console", "stdout", "text")], ZoneInfo("Asia/Shanghai"))
    policy = freeze_policy(settings.response)
    t = time.perf_counter()
    with session_scope(db) as s:
        store_raw(s, items)
    store_s = time.perf_counter() - t
    t = time.perf_counter()
    totals = {"posts": 0, "duplicates": 0, "incidents": 0}
    while True:
        with session_scope(db) as s:
            out = process_batch(s, classifier=Classifier(model, settings), settings=settings, engine=engine,
                                policy=policy, now=now,
                                tz=ZoneInfo("Asia/Shanghai"))
        if out.posts + out.duplicates + out.failed == 0:
            break
        totals["posts"] += out.posts
        totals["duplicates"] += out.duplicates
        totals["incidents"] += out.incidents
    process_s = time.perf_counter() - t
    print(json.dumps({
        "benchmark": "pipeline",
        "database": db.dialect.name,
        "raw_posts": len(items),
        **totals,
        "train_seconds": round(train_s, 2),
        "classify_posts_per_s": round(len(texts) / classify_s, 1),
        "store_raw_posts_per_s": round(len(items) / store_s, 1),
        "process_posts_per_s": round(len(items) / process_s, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
