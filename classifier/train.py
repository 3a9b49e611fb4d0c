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
FEATURE_REVISION = "f2"  # bump when build_features or the heads change (f2: char 1-3-grams, calibrated category)
CV_FOLDS = 5


class CorpusError(ValueError):
    """A training file has a bad line; the message names file and line."""


@dataclass(frozen=True)
class Example:
    """One training row. `category` None (a JSONL line with "category": null) makes a sentiment-only row:
    it trains the sentiment head and nothing else; `sentiment` None ("sentiment": null) makes a row that
    trains category and severity but not sentiment (a line without the key is neutral)."""

    text: str
    category: str | None
    sentiment: str | None
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
        category = Category(row["category"]).value if row["category"] is not None else None
        raw = row.get("sentiment", Sentiment.NEUTRAL.value)
        sentiment = None if raw is None else Sentiment(raw).value
        severity = Severity(row["severity"]).value if row.get("severity") else None
    except (KeyError, ValueError) as exc:
        raise CorpusError(f"{where}: bad label: {exc}") from None
    if category is None and sentiment is None:
        raise CorpusError(f"{where}: 'category' and 'sentiment' are both null: the row would train nothing")
    if category in (None, Category.IRRELEVANT.value):
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


def train(
    examples: Sequence[Example], model_dir: Path, *, activate: bool = True, cv_folds: int = CV_FOLDS
) -> TextModel:
    """Fit the model on `examples`, save it under its data-derived version (with `cv_folds`-fold
    cross-validated scores in meta.json; 0 skips them) and, by default, make it the active model."""
    if len({e.category for e in examples} - {None}) < 2:
        raise CorpusError("training needs examples of at least two categories")
    examples = sorted(examples, key=lambda e: e.key)  # canonical order: same data → same model, as the version says
    version = corpus_version(examples)
    model = TextModel.fit(version, [e.text for e in examples], _labels(examples))
    meta: dict[str, Any] = {"examples": len(examples), "by_category": dict(Counter(e.category for e in examples))}
    if cv_folds >= 2:
        meta["cross_validation"] = cross_validate(examples, cv_folds)
    model.save(model_dir, meta=meta)
    if activate:
        set_active(model_dir, version)
    return model


def _labels(examples: Sequence[Example]) -> dict[str, Sequence[str | None]]:
    return {
        "category": [e.category for e in examples],
        "sentiment": [e.sentiment for e in examples],
        "severity": [e.severity for e in examples],
    }


def cross_validate(examples: Sequence[Example], folds: int = CV_FOLDS) -> dict[str, Any]:
    """Stratified k-fold (shuffled, seed 0) macro-F1 per head and Brier scores of the category probabilities
    (multi-class, and relevance = 1 − P(IRRELEVANT) against relevant/irrelevant). Empty when a category
    has fewer than `folds` examples. Sentiment-only rows are left out."""
    import numpy as np
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    examples = [e for e in examples if e.category is not None]
    cats = np.array([e.category for e in examples])
    if min(Counter(cats.tolist()).values()) < folds:
        return {}
    truth: dict[str, list[str]] = {"category": [], "sentiment": [], "severity": []}
    guess: dict[str, list[str]] = {"category": [], "sentiment": [], "severity": []}
    brier, rel_brier = [], []
    for fit_rows, test_rows in StratifiedKFold(folds, shuffle=True, random_state=0).split(cats, cats):
        part = [examples[i] for i in fit_rows]
        held = [examples[i] for i in test_rows]
        model = TextModel.fit("cv", [e.text for e in part], _labels(part))
        matrix = model.features.transform([e.text for e in held])
        proba = model.heads["category"].predict_proba(matrix)
        classes = [str(c) for c in model.heads["category"].classes_]
        onehot = np.array([[e.category == c for c in classes] for e in held], dtype=float)
        brier.extend(((proba - onehot) ** 2).sum(axis=1).tolist())
        irr = classes.index(Category.IRRELEVANT.value)
        rel_brier.extend(((proba[:, irr] - onehot[:, irr]) ** 2).tolist())
        for name in truth:
            pred = model.heads[name].predict(matrix)
            pairs = [(getattr(e, name), str(p)) for e, p in zip(held, pred, strict=True) if getattr(e, name)]
            truth[name] += [t for t, _ in pairs]
            guess[name] += [p for _, p in pairs]
    scores: dict[str, Any] = {"folds": folds}
    for name in truth:
        scores[f"{name}_macro_f1"] = round(float(f1_score(truth[name], guess[name], average="macro")), 4)
    scores["category_brier"] = round(float(np.mean(brier)), 4)
    scores["relevance_brier"] = round(float(np.mean(rel_brier)), 4)
    return scores


def is_trained(model_dir: Path, examples: Sequence[Example]) -> bool:
    return (model_dir / corpus_version(examples) / "model.joblib").exists()
