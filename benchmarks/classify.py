"""Classifier throughput on this machine. Prints JSON.

    .venv/bin/python benchmarks/classify.py [--posts 20000] [--batch 256] [--length 100] [--no-taskset]

Posts are ~`--length`-character windows cut at random from the shipped seed corpus (classifier/seed). A model
is trained from the seed corpus into a temporary folder (no cross-validation), then `TextModel.predict` is
timed in batches: it runs all four heads (category, relevance = 1 − P(IRRELEVANT), sentiment, severity
including the figure-based cues of classifier/severity.py). Reported: posts/s for predict, for the features
alone and for predict with explanations (on a sample), the peak RSS, and the same run pinned to CPU 0 with
`taskset -c 0` when that command exists (a child process of this script).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classifier.train import load_examples, seed_files, train


def synthetic_posts(count: int, length: int, seed: int = 7) -> list[str]:
    texts = [e.text.replace("\n", " ") for e in load_examples(seed_files())]
    pool = " ".join(texts)
    rng = random.Random(seed)
    return [pool[s : s + length] for s in (rng.randrange(len(pool) - length) for _ in range(count))]


def rate(count: int, seconds: float) -> int:
    return round(count / seconds) if seconds > 0 else 0


def measure(posts: list[str], batch: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        model = train(load_examples(seed_files()), Path(folder), cv_folds=0)
    model.predict(posts[:batch])  # warm-up
    t0 = time.perf_counter()
    for i in range(0, len(posts), batch):
        model.features.transform(posts[i : i + batch])
    t1 = time.perf_counter()
    verdicts = [v for i in range(0, len(posts), batch) for v in model.predict(posts[i : i + batch])]
    t2 = time.perf_counter()
    sample = posts[:1000]
    model.predict(sample, explain=True)
    t3 = time.perf_counter()
    return {
        "posts": len(posts),
        "mean_chars": round(sum(map(len, posts)) / len(posts), 1),
        "batch": batch,
        "features_posts_per_s": rate(len(posts), t1 - t0),
        "predict_all_heads_posts_per_s": rate(len(posts), t2 - t1),
        "predict_with_explain_posts_per_s": rate(len(sample), t3 - t2),
        "relevant_share": round(sum(v.category.value != "IRRELEVANT" for v in verdicts) / len(verdicts), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "model_version": model.version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--length", type=int, default=100)
    parser.add_argument("--no-taskset", action="store_true", help="skip the run pinned to CPU 0")
    args = parser.parse_args()
    result: dict[str, object] = {"single_process": measure(synthetic_posts(args.posts, args.length), args.batch)}
    taskset = shutil.which("taskset")
    if taskset and not args.no_taskset:
        cmd = [taskset, "-c", "0", sys.executable, __file__, "--no-taskset", "--posts", str(args.posts),
               "--batch", str(args.batch), "--length", str(args.length)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        result["taskset_cpu0"] = json.loads(out)["single_process"]
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
