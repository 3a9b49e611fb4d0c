"""classifier.shared_training: training rows from ../shared/data never include a held-out item (CED later
split, THUCNews test.tsv, hand-labelled hot-search titles), labels are valid per head, and a model trained so
lands in the given model dir. Research-data tests skip when ../shared/data is absent; a small subsample
and a tiny hand-written seed model (tests/fixtures/shared_training) keep them fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier.datasets import DatasetError, LabelledText, load_dataset, time_split
from classifier.model import TextModel, active_version
from classifier.shared_training import (
    CED_TRAIN_FRACTION,
    Labels,
    Recipe,
    fit_examples,
    shared_examples,
    train_with_shared,
)
from classifier.train import Example, load_examples
from models.enums import Category, Sentiment

FIXTURES = Path(__file__).parent / "fixtures" / "shared_training"
SMALL = Recipe(thuc_irrelevant=200, hot_relevant=200, hot_irrelevant=200, sophonplus=200, hot_hand=300)


@pytest.fixture(scope="module")
def seed_examples() -> list[Example]:
    return load_examples([FIXTURES / "seed.jsonl"])


@pytest.fixture(scope="module")
def tiny_model(seed_examples: list[Example]) -> TextModel:
    return fit_examples(seed_examples, [], {"category": [], "sentiment": [], "severity": []}, "tiny")


@pytest.fixture(scope="module")
def rows(shared_data: Path, tiny_model: TextModel) -> tuple[list[str], Labels]:
    return shared_examples(shared_data, seed_model=tiny_model, recipe=SMALL)


def _texts(items: list[LabelledText]) -> set[str]:
    return {i.text for i in items}


def test_no_held_out_text_is_a_training_row(shared_data: Path, rows: tuple[list[str], Labels]) -> None:
    texts = set(rows[0])
    _, ced_late = time_split(load_dataset("ced", shared_data), CED_TRAIN_FRACTION)
    thuc_test = [i for i in load_dataset("thucnews", shared_data) if ":test.tsv:" in i.ref]
    labelled = load_dataset("hot-search-labelled", shared_data)
    assert len(ced_late) > 500 and len(thuc_test) > 5000 and len(labelled) == 400
    assert not texts & _texts(ced_late)
    assert not texts & _texts(thuc_test)
    assert not texts & _texts(labelled)


def test_rows_come_from_every_training_source(shared_data: Path, rows: tuple[list[str], Labels]) -> None:
    texts = set(rows[0])
    ced_early, _ = time_split(load_dataset("ced", shared_data), CED_TRAIN_FRACTION)
    thuc_dev = [i for i in load_dataset("thucnews", shared_data) if ":dev.tsv:" in i.ref]
    assert len(texts & _texts(ced_early)) > 0.9 * len(ced_early)
    assert texts & _texts(thuc_dev)
    assert len(texts & _texts(load_dataset("hot-search-train", shared_data))) >= 295  # a few repeat other rows
    assert len(rows[0]) < 6000  # the recipe's caps hold


def test_team_labelled_titles_keep_their_labels(shared_data: Path, rows: tuple[list[str], Labels]) -> None:
    labelled = {i.text: i for i in load_dataset("hot-search-train", shared_data)}
    got = [(labelled[t], c) for t, c in zip(rows[0], rows[1]["category"], strict=True) if t in labelled]
    assert got
    for item, category in got:
        if item.category is not None:
            assert category == item.category
        else:  # relevant, but none of the five: the seed model's best relevant topic, never a rumour
            assert category not in (None, Category.IRRELEVANT.value, Category.FALSE_INFO.value)


def test_weak_relevant_labels_of_skipped_tags_are_left_out(
    shared_data: Path, rows: tuple[list[str], Labels]
) -> None:
    hot = [i for i in load_dataset("hot-search", shared_data) if i.category and i.category != Category.IRRELEVANT.value]
    assert all(i.tag for i in hot)
    skipped = {i.text for i in hot if i.tag in SMALL.hot_skip_tags}
    kept = {i.text for i in hot if i.tag not in SMALL.hot_skip_tags}
    assert SMALL.hot_skip_tags and skipped - kept
    relevant_rows = {t for t, c in zip(rows[0], rows[1]["category"], strict=True)
                     if c not in (None, Category.IRRELEVANT.value)}
    assert not relevant_rows & (skipped - kept)


def test_labels_are_valid_per_head(rows: tuple[list[str], Labels]) -> None:
    texts, labels = rows
    assert {len(v) for v in labels.values()} == {len(texts)}
    assert set(labels["category"]) - {None} <= {c.value for c in Category}
    assert set(labels["sentiment"]) - {None} <= {s.value for s in Sentiment}
    assert set(labels["severity"]) == {None}
    assert all(c is not None or s is not None for c, s in zip(labels["category"], labels["sentiment"], strict=True))
    categories = set(labels["category"])
    assert {Category.FALSE_INFO.value, Category.IRRELEVANT.value, Category.LIVELIHOOD.value} <= categories


def test_train_with_shared_saves_an_active_model(
    shared_data: Path, seed_examples: list[Example], tiny_model: TextModel, tmp_path: Path
) -> None:
    model = train_with_shared(seed_examples, shared_data, tmp_path, seed_model=tiny_model, recipe=SMALL)
    assert active_version(tmp_path) == model.version and "-shared-" in model.version
    meta = json.loads((tmp_path / model.version / "meta.json").read_text(encoding="utf-8"))
    assert meta["shared_rows"] > 1000 and "never commit" in meta["research_only"]
    verdict = TextModel.load(tmp_path).predict(["地震造成房屋倒塌多人遇难"])[0]
    assert verdict.model_version == model.version


def test_absent_folder_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-data"
    with pytest.raises(DatasetError, match="no-such-data"):
        shared_examples(missing)
