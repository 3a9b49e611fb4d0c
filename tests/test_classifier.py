"""Classifier: the `yuqing classify` contract (fields, malformed lines, order), training is versioned and
deterministic, and the seed model gets the clear cases right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from classifier.model import TextModel, active_version
from classifier.segment import Segmenter
from classifier.train import CorpusError, corpus_version, load_examples, seed_files
from models.enums import Category

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {c.value for c in Category}


def _config(tmp_path: Path, model_dir: Path) -> Path:
    cfg = tmp_path / "yuqing.yaml"
    cfg.write_text(f"classifier:\n  model_dir: {model_dir}\n", encoding="utf-8")
    return cfg


def _classify(tmp_path: Path, model_dir: Path, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "classify", "--config", str(_config(tmp_path, model_dir)), *args],
        input=stdin, capture_output=True, text=True, cwd=ROOT, env=os.environ.copy(), timeout=120,
    )


def test_cli_contract_with_malformed_lines(tmp_path: Path, model_dir: Path) -> None:
    lines = [
        json.dumps({"id": 1, "text": "某县煤矿发生透水事故 已致32人遇难", "title": "煤矿事故"}, ensure_ascii=False),
        "{not json",
        json.dumps(["a", "list"]),
        "",
        json.dumps({"title": "no text"}),
        json.dumps({"text": "x", "title": 5}),
        json.dumps({"id": 2, "text": "某顶流明星官宣恋情 粉丝心态爆炸"}, ensure_ascii=False),
    ]
    res = _classify(tmp_path, model_dir, "\n".join(lines) + "\n")
    assert res.returncode == 0, res.stderr
    out = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(out) == 6  # one per non-blank input line, in order
    assert [o.get("line") for o in out[1:5]] == [2, 3, 5, 6]
    assert all("error" in o for o in out[1:5])
    mine, gossip = out[0], out[5]
    for o in (mine, gossip):
        assert set(o) >= {"relevance", "category", "category_scores", "severity", "sentiment", "model_version"}
        assert 0.0 <= o["relevance"] <= 1.0
        assert o["category"] in CATEGORIES
        assert set(o["category_scores"]) == CATEGORIES
        assert o["sentiment"] in {"negative", "neutral", "positive"}
        assert o["model_version"] == active_version(model_dir)
    assert mine["id"] == 1 and mine["title"] == "煤矿事故"
    assert mine["category"] == "EMERGENCY" and mine["severity"] == "I"
    assert mine["severity_reasons"] == ["死亡（含失踪）32人→特别重大(I)"]
    assert gossip["category"] == "IRRELEVANT" and gossip["severity"] is None


def test_cli_reads_a_file(tmp_path: Path, model_dir: Path) -> None:
    data = tmp_path / "posts.jsonl"
    data.write_text('{"text": "网传明天起全市停水 系谣言"}\n', encoding="utf-8")
    res = _classify(tmp_path, model_dir, "", str(data))
    assert res.returncode == 0, res.stderr
    [out] = [json.loads(line) for line in res.stdout.splitlines()]
    assert out["category"] == "FALSE_INFO"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("某县林区发生森林火灾 2名扑火队员失联", Category.EMERGENCY),
        ("网传明天起全省林区全面封山 进山罚款五千 警方：系谣言", Category.FALSE_INFO),
        ("办事大厅工作人员态度恶劣 群众排队三小时没人理", Category.GOV_IMAGE),
        ("护林员工资拖欠半年没人管 找谁都说不归他管", Category.LIVELIHOOD),
        ("省林业厅公开征求《生态公益林补偿办法（征求意见稿）》意见", Category.MAJOR_POLICY),
        ("A股市场大地震 券商股集体跳水", Category.IRRELEVANT),
        ("球队防线崩塌 主场0比5惨败", Category.IRRELEVANT),
    ],
)
def test_seed_model_gets_clear_cases_right(model: TextModel, text: str, category: Category) -> None:
    [verdict] = model.predict([text])
    assert verdict.category is category
    assert (verdict.severity is None) == (category is Category.IRRELEVANT)


def test_training_version_is_deterministic_and_data_dependent() -> None:
    examples = load_examples(seed_files())
    assert len(examples) >= 600
    assert corpus_version(examples) == corpus_version(list(reversed(examples)))
    assert corpus_version(examples) != corpus_version(examples[:-1])


def test_bad_training_line_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok", "category": "EMERGENCY"}\n{"text": "x", "category": "WEATHER"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: bad label"):
        load_examples([bad])


def test_sentiment_only_rows_train_the_sentiment_head_alone(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    lines = [{"text": "今天好开心[哈哈]", "category": None, "sentiment": "positive", "severity": "II"},
             {"text": "某县发生山洪", "category": "EMERGENCY", "sentiment": "negative"}]
    rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    chat, flood = load_examples([rows])
    assert (chat.category, chat.severity, chat.sentiment) == (None, None, "positive")
    assert (flood.category, flood.severity) == ("EMERGENCY", "IV")
    assert all(e.category is not None for e in load_examples(seed_files())[:5])
    assert any(e.category is None for e in load_examples(seed_files()))


def test_rows_with_null_sentiment_train_category_alone(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    lines = [{"text": "【冷笑话】为什么企鹅只有肚子是白的", "category": "IRRELEVANT", "sentiment": None},
             {"text": "没有标签", "category": None, "sentiment": None}]
    rows.write_text(json.dumps(lines[0], ensure_ascii=False) + "\n", encoding="utf-8")
    [joke] = load_examples([rows])
    assert (joke.category, joke.sentiment, joke.severity) == ("IRRELEVANT", None, None)
    rows.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    with pytest.raises(CorpusError, match=r"rows.jsonl:2: 'category' and 'sentiment' are both null"):
        load_examples([rows])
    assert any(e.sentiment is None and e.category for e in load_examples(seed_files()))


def test_train_if_missing_skips_when_a_model_is_active(tmp_path: Path, model_dir: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pipeline", "train", "--if-missing", "--config", str(_config(tmp_path, model_dir))],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"model_version": active_version(model_dir), "trained": False}


def test_segmenters_are_independent(tmp_path: Path) -> None:
    words = tmp_path / "dict.txt"
    words.write_text("扑火队员失联 10 n\n", encoding="utf-8")
    plain, custom = Segmenter(), Segmenter([words])
    assert "扑火队员失联" in custom.words("两名扑火队员失联")
    assert "扑火队员失联" not in plain.words("两名扑火队员失联")
