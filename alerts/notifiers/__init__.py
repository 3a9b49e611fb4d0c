"""Notification channels, one per file, chosen by config through a typed registry."""

from __future__ import annotations

import logging
from collections.abc import Callable

from alerts.notifiers.base import DeliveryError, NotConfiguredError, Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.dingtalk import DingTalkNotifier
from alerts.notifiers.email import EmailNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.telegram import TelegramNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WeComNotifier
from config.env import Environment
from config.schema import RobotSettings, Settings

log = logging.getLogger(__name__)

NOTIFIERS: dict[str, type[Notifier]] = {
    "console": ConsoleNotifier, "telegram": TelegramNotifier, "wecom": WeComNotifier, "dingtalk": DingTalkNotifier,
    "feishu": FeishuNotifier, "email": EmailNotifier, "webhook": WebhookNotifier,
}

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
    _add_robots(active, settings, env)
    _add_email_and_webhook(active, settings, env)
    log.info("active notifiers: %s", ", ".join(n.name for n in active) or "none")
    return active


def _add_robots(active: list[Notifier], settings: Settings, env: Environment) -> None:
    """WeCom, DingTalk and Feishu group robots; a missing webhook URL disables its robot with one log line.
    They sign with wall time (never a drill clock): the platforms refuse stale timestamps."""
    robots: list[tuple[str, RobotSettings, str | None, str | None]] = [
        ("wecom", settings.alerts.wecom, env.wecom_webhook_url, None),
        ("dingtalk", settings.alerts.dingtalk, env.dingtalk_webhook_url, env.dingtalk_secret),
        ("feishu", settings.alerts.feishu, env.feishu_webhook_url, env.feishu_secret),
    ]
    classes: dict[str, Callable[..., Notifier]] = {
        "wecom": WeComNotifier, "dingtalk": DingTalkNotifier, "feishu": FeishuNotifier}
    for name, cfg, url, secret in robots:
        if not cfg.enabled:
            continue
        try:
            active.append(classes[name](url, secret, timeout=cfg.timeout.total_seconds()))
        except NotConfiguredError as exc:
            log.info("%s notifier disabled: %s", name, exc)


def _add_email_and_webhook(active: list[Notifier], settings: Settings, env: Environment) -> None:
    """Email (when a server is configured) and the signed JSON webhook (when a URL is configured)."""
    mail = settings.alerts.email
    if mail.enabled and mail.host:
        try:
            active.append(EmailNotifier(
                mail.host, mail.port, security=mail.security, sender=mail.sender, to=list(mail.to),
                timeout=mail.timeout.total_seconds(), user=env.smtp_user, password=env.smtp_password,
            ))
        except NotConfiguredError as exc:
            log.info("email notifier disabled: %s", exc)
    hook = settings.alerts.webhook
    if hook.enabled and hook.url:
        try:
            active.append(WebhookNotifier(hook.url, env.webhook_secret, timeout=hook.timeout.total_seconds()))
        except NotConfiguredError as exc:
            log.info("webhook notifier disabled: %s", exc)
