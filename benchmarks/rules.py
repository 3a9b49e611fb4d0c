"""Topic-rule evaluation speed on ~100-character texts built from the seed corpus. Prints JSON.

    .venv/bin/python benchmarks/rules.py
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from classifier.rules import apply_rules, compile_rules, fold, parse_rule  # noqa: E402
from classifier.train import load_examples, seed_files  # noqa: E402
from config.loader import parse_config  # noqa: E402

SECONDS = 2.0


def texts() -> list[str]:
    out = [(e.text.replace("\n", "") * 3)[:100] for e in load_examples(seed_files())]
    random.Random(7).shuffle(out)
    return out


def rate(fn: object, items: list[str]) -> float:
    """Calls per second of fn over items, for about SECONDS."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < SECONDS:
        for item in items:
            fn(item)  # type: ignore[operator]
        count += len(items)
    return count / (time.perf_counter() - start)


def main() -> None:
    items = texts()
    typical = parse_rule("(森林|林区|林场) AND (火灾|起火|山火) NOT (演习|演练)", {})
    folded = [fold(t) for t in items]
    out: dict[str, object] = {
        "benchmark": "rules",
        "texts": len(items),
        "typical_rule_evals_per_s_prefolded": round(rate(typical.root.test, folded)),
        "typical_rule_matches_per_s_with_fold": round(rate(typical.matches, items)),
    }
    for profile in ("forestry", "environment"):
        settings = parse_config((ROOT / "config" / "profiles" / f"{profile}.yaml").read_text(encoding="utf-8"))
        rules = compile_rules(settings.topics)
        out[f"{profile}_rules"] = len(rules)
        out[f"{profile}_texts_per_s"] = round(rate(lambda t, r=rules: apply_rules(r, t), items))
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
