"""Evaluation of a trained model on labelled data it never saw, and the `yuqing evaluate` command.

`evaluate(model, items, threshold=)` is pure: it predicts every text once and returns a JSON-ready dict
with a section per head the items carry labels for (a section is absent when no item has that label):

- category: per-class precision/recall/F1 and support, macro F1 over the classes present in the gold
  labels, confusion matrix {true: {pred: n}} (items with category None are left out);
- relevance: precision/recall/F1 of "relevant" (predicted relevant = category not IRRELEVANT at the
  threshold) and false_alarm_rate = share of irrelevant items predicted relevant;
- rumour: FALSE_INFO vs everything else (gold from LabelledText.is_rumour);
- sentiment: `accuracy_strict` counts every wrong label as wrong, neutral included. When the gold data
  has no neutral class (positive/negative only), a neutral prediction is also resolved to whichever of
  positive/negative the sentiment head scores higher (`accuracy_resolved`, None when the model exposes no
  scores); `accuracy` is the resolved figure on two-class data and the strict one otherwise;
- severity: exact accuracy and within-one-level accuracy (a missing prediction — IRRELEVANT — is wrong).

Precision/recall/F1 with an empty denominator are None, never an exception.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from classifier.datasets import DATASETS, DatasetError, LabelledText, load_dataset, load_jsonl_labels
from classifier.model import ModelNotFoundError, TextModel, Verdict
from models.enums import Category, Severity

BATCH = 512
DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
_TWO_CLASS = {"positive", "negative"}


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def prf(tp: int, fp: int, fn: int) -> dict[str, float | None]:
    """Precision, recall and F1 from counts (None where undefined)."""
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {"precision": precision, "recall": recall, "f1": f1}


def category_metrics(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """(gold, predicted) category pairs → per-class P/R/F1, macro F1 over gold classes, confusion."""
    confusion: dict[str, dict[str, int]] = {}
    for gold, pred in pairs:
        confusion.setdefault(gold, {}).setdefault(pred, 0)
        confusion[gold][pred] += 1
    classes = sorted({g for g, _ in pairs} | {p for _, p in pairs})
    per_class: dict[str, dict[str, Any]] = {}
    for c in classes:
        tp = sum(1 for g, p in pairs if g == c and p == c)
        fp = sum(1 for g, p in pairs if g != c and p == c)
        fn = sum(1 for g, p in pairs if g == c and p != c)
        per_class[c] = {**prf(tp, fp, fn), "support": tp + fn}
    gold_f1 = [per_class[c]["f1"] or 0.0 for c in sorted(confusion)]
    macro = round(sum(gold_f1) / len(gold_f1), 4) if gold_f1 else None
    accuracy = _ratio(sum(1 for g, p in pairs if g == p), len(pairs))
    return {"n": len(pairs), "accuracy": accuracy, "macro_f1": macro, "per_class": per_class,
            "confusion": confusion}


def binary_metrics(pairs: Sequence[tuple[bool, bool]]) -> dict[str, Any]:
    """(gold, predicted) booleans → P/R/F1 of True, false-alarm rate (share of gold False predicted True)."""
    tp = sum(1 for g, p in pairs if g and p)
    fp = sum(1 for g, p in pairs if not g and p)
    fn = sum(1 for g, p in pairs if g and not p)
    negatives = sum(1 for g, _ in pairs if not g)
    return {"n": len(pairs), "positives": tp + fn, "negatives": negatives, **prf(tp, fp, fn),
            "false_alarm_rate": _ratio(fp, negatives)}


def sentiment_metrics(gold: Sequence[str], pred: Sequence[str],
                      scores: Sequence[dict[str, float]] | None) -> dict[str, Any]:
    """Accuracy, strict and (on positive/negative-only data) with neutral resolved by the head's scores."""
    strict = _ratio(sum(1 for g, p in zip(gold, pred, strict=True) if g == p), len(gold))
    two_class = set(gold) <= _TWO_CLASS
    resolved = None
    if two_class and scores is not None:
        picked = [p if p in _TWO_CLASS else max(_TWO_CLASS, key=lambda c: (s.get(c, 0.0), c))
                  for p, s in zip(pred, scores, strict=True)]
        resolved = _ratio(sum(1 for g, p in zip(gold, picked, strict=True) if g == p), len(gold))
    return {"n": len(gold), "accuracy": resolved if two_class and resolved is not None else strict,
            "accuracy_strict": strict, "accuracy_resolved": resolved,
            "neutral_predicted": _ratio(sum(1 for p in pred if p == "neutral"), len(pred)),
            "gold": dict(Counter(gold)), "predicted": dict(Counter(pred))}


def severity_metrics(pairs: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    """(gold, predicted or None) levels I–IV → exact and within-one-level accuracy."""
    exact = sum(1 for g, p in pairs if g == p)
    near = sum(1 for g, p in pairs if p is not None and abs(Severity(g).rank - Severity(p).rank) <= 1)
    return {"n": len(pairs), "accuracy": _ratio(exact, len(pairs)), "within_one": _ratio(near, len(pairs)),
            "predicted_none": sum(1 for _, p in pairs if p is None)}


def sentiment_scores(model: TextModel, texts: Sequence[str]) -> list[dict[str, float]] | None:
    """The sentiment head's class probabilities, when the model exposes them (None otherwise)."""
    try:
        head = model.heads["sentiment"]
        proba = head.predict_proba(model.features.transform(list(texts)))
        classes = [str(c) for c in head.classes_]
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return [{c: float(p) for c, p in zip(classes, row, strict=True)} for row in proba]


def predict_all(model: TextModel, texts: Sequence[str], threshold: float) -> list[Verdict]:
    out: list[Verdict] = []
    for start in range(0, len(texts), BATCH):
        out.extend(model.predict(list(texts[start:start + BATCH]), threshold=threshold))
    return out


def evaluate(model: TextModel, items: Sequence[LabelledText], *, threshold: float = 0.5) -> dict[str, Any]:
    """Every head the items have labels for, measured against the model's predictions (JSON-ready)."""
    verdicts = predict_all(model, [i.text for i in items], threshold)
    out: dict[str, Any] = {"n": len(items), "threshold": threshold,
                           "model_version": getattr(model, "version", None)}
    pairs = list(zip(items, verdicts, strict=True))
    cats = [(i.category, v.category.value) for i, v in pairs if i.category is not None]
    if cats:
        out["category"] = category_metrics(cats)
    rel = [(i.relevant, v.category is not Category.IRRELEVANT) for i, v in pairs if i.relevant is not None]
    if rel:
        out["relevance"] = binary_metrics(rel)
    rumour = [(i.is_rumour, v.category is Category.FALSE_INFO) for i, v in pairs if i.is_rumour is not None]
    if rumour:
        out["rumour"] = binary_metrics([(bool(g), p) for g, p in rumour])
    senti = [(i, v) for i, v in pairs if i.sentiment is not None]
    if senti:
        needs_scores = any(v.sentiment.value not in _TWO_CLASS for _, v in senti)
        scores = sentiment_scores(model, [i.text for i, _ in senti]) if needs_scores else None
        out["sentiment"] = sentiment_metrics([str(i.sentiment) for i, _ in senti],
                                             [v.sentiment.value for _, v in senti], scores)
    sev = [(i.severity, v.severity.value if v.severity else None) for i, v in pairs if i.severity is not None]
    if sev:
        out["severity"] = severity_metrics(sev)
    return out


def add_evaluate_command(sub: Any) -> None:
    """Register `yuqing evaluate DATA [--config PATH] [--data-root DIR] [--threshold X]`."""
    ev = sub.add_parser("evaluate", help="measure the active model on a labelled JSONL file or a named dataset")
    ev.add_argument("data", help=f"a labelled JSONL file, or a dataset name: {', '.join(sorted(DATASETS))}")
    ev.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    ev.add_argument("--data-root", help=f"folder of the research datasets (default: {DEFAULT_DATA_ROOT})")
    ev.add_argument("--threshold", type=float, help="relevance threshold (default: from the config)")
    ev.set_defaults(func=cmd_evaluate)


def load_items(data: str, data_root: Path) -> tuple[list[LabelledText], list[str]]:
    """Items of a JSONL path or a dataset name, plus error strings (a bad source gives none and one error)."""
    path = Path(data)
    if path.is_file():
        return load_jsonl_labels(path)
    try:
        return load_dataset(data, data_root), []
    except DatasetError as exc:
        return [], [f"{data}: not a file, and {exc}"]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from config.loader import load_config

    settings = load_config(args.config).settings
    items, errors = load_items(args.data, Path(args.data_root) if args.data_root else DEFAULT_DATA_ROOT)
    for error in errors:
        print(error, file=sys.stderr)
    if not items:
        print("nothing to evaluate", file=sys.stderr)
        return 2
    try:
        model = TextModel.load(Path(settings.classifier.model_dir))
    except ModelNotFoundError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    threshold = args.threshold if args.threshold is not None else settings.classifier.relevance_threshold
    report = evaluate(model, items, threshold=threshold)
    report["bad_lines"] = len(errors)
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
