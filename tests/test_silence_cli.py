"""`yuqing silence add|list|expire` as an officer runs it, and the rules a silence must obey."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.silence_cli import add_silence, covers_urgent_overdue, describe, expire_silence, list_silences
from models.db import session_scope

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 21, 8, tzinfo=UTC)


def _yuqing(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUQING_DATABASE_URL": f"sqlite:///{tmp_path / 'y.db'}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pipeline", "silence", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


def test_add_list_expire(tmp_path: Path) -> None:
    added = _yuqing(tmp_path, "add", "--category", "突发事件", "--severity", "IV", "--for", "2h", "--by", "张三",
                    "--comment", "已核实为演练")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("已创建静默 #1：类别=突发事件，等级=IV级；") and "创建人 张三" in added.stdout
    assert "不受静默影响" not in added.stdout  # a IV silence cannot cover a I/II overdue notice
    urgent = _yuqing(tmp_path, "add", "--incident", "7", "--for", "30m", "--by", "李四", "--comment", "已处置")
    assert "I、II级事件的超时通报" in urgent.stdout
    listed = _yuqing(tmp_path, "list")
    assert [line.split("　")[:2] for line in listed.stdout.splitlines()] == [["#1", "生效中"], ["#2", "生效中"]]
    assert _yuqing(tmp_path, "expire", "1").stdout.strip() == "静默 #1 已解除。"
    assert _yuqing(tmp_path, "list").stdout.startswith("#2")
    rows = json.loads(_yuqing(tmp_path, "list", "--all", "--json").stdout)
    assert [(r["id"], r["status"], r["matchers"]) for r in rows] == [
        (1, "已结束", {"category": "EMERGENCY", "severity": "IV"}), (2, "生效中", {"incident_id": 7})]
    missing = _yuqing(tmp_path, "expire", "9")
    assert missing.returncode == 1 and "没有编号为 9 的静默" in missing.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--for", "2h"], "至少指定一个匹配条件"),
    (["--severity", "V", "--for", "2h"], "匹配条件无效"),
    (["--incident", "1", "--for", "8d"], "最长 7 天"),
    (["--incident", "1", "--for", "soon"], "时长或时间无效"),
])
def test_bad_silences_are_refused(tmp_path: Path, args: list[str], needle: str) -> None:
    res = _yuqing(tmp_path, "add", *args, "--by", "张三", "--comment", "x")
    assert res.returncode == 2 and needle in res.stderr


def test_silence_rules(db: Engine) -> None:
    with session_scope(db) as s:
        row = add_silence(s, {"reason": "health", "channel": "wecom"}, starts_at=T0, ends_at=T0 + timedelta(hours=1),
                          created_by="张三", comment="数据源维护", now=T0)
        with pytest.raises(ValueError, match="创建人和原因"):
            add_silence(s, {"incident_id": 1}, starts_at=T0, ends_at=T0 + timedelta(hours=1), created_by=" ",
                        comment="", now=T0)
        with pytest.raises(ValueError, match="晚于"):
            add_silence(s, {"incident_id": 1}, starts_at=T0, ends_at=T0, created_by="a", comment="b", now=T0)
    assert describe(row.matchers) == "类型=数据源，渠道=wecom"
    assert not covers_urgent_overdue(row.matchers)
    with Session(db) as s:
        assert [r.id for r in list_silences(s, T0)] == [row.id]
    with session_scope(db) as s:
        assert row.id is not None and expire_silence(s, row.id, T0 + timedelta(minutes=5)) is not None
    with Session(db) as s:
        assert list_silences(s, T0 + timedelta(minutes=6)) == []
        assert len(list_silences(s, T0 + timedelta(minutes=6), include_ended=True)) == 1
