"""Kill -9 in the middle of a countdown: `yuqing run --drill` (clocks compressed) is killed with SIGKILL after
the opening alert, the 5 h clock's reminders and its overdue notice, while the 24 h clock is still running;
a new process takes over the lease, rebuilds the jobs from the database and sends the rest. The fake Telegram
server then holds each expected message exactly once: the expectation is computed from the frozen policy,
not from timing. SQLite and PostgreSQL.

Timing: at drill 1200 the 5 h clock ends 15 s after first detection and the 24 h clock's first reminder comes
at 60 s, so the restart (process start-up plus waiting out the killed holder's 4 s lease) has ~40 s. Every
wait is a bounded poll of the fake server or the database, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts import deadlines as dl
from models.enums import DeadlineStatus, DeliveryOutcome
from models.tables import Deadline, Delivery, Incident
from tests.conftest import FIXTURES, TOKEN
from tests.fake_telegram import FakeTelegramServer

ROOT = Path(__file__).resolve().parent.parent
FEED = FIXTURES / "feeds" / "mine_collapse.xml"
DRILL = 1200
CHAT = 4242
WAIT = 150.0  # generous bound for any one wait on a loaded 2-core machine


@pytest.fixture
def service(tmp_path: Path, model_dir: Path, telegram: FakeTelegramServer, db: Engine) -> Iterator[Any]:
    cfg = tmp_path / "yuqing.yaml"
    cfg.write_text(
        f"classifier:\n  model_dir: {model_dir}\n"
        "response:\n  updates:\n    severities: []\n"  # no continuous updates: the countdown has an end
        'ops:\n  lease_ttl: 4s\n  lease_renew: 1s\n  heartbeat_at: "off"\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "YUQING_CONFIG": str(cfg),
        "YUQING_DATABASE_URL": db.url.render_as_string(hide_password=False),
        "YUQING_TELEGRAM_TOKEN": TOKEN,
        "YUQING_TELEGRAM_API_BASE": telegram.base_url,
        "YUQING_TELEGRAM_CHAT_IDS": str(CHAT),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    procs: list[subprocess.Popen[bytes]] = []

    def start(life: int) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"life{life}.out", "wb") as out, open(tmp_path / f"life{life}.err", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "run", "--feed", str(FEED), "--drill", str(DRILL)],
                cwd=ROOT, env=env, stdout=out, stderr=err,
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll `check` until it returns something truthy (bounded)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise TimeoutError(f"not within {timeout:g}s: {what}")


def _telegram_rows(db: Engine) -> list[Delivery]:
    with Session(db) as s:
        return list(s.exec(select(Delivery).where(Delivery.channel == "telegram")).all())


def _settled(db: Engine) -> bool:
    """Every Telegram delivery recorded as sent (none pending or in flight)."""
    rows = _telegram_rows(db)
    return bool(rows) and all(r.outcome == DeliveryOutcome.SENT for r in rows)


def _expected_keys(db: Engine) -> set[str]:
    """From the frozen policy: the opening alert, then every reminder and the overdue notice of each deadline."""
    with Session(db) as s:
        [inc] = s.exec(select(Incident)).all()
        keys = {f"incident:{inc.id}:opened"}
        for d in s.exec(select(Deadline).where(Deadline.incident_id == inc.id)).all():
            keys |= {f"deadline:{d.id}:{n.reason.value}:{n.index}" for n in dl.notices(inc.policy, d.kind, d.due_at)}
    return keys


def _headline(text: str) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    return lambda msgs: [m for m in msgs if m["plain_text"].startswith(text)]


def test_sigkill_mid_countdown_loses_nothing_and_repeats_nothing(
    service: Any, telegram: FakeTelegramServer, db: Engine, tmp_path: Path
) -> None:
    first = service(1)
    telegram.wait_for(_headline("【演练】【特别重大舆情】"), timeout=WAIT)
    telegram.wait_for(_headline("【演练】【提醒】"), timeout=WAIT)
    telegram.wait_for(_headline("【演练】【超时】权威信息发布 已超时"), timeout=WAIT)
    _until(lambda: _settled(db), "the 5 h clock's notices recorded as sent")
    with Session(db) as s:
        press = s.exec(select(Deadline).where(Deadline.kind == "press_conference_24h")).one()
    assert press.status == DeadlineStatus.PENDING and press.notice_stage == 0  # mid-countdown
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL

    second = service(2)
    telegram.wait_for(_headline("【演练】【超时】新闻发布会 已超时"), timeout=WAIT)
    _until(lambda: _settled(db), "every delivery recorded as sent")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=60) == 0, (tmp_path / "life2.err").read_text(errors="replace")[-3000:]

    with Session(db) as s:
        assert {d.status for d in s.exec(select(Deadline)).all()} == {DeadlineStatus.MISSED}
        superseded = s.exec(select(Delivery).where(Delivery.outcome == DeliveryOutcome.SUPERSEDED)).all()
    assert not superseded, f"notices due while the service was down (restart too slow?): {superseded}"
    rows = _telegram_rows(db)
    assert {r.alert_key for r in rows} == _expected_keys(db)  # every expected notice, and nothing else
    sent = [m["text"] for m in telegram.messages if m["method"] == "sendMessage"]
    assert sorted(sent) == sorted(r.body for r in rows)  # each exactly once at the Bot API: none lost, none twice
    assert len(sent) == 7  # opening + (2 reminders + overdue) × 2 clocks
    assert all(m["chat_id"] == CHAT for m in telegram.messages)
    err = (tmp_path / "life2.err").read_text(errors="replace")
    assert "scheduler lease acquired" in err and "Traceback" not in err


def _opening_sent(db: Engine) -> bool:
    return any(r.alert_key.endswith(":opened") and r.outcome == DeliveryOutcome.SENT for r in _telegram_rows(db))


def test_sigkill_while_telegram_holds_the_answer_resends_once_marked_as_a_possible_repeat(
    service: Any, telegram: FakeTelegramServer, db: Engine
) -> None:
    telegram.accepted_latency["sendMessage"] = 30.0  # Telegram has the message; its answer is slow to come back
    first = service(1)
    telegram.wait_for(_headline("【演练】【特别重大舆情】"), timeout=WAIT)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    telegram.accepted_latency.clear()
    second = service(2)
    _until(lambda: _opening_sent(db), "the opening alert recorded as sent after the restart")
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=60)
    # Telegram had the message but yuqing never heard back: the row was left `sending` (in doubt). The Bot API
    # cannot de-duplicate, so it is sent once more, marked, rather than risk an officer never seeing it.
    assert len(_headline("【演练】【特别重大舆情】")(telegram.messages)) == 1
    assert len(_headline("（重发，可能重复）【演练】【特别重大舆情】")(telegram.messages)) == 1
