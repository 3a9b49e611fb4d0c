"""Training on the research datasets in ../shared/data (read in place, never copied): `shared_examples`
builds extra training rows from the TRAINING portions only, `train_with_shared` fits seed + those rows.

Held out (never a training row, by reference and by identical text), so `benchmarks/evaluate.py` can
measure on them: CED posts of the latest 30% by time, THUCNews test.tsv, the 20% of weibo_senti that
`hash_split` holds out, the CEC documents, and every hot-search title referenced by
classifier/eval/hot_search_labels.jsonl. Training rows (`Recipe` sets the sizes):

- CED earliest 70%: rumours → FALSE_INFO; non-rumours → the seed model's best non-FALSE_INFO, non-IRRELEVANT
  category (so the rumour class gets negatives from the same source);
- THUCNews dev.tsv: only the clearly irrelevant topics (sports, game, entertainment) → IRRELEVANT; the
  other topics are news-style text whose weak category mapping pulled disaster news away from EMERGENCY;
- sentiment only: weibo_senti's training 80% and a sample of SophonPlus reviews;
- the 10,000 team-labelled hot-search titles of classifier/train_labels (dataset "hot-search-train"; none
  of them is, or nearly repeats, a held-out title). Relevant titles whose category is none of the five
  (diplomacy, space, the economy) take the seed model's best category other than FALSE_INFO/IRRELEVANT;
- optionally (`Recipe.hot_relevant` / `hot_irrelevant`, 0 by default) hot-search titles with a Weibo tag
  mapped to a single category (weak labels); the weak "relevant" label of the tags in `Recipe.hot_skip_tags`
  (健康, 健康-养生: mostly health tips, which the labelling rules call irrelevant) is never used. With the
  2,000 team labels in, adding the weak rows lowered relevance average precision on the held-out sample
  from 0.68 to 0.57.

What was measured while choosing this recipe (2026-12-05, held-out sets of benchmarks/evaluate.py):
- Relevance F1 on the 400 held-out hot-search titles grows slowly with team labels (weighted ×3 then):
  500 → 0.55, 1,000 → 0.57, 2,000 → 0.66, 4,000 → 0.71, 7,000 → 0.72, 10,000 → 0.72. Weighting them ×2
  gives 0.73 but pulls EMERGENCY recall on CEC from 0.95 to 0.90, so they count once.
- Neither a separate binary relevance head (logistic regression or LinearSVC, best-threshold F1 0.72–0.73)
  nor jieba word uni- and bigrams beside the character n-grams (0.725, while the out-of-the-box model's
  THUCNews false alarms rose from 2.4 % to 3.9 % and segmentation costs speed) closes the gap to 0.85.
  Length buckets as features and dropping punctuation-only n-grams did not help either.
- Rumour vs emergency is a trade-off of the features, not of a threshold: CED rumours are about the same
  things CEC reports (poisoning, pollution, attacks). Deciding FALSE_INFO at P ≥ 0.3 instead of by argmax
  lifts CED rumour F1 to 0.78 and drops CEC EMERGENCY recall to 0.82; a separate rumour head reaching F1
  0.78 on CED flags 28 % of CEC emergency documents as rumours. For the same reason 300 more as-if-true
  rumour posts (invented accidents with tolls, cover-ups, medical scandals) were left out of the seed:
  they lifted the seed-only model's rumour F1 0.55 → 0.59 and cut this model's EMERGENCY recall
  0.957 → 0.939. A missed emergency costs a statutory deadline; a rumour taken for one still reaches the
  duty officer.

Labels are per head ("category", "sentiment", "severity"); None leaves a row out of that head
(`TextModel.fit`). The model version is derived from the seed examples, the shared rows and the recipe, so
the same data gives the same version. Models so trained land in the configured model dir (var/models) and
must never be committed: the data is research-only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from classifier.datasets import (
    IRRELEVANT_TOPICS,
    DatasetError,
    LabelledText,
    hash_split,
    load_dataset,
    sample,
    time_split,
)
from classifier.model import TextModel, set_active
from classifier.train import Example, corpus_version
from models.enums import Category

DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CED_TRAIN_FRACTION = 0.7
SENTI_TRAIN_FRACTION = 0.8
HEADS = ("category", "sentiment", "severity")

Labels = dict[str, list[str | None]]


@dataclass(frozen=True)
class Recipe:
    """How many rows each source contributes (None = all of them) and how often the seed corpus repeats."""

    thuc_irrelevant: int | None = 3000
    hot_relevant: int | None = 0  # weak-labelled hot-search rows (Weibo's tag); the team-labelled ones beat them
    hot_irrelevant: int | None = 0
    sophonplus: int | None = 3000
    seed_repeat: int = 1
    ced_rumours: int | None = None  # fewer rumours: EMERGENCY recall up, rumour F1 down (see the report)
    hot_skip_tags: tuple[str, ...] = ("健康", "健康-养生")  # Weibo tags whose weak relevant label is left out
    hot_hand: int | None = None  # team-labelled hot-search titles (None = all 10,000)


DEFAULT_RECIPE = Recipe()


def held_out_refs(root: Path) -> tuple[set[str], set[str]]:
    """(refs, texts) of every held-out item: the training rows must contain none of either."""
    _, ced_late = time_split(load_dataset("ced", root), CED_TRAIN_FRACTION)
    thuc_test = [i for i in load_dataset("thucnews", root) if ":test.tsv:" in i.ref]
    _, senti_late = hash_split(load_dataset("weibo-senti", root), SENTI_TRAIN_FRACTION)
    items = ced_late + thuc_test + senti_late + load_dataset("cec", root) + load_dataset("hot-search-labelled", root)
    return {i.ref for i in items}, {i.text for i in items}


def shared_examples(
    root: Path, *, seed: int = 7, seed_model: TextModel | None = None, recipe: Recipe = DEFAULT_RECIPE
) -> tuple[list[str], Labels]:
    """Texts and per-head labels from the training portions of the datasets under `root`.
    `seed_model` labels CED non-rumours (trained from the seed corpus when None). Raises DatasetError
    when `root` or a dataset is absent."""
    if not root.is_dir():
        raise DatasetError(f"research dataset folder {root} is absent (pass --data-root DIR)")
    refs, texts = held_out_refs(root)

    def fresh(items: Sequence[LabelledText]) -> list[LabelledText]:
        return [i for i in items if i.ref not in refs and i.text not in texts]

    rows: list[tuple[str, str | None, str | None]] = []
    seed_model = seed_model or _seed_model()
    ced = fresh(time_split(load_dataset("ced", root), CED_TRAIN_FRACTION)[0])
    ced = [i for i in ced if not i.rumour] + _cap([i for i in ced if i.rumour], recipe.ced_rumours, seed)
    rows += _topic_rows(ced, seed_model)
    thuc = fresh([i for i in load_dataset("thucnews", root)
                  if ":dev.tsv:" in i.ref and i.category == Category.IRRELEVANT.value])
    rows += [(i.text, Category.IRRELEVANT.value, None) for i in _cap(thuc, recipe.thuc_irrelevant, seed)]
    senti = fresh(hash_split(load_dataset("weibo-senti", root), SENTI_TRAIN_FRACTION)[0])
    senti += _cap(fresh(load_dataset("sophonplus", root)), recipe.sophonplus, seed)
    rows += [(i.text, None, i.sentiment) for i in senti]
    team = fresh(load_dataset("hot-search-train", root))
    labelled = {i.text for i in team}  # a team label beats Weibo's tag on the same title
    hot = _dedupe(fresh([i for i in load_dataset("hot-search", root) if i.category and i.text not in labelled])) \
        if recipe.hot_relevant != 0 or recipe.hot_irrelevant != 0 else []
    irrelevant = [i for i in hot if i.category == Category.IRRELEVANT.value]
    relevant = [i for i in hot if i.category != Category.IRRELEVANT.value and i.tag not in recipe.hot_skip_tags]
    rows += [(i.text, i.category, None) for i in _cap(relevant, recipe.hot_relevant, seed)
             + _cap(irrelevant, recipe.hot_irrelevant, seed)]
    rows += _topic_rows(_cap(team, recipe.hot_hand, seed), seed_model)
    labels: Labels = {"category": [r[1] for r in rows], "sentiment": [r[2] for r in rows],
                      "severity": [None] * len(rows)}
    return [r[0] for r in rows], labels


def _seed_model() -> TextModel:
    from classifier.train import load_examples, seed_files

    return fit_examples(load_examples(seed_files()), [], _empty(), "seed")


def _topic_rows(items: list[LabelledText], seed_model: TextModel) -> list[tuple[str, str | None, str | None]]:
    """Each item with its category. Where the source leaves the topic open (CED non-rumours; team-labelled
    titles that are relevant but none of the five: diplomacy, space, the economy), the seed model's best
    category other than FALSE_INFO and IRRELEVANT; only those items are classified."""
    open_topic = [i for i in items if i.category is None]
    guesses = iter(seed_model.predict([i.text for i in open_topic]))
    return [(i.text, i.category or _non_rumour(next(guesses).category_scores), None) for i in items]


def _non_rumour(scores: dict[str, float]) -> str:
    skip = (Category.FALSE_INFO.value, Category.IRRELEVANT.value)
    return max((c for c in scores if c not in skip), key=lambda c: (scores[c], c))


def _cap(items: Sequence[LabelledText], n: int | None, seed: int) -> list[LabelledText]:
    return list(items) if n is None else sample(items, n, seed)


def _dedupe(items: Sequence[LabelledText]) -> list[LabelledText]:
    """One row per distinct text (hot-search titles recur across days), the first one kept."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.text not in seen:
            seen.add(item.text)
            out.append(item)
    return out


def _empty() -> Labels:
    return {name: [] for name in HEADS}


def fit_examples(examples: Sequence[Example], texts: Sequence[str], labels: Labels, version: str,
                 *, seed_repeat: int = 1) -> TextModel:
    """Fit seed `examples` (repeated `seed_repeat` times) together with the extra rows."""
    examples = sorted(examples, key=lambda e: e.key) * max(1, seed_repeat)
    all_texts = [e.text for e in examples] + list(texts)
    all_labels: dict[str, Sequence[str | None]] = {
        name: [getattr(e, name) for e in examples] + list(labels[name]) for name in HEADS}
    return TextModel.fit(version, all_texts, all_labels)


def shared_version(examples: Sequence[Example], texts: Sequence[str], labels: Labels, recipe: Recipe) -> str:
    digest = hashlib.sha256(repr(asdict(recipe)).encode())
    for i, text in enumerate(texts):
        digest.update(f"{text}\0{'|'.join(str(labels[h][i]) for h in HEADS)}\0".encode())
    return f"{corpus_version(examples)}-shared-{digest.hexdigest()[:8]}"


def train_with_shared(
    examples: Sequence[Example], root: Path, model_dir: Path, *, seed: int = 7, recipe: Recipe = DEFAULT_RECIPE,
    seed_model: TextModel | None = None, activate: bool = True,
) -> TextModel:
    """Seed `examples` + `shared_examples(root)` → a model saved under `model_dir` (and made active)."""
    texts, labels = shared_examples(root, seed=seed, seed_model=seed_model, recipe=recipe)
    version = shared_version(examples, texts, labels, recipe)
    model = fit_examples(examples, texts, labels, version, seed_repeat=recipe.seed_repeat)
    meta: dict[str, Any] = {
        "examples": len(examples), "shared_rows": len(texts), "data_root": str(root), "recipe": asdict(recipe),
        "by_category": dict(Counter(c for c in [e.category for e in examples] + labels["category"] if c)),
        "research_only": "trained on ../shared/data: never commit or redistribute this model",
    }
    model.save(model_dir, meta=meta)
    if activate:
        set_active(model_dir, version)
    return model


__all__ = ["DEFAULT_DATA_ROOT", "IRRELEVANT_TOPICS", "Recipe", "held_out_refs", "shared_examples",
           "train_with_shared"]
