"""The inline buttons of an incident alert (确认 / 已发布 / 查看) and their callback data.

Shared by the Telegram notifier (which attaches them) and the bot (which answers them), so the two agree on one
vocabulary. Callback data is `<action>:<incident id>` (ASCII, well under Telegram's 64-byte limit).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup


class Button(StrEnum):
    ACK = "ack"  # 确认
    RELEASE = "rel"  # 已发布 (asks for the link)
    VIEW = "view"  # 查看

    @property
    def label(self) -> str:
        return {"ack": "确认", "rel": "已发布", "view": "查看"}[self.value]


_DATA_RE = re.compile(r"^(ack|rel|view):(\d{1,18})$")


@dataclass(frozen=True)
class Pressed:
    button: Button
    incident_id: int


def callback_data(button: Button, incident_id: int) -> str:
    return f"{button.value}:{incident_id}"


def parse_callback(data: str | None) -> Pressed | None:
    """The button and incident of a callback, or None for data this bot never sent."""
    m = _DATA_RE.match(data or "")
    return Pressed(Button(m.group(1)), int(m.group(2))) if m else None


def incident_keyboard(incident_id: int, *, acknowledged: bool = False) -> InlineKeyboardMarkup:
    """确认 / 已发布 / 查看; without 确认 once someone has acknowledged."""
    shown = [Button.RELEASE, Button.VIEW] if acknowledged else [Button.ACK, Button.RELEASE, Button.VIEW]
    return InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=callback_data(b, incident_id))
                                  for b in shown]])
