"""Outbox: enqueue is idempotent per (alert key, receiver); dispatch retries transient failures with backoff on
the fake clock, gives up on fatal ones, and a dead channel does not hold up the others."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.clock import FakeClock
from alerts.notifiers.base import Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.telegram import TelegramNotifier
from alerts.outbox import Dispatcher, enqueue, receivers_of
from alerts.render import Message
from models.db import session_scope
from models.enums import DeliveryOutcome, NotifyReason
from models.tables import Delivery
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegramServer

T0 = datetime(2026, 11, 21, tzinfo=UTC)
MSG = Message(text="纯文本", html="<b>加粗</b>")


def _setup(db: Engine, server: FakeTelegramServer) -> tuple[list[Notifier], io.StringIO]:
    out = io.StringIO()
    return [ConsoleNotifier(out), TelegramNotifier(TOKEN, [42, 43], base_url=server.base_url, timeout=2)], out


def _enqueue(db: Engine, notifiers: list[Notifier], key: str = "k1") -> int:
    with session_scope(db) as s:
        return enqueue(s, alert_key=key, reason=NotifyReason.OPENED, message=MSG, receivers=receivers_of(notifiers),
                       now=T0)


def _outcomes(db: Engine) -> dict[tuple[str, str], str]:
    with Session(db) as s:
        return {(d.channel, d.receiver): d.outcome for d in s.exec(select(Delivery)).all()}


def test_enqueue_is_idempotent_and_formats_per_channel(db: Engine, telegram: FakeTelegramServer) -> None:
    notifiers, out = _setup(db, telegram)
    assert _enqueue(db, notifiers) == 3
    assert _enqueue(db, notifiers) == 0
    dispatcher = Dispatcher(db, notifiers, FakeClock(T0))

    async def scenario() -> None:
        await dispatcher.dispatch()
        await dispatcher.dispatch()
        await notifiers[1].close()

    asyncio.run(scenario())
    assert [m["text"] for m in telegram.messages] == ["<b>加粗</b>", "<b>加粗</b>"]  # nothing sent twice
    assert "纯文本" in out.getvalue()
    assert set(_outcomes(db).values()) == {DeliveryOutcome.SENT}


def test_transient_failure_is_retried_after_backoff(db: Engine, telegram: FakeTelegramServer) -> None:
    notifiers, _ = _setup(db, telegram)
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, notifiers, clock)
    _enqueue(db, notifiers)
    telegram.fail_next("sendMessage", 502, "Bad Gateway")

    async def scenario() -> tuple[int, int]:
        first = await dispatcher.dispatch()
        assert first.sent == 2 and first.retrying == 1  # console and one chat went out; the other chat waits
        [waiting] = [int(r) for (ch, r), o in _outcomes(db).items() if o == DeliveryOutcome.PENDING]
        other = 85 - waiting  # chats are sent to concurrently: either may have met the failure
        clock.advance(timedelta(seconds=4))
        await dispatcher.dispatch()
        assert [m["chat_id"] for m in telegram.messages] == [other]  # the failed one is still backing off
        clock.advance(timedelta(seconds=2))
        assert (await dispatcher.dispatch()).sent == 1
        await notifiers[1].close()
        return other, waiting

    order = list(asyncio.run(scenario()))
    assert [m["chat_id"] for m in telegram.messages] == order
    assert set(_outcomes(db).values()) == {DeliveryOutcome.SENT}


def test_retry_after_is_honoured(db: Engine, telegram: FakeTelegramServer) -> None:
    notifiers, _ = _setup(db, telegram)
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, notifiers, clock)
    _enqueue(db, notifiers)
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 30", retry_after=30)

    async def scenario() -> None:
        await dispatcher.dispatch()
        clock.advance(timedelta(seconds=29))
        await dispatcher.dispatch()
        assert len(telegram.messages) == 1  # the chat that met the 429 waits its 30 s
        clock.advance(timedelta(seconds=2))
        assert (await dispatcher.dispatch()).sent == 1
        await notifiers[1].close()

    asyncio.run(scenario())
    assert len(telegram.messages) == 2


def test_fatal_failure_is_not_retried(db: Engine) -> None:
    with FakeTelegramServer(known_chats=[43]) as server:
        notifiers, _ = _setup(db, server)
        _enqueue(db, notifiers)
        stats = asyncio.run(Dispatcher(db, notifiers, FakeClock(T0)).dispatch())
        assert stats.failed == 1 and stats.sent == 2
        with Session(db) as s:
            failed = s.exec(select(Delivery).where(Delivery.outcome == DeliveryOutcome.FAILED)).one()
        assert failed.receiver == "42" and "chat not found" in (failed.error or "").lower()


def test_dead_channel_delays_only_itself(db: Engine, telegram: FakeTelegramServer) -> None:
    notifiers, out = _setup(db, telegram)
    telegram.down = True
    _enqueue(db, notifiers, "a")
    _enqueue(db, notifiers, "b")
    stats = asyncio.run(Dispatcher(db, notifiers, FakeClock(T0)).dispatch())
    assert stats.sent == 2  # both console messages
    assert out.getvalue().count("纯文本") == 2


def test_two_dispatchers_on_one_database_send_each_delivery_once(db: Engine, telegram: FakeTelegramServer) -> None:
    """A lease hand-over can leave the old holder's dispatch pass running while the new holder starts its own:
    each row is claimed (pending → sending) by one of them only."""
    clock = FakeClock(T0)
    first = TelegramNotifier(TOKEN, [42], base_url=telegram.base_url, timeout=2)
    second = TelegramNotifier(TOKEN, [42], base_url=telegram.base_url, timeout=2)
    for i in range(8):
        _enqueue(db, [first], key=f"k{i}")

    async def scenario() -> None:
        await asyncio.gather(Dispatcher(db, [first], clock).dispatch(), Dispatcher(db, [second], clock).dispatch())
        await first.close()
        await second.close()

    asyncio.run(scenario())
    assert len(telegram.messages) == 8
    assert set(_outcomes(db).values()) == {DeliveryOutcome.SENT}
