"""The notifier boundary: one Protocol, a typed registry, and the two failure kinds a channel can report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol


class DeliveryError(Exception):
    """A send failed. `fatal` means retrying cannot help (bad request, forbidden, unknown chat).
    `maybe_delivered` means the request may have reached the service before the failure (a timeout after
    it was sent): a retry may duplicate the message, so the outbox marks it (see alerts/outbox.py)."""

    def __init__(self, message: str, *, fatal: bool, retry_after: float | None = None,
                 maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


@dataclass(frozen=True)
class SendMeta:
    """What a channel may use beyond the text: the incident (Telegram puts 确认 / 已发布 / 查看 buttons on an
    incident alert), the alert key and reason, and a key that stays the same on every retry of one delivery
    (a receiver that de-duplicates sees one message however often a timed-out send is retried)."""

    incident_id: int | None = None
    alert_key: str = ""
    reason: str = ""
    idempotency_key: str = ""
    actions: bool = False  # offer the incident's action buttons (channels that have buttons)


class NotConfiguredError(Exception):
    """A notifier lacks what it needs (e.g. a token); it disables itself with one log line."""


class Notifier(Protocol):
    name: ClassVar[str]
    format: ClassVar[Literal["text", "html"]]

    def receivers(self) -> list[str]:
        """Who gets every alert on this channel (chat ids, addresses …)."""
        ...

    async def send(self, receiver: str, body: str, meta: SendMeta | None = None) -> str | None:
        """Deliver one message or raise DeliveryError. Returns the channel's id of the message when it gives
        one (Telegram message_id, email Message-ID), else None."""
        ...

    async def close(self) -> None: ...
