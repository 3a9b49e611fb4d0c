"""The one contract suite every channel passes against its local fake server, through the real outbox
dispatcher on a fake clock: untrusted text arrives escaped for the channel's format (the officer reads it
literally); long text is cut within the channel's limit; a fatal failure is not retried; a transient one
(server error, busy with Retry-After, connection refused, timeout) is retried later and delivered once — or,
after a timeout that may have delivered, resent recognisably (same Idempotency-Key, or "（重发，可能重复）");
and a dead channel does not delay another.

Channel-specific cases (signing, SMTP reply codes, robot error codes …) stay in test_notifiers.py,
test_robots.py and test_email_webhook.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import FakeClock
from alerts.notifiers.base import Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.limits import LIMITS
from alerts.outbox import Dispatcher, DispatchStats, enqueue, receivers_of
from alerts.render import IncidentView, Message, render
from alerts.stages import RESEND_MARK
from models.db import session_scope
from models.enums import Category, DeliveryOutcome, NotifyReason, Sentiment, Severity
from models.tables import Delivery
from tests.channel_peers import PEERS, Peer

T0 = datetime(2026, 11, 21, 8, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")
HOSTILE = '<script>alert("x")</script> & <at user_id="all">所有人</at> <b>假</b> &amp; *粗* [点我](http://e.vil)'
LONG_PLAIN = "舆情" * 20000 + "END"
STALL, SHORT_TIMEOUT = 1.5, 0.5


class Live:
    """The peer under test; a test that restarts the service swaps `peer`, and every one is stopped after."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.all = [peer]

    def restart(self) -> None:
        self.peer = self.peer.restarted()
        self.all.append(self.peer)


@pytest.fixture(params=list(PEERS))
def live(request: pytest.FixtureRequest) -> Iterator[Live]:
    box = Live(PEERS[request.param]())
    yield box
    for peer in box.all:
        with contextlib.suppress(OSError, RuntimeError):  # already stopped by the test
            peer.stop()


def _incident(title: str) -> IncidentView:
    return IncidentView(id=7, title=title, category=Category.EMERGENCY, severity=Severity.II,
                        sentiment=Sentiment.NEGATIVE, first_seen_at=T0, source="demo", source_url="https://x.cn/a?b=1&c=2",
                        post_count=3, drill=False, time_scale=1.0)


MESSAGE = render(NotifyReason.UPDATE, _incident("某县煤矿透水事故"), [], now=T0, tz=SH)


def _enqueue(db: Engine, notifiers: list[Notifier], message: Message = MESSAGE, key: str = "k1") -> None:
    with session_scope(db) as s:
        enqueue(s, alert_key=key, reason=NotifyReason.UPDATE, message=message, receivers=receivers_of(notifiers),
                now=T0)


def _rows(db: Engine) -> list[Delivery]:
    with Session(db) as s:
        return list(s.exec(select(Delivery).order_by(col(Delivery.id))).all())


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) for a fake server's thread to finish handling a request it answered late."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "the fake server did not finish in time"
        time.sleep(0.02)


# -- the contract ------------------------------------------------------------------------------------------
def test_untrusted_text_arrives_escaped_and_literal(db: Engine, live: Live) -> None:
    notifier = live.peer.notifier()
    message = render(NotifyReason.OPENED, _incident(HOSTILE), [], now=T0, tz=SH)
    _enqueue(db, [notifier], message)

    async def scenario() -> None:
        assert (await Dispatcher(db, [notifier], FakeClock(T0)).dispatch()).sent == 1
        await notifier.close()

    asyncio.run(scenario())
    [text] = live.peer.texts()
    shown = HOSTILE.replace("<at", "＜at").replace("</at", "＜/at") if live.peer.name == "feishu" else HOSTILE
    assert shown in text  # the officer reads exactly what was crawled, and nothing is interpreted
    [row] = _rows(db)
    assert row.outcome == DeliveryOutcome.SENT
    assert (row.external_id is not None) == (live.peer.name in ("telegram", "email"))  # the channel's id, if any


def test_long_text_is_cut_within_the_channel_limit(live: Live) -> None:
    notifier = live.peer.notifier()
    original = "<b>舆情&amp;监测</b>\n" * 1500 if live.peer.name == "telegram" else LONG_PLAIN

    async def go() -> None:
        try:
            await notifier.send(notifier.receivers()[0], original)
        finally:
            await notifier.close()

    asyncio.run(go())
    live.peer.check_truncated(original)


def test_fatal_failure_is_not_retried(db: Engine, live: Live) -> None:
    notifier = live.peer.notifier()
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [notifier], clock)
    _enqueue(db, [notifier])
    live.peer.fail_fatal()

    async def scenario() -> None:
        assert (await dispatcher.dispatch()).failed == 1
        clock.advance(timedelta(hours=1))
        assert await dispatcher.dispatch() == DispatchStats()
        await notifier.close()

    asyncio.run(scenario())
    assert live.peer.attempts() == 1 and live.peer.texts() == []
    [row] = _rows(db)
    assert row.outcome == DeliveryOutcome.FAILED and row.attempts == 1 and row.error


def _inject(live: Live, failure: str) -> float | None:
    """Make the next send fail the given way; returns the wait the channel announces, if any."""
    if failure == "server_error":
        live.peer.fail_server()
    elif failure == "busy":
        return live.peer.fail_busy(30)
    elif failure == "refused":
        live.peer.stop()
    else:
        live.peer.stall_next(STALL)
    return None


@pytest.mark.parametrize("failure", ["server_error", "busy", "refused", "timeout"])
def test_transient_failure_is_retried_later_and_delivered_once(db: Engine, live: Live, failure: str) -> None:
    notifier = live.peer.notifier(timeout=SHORT_TIMEOUT if failure == "timeout" else 3.0)
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [notifier], clock)
    _enqueue(db, [notifier])
    wait = _inject(live, failure)

    async def scenario() -> DispatchStats:
        first = await dispatcher.dispatch()
        assert first.retrying == 1 and first.sent == 0
        live.peer.heal()
        if failure == "refused":
            live.restart()
        if wait is not None:  # the channel's own Retry-After is honoured, to the second
            clock.advance(timedelta(seconds=wait - 1))
            assert (await dispatcher.dispatch()).sent == 0
            clock.advance(timedelta(seconds=2))
        else:
            clock.advance(timedelta(seconds=7))  # first backoff: 5 s plus at most 20% jitter
        assert (await dispatcher.dispatch()).sent == 1
        await notifier.close()
        return first

    first = asyncio.run(scenario())
    assert _rows(db)[0].outcome == DeliveryOutcome.SENT
    if failure != "timeout":
        assert len(live.peer.texts()) == 1
        return
    assert first.in_doubt == 1
    if live.peer.name == "webhook":  # the receiver drops the repeat by its Idempotency-Key
        _eventually(lambda: live.peer.attempts() == 2)
        assert len(live.peer.texts()) == 1
    else:  # the first copy did arrive (late, maybe after the resend); the resend says it may be a repeat
        _eventually(lambda: len(live.peer.texts()) == 2)
        resent, first_copy = sorted(live.peer.texts(), key=lambda t: not t.startswith(RESEND_MARK))
        assert not first_copy.startswith(RESEND_MARK) and resent == RESEND_MARK + first_copy


def test_dead_channel_does_not_delay_another(db: Engine, live: Live) -> None:
    dead = live.peer.notifier(timeout=SHORT_TIMEOUT)
    written: list[float] = []

    class Stamped(io.StringIO):
        def write(self, s: str) -> int:
            written.append(time.monotonic())
            return super().write(s)

    notifiers: list[Notifier] = [dead, ConsoleNotifier(Stamped())]
    _enqueue(db, notifiers, key="a")
    _enqueue(db, notifiers, key="b")
    live.peer.stall_next(STALL)
    started = time.monotonic()

    async def scenario() -> DispatchStats:
        stats = await Dispatcher(db, notifiers, FakeClock(T0)).dispatch()
        await dead.close()
        return stats

    stats = asyncio.run(scenario())
    took = time.monotonic() - started
    assert stats.sent == 2 and stats.retrying == 1  # both console messages; the stalled one waits
    assert took >= SHORT_TIMEOUT and written and written[-1] - started < took / 2  # console did not wait
    rows = {(r.alert_key, r.channel): r for r in _rows(db)}
    assert rows[("b", live.peer.name)].outcome == DeliveryOutcome.PENDING  # held behind "a", not hammered
    assert rows[("b", live.peer.name)].attempts == 0 and live.peer.attempts() <= 1


def test_contract_covers_every_registered_channel() -> None:
    from alerts.notifiers import NOTIFIERS

    assert set(NOTIFIERS) - {"console"} == set(PEERS)
    assert json.dumps(sorted(LIMITS))  # the limits table exists for the channels that have limits
