"""Text model: calibrated category probabilities, secondary categories, explanations, the persisted
artifact (round trip, meta.json) and determinism; the character n-gram features match scikit-learn's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier.model import META, TextModel, active_version
from classifier.segment import WORDLIKE, CharNgramTfidf, fold
from classifier.train import FEATURE_REVISION, load_examples, seed_files, train
from models.enums import Category

FIXTURES = Path(__file__).parent / "fixtures" / "model"
IRR = Category.IRRELEVANT.value


@pytest.fixture(scope="module")
def posts() -> list[str]:
    lines = (FIXTURES / "posts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()]


def test_probabilities_are_a_distribution_and_relevance_follows_them(model: TextModel, posts: list[str]) -> None:
    verdicts = model.predict(posts, threshold=0.0)
    for v in verdicts:
        assert set(v.category_scores) == {c.value for c in Category}
        assert sum(v.category_scores.values()) == pytest.approx(1.0, abs=1e-6)
        assert v.relevance == pytest.approx(1.0 - v.category_scores[IRR])
    ranked = sorted(verdicts, key=lambda v: v.category_scores[IRR])
    assert [v.relevance for v in ranked] == sorted((v.relevance for v in ranked), reverse=True)


def test_threshold_decides_irrelevance(model: TextModel, posts: list[str]) -> None:
    for v in model.predict(posts, threshold=0.5):
        assert (v.category is Category.IRRELEVANT) == (v.relevance < 0.5)
        if v.category is Category.IRRELEVANT:
            assert v.severity is None and v.secondary == []


@pytest.mark.parametrize("cut", [0.0, 0.01, 0.25, 0.9])
def test_secondary_respects_threshold_and_excludes_primary(model: TextModel, posts: list[str], cut: float) -> None:
    for v in model.predict(posts, threshold=0.0, secondary_threshold=cut):
        scores = v.category_scores
        assert v.category.value not in v.secondary and IRR not in v.secondary
        assert all(scores[c] >= cut for c in v.secondary)
        assert [scores[c] for c in v.secondary] == sorted((scores[c] for c in v.secondary), reverse=True)
        expected = {c for c in scores if c not in (v.category.value, IRR) and scores[c] >= cut}
        assert set(v.secondary) == expected
        assert v.as_json()["secondary"] == v.secondary


def test_explain_names_terms_present_in_the_text(model: TextModel, posts: list[str]) -> None:
    verdicts = model.predict(posts, explain=True)
    for text, v in zip(posts, verdicts, strict=True):
        details = model.explain(text)
        assert v.explain == details and v.as_json()["explain"] == details
        assert set(details) == {"category", "sentiment", "severity"}
        assert details["sentiment"]["label"] == v.sentiment.value
        for head in details.values():
            terms = head["terms"]
            assert 1 <= len(terms) <= 5
            assert all(t["term"] in fold(text) and t["weight"] > 0 for t in terms)
            assert all(WORDLIKE.search(t["term"]) for t in terms)  # never bare punctuation such as "！！"
            assert [t["weight"] for t in terms] == sorted((t["weight"] for t in terms), reverse=True)
    assert all(v.explain == {} for v in model.predict(posts))


def test_save_load_round_trip_and_meta(model: TextModel, model_dir: Path, posts: list[str]) -> None:
    again = TextModel.load(model_dir)
    assert again.version == model.version == active_version(model_dir)
    assert [v.as_json() for v in again.predict(posts)] == [v.as_json() for v in model.predict(posts)]
    meta = json.loads((model_dir / model.version / META).read_text(encoding="utf-8"))
    assert meta["features"]["kind"] == "char_ngram_tfidf" and meta["features"]["ngram_range"] == [1, 3]
    assert set(meta["heads"]) == {"category", "sentiment", "severity"}
    assert FEATURE_REVISION == "f2"


def test_same_data_gives_same_version_and_predictions(tmp_path: Path, posts: list[str]) -> None:
    examples = load_examples(seed_files())[::6]
    first = train(examples, tmp_path / "a", cv_folds=2)
    second = train(list(reversed(examples)), tmp_path / "b", cv_folds=0)
    assert first.version == second.version
    scores = json.loads((tmp_path / "a" / first.version / META).read_text(encoding="utf-8"))["cross_validation"]
    assert scores["folds"] == 2 and 0.0 < scores["category_macro_f1"] <= 1.0
    assert 0.0 <= scores["relevance_brier"] <= scores["category_brier"] + 1e-9
    one, two = first.predict(posts, explain=True), second.predict(posts, explain=True)
    assert [v.as_json() for v in one] == [v.as_json() for v in two]


def test_char_features_match_scikit_learn(posts: list[str]) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [*posts, "", "  全角ＡＢＣ\t１２３  ", "😀表情👍 ok\x00x"]
    ours = CharNgramTfidf(max_n=3, min_df=1).fit(texts)
    ref = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, preprocessor=fold).fit(texts)
    names = list(ref.get_feature_names_out())
    assert sorted(ours.get_feature_names_out()) == sorted(names)
    order = [names.index(n) for n in ours.get_feature_names_out()]
    diff = ours.transform(texts) - ref.transform(texts)[:, order]
    assert abs(diff).max() < 1e-12
    assert ours.transform([]).shape == (0, len(names))
