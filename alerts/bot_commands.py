"""The bot's vocabulary and rules (pure): who may do what (`AccessPolicy`), what each command does, its usage,
and parsing of its arguments.

`parse_command("/release 12 https://…")` gives the action, the incident id and a runner that calls
alerts/actions.py — or a Chinese usage message when the arguments do not fit (no URL, an id that is not a
number). Running it (transaction, access check, log) is the bot's business, not this module's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from alerts import actions
from alerts.actions import ActionResult
from models.enums import Category, HandlingType, Severity


class Verdict(StrEnum):
    ALLOWED = "allowed"
    CHAT_REFUSED = "chat_refused"  # a chat not on the allow-list
    USER_REFUSED = "user_refused"  # an allowed chat, but this user may not act


REFUSALS: dict[Verdict, str] = {
    Verdict.CHAT_REFUSED: "⛔ 本会话未获授权使用舆情值班机器人。如需开通，请联系系统管理员。",
    Verdict.USER_REFUSED: "⛔ 您无权执行此操作（未列入授权人员名单）。如需开通，请联系系统管理员。",
}


@dataclass(frozen=True)
class AccessPolicy:
    chat_ids: frozenset[int]
    user_ids: frozenset[int]
    allow_private: bool = True

    def check(self, *, chat_id: int, private: bool, user_id: int, write: bool) -> Verdict:
        user_ok = user_id in self.user_ids
        if not (chat_id in self.chat_ids or (private and self.allow_private and user_ok)):
            return Verdict.CHAT_REFUSED
        if write and not user_ok:
            return Verdict.USER_REFUSED
        return Verdict.ALLOWED


Runner = Callable[[Session, int, str, datetime], ActionResult]  # (session, incident id, actor, now)
EXAMPLE_URL = "https://www.example.gov.cn/xxgk/1.html"


class BotAction(StrEnum):
    """What an ActionLog row records as attempted through the bot."""

    ACK = "ack"
    ASSESS = "assess"
    RELEASE_PROMPT = "release_prompt"  # the 已发布 button: asks for the link
    RELEASE = "release"
    PRESS = "press"
    UPDATE = "update"
    CLOSE = "close"
    DISMISS = "dismiss"
    STATUS = "status"  # /status and the 查看 button
    LIST = "list"
    HELP = "help"

    @property
    def read_only(self) -> bool:
        return self in (BotAction.STATUS, BotAction.LIST, BotAction.HELP)


@dataclass(frozen=True)
class CommandSpec:
    action: BotAction
    usage: str
    example: str
    build: Callable[[list[str]], Runner | None]  # the arguments after the id → a runner, None when malformed


@dataclass(frozen=True)
class ParsedCommand:
    action: BotAction | None  # None: not one of the action commands
    incident_id: int | None = None
    runner: Runner | None = None
    error: str = ""  # the usage message when runner is None


def _ack(rest: list[str]) -> Runner:
    return lambda s, i, actor, now: actions.acknowledge(s, i, actor=actor, now=now)


_ASSESS_KEYS = {"等级": "severity", "severity": "severity", "类别": "category", "category": "category",
                "部门": "department", "责任单位": "department", "department": "department", "处置": "handling",
                "handling": "handling"}


def _choice(value: str, enum: type[Category] | type[Severity] | type[HandlingType]) -> Any:
    """An enum member by its value or its Chinese label (II / 重大, EMERGENCY / 突发事件, confusion / 模糊认识)."""
    for member in enum:
        if value.upper() == member.value.upper() or value == member.label:
            return member
    return None


def _assess(rest: list[str]) -> Runner | None:
    """研判 from the phone: `/assess 12 等级=II 部门=防火处 处置=模糊认识 类别=突发事件` (any of them)."""
    given: dict[str, str] = {}
    for token in rest:
        key, sep, value = token.replace("＝", "=").partition("=")
        if not sep or _ASSESS_KEYS.get(key.strip().lower()) is None or not value.strip():
            return None
        given[_ASSESS_KEYS[key.strip().lower()]] = value.strip()
    severity = _choice(given["severity"], Severity) if "severity" in given else None
    category = _choice(given["category"], Category) if "category" in given else None
    handling = _choice(given["handling"], HandlingType) if "handling" in given else None
    if not given or ("severity" in given and severity is None) or ("category" in given and category is None) \
            or ("handling" in given and handling is None):
        return None
    return lambda s, i, actor, now: actions.assess(s, i, actor=actor, now=now, severity=severity, category=category,
                                                   department=given.get("department"), handling_type=handling)


def _release(rest: list[str]) -> Runner | None:
    if len(rest) != 1:
        return None
    return lambda s, i, actor, now: actions.release(s, i, actor=actor, now=now, url=rest[0])


def _press(rest: list[str]) -> Runner | None:
    if len(rest) > 1:
        return None
    url = rest[0] if rest else None
    return lambda s, i, actor, now: actions.press_conference(s, i, actor=actor, now=now, url=url)


def _update(rest: list[str]) -> Runner | None:
    if len(rest) != 1:
        return None
    return lambda s, i, actor, now: actions.publish_update(s, i, actor=actor, now=now, url=rest[0])


def _close(rest: list[str]) -> Runner:
    note = " ".join(rest)
    return lambda s, i, actor, now: actions.close(s, i, actor=actor, now=now, note=note)


def _dismiss(rest: list[str]) -> Runner | None:
    reason = " ".join(rest).strip()
    if not reason:
        return None
    return lambda s, i, actor, now: actions.dismiss(s, i, actor=actor, now=now, reason=reason)


COMMANDS: dict[str, CommandSpec] = {
    "ack": CommandSpec(BotAction.ACK, "/ack 事件编号", "/ack 12", _ack),
    "assess": CommandSpec(BotAction.ASSESS, "/assess 事件编号 等级=I~IV 类别=… 部门=… 处置=…（任选）",
                          "/assess 12 等级=II 部门=防火处 处置=模糊认识", _assess),
    "release": CommandSpec(BotAction.RELEASE, "/release 事件编号 发布链接", f"/release 12 {EXAMPLE_URL}", _release),
    "press": CommandSpec(BotAction.PRESS, "/press 事件编号 [发布会链接]", f"/press 12 {EXAMPLE_URL}", _press),
    "update": CommandSpec(BotAction.UPDATE, "/update 事件编号 发布链接", f"/update 12 {EXAMPLE_URL}", _update),
    "close": CommandSpec(BotAction.CLOSE, "/close 事件编号 [备注]", "/close 12 已妥善处置", _close),
    "dismiss": CommandSpec(BotAction.DISMISS, "/dismiss 事件编号 原因", "/dismiss 12 影视剧情节，非真实事件",
                           _dismiss),
}

HELP: list[tuple[str, str]] = [
    ("list", "未结事件，按最近时限排序"),
    ("status", "事件详情：/status 事件编号"),
    ("ack", "值班确认：/ack 事件编号"),
    ("assess", "研判：/assess 事件编号 等级=II 部门=防火处 处置=模糊认识"),
    ("release", "已发布权威信息：/release 事件编号 发布链接"),
    ("press", "已召开新闻发布会：/press 事件编号 [链接]"),
    ("update", "已持续发布：/update 事件编号 发布链接"),
    ("close", "办结：/close 事件编号 [备注]"),
    ("dismiss", "排除误报：/dismiss 事件编号 原因"),
    ("help", "查看帮助"),
]
READ_USAGE = "用法：/status 事件编号\n例如：/status 12"


def parse_id(raw: str) -> int | None:
    """An incident id as officers type it: 12 or #12 (ASCII or full-width digits)."""
    text = raw.strip().lstrip("#＃")
    if not text or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


def command_name(text: str) -> str:
    """`/Release@yuqing_bot 12 …` → `release`."""
    head = text.split(maxsplit=1)[0] if text.strip() else ""
    return head.lstrip("/").split("@", 1)[0].lower()


def parse_command(text: str) -> ParsedCommand:
    spec = COMMANDS.get(command_name(text))
    if spec is None:
        return ParsedCommand(None)
    args = text.split()[1:]
    usage = f"用法：{spec.usage}\n例如：{spec.example}"
    if not args:
        return ParsedCommand(spec.action, None, None, f"请提供事件编号。{usage}")
    inc_id = parse_id(args[0])
    if inc_id is None:
        return ParsedCommand(spec.action, None, None, f"事件编号应为数字（如 12），收到“{args[0][:40]}”。{usage}")
    runner = spec.build(args[1:])
    if runner is None:
        return ParsedCommand(spec.action, inc_id, None, f"参数不正确。{usage}")
    return ParsedCommand(spec.action, inc_id, runner)


_PROMPT_RE = re.compile(r"/(release|update) (\d{1,18}) 链接地址")
_URL_RE = re.compile(r"https?://\S+")


def publish_command(pending_met_by: set[str]) -> str:
    """What 已发布 means for an incident: the authoritative release while a release clock is pending (or nothing
    is), a continuous update once only update clocks are left."""
    return "update" if "update" in pending_met_by and "release" not in pending_met_by else "release"


def publish_prompt(command: str, inc_id: int) -> str:
    """What the 已发布 button answers: the link is needed, by a reply or by the command."""
    return (f"请回复本消息并粘贴发布链接，或发送：/{command} {inc_id} 链接地址\n"
            f"例如：/{command} {inc_id} {EXAMPLE_URL}")


def prompted_command(prompt: str, reply: str) -> str | None:
    """The command a reply to the publish prompt stands for (None when `prompt` is not one)."""
    m = _PROMPT_RE.search(prompt)
    if m is None:
        return None
    url = _URL_RE.search(reply)  # "情况通报 https://…" is fine too
    return f"/{m.group(1)} {m.group(2)} {url.group(0) if url else reply.strip()}"


def acknowledge(s: Session, inc_id: int, actor: str, now: datetime) -> ActionResult:
    """The 确认 button."""
    return actions.acknowledge(s, inc_id, actor=actor, now=now)
