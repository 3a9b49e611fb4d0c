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
import email
import email.policy
import io
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import FakeClock
from alerts.notifiers.base import Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.dingtalk import DingTalkNotifier
from alerts.notifiers.email import EmailNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.limits import LIMITS, measure
from alerts.notifiers.telegram import TelegramNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WeComNotifier
from alerts.outbox import Dispatcher, DispatchStats, enqueue, receivers_of
from alerts.render import IncidentView, Message, render
from alerts.stages import RESEND_MARK
from models.db import session_scope
from models.enums import Category, DeliveryOutcome, NotifyReason, Sentiment, Severity
from models.tables import Delivery
from tests.conftest import TOKEN
from tests.fake_robots import FakeDingTalk, FakeFeishu, FakeRobot, FakeWeCom
from tests.fake_smtp import FakeSmtpServer
from tests.fake_telegram import FakeTelegramServer
from tests.fake_webhook import DEFAULT_SECRET, WebhookReceiver

T0 = datetime(2026, 11, 21, 8, tzinfo=UTC)
SH = ZoneInfo("Asia/Shanghai")
ROBOT_TOKEN = "tok-5f1e9c2a-77aa-4b1c-9d0e-secretpart"
ROBOT_SECRET = "SECd41d8cd98f00b204e9800998ecf8427e"
HOSTILE = '<script>alert("x")</script> & <at user_id="all">所有人</at> <b>假</b> &amp; *粗* [点我](http://e.vil)'
LONG_PLAIN = "舆情" * 20000 + "END"
ADDRESS = "duty@agency.example"
STALL, SHORT_TIMEOUT = 1.5, 0.5


class Peer(Protocol):
    """A channel's fake server, seen through what the contract needs."""

    name: str

    def notifier(self, timeout: float = 3.0) -> Notifier: ...
    def texts(self) -> list[str]: ...  # what the officer sees, one per message kept by the receiver
    def attempts(self) -> int: ...  # requests that reached the server
    def fail_fatal(self) -> None: ...
    def fail_server(self) -> None: ...
    def fail_busy(self, after: int) -> float | None: ...  # the wait the channel announces (None: none)
    def stall_next(self, seconds: float) -> None: ...
    def heal(self) -> None: ...  # undo a lasting injected failure
    def stop(self) -> None: ...
    def restarted(self) -> Peer: ...  # the same service back on the same port
    def check_truncated(self, original: str) -> None: ...


class TelegramPeer:
    name = "telegram"

    def __init__(self, server: FakeTelegramServer) -> None:
        self.server = server
        self.port = server.port

    def notifier(self, timeout: float = 3.0) -> Notifier:
        return TelegramNotifier(TOKEN, [42], base_url=self.server.base_url, timeout=timeout)

    def texts(self) -> list[str]:
        return [m["plain_text"] for m in self.server.messages if m["method"] == "sendMessage"]

    def attempts(self) -> int:
        return sum(1 for r in self.server.requests if r["method"] == "sendMessage")

    def fail_fatal(self) -> None:
        self.server.fail_next("sendMessage", 400, "Bad Request: chat not found")

    def fail_server(self) -> None:
        self.server.fail_next("sendMessage", 500)

    def fail_busy(self, after: int) -> float | None:
        self.server.fail_next("sendMessage", 429, retry_after=after)
        return after

    def stall_next(self, seconds: float) -> None:
        self.server.method_latency["sendMessage"] = seconds

    def heal(self) -> None:
        self.server.method_latency.clear()

    def stop(self) -> None:
        self.server.stop()

    def restarted(self) -> Peer:
        return TelegramPeer(FakeTelegramServer(port=self.port).start())

    def check_truncated(self, original: str) -> None:
        [sent] = [m["text"] for m in self.server.messages]
        assert measure(sent, "utf16") <= LIMITS["telegram"].size  # accepted by the strict HTML parser, too
        assert "…" in sent and original.startswith(sent[: sent.index("…")])


class RobotPeer:
    def __init__(self, fake: FakeRobot, make: Callable[[str, float], Notifier], name: str) -> None:
        self.fake, self.make, self.name = fake, make, name

    def notifier(self, timeout: float = 3.0) -> Notifier:
        return self.make(self.fake.webhook_url, timeout)

    def texts(self) -> list[str]:
        return list(self.fake.messages)

    def attempts(self) -> int:
        return len(self.fake.requests)

    def fail_fatal(self) -> None:
        self.fake.fail_next(status=400)

    def fail_server(self) -> None:
        self.fake.fail_next(status=502)

    def fail_busy(self, after: int) -> float | None:
        self.fake.fail_next(status=429, retry_after=after)
        return after

    def stall_next(self, seconds: float) -> None:
        self.fake.stall_next(seconds)

    def heal(self) -> None:
        return None

    def stop(self) -> None:
        self.fake.stop()

    def restarted(self) -> Peer:
        port = urlsplit(self.fake.base).port or 0
        fake = type(self.fake)(token=ROBOT_TOKEN, secret=self.fake.secret, port=port).start()
        return RobotPeer(fake, self.make, self.name)

    def check_truncated(self, original: str) -> None:
        [sent] = self.fake.messages
        limit = LIMITS[self.name].size
        size = self.fake.requests[-1]["size"] if self.name == "feishu" else len(sent.encode("utf-8"))
        assert limit - 300 <= size <= limit  # nearly full, never over
        assert sent.endswith("…") and original.startswith(sent[:-1])


class EmailPeer:
    name = "email"

    def __init__(self, server: FakeSmtpServer) -> None:
        self.server = server

    def notifier(self, timeout: float = 3.0) -> Notifier:
        return EmailNotifier("127.0.0.1", self.server.port, security="none", sender="yuqing@agency.example",
                             to=[ADDRESS], timeout=timeout)

    def _parsed(self) -> list[Any]:
        return [email.message_from_bytes(m.data, policy=email.policy.default) for m in self.server.messages]

    def texts(self) -> list[str]:
        return [msg.get_content().rstrip("\n") for msg in self._parsed()]

    def attempts(self) -> int:
        return self.server.commands.count("MAIL")

    def fail_fatal(self) -> None:
        self.server.rcpt_replies[ADDRESS] = (550, "5.1.1 mailbox unavailable")

    def fail_server(self) -> None:
        self.server.data_reply = (451, "4.3.0 try again later")

    def fail_busy(self, after: int) -> float | None:
        self.server.greeting = (421, "4.3.2 too busy, try later")  # SMTP announces no wait
        return None

    def stall_next(self, seconds: float) -> None:
        self.server.stall_data = seconds

    def heal(self) -> None:
        self.server.data_reply, self.server.greeting = (250, "2.0.0 OK queued"), (220, "fake ESMTP")
        self.server.rcpt_replies.clear()

    def stop(self) -> None:
        self.server.__exit__(None, None, None)

    def restarted(self) -> Peer:
        return EmailPeer(FakeSmtpServer(port=self.server.port).__enter__())

    def check_truncated(self, original: str) -> None:
        [msg] = self._parsed()
        assert len(msg["Subject"]) <= LIMITS["email_subject"].size and msg["Subject"].endswith("…")
        assert msg.get_content().rstrip("\n") == original  # the body itself is not limited


class WebhookPeer:
    name = "webhook"

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver

    def notifier(self, timeout: float = 3.0) -> Notifier:
        return WebhookNotifier(self.receiver.url, DEFAULT_SECRET, timeout=timeout)

    def texts(self) -> list[str]:
        return self.receiver.texts

    def attempts(self) -> int:
        return len(self.receiver.requests)

    def fail_fatal(self) -> None:
        self.receiver.responses.append((400, {}, "bad request"))

    def fail_server(self) -> None:
        self.receiver.responses.append((503, {}, "busy"))

    def fail_busy(self, after: int) -> float | None:
        self.receiver.responses.append((429, {"Retry-After": str(after)}, "slow down"))
        return after

    def stall_next(self, seconds: float) -> None:
        self.receiver.stall_next(seconds)

    def heal(self) -> None:
        return None

    def stop(self) -> None:
        self.receiver.stop()

    def restarted(self) -> Peer:
        return WebhookPeer(WebhookReceiver(port=self.receiver.port).__enter__())

    def check_truncated(self, original: str) -> None:
        assert self.texts() == [original]  # JSON has no size limit: the text arrives whole


def _robot(cls: type[FakeRobot], make: Callable[[str, str | None, float], Notifier], name: str,
           signed: bool) -> Callable[[], Peer]:
    def start() -> Peer:
        fake = cls(token=ROBOT_TOKEN, secret=ROBOT_SECRET if signed else None).start()
        return RobotPeer(fake, lambda url, timeout: make(url, ROBOT_SECRET, timeout), name)
    return start


PEERS: dict[str, Callable[[], Peer]] = {
    "telegram": lambda: TelegramPeer(FakeTelegramServer().start()),
    "wecom": _robot(FakeWeCom, lambda u, s, t: WeComNotifier(u, s, timeout=t), "wecom", False),
    "dingtalk": _robot(FakeDingTalk, lambda u, s, t: DingTalkNotifier(u, s, timeout=t), "dingtalk", True),
    "feishu": _robot(FakeFeishu, lambda u, s, t: FeishuNotifier(u, s, timeout=t), "feishu", True),
    "email": lambda: EmailPeer(FakeSmtpServer().__enter__()),
    "webhook": lambda: WebhookPeer(WebhookReceiver().__enter__()),
}


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
