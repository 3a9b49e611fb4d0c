"""DingTalk (钉钉) custom group-robot notifier with optional 加签 signing.

Contract: `DingTalkNotifier(webhook_url, secret, *, timeout, clock=None)` posts the rendered alert text as
``{"msgtype": "text", "text": {"content": ...}}`` to ``https://oapi.dingtalk.com/robot/send?access_token=T``.
When `secret` (the robot's "SEC…" string) is set, ``&timestamp=MS&sign=S`` is appended, where
S = base64(HMAC-SHA256(key=secret, msg=f"{MS}\\n{secret}")) (URL-encoded by the query builder) and MS is
the wall-clock time in milliseconds, which DingTalk accepts within one hour of its own clock. Signing is
optional because DingTalk robots may instead be secured by keywords or an IP allow-list (the server enforces
whatever the robot is configured with); without a secret, messages go unsigned.

The clock must be wall time (never the drill clock). Content over 20000 UTF-8 bytes is cut at a character
boundary. Failures: network, HTTP 429/5xx, errcode -1 and 130101 (too fast, 20/min) are transient; any other
errcode (310000 sign/keyword/IP check failed, 300001 bad token, …) and other HTTP 4xx are fatal. Neither the
token nor the secret appears in an error message or in httpx's request log. The outbox's last line of
@-mentions becomes ``at.atMobiles``, which is what makes DingTalk notify those members.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from alerts.clock import Clock, SystemClock
from alerts.notifiers._robot import (
    RobotNotifier,
    check_http_url,
    mentioned_mobiles,
    protect_secrets,
    truncate_utf8,
)
from alerts.notifiers.base import NotConfiguredError
from alerts.notifiers.limits import LIMITS

log = logging.getLogger(__name__)
DINGTALK_TEXT_LIMIT = LIMITS["dingtalk"].size  # bytes of UTF-8 in text.content


def dingtalk_timestamp(now: datetime) -> int:
    """Milliseconds since the epoch, as DingTalk's `timestamp` parameter wants."""
    return int(now.timestamp() * 1000)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` value before URL encoding: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}"))."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class DingTalkNotifier(RobotNotifier):
    name: ClassVar[str] = "dingtalk"
    TRANSIENT: ClassVar[frozenset[int]] = frozenset({-1, 130101})

    def __init__(
        self, webhook_url: str | None, secret: str | None, *, timeout: float, clock: Clock | None = None
    ) -> None:
        url = check_http_url(webhook_url, "YUQING_DINGTALK_WEBHOOK_URL")
        token = parse_qs(urlsplit(str(url)).query).get("access_token", [""])[0]
        if not token:
            raise NotConfiguredError("YUQING_DINGTALK_WEBHOOK_URL has no access_token= parameter")
        if not secret:
            log.info("dingtalk: YUQING_DINGTALK_SECRET is not set; sending unsigned (keyword/IP security)")
        super().__init__(url, protect_secrets(token, secret), timeout)
        self._secret = secret or None
        self._clock: Clock = clock or SystemClock()

    def signed_url(self, now: datetime) -> httpx.URL:
        """The webhook URL to post to at `now` (with timestamp and sign when a secret is configured)."""
        if self._secret is None:
            return self._url
        ts = dingtalk_timestamp(now)
        return self._url.copy_merge_params({"timestamp": str(ts), "sign": dingtalk_sign(self._secret, ts)})

    def request(self, body: str) -> tuple[httpx.URL, dict[str, Any]]:
        payload: dict[str, Any] = {"msgtype": "text", "text": {"content": truncate_utf8(body, DINGTALK_TEXT_LIMIT)}}
        mobiles = mentioned_mobiles(body)
        if mobiles:  # the "@mobile" text stays in the content: DingTalk shows the mention where it appears
            payload["at"] = {"atMobiles": mobiles, "isAtAll": False}
        return self.signed_url(self._clock.now()), payload
