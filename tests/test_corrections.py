"""Analyst corrections: recorded with who and when, validated, the latest correction of each label wins,
the model's own classification rows stay, and the next `yuqing train` learns from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from classifier.corrections import CorrectionError, correction_examples, record_correction
from models.db import make_engine, session_scope
from models.migrate import upgrade
from models.tables import Classification, Post

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


def _post(db: Engine, title: str = "股市大地震 券商股跳水", category: str = "EMERGENCY") -> int:
    with session_scope(db) as s:
        post = Post(source="s", url="https://x.cn/1", title=title, text="今日午后大盘暴跌", fetched_at=T0,
                    fingerprint=f"fp-{title}")
        s.add(post)
        s.flush()
        assert post.id is not None
        s.add(Classification(post_id=post.id, model_version="m-1", relevance=0.9, category=category,
                             severity="II", sentiment="negative", created_at=T0))
        return post.id


def test_correction_is_recorded_with_who_and_when_and_keeps_the_verdict(db: Engine) -> None:
    post_id = _post(db)
    with session_scope(db) as s:
        record_correction(s, post_id=post_id, actor="分析员李四", now=T0, category="IRRELEVANT", note="股市用语")
    with Session(db) as s:
        [example] = correction_examples(s)
        verdict = s.exec(select(Classification)).one()
    assert example.category == "IRRELEVANT" and example.severity is None and example.sentiment == "negative"
    assert example.text.startswith("股市大地震")
    assert verdict.category == "EMERGENCY"  # the model's row is never overwritten


def test_latest_correction_of_each_label_wins(db: Engine) -> None:
    post_id = _post(db, "网传某地明天停水", "LIVELIHOOD")
    with session_scope(db) as s:
        record_correction(s, post_id=post_id, actor="a", now=T0, category="FALSE_INFO", severity="III")
        record_correction(s, post_id=post_id, actor="b", now=T0 + timedelta(hours=1), severity="IV")
    with Session(db) as s:
        [example] = correction_examples(s)
    assert (example.category, example.severity) == ("FALSE_INFO", "IV")


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [({"post_id": 999, "category": "EMERGENCY"}, "does not exist"), ({}, "nothing to correct"),
     ({"category": "WEATHER"}, "WEATHER")],
)
def test_bad_corrections_are_refused(db: Engine, kwargs: dict[str, object], reason: str) -> None:
    post_id = _post(db)
    args: dict[str, object] = {"post_id": post_id, **kwargs}
    with pytest.raises(CorrectionError, match=reason), session_scope(db) as s:
        record_correction(s, actor="a", now=T0, **args)  # type: ignore[arg-type]


def test_train_learns_from_corrections(tmp_path: Path) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'y.db'}")
    upgrade(db)
    post_id = _post(db)
    env = {**os.environ, "YUQING_DATABASE_URL": f"sqlite:///{tmp_path / 'y.db'}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"classifier:\n  model_dir: {tmp_path / 'models'}\n", encoding="utf-8")

    def yuqing(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=300)

    fixed = yuqing("correct", str(post_id), "--category", "IRRELEVANT", "--by", "分析员李四")
    assert fixed.returncode == 0, fixed.stderr
    assert json.loads(fixed.stdout)["by"] == "分析员李四"
    trained = yuqing("train", "--config", str(cfg))
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["corrections"] == 1
    assert yuqing("correct", "12345", "--category", "IRRELEVANT").returncode == 2
