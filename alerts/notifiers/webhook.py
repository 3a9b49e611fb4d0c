"""Generic webhook notifier: each alert is POSTed as JSON to one configured URL, signed with HMAC-SHA256.

Contract: the request body is the UTF-8 JSON object {"version": 1, "text": <alert text>, "sent_at": <ISO-8601
UTC>} with the headers
  Content-Type: application/json
  X-Yuqing-Signature: sha256=<hex HMAC-SHA256(secret, raw request body bytes)>
  X-Yuqing-Timestamp: <unix seconds, the same instant as sent_at>
  Idempotency-Key: <the delivery's stable key (SendMeta.idempotency_key); without one, SHA-256 of receiver
                   and text>
A receiver recomputes the HMAC over the raw bytes it received and compares in constant time; as sent_at is
inside the signed body, it can also reject stale (replayed) requests. The outbox may retry a request whose first
attempt did arrive (a timeout, a crash mid-send): the retry carries the same Idempotency-Key — one key per
outbox delivery, unchanged on every retry even if the text changes — so the receiver can drop the duplicate.
The secret is required: an unsigned webhook lets anyone who learns the URL forge alerts, so without
YUQING_WEBHOOK_SECRET the notifier is not configured.
2xx is delivered; 408, 429, 5xx and network errors are transient (Retry-After honoured); other statuses
(4xx, and 3xx: redirects are not followed with a signed body) are fatal. Errors never contain the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from alerts.clock import Clock, SystemClock
from alerts.notifiers.base import DeliveryError, NotConfiguredError, SendMeta

PAYLOAD_VERSION = 1
MAX_ERROR_BODY = 200


def idempotency_key(receiver: str, body: str) -> str:
    """Stable across retries of the same message: derived only from receiver and text."""
    return hashlib.sha256(f"{receiver}\n{body}".encode()).hexdigest()


def sign(secret: str, raw: bytes) -> str:
    """The X-Yuqing-Signature value for a raw request body."""
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def build_request(secret: str, receiver: str, body: str, now: datetime,
                  key: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The exact bytes to POST and their headers (`key`: the delivery's idempotency key)."""
    sent_at = now.astimezone(UTC).isoformat()
    payload = {"version": PAYLOAD_VERSION, "text": body, "sent_at": sent_at}
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "X-Yuqing-Signature": sign(secret, raw),
        "X-Yuqing-Timestamp": str(int(now.timestamp())),
        "Idempotency-Key": key or idempotency_key(receiver, body),
    }
    return raw, headers


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from now (delta-seconds or an HTTP date); None when absent or unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


class WebhookNotifier:
    name: ClassVar[str] = "webhook"
    format: ClassVar[Literal["text", "html"]] = "text"

    def __init__(self, url: str, secret: str | None, *, timeout: float, clock: Clock | None = None) -> None:
        if not url:
            raise NotConfiguredError("no webhook URL (alerts.webhook.url)")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NotConfiguredError("alerts.webhook.url must be an http(s) URL")
        if not secret:
            raise NotConfiguredError("YUQING_WEBHOOK_SECRET is not set (unsigned webhooks can be forged)")
        self._url, self._secret, self._timeout = url, secret, timeout
        self._clock: Clock = clock or SystemClock()
        self._client: httpx.AsyncClient | None = None

    def receivers(self) -> list[str]:
        return ["default"]

    async def send(self, receiver: str, body: str, meta: SendMeta | None = None) -> str | None:
        now = self._clock.now()
        key = meta.idempotency_key if meta is not None else None
        try:
            raw, headers = build_request(self._secret, receiver, body, now, key)
        except ValueError as exc:  # text that is not valid Unicode (a lone surrogate)
            raise DeliveryError(f"webhook payload cannot be encoded: {exc}", fatal=True) from None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=False)
        try:
            response = await self._client.post(self._url, content=raw, headers=headers)
        except httpx.TimeoutException as exc:
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise DeliveryError("webhook timed out", fatal=False, maybe_delivered=sent) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(self._scrub(f"webhook unreachable: {type(exc).__name__}: {exc}"), fatal=False) from None
        status = response.status_code
        if 200 <= status < 300:
            return None
        detail = self._scrub(f"webhook answered {status}: {response.text[:MAX_ERROR_BODY]}")
        if status in (408, 429) or status >= 500:
            after = parse_retry_after(response.headers.get("Retry-After"), now)
            raise DeliveryError(detail, fatal=False, retry_after=after)
        raise DeliveryError(detail, fatal=True)

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***")
