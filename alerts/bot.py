"""The duty officers' Telegram bot: answers the alert buttons (确认 / 已发布 / 查看) and commands.

A python-telegram-bot `Application` polling getUpdates inside the service's running asyncio loop
(`initialize` / `start` / `updater.start_polling`, never `run_polling`). Every lifecycle change goes through
alerts/actions.py in its own transaction; after commit the action's scheduler triggers are handed to the
scheduler (so a release at once turns the 5 h reminders into no-ops) and the outbox is dispatched.

Who may do what (config `alerts.telegram`): actions (/ack /release /press /update /close /dismiss, 确认,
已发布) need an allowed chat AND an allowed user; read-only commands (/status /list /help, 查看) are open to
everyone in an allowed chat, since they already see the alerts there. A private chat with an allowed user
counts as an allowed chat when `allow_private` is on. Every attempt, allowed or refused, is written to
`ActionLog`; a refused caller gets a short Chinese reply and is logged once per process.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from telegram import BotCommand, CallbackQuery, LinkPreviewOptions, Message, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from alerts import overview
from alerts.actions import ActionResult
from alerts.bot_commands import (
    COMMANDS,
    HELP,
    READ_USAGE,
    REFUSALS,
    AccessPolicy,
    BotAction,
    Runner,
    Verdict,
    acknowledge,
    parse_command,
    parse_id,
    prompted_command,
    publish_command,
    publish_prompt,
)
from alerts.buttons import Button, incident_keyboard, parse_callback
from alerts.clock import Clock
from alerts.deadlines import Scheduled
from config.env import Environment
from config.schema import Settings
from models.db import session_scope
from models.enums import DeadlineStatus
from models.tables import ActionLog, Incident

log = logging.getLogger(__name__)
CHANNEL = "telegram"
TEXT_LIMIT = 4000  # below Telegram's 4096 characters, measured on the HTML we send (longer than the text)
RETRY_START_S, RETRY_MAX_S = 5.0, 300.0


@dataclass(frozen=True)
class Caller:
    user_id: int
    chat_id: int
    private: bool
    actor: str  # recorded as who acted: the roster name, else the Telegram name with the user id


class IncidentBot:
    def __init__(self, token: str, *, base_url: str, db: Engine, clock: Clock, tz: tzinfo, access: AccessPolicy,
                 schedule: Callable[[Scheduled], None], dispatch: Callable[[], Awaitable[object]],
                 names: Mapping[int, str] | None = None, timeout: float = 15.0, poll_timeout: float = 10.0,
                 retry_start: float = RETRY_START_S) -> None:
        self.db, self.clock, self.tz, self.access = db, clock, tz, access
        self._schedule, self._dispatch = schedule, dispatch
        self._names = dict(names or {})
        self._poll_timeout, self._retry_start = poll_timeout, retry_start
        self._refused: set[tuple[int, int]] = set()
        self._retry: asyncio.Task[None] | None = None
        self._dispatches: set[asyncio.Task[None]] = set()
        defaults = Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True))
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            ApplicationBuilder().token(token).base_url(base_url).defaults(defaults).job_queue(None)
            .connect_timeout(timeout).read_timeout(timeout).write_timeout(timeout).build()
        )
        only_new = filters.UpdateType.MESSAGE  # an edited "/release …" must not act twice
        self.app.add_handler(CallbackQueryHandler(self._on_button))
        for name in COMMANDS:
            self.app.add_handler(CommandHandler(name, self._on_action, filters=only_new))
        for name, handler in (("status", self._on_status), ("list", self._on_list), ("help", self._on_help),
                              ("start", self._on_help)):
            self.app.add_handler(CommandHandler(name, handler, filters=only_new))
        self.app.add_handler(MessageHandler(filters.COMMAND & filters.ChatType.PRIVATE & only_new, self._on_help))
        self.app.add_handler(MessageHandler(filters.REPLY & filters.TEXT & ~filters.COMMAND & only_new, self._on_reply))
        self.app.add_error_handler(self._on_error)

    # ------------------------------------------------------------------ lifecycle (service hooks)

    async def start(self) -> None:
        """Start polling; when Telegram is unreachable, keep retrying in the background (alerts go on)."""
        try:
            await self._start_once()
        except TelegramError as exc:
            log.warning("telegram bot could not start (%s); retrying in the background", exc)
            self._retry = asyncio.create_task(self._keep_trying(), name="telegram-bot-start")

    async def _start_once(self) -> None:
        await self.app.initialize()  # a no-op once it succeeded (retries resume where they failed)
        if not self.app.running:
            await self.app.start()
        assert self.app.updater is not None  # ApplicationBuilder builds one unless told not to
        if self.app.updater.running:
            return
        await self.app.updater.start_polling(timeout=timedelta(seconds=self._poll_timeout),
                                             allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY])
        try:
            await self.app.bot.set_my_commands([BotCommand(c, d) for c, d in HELP])
        except TelegramError as exc:
            log.info("telegram bot: could not set the command menu: %s", exc)
        log.info("telegram bot polling; %d allowed chat(s), %d allowed user(s)", len(self.access.chat_ids),
                 len(self.access.user_ids))

    async def _keep_trying(self) -> None:
        delay = self._retry_start
        while True:
            await asyncio.sleep(delay)
            try:
                await self._start_once()
                return
            except TelegramError as exc:
                log.info("telegram bot still cannot start: %s", exc)
                delay = min(delay * 2, RETRY_MAX_S)

    async def stop(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        if self._dispatches:  # bounded by the channels' timeouts
            await asyncio.gather(*self._dispatches, return_exceptions=True)

    # ------------------------------------------------------------------ handlers

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query, caller = update.callback_query, self._caller(update)
        if query is None or caller is None:
            return
        pressed = parse_callback(query.data)
        if pressed is None:
            await self._answer(query, "该按钮已失效")
            return
        action = {Button.ACK: BotAction.ACK, Button.RELEASE: BotAction.RELEASE_PROMPT,
                  Button.VIEW: BotAction.STATUS}[pressed.button]
        if not await self._permitted(update, caller, action, pressed.incident_id):
            return
        inc_id = pressed.incident_id
        message = query.message if isinstance(query.message, Message) else None
        if action is BotAction.STATUS:
            await self._answer(query, None)
            await self._reply(update, self._status_text(caller, inc_id), to=message)
        elif action is BotAction.RELEASE_PROMPT:
            self._record(caller, action, inc_id, True, "已提示发送发布链接")
            await self._answer(query, "请发送发布链接")
            prompt = publish_prompt(self._publish_command(inc_id), inc_id)
            await self._reply(update, html.escape(prompt), to=message)
        else:
            result = self._perform(caller, action, inc_id, acknowledge)
            self._dispatch_soon()
            await self._answer(query, result.message)
            if result.ok and message is not None:
                await self._mark_acknowledged(message, inc_id)

    async def _on_action(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.effective_message
        if msg is not None and msg.text:
            await self._command(update, msg.text)

    async def _on_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A reply to the 已发布 prompt holding the link counts as `/release ID link` (or `/update ID link`)."""
        msg = update.effective_message
        prompt = msg.reply_to_message if msg is not None else None
        if msg is None or not msg.text or prompt is None or prompt.from_user is None:
            return
        if prompt.from_user.id != self.app.bot.id:
            return
        command = prompted_command(prompt.text or "", msg.text)
        if command is not None:
            await self._command(update, command)

    async def _command(self, update: Update, text: str) -> None:
        caller = self._caller(update)
        if caller is None:
            return
        parsed = parse_command(text)
        if parsed.action is None:
            return
        if not await self._permitted(update, caller, parsed.action, parsed.incident_id):
            return
        if parsed.runner is None or parsed.incident_id is None:
            self._record(caller, parsed.action, parsed.incident_id, True, parsed.error)
            await self._reply(update, html.escape(parsed.error))
            return
        result = self._perform(caller, parsed.action, parsed.incident_id, parsed.runner)
        self._dispatch_soon()
        await self._reply(update, self._result_text(result))

    async def _on_status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        caller = self._caller(update)
        if caller is None or not await self._permitted(update, caller, BotAction.STATUS, None):
            return
        inc_id = parse_id(context.args[0]) if context.args else None
        if inc_id is None:
            self._record(caller, BotAction.STATUS, None, True, READ_USAGE)
        await self._reply(update, self._status_text(caller, inc_id) if inc_id is not None else html.escape(READ_USAGE))

    async def _on_list(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        caller = self._caller(update)
        if caller is None or not await self._permitted(update, caller, BotAction.LIST, None):
            return
        with session_scope(self.db) as s:
            items = overview.open_overviews(s)
            text = overview.render_list(items, now=self.clock.now(), tz=self.tz).html
        self._record(caller, BotAction.LIST, None, True, f"{len(items)} 起未结事件")
        await self._reply(update, text)

    async def _on_help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        caller = self._caller(update)
        if caller is None or not await self._permitted(update, caller, BotAction.HELP, None):
            return
        self._record(caller, BotAction.HELP, None, True, "")
        lines = ["<b>舆情值班机器人 — 可用命令</b>", *(html.escape(f"/{c} — {d}") for c, d in HELP),
                 html.escape("告警消息下方的按钮：确认 / 已发布 / 查看。")]
        await self._reply(update, "\n".join(lines))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram bot: handling an update failed: %s", context.error, exc_info=context.error)

    # ------------------------------------------------------------------ access, actions and the log

    def _caller(self, update: Update) -> Caller | None:
        user, chat = update.effective_user, update.effective_chat
        if user is None or chat is None:
            return None
        actor = self._names.get(user.id) or f"{user.full_name}（TG {user.id}）"
        return Caller(user.id, chat.id, chat.type == ChatType.PRIVATE, actor[:100])

    async def _permitted(self, update: Update, caller: Caller, action: BotAction, inc_id: int | None) -> bool:
        verdict = self.access.check(chat_id=caller.chat_id, private=caller.private, user_id=caller.user_id,
                                    write=not action.read_only)
        if verdict is Verdict.ALLOWED:
            return True
        text = REFUSALS[verdict]
        self._record(caller, action, inc_id, False, f"{verdict.value}: {text}")
        key = (caller.user_id, caller.chat_id)
        if key not in self._refused:
            self._refused.add(key)
            log.warning("telegram bot: refused %s by user %s in chat %s (%s); further refusals of them are not "
                        "logged", action.value, caller.user_id, caller.chat_id, verdict.value)
        if update.callback_query is not None:
            await self._answer(update.callback_query, text, alert=True)
        else:
            await self._reply(update, html.escape(text))
        return False

    def _perform(self, caller: Caller, action: BotAction, inc_id: int, run: Runner) -> ActionResult:
        """Run one lifecycle action in its own transaction (with its ActionLog row), then schedule."""
        now = self.clock.now()
        try:
            with session_scope(self.db) as s:
                result = run(s, inc_id, caller.actor, now)
                s.add(_log_row(caller, action, inc_id, True, result.message, now))
        except SQLAlchemyError as exc:
            log.error("telegram bot: %s on incident %s failed: %s", action.value, inc_id, exc)
            self._record(caller, action, inc_id, True, f"error: {type(exc).__name__}")
            return ActionResult(False, "系统繁忙，操作未完成，请稍后重试。", inc_id)
        for item in result.scheduled:
            self._schedule(item)
        return result

    def _record(self, caller: Caller, action: BotAction, inc_id: int | None, allowed: bool, result: str) -> None:
        try:
            with session_scope(self.db) as s:
                s.add(_log_row(caller, action, inc_id, allowed, result, self.clock.now()))
        except SQLAlchemyError as exc:
            log.error("telegram bot: could not write the action log: %s", exc)

    def _dispatch_soon(self) -> None:
        """Send what the action queued, in the background: a slow channel must not hold up the next update."""
        task = asyncio.create_task(self._dispatch_now(), name="telegram-bot-dispatch")
        self._dispatches.add(task)
        task.add_done_callback(self._dispatches.discard)

    async def _dispatch_now(self) -> None:
        try:
            await self._dispatch()
        except Exception:  # the action is committed; the periodic dispatch will send what is left
            log.exception("telegram bot: dispatch after an action failed")

    # ------------------------------------------------------------------ texts and replies

    def _status_text(self, caller: Caller, inc_id: int) -> str:
        now = self.clock.now()
        with session_scope(self.db) as s:
            detail = overview.load_detail(s, inc_id)
            text = overview.render_detail(detail, now=now, tz=self.tz).html if detail else None
        result = "查看详情" if text else f"未找到舆情事件 #{inc_id}"
        self._record(caller, BotAction.STATUS, inc_id, True, result)
        return text or html.escape(result)

    def _result_text(self, result: ActionResult) -> str:
        """The action's message; after a success, the incident's clocks as they now stand."""
        text = html.escape(result.message)
        if not result.ok or result.incident_id is None:
            return text
        now = self.clock.now()
        with session_scope(self.db) as s:
            detail = overview.load_detail(s, result.incident_id)
            if detail is None:
                return text
            inc = detail.overview.incident
            pending = [overview.deadline_line(inc, d, now=now, tz=self.tz) for d in detail.overview.deadlines
                       if d.status == DeadlineStatus.PENDING]
        return "\n".join([f"✅ {text}", *(html.escape(p) for p in pending)])

    def _publish_command(self, inc_id: int) -> str:
        with session_scope(self.db) as s:
            return publish_command(overview.pending_actions(s, inc_id))

    async def _mark_acknowledged(self, message: Message, inc_id: int) -> None:
        """Show the group who acknowledged: a line under the alert, and the keyboard without 确认."""
        with session_scope(self.db) as s:
            inc = s.get(Incident, inc_id)
            who, when = (inc.acknowledged_by, inc.acknowledged_at) if inc is not None else (None, None)
        if who is None or when is None or message.text is None or "已确认" in message.text.splitlines()[-1]:
            return
        line = f"✅ {html.escape(who)} 已确认 {when.astimezone(self.tz):%H:%M}"
        body, keyboard = message.text_html, incident_keyboard(inc_id, acknowledged=True)
        try:
            if len(body) + len(line) < TEXT_LIMIT:
                await message.edit_text(f"{body}\n\n{line}", reply_markup=keyboard)
            else:  # no room for the line: at least 确认 goes
                await message.edit_reply_markup(reply_markup=keyboard)
        except BadRequest as exc:  # too old to edit, deleted, or already showing it
            log.info("telegram bot: could not mark the alert as acknowledged: %s", exc.message)

    async def _answer(self, query: CallbackQuery, text: str | None, *, alert: bool = False) -> None:
        try:
            await query.answer(text[:200] if text else None, show_alert=alert)
        except BadRequest as exc:  # e.g. a press queued while the service was down: too old to answer
            log.info("telegram bot: could not answer a button press: %s", exc.message)

    async def _reply(self, update: Update, text: str, *, to: Message | None = None) -> None:
        target = to or update.effective_message
        chat = update.effective_chat
        text = overview.fit(text, TEXT_LIMIT)
        if target is not None:
            await target.reply_text(text)
        elif chat is not None:
            await self.app.bot.send_message(chat.id, text)


def build_bot(settings: Settings, env: Environment, *, db: Engine, clock: Clock, tz: tzinfo,
              schedule: Callable[[Scheduled], None], dispatch: Callable[[], Awaitable[object]],
              names: Mapping[int, str] | None = None) -> IncidentBot | None:
    """The bot configured by `alerts.telegram`, or None (with one log line saying why) when it is off."""
    tg = settings.alerts.telegram
    if not (tg.enabled and tg.bot):
        return None
    if not env.telegram_token:
        log.info("telegram bot disabled: YUQING_TELEGRAM_TOKEN is not set")
        return None
    chats = tg.allowed_chat_ids or tg.chat_ids or list(env.telegram_chat_ids)
    if not tg.allowed_user_ids:
        log.warning("telegram bot: alerts.telegram.allowed_user_ids is empty, so every action will be refused")
    access = AccessPolicy(frozenset(chats), frozenset(tg.allowed_user_ids), tg.allow_private)
    return IncidentBot(env.telegram_token, base_url=env.telegram_api_base, db=db, clock=clock, tz=tz, access=access,
                       schedule=schedule, dispatch=dispatch, names=names, timeout=tg.timeout.total_seconds())


def _log_row(caller: Caller, action: BotAction, inc_id: int | None, allowed: bool, result: str,
             now: datetime) -> ActionLog:
    return ActionLog(at=now, channel=CHANNEL, user_id=str(caller.user_id), chat_id=str(caller.chat_id),
                     action=action.value, incident_id=inc_id, allowed=allowed, result=result)
