"""Fake WeCom, DingTalk and Feishu group-robot webhooks for tests (standard library only).

Each fake is a ThreadingHTTPServer on 127.0.0.1 (port 0) that checks a request the way the real service
does and answers in its JSON shape::

    with FakeDingTalk(secret="SEC123") as robot:
        notifier = DingTalkNotifier(robot.webhook_url, "SEC123", timeout=3)
        ...
        assert robot.messages == ["【重大舆情】…"]

* WeCom: ``POST /cgi-bin/webhook/send?key=KEY``; wrong key → errcode 93000; content over 2048 bytes → 40058.
* DingTalk: ``POST /robot/send?access_token=T[&timestamp=MS&sign=S]``; wrong token → 300001; with a secret,
  a missing/stale (over 1 hour) timestamp or wrong sign → 310000; content over 20000 bytes → 460101.
* Feishu: ``POST /open-apis/bot/v2/hook/TOKEN``; wrong token → 19001; with a secret, a stale timestamp or
  wrong sign → 19021; body over 20 KB → 9499. Errors come with HTTP 400, as on the real service.

Error codes not documented publicly (the over-length ones) are approximations. Helpers: `messages` (the
delivered texts), `requests` (every parsed request), `fail_next(n, code=…, status=…, retry_after=…)`,
`stall_next(seconds)` (the next request is handled, then answered late: a client timeout that did deliver),
`port` (restart on the same port after `stop()`, to model a service that was unreachable for a while) and
`clock` (a callable returning epoch seconds, to test timestamp windows without sleeping).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

JSONDict = dict[str, Any]
Answer = tuple[int, JSONDict]


@dataclass
class _Failure:
    remaining: int
    status: int
    code: int | None
    msg: str
    retry_after: float | None


class FakeRobot:
    """Common server, recording and failure injection; subclasses implement `_check` and `_reply`."""

    def __init__(self, *, token: str, secret: str | None = None, clock: Callable[[], float] = time.time,
                 port: int = 0) -> None:
        self.token = token
        self.secret = secret
        self.clock = clock
        self.messages: list[str] = []
        self.requests: list[JSONDict] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port = port
        self._stall = 0.0

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> FakeRobot:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeRobot:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def webhook_url(self) -> str:
        raise NotImplementedError

    def fail_next(
        self, n: int = 1, *, status: int = 200, code: int | None = None, msg: str = "injected",
        retry_after: float | None = None,
    ) -> None:
        """The next `n` requests answer `status` with error `code` (or a plain-text body when code is None)."""
        with self._lock:
            self._failures.append(_Failure(n, status, code, msg, retry_after))

    def stall_next(self, seconds: float) -> None:
        """Handle the next request as usual but answer only after `seconds`."""
        with self._lock:
            self._stall = seconds

    def take_stall(self) -> float:
        with self._lock:
            stall, self._stall = self._stall, 0.0
        return stall

    # -- protocol -------------------------------------------------------------------------------------
    def handle(self, path: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        parts = urlsplit(path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        with self._lock:
            self.requests.append({"path": parts.path, "query": query, "json": data, "size": len(body)})
            failure = self._take_failure()
        if failure is not None:
            headers = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
            if failure.code is None:
                return failure.status, b"injected failure", headers
            return failure.status, _dump(self._reply(failure.code, failure.msg)), headers
        status, answer = self._check(parts.path, query, data, len(body))
        return status, _dump(answer), {}

    def _take_failure(self) -> _Failure | None:
        if not self._failures:
            return None
        failure = self._failures[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            self._failures.pop(0)
        return failure

    def _record(self, text: str) -> None:
        with self._lock:
            self.messages.append(text)

    def _check(self, path: str, query: dict[str, str], data: Any, size: int) -> Answer:
        raise NotImplementedError

    def _reply(self, code: int, msg: str) -> JSONDict:
        return {"errcode": code, "errmsg": msg}


def _dump(obj: JSONDict) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _text_of(data: Any, kind_key: str, kind: str, outer: str, inner: str) -> str | None:
    if not isinstance(data, dict) or data.get(kind_key) != kind:
        return None
    box = data.get(outer)
    text = box.get(inner) if isinstance(box, dict) else None
    return text if isinstance(text, str) and text else None


def _handler(fake: FakeRobot) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload, headers = fake.handle(self.path, body)
            stall = fake.take_stall()
            if stall:
                time.sleep(stall)  # the fake server answers late; the test itself never sleeps
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                self.close_connection = True  # the client gave up waiting

    return Handler


class FakeWeCom(FakeRobot):
    LIMIT = 2048

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={self.token}"

    def _check(self, path: str, query: dict[str, str], data: Any, size: int) -> Answer:
        if path != "/cgi-bin/webhook/send":
            return 404, {"errcode": 404, "errmsg": "not found"}
        if query.get("key") != self.token:
            return 200, self._reply(93000, "invalid webhook url")
        text = _text_of(data, "msgtype", "text", "text", "content")
        if text is None:
            return 200, self._reply(40008, "invalid message type")
        if len(text.encode("utf-8")) > self.LIMIT:
            return 200, self._reply(40058, f"content exceed max length {self.LIMIT}")
        self._record(text)
        return 200, self._reply(0, "ok")


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FakeDingTalk(FakeRobot):
    LIMIT = 20000

    @property
    def webhook_url(self) -> str:
        return f"{self.base}/robot/send?access_token={self.token}"

    def _check(self, path: str, query: dict[str, str], data: Any, size: int) -> Answer:
        if path != "/robot/send":
            return 404, {"errcode": 404, "errmsg": "not found"}
        if query.get("access_token") != self.token:
            return 200, self._reply(300001, "token is not exist")
        if self.secret is not None:
            ts = query.get("timestamp", "")
            if not ts.isdigit() or abs(self.clock() * 1000 - int(ts)) > 3_600_000:
                return 200, self._reply(310000, "invalid timestamp")
            if not hmac.compare_digest(query.get("sign", ""), dingtalk_expected_sign(self.secret, ts)):
                return 200, self._reply(310000, "sign not match")
        text = _text_of(data, "msgtype", "text", "text", "content")
        if text is None:
            return 200, self._reply(40035, "缺少参数 json")
        if len(text.encode("utf-8")) > self.LIMIT:
            return 200, self._reply(460101, f"message too long, exceed {self.LIMIT} bytes")
        self._record(text)
        return 200, self._reply(0, "ok")


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class FakeFeishu(FakeRobot):
    LIMIT = 20 * 1024
    PREFIX = "/open-apis/bot/v2/hook/"

    @property
    def webhook_url(self) -> str:
        return f"{self.base}{self.PREFIX}{self.token}"

    def _reply(self, code: int, msg: str) -> JSONDict:
        return {"code": code, "msg": msg, "data": {}}

    def _check(self, path: str, query: dict[str, str], data: Any, size: int) -> Answer:
        if not path.startswith(self.PREFIX):
            return 404, {"code": 404, "msg": "not found"}
        if path[len(self.PREFIX):] != self.token:
            return 400, self._reply(19001, "param invalid: incoming webhook access token invalid")
        if size > self.LIMIT or not isinstance(data, dict):
            return 400, self._reply(9499, "Bad Request")
        if self.secret is not None:
            ts = data.get("timestamp")
            sign = data.get("sign")
            stale = not isinstance(ts, str) or not ts.isdigit() or abs(self.clock() - int(ts)) > 3600
            if stale or not isinstance(sign, str) or not hmac.compare_digest(
                sign, feishu_expected_sign(self.secret, str(ts))
            ):
                return 400, self._reply(19021, "sign match fail or timestamp is not within one hour from current time")
        text = _text_of(data, "msg_type", "text", "content", "text")
        if text is None:
            return 400, self._reply(9499, "Bad Request")
        self._record(text)
        return 200, {"StatusCode": 0, "StatusMessage": "success", "code": 0, "msg": "success", "data": {}}
