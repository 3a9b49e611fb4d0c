"""Each channel's fake server seen through what the contract suite (tests/test_channels.py) needs: a notifier
pointed at it, what the receiver shows, how many attempts reached it, and how to make it fail (fatally, with
a server error, busy with a wait, unreachable, or answering too late)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from alerts.notifiers.base import Notifier
from alerts.notifiers.dingtalk import DingTalkNotifier
from alerts.notifiers.email import EmailNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.limits import LIMITS, measure
from alerts.notifiers.telegram import TelegramNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WeComNotifier
from tests.conftest import TOKEN
from tests.fake_robots import FakeDingTalk, FakeFeishu, FakeRobot, FakeWeCom
from tests.fake_smtp import FakeSmtpServer
from tests.fake_telegram import FakeTelegramServer
from tests.fake_webhook import DEFAULT_SECRET, WebhookReceiver

ROBOT_TOKEN = "tok-5f1e9c2a-77aa-4b1c-9d0e-secretpart"
ROBOT_SECRET = "SECd41d8cd98f00b204e9800998ecf8427e"
ADDRESS = "duty@agency.example"


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
