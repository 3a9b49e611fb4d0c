"""Telegram notifier through python-telegram-bot (HTML messages to each configured chat).

The Bot API base URL is configurable (YUQING_TELEGRAM_API_BASE), which is how tests point the real library
at a local fake server. Failures are classified: 400/403/401 (bad request, forbidden, invalid token) are
fatal; network errors, 5xx and 429 are transient (429 carries retry_after); a timeout may have delivered the
message (`maybe_delivered`). The HTML body is cut to Telegram's limit (alerts/notifiers/limits.py) without
splitting a tag or an entity; `send` returns the message_id Telegram assigned. An alert about an incident an
officer can act on (`meta.actions`) carries the inline buttons 确认 / 已发布 / 查看, answered by the bot
(alerts/bot.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar, Literal

from telegram import Bot, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import HTTPXRequest

from alerts.buttons import incident_keyboard
from alerts.notifiers.base import DeliveryError, NotConfiguredError, SendMeta
from alerts.notifiers.limits import LIMITS, truncate_html


class TelegramNotifier:
    name: ClassVar[str] = "telegram"
    format: ClassVar[Literal["text", "html"]] = "html"

    def __init__(self, token: str | None, chat_ids: list[int], *, base_url: str, timeout: float) -> None:
        if not token:
            raise NotConfiguredError("YUQING_TELEGRAM_TOKEN is not set")
        if not chat_ids:
            raise NotConfiguredError("no chat ids (alerts.telegram.chat_ids or YUQING_TELEGRAM_CHAT_IDS)")
        self._chat_ids = list(chat_ids)
        request = HTTPXRequest(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
        self._bot = Bot(token, base_url=base_url, request=request)
        self._ready = False

    def receivers(self) -> list[str]:
        return [str(c) for c in self._chat_ids]

    async def send(self, receiver: str, body: str, meta: SendMeta | None = None) -> str | None:
        limit = LIMITS[self.name]
        body = truncate_html(body, limit.size, limit.unit)
        try:
            if not self._ready:
                await self._bot.initialize()
                self._ready = True
            sent = await self._bot.send_message(
                chat_id=int(receiver),
                text=body,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                reply_markup=_buttons(meta),
            )
        except RetryAfter as exc:
            after = exc.retry_after  # a timedelta under PTB_TIMEDELTA (set by pipeline.main), else seconds
            seconds = after.total_seconds() if isinstance(after, timedelta) else float(after)
            raise DeliveryError(f"rate limited: retry after {seconds:g}s", fatal=False, retry_after=seconds) from None
        except ChatMigrated as exc:  # the group became a supergroup: the configured id is dead
            raise DeliveryError(f"chat migrated to {exc.new_chat_id}: update the chat id", fatal=True) from None
        except (BadRequest, Forbidden, InvalidToken) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc.message}", fatal=True) from None
        except TimedOut as exc:  # the request may have reached Telegram
            raise DeliveryError(f"TimedOut: {exc.message}", fatal=False, maybe_delivered=True) from None
        except (NetworkError, TelegramError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc.message}", fatal=False) from None
        return str(sent.message_id)

    async def close(self) -> None:
        if self._ready:
            try:
                await self._bot.shutdown()
            finally:
                self._ready = False


def _buttons(meta: SendMeta | None) -> InlineKeyboardMarkup | None:
    if meta is None or not meta.actions or meta.incident_id is None:
        return None
    return incident_keyboard(meta.incident_id)
