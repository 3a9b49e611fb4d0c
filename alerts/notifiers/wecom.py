"""WeCom (企业微信) group-robot notifier, plus the webhook plumbing the DingTalk and Feishu robots share.

Contract: `WeComNotifier(webhook_url, secret, *, timeout)` posts the rendered alert text as
``{"msgtype": "text", "text": {"content": ...}}`` to the robot's webhook
(``https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY``; WeCom robots have no signing, so `secret` is
accepted for a uniform constructor and ignored). The reply is ``{"errcode": 0, "errmsg": "ok"}``.
Content over 2048 UTF-8 bytes is cut at a character boundary and ends with "…".

Failures: network errors, HTTP 429/5xx, errcode -1 (system busy) and 45009 (20 messages/min per robot) are
transient (`retry_after` from Retry-After, else 60 s for rate limits); any other errcode (93000 invalid
webhook, 40008 …) and other HTTP 4xx are fatal. The webhook key never appears in an error message or in
httpx's request log (a redacting filter is installed on the "httpx" logger).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs, urlsplit

import httpx

from alerts.notifiers.base import DeliveryError, NotConfiguredError

WECOM_TEXT_LIMIT = 2048  # bytes of UTF-8 in text.content
RATE_LIMIT_WAIT = 60.0  # robots allow about 20 messages per minute
ELLIPSIS = "…"
RECEIVER = "default"


# ---------------------------------------------------------------------------------------------------------
# Shared robot plumbing (used by dingtalk.py and feishu.py too)
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RobotReply:
    """One HTTP answer of a robot webhook: status, the JSON object (empty when not JSON), Retry-After."""

    status: int
    body: dict[str, Any]
    retry_after: float | None


def truncate_utf8(text: str, limit: int) -> str:
    """`text` if it fits in `limit` UTF-8 bytes, else its longest prefix that fits together with "…"."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = max(limit - len(ELLIPSIS.encode("utf-8")), 0)
    return data[:room].decode("utf-8", errors="ignore") + ELLIPSIS


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret replaced by "***"."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class _RedactFilter(logging.Filter):
    """Masks registered secrets in httpx's "HTTP Request: POST <url> ..." log lines."""

    def __init__(self) -> None:
        super().__init__("robot-secrets")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets and record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(scrub(str(a), tuple(self.secrets)) if _has(a, self.secrets) else a for a in args)
        return True


def _has(arg: object, secrets: set[str]) -> bool:
    text = str(arg)
    return any(s in text for s in secrets)


_REDACT = _RedactFilter()


def protect_secrets(*secrets: str | None) -> tuple[str, ...]:
    """Register secrets with the httpx log filter (idempotent); returns the non-empty ones."""
    kept = tuple(s for s in secrets if s)
    _REDACT.secrets.update(kept)
    logger = logging.getLogger("httpx")
    if _REDACT not in logger.filters:
        logger.addFilter(_REDACT)
    return kept


def check_http_url(url: str | None, env_name: str) -> httpx.URL:
    """The parsed webhook URL, or NotConfiguredError naming `env_name` (never the URL itself)."""
    if not url:
        raise NotConfiguredError(f"{env_name} is not set")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError):
        raise NotConfiguredError(f"{env_name} is not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise NotConfiguredError(f"{env_name} must be an http(s) URL")
    return parsed


def _retry_after(headers: httpx.Headers) -> float | None:
    raw = headers.get("retry-after", "").strip()
    try:
        return max(float(raw), 0.0) if raw else None
    except ValueError:
        return None


async def post_json(
    client: httpx.AsyncClient, url: str | httpx.URL, payload: dict[str, Any], secrets: tuple[str, ...]
) -> RobotReply:
    """POST `payload` as UTF-8 JSON; network failures become transient DeliveryErrors without secrets."""
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    try:
        resp = await client.post(url, content=data, headers={"Content-Type": "application/json; charset=utf-8"})
    except httpx.HTTPError as exc:
        detail = scrub(str(exc), secrets) or "no detail"
        raise DeliveryError(f"network error: {type(exc).__name__}: {detail}", fatal=False) from None
    try:
        body = resp.json()
    except ValueError:
        body = None
    return RobotReply(resp.status_code, body if isinstance(body, dict) else {}, _retry_after(resp.headers))


def classify(
    reply: RobotReply,
    code: object,
    message: object,
    *,
    transient_codes: frozenset[int],
    secrets: tuple[str, ...],
) -> None:
    """Return when the robot accepted the message, else raise DeliveryError (fatal or transient)."""
    msg = scrub(str(message or ""), secrets)[:200]
    if isinstance(code, int) and code in transient_codes:
        wait = reply.retry_after if reply.retry_after is not None else RATE_LIMIT_WAIT
        raise DeliveryError(f"rate limited (code {code}: {msg})", fatal=False, retry_after=wait)
    if reply.status == 429 or reply.status >= 500:
        raise DeliveryError(f"HTTP {reply.status}", fatal=False, retry_after=reply.retry_after)
    if isinstance(code, int) and code != 0:
        raise DeliveryError(f"rejected (code {code}: {msg})", fatal=True)
    if reply.status >= 400:
        raise DeliveryError(f"HTTP {reply.status}", fatal=True)
    if code != 0:
        raise DeliveryError(f"unexpected reply (HTTP {reply.status}, no result code)", fatal=False)


def check_receiver(receiver: str) -> None:
    if receiver != RECEIVER:
        raise DeliveryError(f"unknown receiver {receiver!r} (a robot has only {RECEIVER!r})", fatal=True)


# ---------------------------------------------------------------------------------------------------------
# WeCom
# ---------------------------------------------------------------------------------------------------------
class WeComNotifier:
    name: ClassVar[str] = "wecom"
    format: ClassVar[Literal["text", "html"]] = "text"
    TRANSIENT: ClassVar[frozenset[int]] = frozenset({-1, 45009})

    def __init__(self, webhook_url: str | None, secret: str | None = None, *, timeout: float) -> None:
        del secret  # WeCom robots are authenticated by the key in the URL only
        url = check_http_url(webhook_url, "YUQING_WECOM_WEBHOOK_URL")
        key = parse_qs(urlsplit(str(url)).query).get("key", [""])[0]
        if not key:
            raise NotConfiguredError("YUQING_WECOM_WEBHOOK_URL has no key= parameter")
        self._url = url
        self._secrets = protect_secrets(key)
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def receivers(self) -> list[str]:
        return [RECEIVER]

    async def send(self, receiver: str, body: str) -> None:
        check_receiver(receiver)
        payload = {"msgtype": "text", "text": {"content": truncate_utf8(body, WECOM_TEXT_LIMIT)}}
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        reply = await post_json(self._client, self._url, payload, self._secrets)
        classify(
            reply, reply.body.get("errcode"), reply.body.get("errmsg"),
            transient_codes=self.TRANSIENT, secrets=self._secrets,
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
