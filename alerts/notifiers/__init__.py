"""Notification channels, one per file, chosen by config through a typed registry."""

from __future__ import annotations

import logging

from alerts.notifiers.base import DeliveryError, NotConfiguredError, Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.telegram import TelegramNotifier
from config.env import Environment
from config.schema import Settings

log = logging.getLogger(__name__)

NOTIFIERS: dict[str, type[Notifier]] = {"console": ConsoleNotifier, "telegram": TelegramNotifier}

__all__ = ["NOTIFIERS", "DeliveryError", "NotConfiguredError", "Notifier", "build_notifiers"]


def build_notifiers(settings: Settings, env: Environment) -> list[Notifier]:
    """The active channels; each inactive one says why, once."""
    active: list[Notifier] = []
    if settings.alerts.console:
        active.append(ConsoleNotifier())
    tg = settings.alerts.telegram
    if tg.enabled:
        chats = list(tg.chat_ids) or list(env.telegram_chat_ids)
        try:
            active.append(
                TelegramNotifier(
                    env.telegram_token, chats, base_url=env.telegram_api_base, timeout=tg.timeout.total_seconds()
                )
            )
        except NotConfiguredError as exc:
            log.info("telegram notifier disabled: %s", exc)
    log.info("active notifiers: %s", ", ".join(n.name for n in active) or "none")
    return active
