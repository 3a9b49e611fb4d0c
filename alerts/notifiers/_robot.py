"""The webhook plumbing the WeCom, DingTalk and Feishu group robots share: a base notifier (lazy client,
post, classify the reply, close), UTF-8-safe truncation, and secrets kept out of errors and httpx's log.

A robot subclass says only how to build its request (`request`) and where its reply keeps the result code
(`result`); failures are classified here: network errors, HTTP 429/5xx and the robot's transient codes are
retried later, everything else is fatal. A read timeout may have delivered the message (`maybe_delivered`).
Size limits come from the one table in alerts/notifiers/limits.py. The robots are sent ``text`` messages,
which the platforms show literally (no markup), so untrusted text needs no escaping there — except
Feishu, whose text messages turn ``<at user_id=…>`` into mentions (see feishu.py).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx

from alerts.notifiers.base import DeliveryError, NotConfiguredError, SendMeta
from alerts.notifiers.limits import truncate

RATE_LIMIT_WAIT = 60.0  # robots allow about 20 messages per minute
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
    return truncate(text, limit, "utf8")


_MENTION_LINE = re.compile(r"@\d{5,15}(?: @\d{5,15})*")


def mentioned_mobiles(body: str) -> list[str]:
    """The mobiles of the "@13800000000 @13900000000" line the outbox appends last for group robots, so the
    robot can mention them for real (WeCom `mentioned_mobile_list`, DingTalk `at.atMobiles`)."""
    last = body.rstrip().rsplit("\n", 1)[-1].strip()
    return [m.lstrip("@") for m in last.split(" ")] if _MENTION_LINE.fullmatch(last) else []


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
        sent = isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
        raise DeliveryError(f"network error: {type(exc).__name__}: {detail}", fatal=False,
                            maybe_delivered=sent) from None
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


class RobotNotifier:
    """Base of the group-robot notifiers: one receiver ("default"), one lazily created httpx client."""

    format: ClassVar[Literal["text", "html"]] = "text"
    TRANSIENT: ClassVar[frozenset[int]] = frozenset()

    def __init__(self, url: httpx.URL, secrets: tuple[str, ...], timeout: float) -> None:
        self._url = url
        self._secrets = secrets
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def receivers(self) -> list[str]:
        return [RECEIVER]

    def request(self, body: str) -> tuple[httpx.URL, dict[str, Any]]:
        """The URL and JSON payload that deliver `body` (signed when the robot signs)."""
        raise NotImplementedError

    def result(self, reply: RobotReply) -> tuple[object, object]:
        """(code, message) of a reply; WeCom and DingTalk use errcode/errmsg."""
        return reply.body.get("errcode"), reply.body.get("errmsg")

    def transient_codes(self, message: object) -> frozenset[int]:
        return self.TRANSIENT

    async def send(self, receiver: str, body: str, meta: SendMeta | None = None) -> str | None:
        check_receiver(receiver)
        url, payload = self.request(body)
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        reply = await post_json(self._client, url, payload, self._secrets)
        code, message = self.result(reply)
        classify(reply, code, message, transient_codes=self.transient_codes(message), secrets=self._secrets)
        return None  # the robots return no message id

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
