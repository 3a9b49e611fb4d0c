"""Where alerts go (`alerts:`): Telegram and its bot's allow-lists, the group robots, email, the signed
webhook, per-channel rate limits and how long transient failures are retried."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from config.base import Strict
from config.durations import Duration, parse_duration


class TelegramSettings(Strict):
    enabled: bool = True
    chat_ids: list[int] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=15)
    bot: bool = True  # answer the alert buttons and commands (polls getUpdates; run one instance per token)
    allowed_chat_ids: list[int] = Field(default_factory=list)  # chats the bot serves (empty: the alert chats)
    allowed_user_ids: list[int] = Field(default_factory=list)  # users who may act (empty: nobody)
    allow_private: bool = True  # an allowed user may also use the bot in a private chat


class RobotSettings(Strict):
    """A group-robot webhook (WeCom / DingTalk / Feishu). The webhook URL and signing secret are secrets:
    they come from the environment (see README), never from this file."""

    enabled: bool = True
    timeout: Duration = timedelta(seconds=10)


class EmailSettings(Strict):
    enabled: bool = True
    host: str = ""  # SMTP server; empty disables email
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    sender: str = ""  # From address
    to: list[str] = Field(default_factory=list)
    timeout: Duration = timedelta(seconds=20)


class WebhookSettings(Strict):
    enabled: bool = True
    url: str = ""  # receiver of JSON alerts signed with HMAC-SHA256 (secret: YUQING_WEBHOOK_SECRET); empty disables
    timeout: Duration = timedelta(seconds=10)


_RATE = re.compile(r"\s*(\d+)\s*/\s*(\S+)\s*")


def parse_rate(text: str) -> tuple[int, timedelta]:
    """ "20/1m" → (20, 1 minute): at most 20 messages in any sliding window of one minute."""
    match = _RATE.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a rate (use COUNT/DURATION, e.g. 20/1m or 30/1s)")
    window = parse_duration(match.group(2))
    if int(match.group(1)) < 1 or window.total_seconds() <= 0:
        raise ValueError(f"{text!r}: the count and the window must be positive")
    return int(match.group(1)), window


class RateLimitSettings(Strict):
    """Sliding-window send limits of one channel, each "COUNT/DURATION"; every listed window must have room."""

    overall: list[str] = Field(default_factory=list)  # the whole channel (one bot, one SMTP relay …)
    per_receiver: list[str] = Field(default_factory=list)  # one chat / robot webhook / address
    per_group: list[str] = Field(default_factory=list)  # additionally, one group chat (Telegram: negative id)

    @field_validator("overall", "per_receiver", "per_group")
    @classmethod
    def _rates(cls, value: list[str]) -> list[str]:
        for item in value:
            parse_rate(item)
        return value


class RateLimits(Strict):
    telegram: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(
        overall=["30/1s"], per_group=["20/1m"]))
    wecom: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(per_receiver=["20/1m"]))
    dingtalk: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(per_receiver=["20/1m"]))
    feishu: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(per_receiver=["100/1m", "5/1s"]))
    email: RateLimitSettings = Field(default_factory=lambda: RateLimitSettings(overall=["60/1m"]))
    webhook: RateLimitSettings = Field(default_factory=RateLimitSettings)


class AlertSettings(Strict):
    console: bool = True
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    wecom: RobotSettings = Field(default_factory=RobotSettings)
    dingtalk: RobotSettings = Field(default_factory=RobotSettings)
    feishu: RobotSettings = Field(default_factory=RobotSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    rate_limits: RateLimits = Field(default_factory=RateLimits)
    retry_for: Duration = timedelta(hours=6)  # transient failures are retried this long after queueing
