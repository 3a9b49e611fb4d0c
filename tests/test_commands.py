"""Ingestion commands as a user runs them: `yuqing import` (bad rows reported by line, the rest stored),
`yuqing lead`, `yuqing sources` (health table) and `yuqing reprocess` (failed raw posts queued again)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlmodel import Session, select

from models.db import make_engine, session_scope
from models.enums import RawPostStatus
from models.tables import RawPost
from tests.conftest import FIXTURES
from tests.test_extract import SC_FIRST, SC_TITLE

ROOT = Path(__file__).resolve().parent.parent


def _yuqing(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YUQING_DATABASE_URL": f"sqlite:///{tmp_path / 'y.db'}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=tmp_path,
                           env=env, timeout=120)


def _raw(tmp_path: Path) -> list[RawPost]:
    with Session(make_engine(f"sqlite:///{tmp_path / 'y.db'}")) as s:
        return list(s.exec(select(RawPost)).all())


def test_import_reports_bad_rows_by_line_and_stores_the_rest(tmp_path: Path) -> None:
    res = _yuqing(tmp_path, "import", str(FIXTURES / "imports" / "platform_export_gbk.csv"), "--mapping",
                  "monitor-platform")
    assert res.returncode == 1  # some rows failed
    assert json.loads(res.stdout) == {"rows": 6, "imported": 4, "new": 4, "errors": 2}
    assert res.stderr.splitlines() == ["第5行：没有正文也没有标题（标题、正文 为空）", "第6行：转发数：'很多' 不是数字"]
    rows = _raw(tmp_path)
    assert {r.source for r in rows} == {"monitor-platform"}
    assert any("停水三天" in r.payload["title"] for r in rows)
    again = _yuqing(tmp_path, "import", str(FIXTURES / "imports" / "platform_export.csv"), "--mapping",
                    "monitor-platform")
    assert json.loads(again.stdout)["new"] == 0  # the same posts, UTF-8 this time: nothing new


def test_import_with_inline_columns_and_unknown_mapping(tmp_path: Path) -> None:
    res = _yuqing(tmp_path, "import", str(FIXTURES / "imports" / "mailbox_2026-11.jsonl"), "--mapping", "nope")
    assert res.returncode == 2 and "unknown import mapping 'nope'" in res.stderr
    res = _yuqing(tmp_path, "import", str(FIXTURES / "imports" / "semicolon.csv"), "--source", "mailbox",
                  "--column", "标题=title", "--column", "正文=text", "--column", "作者=author")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["new"] >= 1


def test_manual_lead_is_stored_once(tmp_path: Path) -> None:
    title, text = "群众来电反映某林场违规砍伐", "来电人称某林场夜间违规砍伐天然林"
    args = ("lead", "--title", title, "--text", text, "--reporter", "值班员张三")
    first = _yuqing(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["new"] is True
    [row] = _raw(tmp_path)
    assert row.source == "manual" and row.payload["extra"]["reporter"] == "值班员张三"
    bad = _yuqing(tmp_path, "lead", "--title", "x", "--url", "ftp://example.cn/a")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ")


def test_sources_table_and_reprocess(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'y.db'}")
    res = _yuqing(tmp_path, "sources", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows] == ["demo-city-news", "demo-social"]
    assert rows[0]["state"] == "ok" and rows[0]["items_last_day"] == 0
    table = _yuqing(tmp_path, "sources")
    assert "数据源" in table.stdout and "demo-city-news" in table.stdout
    with session_scope(engine) as s:
        failed = s.exec(select(RawPost)).all()
        assert failed == []
    _yuqing(tmp_path, "lead", "--title", "测试线索", "--reporter", "a")
    with session_scope(engine) as s:
        row = s.exec(select(RawPost)).one()
        row.status, row.error = RawPostStatus.FAILED, "boom"
    res = _yuqing(tmp_path, "reprocess")
    assert json.loads(res.stdout) == {"requeued": 1}
    with Session(engine) as s:
        assert s.exec(select(RawPost)).one().status == RawPostStatus.NEW


@pytest.fixture
def served() -> Iterator[str]:
    """The encoding fixtures over HTTP on 127.0.0.1, with no charset in the Content-Type header."""
    folder = FIXTURES / "encoding"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (folder / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "text/html" if self.path.endswith(".html") else "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("page", "encoding"),
    [("news_gbk_declares_gb2312.html", "gb18030"), ("news_gb18030_undeclared.html", "gb18030"),
     ("news_utf8_declares_gb2312.html", "utf-8")],
)
def test_extract_command_gets_chinese_right_whatever_the_declaration(tmp_path: Path, served: str, page: str,
                                                                     encoding: str) -> None:
    res = _yuqing(tmp_path, "extract", f"{served}/{page}")
    assert res.returncode == 0, res.stderr
    article = json.loads(res.stdout)
    assert set(article) == {"title", "text", "published_at", "author", "encoding", "url"}
    assert article["title"] == SC_TITLE
    assert article["text"].startswith(SC_FIRST)
    assert article["encoding"] == encoding
    assert article["published_at"] == "2024-10-12T07:30:00+00:00"


def test_extract_command_prints_feed_entries_as_an_array(tmp_path: Path, served: str) -> None:
    res = _yuqing(tmp_path, "extract", f"{served}/feed_gb2312.xml")
    assert res.returncode == 0, res.stderr
    entries = json.loads(res.stdout)
    assert isinstance(entries, list) and entries
    assert all("\ufffd" not in e["title"] for e in entries)


def test_extract_command_reports_a_missing_page_in_one_line(tmp_path: Path, served: str) -> None:
    res = _yuqing(tmp_path, "extract", str(tmp_path / "absent.html"))
    assert res.returncode == 1
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: ")
