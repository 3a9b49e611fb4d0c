"""Feishu (飞书) custom group-robot notifier with optional signature verification (签名校验).

Contract: `FeishuNotifier(webhook_url, secret, *, timeout, clock=None)` posts the rendered alert text as
``{"msg_type": "text", "content": {"text": ...}}`` to ``https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN``.
When `secret` is set the body also carries ``"timestamp": "<seconds>"`` and
``"sign": base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))`` (note: the key is the string to
sign and the message is empty, unlike DingTalk); Feishu accepts a timestamp within one hour of its clock.
Signing is optional, as on the platform (keywords or an IP allow-list are the alternatives); without a
secret, messages go unsigned.

The reply is ``{"code": 0, "msg": "success"}`` (older deployments: ``{"StatusCode": 0, ...}``). The whole
request body is kept under 20 KB by cutting the text at a character boundary. An ``<at …>`` tag in the text
(which Feishu would turn into a mention, ``user_id="all"`` of everyone) is neutralized. Failures: network,
HTTP 429/5xx, code 11232 (frequency limited) and 9499 when its msg says "too many request" are transient;
any other code (19021 sign mismatch or stale timestamp, 19022 IP not allowed, 19024 keyword missing, 9499
bad request …) and other HTTP 4xx are fatal. Neither the hook token nor the secret is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from datetime import datetime
from typing import Any, ClassVar

import httpx

from alerts.clock import Clock, SystemClock
from alerts.notifiers._robot import RobotNotifier, RobotReply, check_http_url, protect_secrets, truncate_utf8
from alerts.notifiers.base import NotConfiguredError
from alerts.notifiers.limits import LIMITS

log = logging.getLogger(__name__)
FEISHU_BODY_LIMIT = LIMITS["feishu"].size  # bytes of the whole JSON request body
HOOK_PREFIX = "/open-apis/bot/v2/hook/"
_AT_TAG = re.compile(r"<(?=\s*/?\s*at\b)", re.IGNORECASE)


def neutralize(text: str) -> str:
    """Feishu text messages turn `<at user_id="all">` into a mention of everyone: crawled text must not, so
    the "<" of an at tag becomes a full-width "＜" (the officer still reads it)."""
    return _AT_TAG.sub("＜", text)


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """The `sign` field: base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _body_size(payload: dict[str, Any]) -> int:
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-8"))


def fit_payload(payload: dict[str, Any], text: str, limit: int = FEISHU_BODY_LIMIT) -> dict[str, Any]:
    """`payload` with content.text = `text`, cut so the JSON body (escapes included) fits in `limit` bytes."""
    while True:
        out = {**payload, "content": {"text": text}}
        excess = _body_size(out) - limit
        shorter = truncate_utf8(text, max(len(text.encode("utf-8")) - excess, 0))
        if excess <= 0 or shorter == text:  # fits, or cannot shrink further (limit below the envelope)
            return out
        text = shorter


class FeishuNotifier(RobotNotifier):
    name: ClassVar[str] = "feishu"
    TRANSIENT: ClassVar[frozenset[int]] = frozenset({11232})

    def __init__(
        self, webhook_url: str | None, secret: str | None, *, timeout: float, clock: Clock | None = None
    ) -> None:
        url = check_http_url(webhook_url, "YUQING_FEISHU_WEBHOOK_URL")
        path = url.path
        token = path[len(HOOK_PREFIX):] if path.startswith(HOOK_PREFIX) else ""
        if not token or "/" in token:
            raise NotConfiguredError(f"YUQING_FEISHU_WEBHOOK_URL must look like https://open.feishu.cn{HOOK_PREFIX}…")
        if not secret:
            log.info("feishu: YUQING_FEISHU_SECRET is not set; sending unsigned (keyword/IP security)")
        super().__init__(url, protect_secrets(token, secret), timeout)
        self._secret = secret or None
        self._clock: Clock = clock or SystemClock()

    def payload(self, body: str, now: datetime) -> dict[str, Any]:
        """The JSON request for `body` at `now` (signed when a secret is configured, under 20 KB)."""
        head: dict[str, Any] = {}
        if self._secret is not None:
            ts = int(now.timestamp())
            head = {"timestamp": str(ts), "sign": feishu_sign(self._secret, ts)}
        return fit_payload({**head, "msg_type": "text"}, neutralize(body))

    def request(self, body: str) -> tuple[httpx.URL, dict[str, Any]]:
        return self._url, self.payload(body, self._clock.now())

    def result(self, reply: RobotReply) -> tuple[object, object]:
        return _result(reply)

    def transient_codes(self, message: object) -> frozenset[int]:
        """9499 is a frequency limit only when Feishu says so; otherwise it is a generic bad request."""
        return self.TRANSIENT | ({9499} if "too many" in str(message).lower() else frozenset())


def _result(reply: RobotReply) -> tuple[object, object]:
    """(code, message) from the current {"code", "msg"} or the older {"StatusCode", "StatusMessage"} reply."""
    if "code" in reply.body:
        return reply.body.get("code"), reply.body.get("msg")
    return reply.body.get("StatusCode"), reply.body.get("StatusMessage")
