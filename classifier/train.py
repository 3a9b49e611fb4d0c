"""Training: the shipped seed corpus (plus optional user files) → a versioned model artifact.

The version is derived from the training data and settings, so training the same data twice yields the
same version and `--if-missing` can skip the work.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from classifier.model import TextModel, set_active
from models.enums import Category, Sentiment, Severity

SEED_DIR = Path(__file__).with_name("seed")
FEATURE_REVISION = "f1"  # bump when build_features or the heads change


class CorpusError(ValueError):
    """A training file has a bad line; the message names file and line."""


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    sentiment: str
    severity: str | None

    @property
    def key(self) -> str:
        return f"{self.category}|{self.sentiment}|{self.severity}|{self.text}"


def load_examples(files: Iterable[Path]) -> list[Example]:
    out: list[Example] = []
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                out.append(_example(json.loads(line) if line.strip() else {}, path, lineno))
    return out


def _example(row: Any, path: Path, lineno: int) -> Example:
    where = f"{path}:{lineno}"
    if not isinstance(row, dict) or not str(row.get("text") or "").strip():
        raise CorpusError(f"{where}: needs an object with non-empty 'text'")
    title = str(row.get("title") or "").strip()
    text = f"{title}\n{row['text']}" if title else str(row["text"])
    try:
        category = Category(row["category"]).value
        sentiment = Sentiment(row.get("sentiment", "neutral")).value
        severity = Severity(row["severity"]).value if row.get("severity") else None
    except (KeyError, ValueError) as exc:
        raise CorpusError(f"{where}: bad label: {exc}") from None
    if category == Category.IRRELEVANT.value:
        severity = None
    elif severity is None:
        severity = Severity.IV.value
    return Example(text, category, sentiment, severity)


def seed_files(seed_dir: Path = SEED_DIR) -> list[Path]:
    return sorted(seed_dir.glob("*.jsonl"))


def corpus_version(examples: Sequence[Example]) -> str:
    from importlib.metadata import version

    digest = hashlib.sha256()
    digest.update(f"{FEATURE_REVISION}|{version('scikit-learn').split('.')[0]}".encode())
    for ex in sorted(examples, key=lambda e: e.key):
        digest.update(ex.key.encode("utf-8"))
        digest.update(b"\0")
    return f"m-{digest.hexdigest()[:12]}"


def train(examples: Sequence[Example], model_dir: Path, *, activate: bool = True) -> TextModel:
    if len({e.category for e in examples}) < 2:
        raise CorpusError("training needs examples of at least two categories")
    version = corpus_version(examples)
    model = TextModel.fit(
        version,
        [e.text for e in examples],
        {
            "category": [e.category for e in examples],
            "sentiment": [e.sentiment for e in examples],
            "severity": [e.severity for e in examples],
        },
    )
    model.save(model_dir, meta={"examples": len(examples), "by_category": dict(Counter(e.category for e in examples))})
    if activate:
        set_active(model_dir, version)
    return model


def is_trained(model_dir: Path, examples: Sequence[Example]) -> bool:
    return (model_dir / corpus_version(examples) / "model.joblib").exists()
