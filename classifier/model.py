"""The text model: one shared feature pipeline (jieba word n-grams + character n-grams, TF-IDF) and three
linear heads (category, sentiment, severity). Artifacts are versioned folders under the model dir:
`<model_dir>/<version>/model.joblib` + `meta.json`, and `<model_dir>/ACTIVE` names the version in use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.segment import WordNgrams
from classifier.severity import figure_severity
from models.enums import Category, Sentiment, Severity

if TYPE_CHECKING:  # scikit-learn is imported lazily: commands that never classify start fast
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

ARTIFACT = "model.joblib"
META = "meta.json"
ACTIVE = "ACTIVE"


class ModelNotFoundError(Exception):
    """No trained model is available; the message says how to build one."""


@dataclass(frozen=True)
class Verdict:
    """The classifier's output for one text (the `yuqing classify` contract)."""

    relevance: float
    category: Category
    category_scores: dict[str, float]
    severity: Severity | None
    severity_reasons: list[str]
    sentiment: Sentiment
    model_version: str
    explain: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "relevance": round(self.relevance, 4),
            "category": self.category.value,
            "category_scores": {k: round(v, 4) for k, v in self.category_scores.items()},
            "severity": self.severity.value if self.severity else None,
            "severity_reasons": self.severity_reasons,
            "sentiment": self.sentiment.value,
            "model_version": self.model_version,
        }
        if self.explain:
            out["explain"] = self.explain
        return out


def build_features() -> FeatureUnion:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            ("words", TfidfVectorizer(analyzer=WordNgrams(), sublinear_tf=True, min_df=1)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, min_df=2)),
        ]
    )


def _head() -> LogisticRegression:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=8.0, max_iter=2000, class_weight="balanced")


class TextModel:
    """Trained features + heads. Build with `fit`, persist with `save`, reload with `load`."""

    def __init__(self, version: str, features: FeatureUnion, heads: dict[str, LogisticRegression]) -> None:
        self.version = version
        self.features = features
        self.heads = heads

    @classmethod
    def fit(cls, version: str, texts: Sequence[str], labels: dict[str, Sequence[str | None]]) -> TextModel:
        """Train every head in `labels` (rows labelled None are left out of that head)."""
        features = build_features()
        matrix = features.fit_transform(list(texts))
        heads: dict[str, LogisticRegression] = {}
        for name, ys in labels.items():
            rows = [i for i, y in enumerate(ys) if y is not None]
            head = _head()
            head.fit(matrix[rows], [ys[i] for i in rows])
            heads[name] = head
        return cls(version, features, heads)

    def predict(self, texts: Sequence[str], *, threshold: float = 0.5) -> list[Verdict]:
        if not texts:
            return []
        matrix = self.features.transform(list(texts))
        cat_p = self.heads["category"].predict_proba(matrix)
        sen = self.heads["sentiment"].predict(matrix)
        sev = self.heads["severity"].predict(matrix)
        classes = [str(c) for c in self.heads["category"].classes_]
        out = []
        for i, text in enumerate(texts):
            scores = {c: float(p) for c, p in zip(classes, cat_p[i], strict=True)}
            for c in Category:
                scores.setdefault(c.value, 0.0)
            out.append(self._verdict(text, scores, str(sen[i]), str(sev[i]), threshold))
        return out

    def _verdict(self, text: str, scores: dict[str, float], sentiment: str, severity: str, threshold: float) -> Verdict:
        relevance = 1.0 - scores[Category.IRRELEVANT.value]
        if relevance < threshold:
            category = Category.IRRELEVANT
        else:
            relevant = {c: p for c, p in scores.items() if c != Category.IRRELEVANT.value}
            category = Category(max(relevant, key=lambda c: relevant[c]))
        if category is Category.IRRELEVANT:
            return Verdict(relevance, category, scores, None, [], Sentiment(sentiment), self.version)
        level, reasons = _combine_severity(text, Severity(severity))
        return Verdict(relevance, category, scores, level, reasons, Sentiment(sentiment), self.version)

    def save(self, model_dir: Path, *, meta: dict[str, Any]) -> Path:
        folder = model_dir / self.version
        import joblib

        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump({"features": self.features, "heads": self.heads}, folder / ARTIFACT, compress=3)
        (folder / META).write_text(json.dumps({"version": self.version, **meta}, ensure_ascii=False, indent=2))
        return folder

    @classmethod
    def load(cls, model_dir: Path, version: str | None = None) -> TextModel:
        version = version or active_version(model_dir)
        path = model_dir / version / ARTIFACT
        if not path.exists():
            raise ModelNotFoundError(f"model {version!r} not found at {path}; run `yuqing train`")
        import joblib

        data = joblib.load(path)
        return cls(version, data["features"], data["heads"])


def _combine_severity(text: str, model_level: Severity) -> tuple[Severity, list[str]]:
    """The more severe of the stated figures and the model's estimate, with the reasons for it."""
    cue = figure_severity(text)
    if cue is None:
        return model_level, [f"模型研判→{model_level.label}({model_level.value})"]
    if cue.severity.rank <= model_level.rank:
        return cue.severity, [cue.reason]
    return model_level, [f"模型研判→{model_level.label}({model_level.value})", cue.reason]


def active_version(model_dir: Path) -> str:
    marker = model_dir / ACTIVE
    if not marker.exists():
        raise ModelNotFoundError(f"no trained model in {model_dir}; run `yuqing train`")
    return marker.read_text(encoding="utf-8").strip()


def set_active(model_dir: Path, version: str) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    tmp = model_dir / f"{ACTIVE}.tmp"
    tmp.write_text(version + "\n", encoding="utf-8")
    tmp.replace(model_dir / ACTIVE)


def top_terms(model: TextModel, text: str, head: str = "category", k: int = 5) -> list[str]:
    """The features that pushed `text` most towards its predicted class (for explanations)."""
    import numpy as np

    vec = model.features.transform([text])
    clf = model.heads[head]
    pred = clf.predict(vec)[0]
    row = list(clf.classes_).index(pred)
    coef = clf.coef_[row] if clf.coef_.shape[0] > 1 else clf.coef_[0]
    contrib = vec.multiply(coef).tocsr()
    names = model.features.get_feature_names_out()
    order = np.argsort(contrib.data)[::-1][:k]
    return [str(names[contrib.indices[i]]).split("__", 1)[-1] for i in order if contrib.data[i] > 0]
