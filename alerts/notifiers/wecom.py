"""WeCom (企业微信) group-robot notifier (shared webhook plumbing: alerts/notifiers/_robot.py).

Contract: `WeComNotifier(webhook_url, secret, *, timeout)` posts the rendered alert text as
``{"msgtype": "text", "text": {"content": ...}}`` to the robot's webhook
(``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``; WeCom robots have no signing, so `secret` is
accepted for a uniform constructor and ignored). The reply is ``{"errcode": 0, "errmsg": "ok"}``.
Content over 2048 UTF-8 bytes is cut at a character boundary and ends with "…".

Failures: network errors, HTTP 429/5xx, errcode -1 (system busy) and 45009 (20 messages/min per robot) are
transient (`retry_after` from Retry-After, else 60 s for rate limits); any other errcode (93000 invalid
webhook, 40008 …) and other HTTP 4xx are fatal. The outbox's last line of @-mentions ("@13800000000 …")
becomes ``text.mentioned_mobile_list``, which is what makes WeCom notify those members. The webhook key
never appears in an error message or in httpx's request log (a redacting filter is installed on the "httpx"
logger).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx

from alerts.notifiers._robot import (
    RobotNotifier,
    check_http_url,
    mentioned_mobiles,
    protect_secrets,
    truncate_utf8,
)
from alerts.notifiers.base import NotConfiguredError
from alerts.notifiers.limits import LIMITS

WECOM_TEXT_LIMIT = LIMITS["wecom"].size  # bytes of UTF-8 in text.content


class WeComNotifier(RobotNotifier):
    name: ClassVar[str] = "wecom"
    TRANSIENT: ClassVar[frozenset[int]] = frozenset({-1, 45009})

    def __init__(self, webhook_url: str | None, secret: str | None = None, *, timeout: float) -> None:
        del secret  # WeCom robots are authenticated by the key in the URL only
        url = check_http_url(webhook_url, "YUQING_WECOM_WEBHOOK_URL")
        key = parse_qs(urlsplit(str(url)).query).get("key", [""])[0]
        if not key:
            raise NotConfiguredError("YUQING_WECOM_WEBHOOK_URL has no key= parameter")
        super().__init__(url, protect_secrets(key), timeout)

    def request(self, body: str) -> tuple[httpx.URL, dict[str, Any]]:
        text: dict[str, Any] = {"content": truncate_utf8(body, WECOM_TEXT_LIMIT)}
        mobiles = mentioned_mobiles(body)
        if mobiles:
            text["mentioned_mobile_list"] = mobiles
        return self._url, {"msgtype": "text", "text": text}
