"""Correlation throughput on this machine: candidates/s against ~1,000 open incidents. Prints JSON.

    python benchmarks/correlate.py [--open 1000] [--candidates 5000] [--batch 500] [--seed 7]

Texts are the team-written seed corpus (classifier/seed/*.jsonl, relevant categories only). The open incidents
are made from `--open` of them (their features as the pipeline stores them, categories as labelled, last posts
spread over the 48 h window); the candidates are the remaining texts and, when there are not enough, the
same texts again with a reposter's prefix and suffix (so some of them join incidents and some open new ones).
`correlate` runs on pipeline-sized batches (`--batch`, runtime.batch_size) against the same open incidents,
as one processing pass does; every batch rebuilds its inverted index from the open incidents, which is
included in the time. Reported: jieba's one-time load, feature extraction alone per post, and end to end
candidates/s (mean and slowest batch), with how many candidates joined and how many opened incidents.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alerts.features import FeatureExtractor
from alerts.incidents import (
    Candidate,
    CorrelationParams,
    IncidentState,
    JoinIncident,
    OpenIncident,
    absorb,
    correlate,
)
from classifier.model import Verdict
from config.schema import Settings
from crawlers.dedup import fingerprint
from crawlers.normalize import NormalizedPost
from models.enums import Category, Sentiment, Severity

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
JURISDICTION = ("云南省", "云南", "昆明市", "大理白族自治州", "大理州", "宾川县", "西双版纳傣族自治州", "景洪市")
PREFIXES = ["", "转发：", "//@江城观察: 关注 ", "【扩散】", "#突发# "]
SUFFIXES = ["", " 求真相", "（转自某某网）", " 太可怕了", " 🙏"]


def seed_posts() -> list[tuple[str, Category]]:
    out = []
    for path in sorted((ROOT / "classifier" / "seed").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            category = Category(row["category"])
            if category is not Category.IRRELEVANT:
                out.append((f"{row.get('title') or ''}\n{row['text']}".strip(), category))
    return out


def candidate(i: int, text: str, category: Category, at: datetime) -> Candidate:
    post = NormalizedPost(source="bench", url=f"https://bench.example.cn/{i}", title="", text=text, author=None,
                          published_at=at, fetched_at=at, fingerprint=fingerprint("", text))
    verdict = Verdict(relevance=0.9, category=category, category_scores={}, severity=Severity.III,
                      severity_reasons=[], sentiment=Sentiment.NEGATIVE, model_version="bench")
    return Candidate(i, post, verdict)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open", type=int, default=1000)
    ap.add_argument("--candidates", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    posts = seed_posts()
    rng.shuffle(posts)
    extractor = FeatureExtractor(JURISDICTION)
    t = time.perf_counter()
    extractor.extract("预热")
    load_s = time.perf_counter() - t

    opened, rest = posts[: args.open], posts[args.open:]
    states = []
    for i, (text, category) in enumerate(opened, 1):
        last = NOW - timedelta(minutes=rng.uniform(0, 47 * 60))
        states.append(IncidentState(i, category, Severity.III, last, last, text[:40],
                                    absorb({}, extractor.extract("", text))))
    pool = rest + opened  # texts of open incidents come back too, as reposts that should join them
    cands = []
    for i in range(args.candidates):
        text, category = pool[i % len(pool)]
        if i >= len(rest):
            text = rng.choice(PREFIXES) + text + rng.choice(SUFFIXES)
        cands.append(candidate(100_000 + i, text, category, NOW))

    t = time.perf_counter()
    for c in cands[:1000]:
        extractor.extract(c.post.title, c.post.text)
    extract_ms = (time.perf_counter() - t) / min(1000, len(cands)) * 1000

    params = CorrelationParams.from_settings(Settings())
    joined = opened_new = 0
    batch_times = []
    for start in range(0, len(cands), args.batch):
        batch = cands[start:start + args.batch]
        t = time.perf_counter()
        changes = correlate(batch, states, now=NOW, params=params, extractor=extractor)
        batch_times.append((time.perf_counter() - t, len(batch)))
        joined += sum(1 for c in changes if isinstance(c, JoinIncident))
        opened_new += sum(len(c.post_ids) for c in changes if isinstance(c, OpenIncident))
    total_s = sum(t for t, _ in batch_times)
    print(json.dumps({
        "open_incidents": len(states),
        "candidates": len(cands),
        "batch_size": args.batch,
        "jieba_load_s": round(load_s, 2),
        "extract_ms_per_post": round(extract_ms, 3),
        "candidates_per_s": round(len(cands) / total_s),
        "slowest_batch_candidates_per_s": round(min(n / t for t, n in batch_times)),
        "median_batch_s": round(statistics.median(t for t, _ in batch_times), 3),
        "joined_open_incidents": joined,
        "in_new_incidents": opened_new,
    }, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
