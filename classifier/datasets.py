"""Labelled evaluation data: the research datasets under ../shared/data read in place (never copied), the
hand-labelled hot-search sample, and any user-supplied labelled JSONL file.

`load_dataset(name, root)` returns `LabelledText` values; a label the dataset does not give is None, and
`ref` is "<dataset>:<file>:<line or id>" — a reference, never the text. Names (`DATASETS`):

- ced: CED Weibo rumours. rumour → category FALSE_INFO, rumour=True; non-rumour → category None,
  rumour=False (topic unknown). relevant is left unknown for both. `at` is the post time (for time splits).
- cec: CEC emergency news documents (title + text), relevant=True. category EMERGENCY, except the COVID
  sub-categories label_mapping.json maps elsewhere (国家政策 → MAJOR_POLICY; the weak/unmapped ones → None).
  severity comes from casualty and loss figures (classifier.severity.figure_severity) when the text states
  any; otherwise None. `at` is the report time.
- thucnews-negatives: THUCNews titles in sports, game, entertainment → IRRELEVANT, relevant=False.
- thucnews: all THUCNews titles; label_mapping.json decides (see `_mapped`): single-category mappings with
  direct/weak confidence give that category; "A / B" and OTHER_RELEVANT give relevant=True, category None;
  candidate mappings give nothing. The file (dev.tsv / test.tsv) is in the ref, for train/held-out splits.
- weibo-senti, sophonplus: sentiment 1 → positive, 0 → negative.
- hot-search: Weibo hot-search titles with Weibo's own tag mapped through label_mapping.json (weak labels).
- hot-search-labelled: the 400 titles in classifier/eval/hot_search_labels.jsonl (drawn with
  random.Random(20240520).sample over line numbers), labels joined to the titles at load time. Held out.
- hot-search-train: 10,000 more titles in classifier/train_labels/hot_search_labels.jsonl (refs and labels
  only), labelled by the team under the same rules, for training only. Drawn in two rounds (2,000 with
  random.Random(20261205): 900 tagged 社会, 300 时事, 400 暂无, the rest any tag; 8,000 with
  random.Random(20261206): half tagged 社会/时事, half any other tag), leaving out the held-out titles, any
  text already drawn, and any title whose character bigrams overlap a held-out title's by Jaccard ≥ 0.4
  (hot-search titles recur with small variations). A second annotator relabelled the 400 held-out titles
  blind: relevance F1 0.957 between the two (κ 0.95), category agreement 0.90 where both said relevant.

Labelling rules for hot_search_labels.jsonl (one reader, applied to the title alone):
- relevant = a mainland-China public-affairs matter a government agency would monitor or answer for.
  relevant=False always goes with category IRRELEVANT: entertainment, celebrities, dramas, sports results
  (national team included), games/e-sports, products and prices of goods, markets and stocks, lifestyle and
  health tips, human-interest stories without an institutional angle, corporate gossip, and events abroad
  with no Chinese party (foreign politics, wars, disasters).
- EMERGENCY: accidents with casualties, disasters, earthquakes felt, severe weather, public-health incidents
  (e.g. lead poisoning at a kindergarten). FALSE_INFO: rumours and their debunking ("网传…", "…系谣言").
  GOV_IMAGE: officials' or police/judges' conduct, investigations of officials (被查), extraditions,
  cheating in public recruitment, and positive conduct of officials/police. MAJOR_POLICY: central decisions,
  leaders' instructions, laws and judicial interpretations, national rules (兵役登记, 严查安全带), tariff notices.
  LIVELIHOOD: education, medical care, food and product safety, consumer disputes with companies, wages,
  social insurance, tourism disputes, and individual criminal cases (abuse, trafficking, fraud, assault).
- Relevant but none of the five (China's diplomacy, space launches, macro-economy): category null.

Bad input never raises out of `load_jsonl_labels`: bad lines come back as "file:line: reason" strings.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from classifier.severity import figure_severity
from models.enums import Category, Sentiment, Severity

SHANGHAI = timezone(timedelta(hours=8))
LABELS_FILE = Path(__file__).with_name("eval") / "hot_search_labels.jsonl"
TRAIN_LABELS_FILE = Path(__file__).with_name("train_labels") / "hot_search_labels.jsonl"
HOT_FILE = "weibo_hot_titles_2024-2026.jsonl"
IRRELEVANT_TOPICS = ("sports", "game", "entertainment")
_SENTIMENT = {"1": Sentiment.POSITIVE.value, "0": Sentiment.NEGATIVE.value}
_SENTIMENT_ALIASES = {"pos": "positive", "neg": "negative", "neu": "neutral", "1": "positive", "0": "negative"}


class DatasetError(ValueError):
    """A dataset is unknown or missing; the message names it and where it was looked for."""


@dataclass(frozen=True, kw_only=True)
class LabelledText:
    """One text with whatever gold labels its source gives (None = not labelled)."""

    text: str
    category: str | None = None
    relevant: bool | None = None
    sentiment: str | None = None
    severity: str | None = None
    at: datetime | None = None
    rumour: bool | None = None  # FALSE_INFO or not, when a source says so without giving the topic
    tag: str | None = None  # the source's own topic tag, when it has one (hot-search: Weibo's category)
    ref: str

    @property
    def is_rumour(self) -> bool | None:
        if self.rumour is not None:
            return self.rumour
        return None if self.category is None else self.category == Category.FALSE_INFO.value


def load_dataset(name: str, root: Path) -> list[LabelledText]:
    """The named dataset read from `root` (../shared/data). Raises DatasetError when unknown or absent."""
    loader = DATASETS.get(name)
    if loader is None:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} is absent (pass --data-root)")
    try:
        return loader(root)
    except FileNotFoundError as exc:
        raise DatasetError(f"dataset {name!r}: {exc.filename} is missing") from None


def time_split(items: Sequence[LabelledText], fraction: float = 0.7) -> tuple[list[LabelledText], list[LabelledText]]:
    """(earliest `fraction`, the rest) by `at`; items without `at` are left out."""
    dated = sorted((i for i in items if i.at is not None), key=lambda i: (i.at, i.ref))
    cut = round(len(dated) * fraction)
    return dated[:cut], dated[cut:]


def hash_split(items: Sequence[LabelledText], fraction: float = 0.8) -> tuple[list[LabelledText], list[LabelledText]]:
    """A stable (train, held-out) split by a hash of each ref: the same item always lands on the same side."""
    def share(item: LabelledText) -> float:
        return int(hashlib.sha1(item.ref.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    return [i for i in items if share(i) < fraction], [i for i in items if share(i) >= fraction]


def sample(items: Sequence[LabelledText], n: int, seed: int = 7) -> list[LabelledText]:
    """At most n items drawn with a fixed seed, in their original order."""
    if len(items) <= n:
        return list(items)
    keep = set(random.Random(seed).sample(range(len(items)), n))
    return [item for i, item in enumerate(items) if i in keep]


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                yield lineno, json.loads(line)


def _ced(root: Path) -> list[LabelledText]:
    out = []
    for _, row in _jsonl(root / "ced_weibo_rumor" / "ced_original_microblogs.jsonl"):
        rumour = row["label"] == "rumor"
        out.append(LabelledText(
            text=row["text"], category=Category.FALSE_INFO.value if rumour else None, rumour=rumour,
            at=_posted(row.get("time")), ref=f"ced:{row['id']}",
        ))
    return out


def _posted(value: Any) -> datetime | None:
    """CED post times: epoch seconds, or Weibo's "Sat Jun 29 12:40:09 +0800 2013"."""
    if isinstance(value, int):
        return datetime.fromtimestamp(value, UTC)
    try:
        return datetime.strptime(str(value), "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)
    except ValueError:
        return None


_CEC_SUB = {"疫情动态": Category.EMERGENCY.value, "国家政策": Category.MAJOR_POLICY.value}


def _cec(root: Path) -> list[LabelledText]:
    out = []
    for lineno, row in _jsonl(root / "cec_emergency_corpus" / "cec_documents.jsonl"):
        text = f"{row.get('title') or ''}\n{row.get('text') or ''}".strip()
        category: str | None = Category.EMERGENCY.value
        if row["category"] == "新冠疫情":
            category = _CEC_SUB.get(str(row.get("subcategory")))
        cue = figure_severity(text)
        severity = cue.severity.value if cue and category == Category.EMERGENCY.value else None
        out.append(LabelledText(text=text, category=category, relevant=True, severity=severity,
                                at=_shanghai(row.get("report_time")), ref=f"cec:{lineno}"))
    return out


def _shanghai(value: Any) -> datetime | None:
    match = re.match(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:\s+(\d{1,2}):(\d{2}))?", str(value or ""))
    if not match:
        return None
    y, mo, d, h, mi = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI).astimezone(UTC)
    except ValueError:
        return None


def _mapping(root: Path, key: str) -> dict[str, tuple[str | None, bool | None]]:
    table = json.loads((root / "label_mapping.json").read_text(encoding="utf-8"))[key]
    return {pattern: _mapped(target, confidence) for pattern, (target, confidence) in table.items()}


def _mapped(target: str, confidence: str) -> tuple[str | None, bool | None]:
    """A label_mapping.json entry → (category, relevant). Only direct/weak single mappings give a category."""
    core = re.sub(r"\(.*?\)", "", target).strip()
    if confidence not in ("direct", "weak") or core in ("unknown", ""):
        return None, None
    alternatives = re.split(r"\s+/\s+|\s+or\s+", core)
    head = alternatives[0].split("/")[0].strip()
    if head == Category.IRRELEVANT.value:
        return Category.IRRELEVANT.value, False
    if len(alternatives) > 1 or head not in Category.__members__:
        return None, True
    return head, True


def _lookup(table: dict[str, tuple[str | None, bool | None]], label: str) -> tuple[str | None, bool | None]:
    for pattern, value in table.items():
        if any(fnmatch.fnmatchcase(label, p) for p in pattern.split("|")):
            return value
    return None, None


def _thucnews(root: Path, topics: Sequence[str] | None = None) -> list[LabelledText]:
    table = _mapping(root, "thucnews_titles_10class.label")
    out = []
    for name in ("dev.tsv", "test.tsv"):
        with (root / "thucnews_titles_10class" / name).open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                parts = line.rstrip("\n").split("\t")
                if lineno == 1 or len(parts) < 2 or (topics is not None and parts[1] not in topics):
                    continue
                category, relevant = _lookup(table, parts[1])
                out.append(LabelledText(text=parts[0], category=category, relevant=relevant,
                                        ref=f"thucnews:{name}:{lineno}"))
    return out


def _sentiment_csv(path: Path, prefix: str) -> list[LabelledText]:
    out = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        for rowno, row in enumerate(csv.DictReader(f), 1):
            text = (row.get("review") or "").lstrip("\ufeff").strip()
            label = _SENTIMENT.get((row.get("label") or "").strip())
            if text and label:
                out.append(LabelledText(text=text, sentiment=label, ref=f"{prefix}:{rowno}"))
    return out


def _weibo_senti(root: Path) -> list[LabelledText]:
    return _sentiment_csv(root / "weibo_senti_100k_subset" / "weibo_senti_100k_subset2400.csv", "weibo-senti")


def _sophonplus(root: Path) -> list[LabelledText]:
    folder = root / "sophonplus_sentiment"
    return [item for name in ("ChnSentiCorp_htl_all.csv", "waimai_10k.csv")
            for item in _sentiment_csv(folder / name, f"sophonplus:{name}")]


def _hot_rows(root: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    return _jsonl(root / "weibo_hot_history_lxw" / HOT_FILE)


def _hot_search(root: Path) -> list[LabelledText]:
    table = _mapping(root, "weibo_hot_history_lxw.category")
    out = []
    for lineno, row in _hot_rows(root):
        category, relevant = _lookup(table, str(row.get("category")))
        out.append(LabelledText(text=row["title"], category=category, relevant=relevant,
                                at=_shanghai(row.get("first_date")), ref=f"{HOT_FILE}:{lineno}",
                                tag=str(row.get("category"))))
    return out


def load_hot_search_labels(root: Path, labels_file: Path = LABELS_FILE) -> list[LabelledText]:
    """The hand-labelled hot-search titles: labels from `labels_file` joined to the titles under `root`."""
    labels = {row["ref"]: row for _, row in _jsonl(labels_file)}
    out = []
    for lineno, row in _hot_rows(root):
        gold = labels.get(f"{HOT_FILE}:{lineno}")
        if gold is not None:
            out.append(LabelledText(text=row["title"], category=gold["category"], relevant=gold["relevant"],
                                    at=_shanghai(row.get("first_date")), ref=gold["ref"]))
    return out


DATASETS: dict[str, Callable[[Path], list[LabelledText]]] = {
    "ced": _ced,
    "cec": _cec,
    "thucnews-negatives": lambda root: _thucnews(root, IRRELEVANT_TOPICS),
    "thucnews": _thucnews,
    "weibo-senti": _weibo_senti,
    "sophonplus": _sophonplus,
    "hot-search": _hot_search,
    "hot-search-labelled": load_hot_search_labels,
    "hot-search-train": lambda root: load_hot_search_labels(root, TRAIN_LABELS_FILE),
}


def load_jsonl_labels(path: Path) -> tuple[list[LabelledText], list[str]]:
    """A user's labelled JSONL file (`text`, optional `title`, `category`, `relevant`, `sentiment`,
    `severity`): the good lines as items, and one "file:line: reason" string per bad line."""
    items: list[LabelledText] = []
    errors: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot read: {exc}"]
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            items.append(_user_item(json.loads(line), f"{path.name}:{lineno}"))
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            errors.append(f"{path}:{lineno}: {exc}")
    return items, errors


def _user_item(row: Any, ref: str) -> LabelledText:
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
        raise ValueError("needs an object with a non-empty string 'text'")
    title = str(row.get("title") or "").strip()
    category = Category(row["category"]).value if row.get("category") is not None else None
    relevant = row.get("relevant")
    if relevant is not None and not isinstance(relevant, bool):
        raise ValueError("'relevant' must be true or false")
    if relevant is None and category is not None:
        relevant = category != Category.IRRELEVANT.value
    raw_sentiment = row.get("sentiment")
    sentiment = None
    if raw_sentiment is not None:
        sentiment = Sentiment(_SENTIMENT_ALIASES.get(str(raw_sentiment), str(raw_sentiment))).value
    severity = Severity(row["severity"]).value if row.get("severity") is not None else None
    text = f"{title}\n{row['text']}" if title else row["text"]
    return LabelledText(text=text, category=category, relevant=relevant, sentiment=sentiment,
                        severity=severity, ref=ref)
