"""The text model: character 1–3-gram TF-IDF features (no word segmentation at prediction time) and three
linear heads. The category head is a LinearSVC wrapped in sigmoid calibration (CalibratedClassifierCV, cv=3),
so `relevance = 1 − P(IRRELEVANT)` is a calibrated probability to compare with `relevance_threshold`;
sentiment and severity are logistic regressions. `predict` also lists secondary categories (probability ≥
`secondary_threshold`, best first, never the primary or IRRELEVANT) and, on request, an explanation: per head
the n-grams of the text that pushed it most towards the predicted class. Artifacts are versioned folders
under the model dir: `<model_dir>/<version>/model.joblib` + `meta.json`, and `<model_dir>/ACTIVE` names the
version in use.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from classifier.segment import WORDLIKE, CharNgramTfidf
from classifier.severity import figure_severity
from models.enums import Category, Sentiment, Severity

if TYPE_CHECKING:  # scikit-learn is imported lazily: commands that never classify start fast
    import numpy as np
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

EXPLAIN_TERMS = 5
CALIBRATION_FOLDS = 3
HEAD_CONFIG = {
    "category": "CalibratedClassifierCV(LinearSVC(C=0.5, class_weight=balanced), method=sigmoid, cv=3)",
    "sentiment": "LogisticRegression(C=8, class_weight=balanced)",
    "severity": "LogisticRegression(C=8, class_weight=balanced), relevant rows only",
}

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
    secondary: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "relevance": round(self.relevance, 4),
            "category": self.category.value,
            "category_scores": {k: round(v, 4) for k, v in self.category_scores.items()},
            "secondary": self.secondary,
            "severity": self.severity.value if self.severity else None,
            "severity_reasons": self.severity_reasons,
            "sentiment": self.sentiment.value,
            "model_version": self.model_version,
        }
        if self.explain:
            out["explain"] = self.explain
        return out


def build_features() -> CharNgramTfidf:
    return CharNgramTfidf(max_n=3, min_df=2)


def _category_head(labels: Sequence[str]) -> Any:
    """Calibrated LinearSVC; plain logistic regression when a class is too small for 3-fold calibration."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.svm import LinearSVC

    if min(Counter(labels).values()) < CALIBRATION_FOLDS:
        return _head()
    svc = LinearSVC(C=0.5, class_weight="balanced", random_state=0)
    return CalibratedClassifierCV(svc, method="sigmoid", cv=CALIBRATION_FOLDS)


def _head() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=8.0, max_iter=2000, class_weight="balanced")


def class_weights(head: Any, label: str) -> NDArray[np.float64]:
    """The linear weights that push a text towards `label` (averaged over calibration folds)."""
    import numpy as np

    inner = [c.estimator for c in head.calibrated_classifiers_] if hasattr(head, "calibrated_classifiers_") else [head]
    rows = []
    for clf in inner:
        classes = [str(c) for c in clf.classes_]
        coef = np.asarray(clf.coef_, dtype=np.float64)
        if coef.shape[0] == 1:  # binary: one row, positive towards classes[1]
            rows.append(coef[0] if label == classes[1] else -coef[0])
        else:
            rows.append(coef[classes.index(label)])
    return np.asarray(np.mean(rows, axis=0), dtype=np.float64)


class TextModel:
    """Trained features + heads. Build with `fit`, persist with `save`, reload with `load`."""

    def __init__(self, version: str, features: CharNgramTfidf, heads: dict[str, Any]) -> None:
        self.version = version
        self.features = features
        self.heads = heads

    @classmethod
    def fit(cls, version: str, texts: Sequence[str], labels: dict[str, Sequence[str | None]]) -> TextModel:
        """Train every head in `labels` (rows labelled None are left out of that head)."""
        features = build_features()
        matrix = features.fit_transform(list(texts))
        heads: dict[str, Any] = {}
        for name, ys in labels.items():
            rows = [i for i, y in enumerate(ys) if y is not None]
            kept = [str(ys[i]) for i in rows]
            head = _category_head(kept) if name == "category" else _head()
            head.fit(matrix[rows], kept)
            heads[name] = head
        return cls(version, features, heads)

    def predict(
        self, texts: Sequence[str], *, threshold: float = 0.5, secondary_threshold: float = 0.25,
        explain: bool = False,
    ) -> list[Verdict]:
        """One verdict per text, in order; `explain=True` fills `Verdict.explain` (slower)."""
        if not texts:
            return []
        matrix = self.features.transform(list(texts))
        cat_p = self.heads["category"].predict_proba(matrix)
        sen = self.heads["sentiment"].predict(matrix)
        sev = self.heads["severity"].predict(matrix)
        classes = [str(c) for c in self.heads["category"].classes_]
        out = []
        for i, text in enumerate(texts):
            scores = {c.value: 0.0 for c in Category} | {c: float(p) for c, p in zip(classes, cat_p[i], strict=True)}
            verdict = self._verdict(text, scores, str(sen[i]), str(sev[i]), threshold, secondary_threshold)
            out.append(verdict if not explain else _with_explain(verdict, self._explain_row(matrix[i], text)))
        return out

    def _verdict(
        self, text: str, scores: dict[str, float], sentiment: str, severity: str, threshold: float, secondary: float
    ) -> Verdict:
        relevance = 1.0 - scores[Category.IRRELEVANT.value]
        relevant = sorted((c for c in scores if c != Category.IRRELEVANT.value), key=lambda c: (-scores[c], c))
        if relevance < threshold:
            return Verdict(relevance, Category.IRRELEVANT, scores, None, [], Sentiment(sentiment), self.version)
        category = Category(relevant[0])
        others = [c for c in relevant[1:] if scores[c] >= secondary]
        level, reasons = _combine_severity(text, Severity(severity))
        return Verdict(relevance, category, scores, level, reasons, Sentiment(sentiment), self.version,
                       secondary=others)

    def explain(self, text: str, k: int = EXPLAIN_TERMS) -> dict[str, dict[str, Any]]:
        """Per head: the predicted `label` and the ≤k n-grams of `text` (without spaces) that pushed the head
        most towards it, as `terms` [{term, weight}], strongest first."""
        return self._explain_row(self.features.transform([text]), text, k)

    def _explain_row(self, row: csr_matrix, text: str, k: int = EXPLAIN_TERMS) -> dict[str, dict[str, Any]]:
        import numpy as np

        row = row.tocsr()
        out: dict[str, dict[str, Any]] = {}
        for name, head in self.heads.items():
            label = str(head.predict(row)[0])
            contrib = row.data * class_weights(head, label)[row.indices]
            terms: list[dict[str, Any]] = []
            for j in np.argsort(-contrib, kind="stable"):
                term = self._term(int(row.indices[j]))
                if contrib[j] <= 0 or len(terms) >= k:
                    break
                if " " not in term and WORDLIKE.search(term):  # punctuation explains nothing to an analyst
                    terms.append({"term": term, "weight": round(float(contrib[j]), 4)})
            out[name] = {"label": label, "terms": terms}
        return out

    def _term(self, column: int) -> str:
        from classifier.segment import decode_key

        assert self.features.keys_ is not None
        return decode_key(int(self.features.keys_[column]))

    def save(self, model_dir: Path, *, meta: dict[str, Any]) -> Path:
        folder = model_dir / self.version
        import joblib

        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump({"features": self.features, "heads": self.heads}, folder / ARTIFACT, compress=3)
        info = {"version": self.version, "features": self.features.config(), "heads": HEAD_CONFIG, **meta}
        (folder / META).write_text(json.dumps(info, ensure_ascii=False, indent=2))
        return folder

    @classmethod
    def load(cls, model_dir: Path, version: str | None = None) -> TextModel:
        version = version or active_version(model_dir)
        path = model_dir / version / ARTIFACT
        if not path.exists():
            raise ModelNotFoundError(f"model {version!r} not found at {path}; run `yuqing train`")
        import joblib

        data = joblib.load(path)
        if not isinstance(data.get("features"), CharNgramTfidf):
            raise ModelNotFoundError(f"model {version!r} was built by an older release; run `yuqing train`")
        return cls(version, data["features"], data["heads"])


def _with_explain(verdict: Verdict, details: dict[str, Any]) -> Verdict:
    from dataclasses import replace

    return replace(verdict, explain=details)


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
