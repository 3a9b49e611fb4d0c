"""classifier.evaluate metrics on hand-made fixtures (exact numbers), the labelled-JSONL loader, the
`yuqing evaluate` command, and the research-dataset loaders (skipped when ../shared/data is absent)."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from classifier.datasets import (
    DATASETS,
    LabelledText,
    hash_split,
    load_dataset,
    load_hot_search_labels,
    load_jsonl_labels,
    time_split,
)
from classifier.evaluate import add_evaluate_command, binary_metrics, category_metrics, evaluate
from classifier.model import TextModel, Verdict
from models.enums import Category, Sentiment, Severity

FIXTURES = Path(__file__).parent / "fixtures" / "evaluate"


class _Features:
    def transform(self, texts: list[str]) -> list[str]:
        return texts


class _SentimentHead:
    def __init__(self, scores: dict[str, dict[str, float]]) -> None:
        self.classes_ = ["negative", "neutral", "positive"]
        self.scores = scores

    def predict_proba(self, texts: list[str]) -> list[list[float]]:
        return [[self.scores.get(t, {}).get(c, 0.0) for c in self.classes_] for t in texts]


class FakeModel:
    """Answers each fixture text with the prediction written beside it in cases.jsonl."""

    version = "fake-1"

    def __init__(self, predicted: dict[str, dict[str, Any]]) -> None:
        self.predicted = predicted
        self.features = _Features()
        self.heads = {"sentiment": _SentimentHead({t: p["scores"] for t, p in predicted.items() if "scores" in p})}

    def predict(self, texts: list[str], *, threshold: float = 0.5) -> list[Verdict]:
        out = []
        for text in texts:
            p = self.predicted[text]
            severity = Severity(p["severity"]) if p["severity"] else None
            relevance = 0.1 if p["category"] == "IRRELEVANT" else 0.9
            out.append(Verdict(relevance, Category(p["category"]), {}, severity, [], Sentiment(p["sentiment"]),
                               self.version))
        return out


@pytest.fixture
def cases() -> tuple[TextModel, list[LabelledText]]:
    items, errors = load_jsonl_labels(FIXTURES / "cases.jsonl")
    assert errors == []
    lines = (FIXTURES / "cases.jsonl").read_text(encoding="utf-8").splitlines()
    predicted = {row["text"]: row["predicted"] for row in map(json.loads, lines)}
    return cast(TextModel, FakeModel(predicted)), items


def test_category_metrics_exact(cases: tuple[TextModel, list[LabelledText]]) -> None:
    model, items = cases
    out = evaluate(model, items)["category"]
    assert out["n"] == 6 and out["accuracy"] == 0.5 and out["macro_f1"] == 0.5
    assert out["per_class"]["EMERGENCY"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert out["per_class"]["FALSE_INFO"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert out["per_class"]["LIVELIHOOD"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert out["confusion"] == {
        "EMERGENCY": {"EMERGENCY": 1, "LIVELIHOOD": 1},
        "LIVELIHOOD": {"IRRELEVANT": 1},
        "IRRELEVANT": {"EMERGENCY": 1, "IRRELEVANT": 1},
        "FALSE_INFO": {"FALSE_INFO": 1},
    }


def test_relevance_rumour_severity_exact(cases: tuple[TextModel, list[LabelledText]]) -> None:
    model, items = cases
    out = evaluate(model, items, threshold=0.5)
    rel = out["relevance"]
    assert (rel["precision"], rel["recall"], rel["f1"], rel["false_alarm_rate"]) == (0.75, 0.75, 0.75, 0.5)
    assert (rel["positives"], rel["negatives"]) == (4, 2)
    rumour = out["rumour"]
    assert (rumour["f1"], rumour["false_alarm_rate"], rumour["positives"]) == (1.0, 0.0, 1)
    assert out["severity"] == {"n": 4, "accuracy": 0.5, "within_one": 0.75, "predicted_none": 1}
    assert out["model_version"] == "fake-1" and out["n"] == 6


def test_sentiment_neutral_counted_both_ways(cases: tuple[TextModel, list[LabelledText]]) -> None:
    model, items = cases
    out = evaluate(model, items)["sentiment"]
    assert out["n"] == 4
    assert out["accuracy_strict"] == 0.5  # both neutral predictions wrong
    assert out["accuracy_resolved"] == 0.75  # t2 resolves to positive (right), t3 to positive (wrong)
    assert out["accuracy"] == 0.75 and out["neutral_predicted"] == 0.5


def test_heads_without_labels_are_absent() -> None:
    model = cast(TextModel, FakeModel({"x": {"category": "IRRELEVANT", "severity": None, "sentiment": "neutral"}}))
    out = evaluate(model, [LabelledText(text="x", sentiment="neutral", ref="r:1")])
    assert set(out) == {"n", "threshold", "model_version", "sentiment"}
    assert out["sentiment"]["accuracy"] == 1.0 and out["sentiment"]["accuracy_resolved"] is None


def test_empty_denominators_are_none() -> None:
    assert binary_metrics([(False, False)])["f1"] is None
    assert binary_metrics([(True, True)])["false_alarm_rate"] is None
    assert category_metrics([])["macro_f1"] is None


def test_jsonl_loader_keeps_good_lines_and_names_bad_ones() -> None:
    items, errors = load_jsonl_labels(FIXTURES / "labelled.jsonl")
    assert [i.ref for i in items] == ["labelled.jsonl:1", "labelled.jsonl:2", "labelled.jsonl:4", "labelled.jsonl:5"]
    first, second, third, fourth = items
    assert (first.category, first.relevant, first.severity, first.sentiment) == ("EMERGENCY", True, "III", "negative")
    assert second.text.startswith("市政府发布通知\n") and second.sentiment == "neutral" and second.relevant is True
    assert (third.category, third.relevant, third.sentiment) == (None, False, "positive")
    assert (fourth.category, fourth.relevant, fourth.is_rumour) == (None, None, None)
    prefix = f"{FIXTURES / 'labelled.jsonl'}:"
    assert [e.removeprefix(prefix).split(":")[0] for e in errors] == ["6", "7", "8", "9"]
    assert all(e.startswith(prefix) for e in errors)


def test_jsonl_loader_unreadable_file(tmp_path: Path) -> None:
    items, errors = load_jsonl_labels(tmp_path / "missing.jsonl")
    assert items == [] and len(errors) == 1 and "cannot read" in errors[0]


def test_hot_search_labels_join_titles_by_reference() -> None:
    items = load_hot_search_labels(FIXTURES / "toy_root", FIXTURES / "toy_hot_labels.jsonl")
    assert [(i.text, i.relevant, i.category) for i in items] == [("某地突发山火", True, "EMERGENCY"),
                                                                  ("某球队夺冠", False, "IRRELEVANT")]
    assert items[0].at is not None and items[0].at.tzinfo is not None


def test_splits_are_deterministic() -> None:
    from datetime import UTC, datetime

    items = [LabelledText(text=str(i), at=datetime(2020, 1, 10 - i, tzinfo=UTC), ref=f"x:{i}") for i in range(10)]
    early, late = time_split([*items, LabelledText(text="undated", ref="x:u")], 0.7)
    assert len(early) == 7 and len(late) == 3 and max(i.at for i in early) < min(i.at for i in late)  # type: ignore[type-var]
    assert hash_split(items, 0.5) == hash_split(list(reversed(items))[::-1], 0.5)


def test_unknown_dataset_name_lists_the_known_ones(tmp_path: Path) -> None:
    from classifier.datasets import DatasetError

    with pytest.raises(DatasetError, match="hot-search-labelled"):
        load_dataset("nope", tmp_path)


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_evaluate_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["evaluate", *argv])
    return int(args.func(args))


def test_command_prints_json(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"classifier:\n  model_dir: {model_dir}\n", encoding="utf-8")
    assert _run([str(FIXTURES / "labelled.jsonl"), "--config", str(config)]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["n"] == 4 and report["bad_lines"] == 4 and "relevance" in report
    assert "labelled.jsonl:6" in captured.err
    assert _run(["no-such-dataset", "--config", str(config), "--data-root", str(tmp_path)]) == 2


@pytest.fixture(scope="module")
def loaded(shared_data: Path) -> dict[str, list[LabelledText]]:
    """Every named dataset but the two big ones (the benchmark reads those), each read once."""
    return {name: load_dataset(name, shared_data) for name in DATASETS if name not in ("hot-search", "sophonplus")}


def test_shared_datasets_counts_and_labels(loaded: dict[str, list[LabelledText]]) -> None:
    assert all(loaded.values())
    ced = loaded["ced"]
    assert len(ced) == 3387 and Counter(i.is_rumour for i in ced)[True] == 1538
    assert all(i.at is not None for i in ced) and all(i.text not in i.ref for i in ced)
    cec = loaded["cec"]
    assert len(cec) == 524 and all(i.relevant for i in cec)
    assert Counter(i.category for i in cec)["EMERGENCY"] >= 450
    neg = loaded["thucnews-negatives"]
    assert len(neg) == 6000 and {(i.category, i.relevant) for i in neg} == {("IRRELEVANT", False)}
    assert {i.category for i in loaded["thucnews"]} == {None, "IRRELEVANT", "LIVELIHOOD"}
    senti = loaded["weibo-senti"]
    assert Counter(i.sentiment for i in senti) == {"positive": 1200, "negative": 1200}
    assert not any(i.text.startswith("\ufeff") for i in senti)
    early, late = time_split(ced)
    assert len(early) == 2371 and max(i.at for i in early) <= min(i.at for i in late)  # type: ignore[type-var]


def test_hand_labelled_hot_search_sample(loaded: dict[str, list[LabelledText]]) -> None:
    hot = loaded["hot-search-labelled"]
    assert len(hot) == 400 and 40 <= sum(bool(i.relevant) for i in hot) <= 160
    assert all((i.category == "IRRELEVANT") == (i.relevant is False) for i in hot)
    assert all(i.category in {*Category.__members__, None} for i in hot)


def _label_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_training_labels_never_touch_the_held_out_sample() -> None:
    """The team's 10,000 training labels: well-formed, one per title, none of them a held-out title."""
    from classifier.datasets import LABELS_FILE, TRAIN_LABELS_FILE

    train, held = _label_rows(TRAIN_LABELS_FILE), _label_rows(LABELS_FILE)
    assert len(train) == 10_000 and len({r["ref"] for r in train}) == 10_000
    assert not {r["ref"] for r in train} & {r["ref"] for r in held}
    assert all(set(r) == {"ref", "relevant", "category"} for r in train)
    assert all((r["category"] == "IRRELEVANT") == (r["relevant"] is False) for r in train)
    assert all(r["category"] in {*Category.__members__, None} for r in train)
    assert 0.15 < sum(r["relevant"] for r in train) / len(train) < 0.4


def test_training_titles_are_no_near_repeats_of_held_out_ones(loaded: dict[str, list[LabelledText]]) -> None:
    def grams(text: str) -> set[str]:
        text = "".join(text.split())
        return {text[i:i + 2] for i in range(len(text) - 1)} or {text}

    held = [grams(i.text) for i in loaded["hot-search-labelled"]]
    train = loaded["hot-search-train"]
    assert len(train) == 10_000 and not {i.text for i in train} & {i.text for i in loaded["hot-search-labelled"]}
    near = [i.text for i, g in ((i, grams(i.text)) for i in train) for h in held if len(g & h) / len(g | h) >= 0.4]
    assert not near
