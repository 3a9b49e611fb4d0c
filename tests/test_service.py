"""`yuqing run` as a real process: a feed with a major accident reaches a Telegram chat (fake Bot API server on
loopback) with the title and a 5-hour countdown within 30 s; drills run compressed and marked; --feed
replaces the configured sources; SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FIXTURES, TOKEN
from tests.fake_telegram import FakeTelegramServer

ROOT = Path(__file__).resolve().parent.parent
FEEDS = FIXTURES / "feeds"


@pytest.fixture
def run_yuqing(tmp_path: Path, model_dir: Path, telegram: FakeTelegramServer) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str, feed: Path = FEEDS / "mine_collapse.xml") -> subprocess.Popen[str]:
        cfg = tmp_path / "yuqing.yaml"
        cfg.write_text(
            f"sources:\n  - name: test-feed\n    url: {feed}\n    interval: 1h\n"
            f"classifier:\n  model_dir: {model_dir}\n",
            encoding="utf-8",
        )
        env = {
            **os.environ,
            "YUQING_CONFIG": str(cfg),
            "YUQING_DATABASE_URL": f"sqlite:///{tmp_path / 'yuqing.db'}",
            "YUQING_TELEGRAM_TOKEN": TOKEN,
            "YUQING_TELEGRAM_API_BASE": telegram.base_url,
            "YUQING_TELEGRAM_CHAT_IDS": "4242",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", *args], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _has(text: str) -> Any:
    return lambda msgs: [m for m in msgs if text in m["plain_text"]]


def test_major_accident_reaches_telegram_within_30s(run_yuqing: Any, telegram: FakeTelegramServer) -> None:
    proc = run_yuqing()
    [msg] = telegram.wait_for(_has("某县煤矿发生坍塌事故"), timeout=30)
    assert msg["chat_id"] == 4242 and msg["parse_mode"] == "HTML"
    assert msg["plain_text"].startswith("【特别重大舆情】某县煤矿发生坍塌事故 已致35人遇难 多人被困井下")
    assert "距5小时权威信息发布时限还剩 4小时59分" in msg["plain_text"] or "还剩 5小时" in msg["plain_text"]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "【特别重大舆情】" in out  # the console channel printed it too


def test_drill_runs_every_clock_faster_and_marks_messages(run_yuqing: Any, telegram: FakeTelegramServer) -> None:
    run_yuqing("--drill", "3600")
    telegram.wait_for(_has("权威信息发布 已超时"), timeout=40)
    texts = [m["plain_text"] for m in telegram.messages]
    assert all(t.startswith("【演练】") for t in texts)
    assert len(texts) == len(set(texts))  # nothing sent twice
    assert texts[0].startswith("【演练】【特别重大舆情】")


def test_feed_option_replaces_configured_sources(run_yuqing: Any, telegram: FakeTelegramServer,
                                                tmp_path: Path) -> None:
    (tmp_path / "local.atom").write_bytes((FEEDS / "social.atom").read_bytes())
    run_yuqing("--feed", "local.atom", feed=FEEDS / "mine_collapse.xml")  # relative to the working directory
    telegram.wait_for(_has("停水三天"), timeout=30)
    assert not [m for m in telegram.messages if "煤矿" in m["plain_text"]]


def test_site_source_is_crawled_in_its_own_process(tmp_path: Path, model_dir: Path) -> None:
    """`yuqing run` starts `yuqing crawl NAME` for a site source; the crawl stores and records, the service
    classifies what it stored."""
    from sqlmodel import Session, select

    from models.db import make_engine
    from models.tables import Post, SourceState
    from tests.test_site import FixtureSite

    with FixtureSite() as site:
        cfg = tmp_path / "yuqing.yaml"
        cfg.write_text(
            "sources:\n  - name: city-site\n    kind: site\n    interval: 1h\n"
            f"    start_urls: ['{site.base}/news/index.html']\n"
            "    list_page: {links: 'ul.news-list a', next_page: 'a.next::attr(href)', max_pages: 2}\n"
            f"classifier:\n  model_dir: {model_dir}\n",
            encoding="utf-8",
        )
        env = {**os.environ, "YUQING_CONFIG": str(cfg), "YUQING_DATABASE_URL": f"sqlite:///{tmp_path / 'y.db'}",
               "YUQING_RETRY_BACKOFF": "0.01",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--once"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Session(make_engine(f"sqlite:///{tmp_path / 'y.db'}")) as s:
        titles = {p.title for p in s.exec(select(Post)).all()}
        state = s.exec(select(SourceState)).one()
    assert "林业局部署今冬明春森林防火工作" in titles and "市民王喆反映小区电梯停运问题得到解决" in titles
    assert state.source == "city-site" and state.items_total == len(titles) and state.state == "ok"
