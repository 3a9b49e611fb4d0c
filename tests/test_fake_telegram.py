"""Tests of tests/fake_telegram.py against the REAL python-telegram-bot library.

The fake is only useful if the real client library accepts its responses and maps its errors to the
same exceptions as for api.telegram.org, so every test here goes through ``telegram.Bot``, except the
raw-protocol tests that pin the exact JSON shapes. Tests are plain synchronous functions that drive
coroutines with ``asyncio.run`` (no pytest-asyncio needed).
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, NetworkError, RetryAfter

from tests.fake_telegram import FakeTelegramServer, parse_html

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = -1001234567890
REPO_ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


@pytest.fixture
def server() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as srv:
        yield srv


def with_bot(server: FakeTelegramServer, action: Callable[[Bot], Awaitable[T]], token: str = TOKEN) -> T:
    """Run ``action(bot)`` inside ``async with Bot(...)`` (which itself calls getMe)."""

    async def main() -> T:
        async with Bot(token, base_url=server.base_url) as bot:
            return await action(bot)

    return asyncio.run(main())


def raw_call(
    server: FakeTelegramServer, path: str, data: bytes | None = None, content_type: str | None = None
) -> tuple[int, dict[str, Any]]:
    """A plain HTTP request, for checking the wire format without the library in between."""
    request = urllib.request.Request(server.url + path, data=data)
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("已处置", callback_data="ack:42"),
                InlineKeyboardButton("详情", url="https://example.gov.cn/42"),
            ]
        ]
    )


# ------------------------------------------------------------------------------------------- basics
def test_get_me_through_async_with_bot(server: FakeTelegramServer) -> None:
    async def action(bot: Bot) -> Any:
        return bot.bot, await bot.get_me()

    cached, me = with_bot(server, action)
    assert cached == me
    assert me.is_bot is True
    assert me.id == 123456789
    assert me.username == "yuqing_test_bot"
    assert [r["method"] for r in server.requests] == ["getMe", "getMe"]


def test_send_message_with_html_and_inline_keyboard_is_recorded(server: FakeTelegramServer) -> None:
    text = (
        "<b>舆情预警</b> 来源 &lt;微博&gt; &amp; "
        '<a href="https://example.gov.cn/?a=1&amp;b=2">原文</a> 😀 <i>请处置</i>'
    )

    async def action(bot: Bot) -> Any:
        first = await bot.send_message(CHAT, text, parse_mode=ParseMode.HTML, reply_markup=keyboard())
        second = await bot.send_message(CHAT, "第二条")
        return first, second

    first, second = with_bot(server, action)

    # The library parsed a real Message: plain text plus entities with UTF-16 offsets.
    assert first.chat.id == CHAT
    assert first.text == "舆情预警 来源 <微博> & 原文 😀 请处置"
    assert [(e.type, e.offset, e.length) for e in first.entities] == [
        ("bold", 0, 4),
        ("text_link", 15, 2),
        ("italic", 21, 3),
    ]
    assert first.entities[1].url == "https://example.gov.cn/?a=1&b=2"
    assert first.reply_markup == keyboard()
    assert second.message_id == first.message_id + 1  # increasing per chat

    [record, record2] = server.messages
    assert record["method"] == "sendMessage"
    assert record["chat_id"] == CHAT
    assert record["text"] == text  # exactly what the client sent
    assert record["parse_mode"] == "HTML"
    assert record["message_id"] == first.message_id
    assert record["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "已处置", "callback_data": "ack:42"},
                {"text": "详情", "url": "https://example.gov.cn/42"},
            ]
        ]
    }
    assert isinstance(record["at"], float)
    assert record2["parse_mode"] is None and record2["reply_markup"] is None
    assert server.sent_texts == [text, "第二条"]


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("<div>x</div>", 'Unsupported start tag "div" at byte offset 0'),
        ("<b>未闭合", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br>", 'Unsupported start tag "br"'),
        ("AT&T 公司", "Unsupported HTML entity"),
        ("&nbsp;", "Unsupported HTML entity"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("<b x", "Unclosed start tag at byte offset 0"),
    ],
)
def test_bad_html_is_rejected_with_bad_request(server: FakeTelegramServer, text: str, detail: str) -> None:
    with pytest.raises(BadRequest) as info:
        with_bot(server, lambda bot: bot.send_message(CHAT, text, parse_mode="HTML"))
    # python-telegram-bot strips "Bad Request: " and capitalize()s the rest, hence lower().
    assert "can't parse entities" in info.value.message.lower()
    assert detail.lower() in info.value.message.lower()
    assert server.messages == []
    assert server.requests[-1]["status"] == 400


def test_allowed_html_is_accepted() -> None:
    plain, entities = parse_html(
        '<strong>a</strong><em>b</em><u>c</u><ins>d</ins><s>e</s><strike>f</strike><del>g</del>'
        '<code>h</code><pre><code class="language-python">i</code></pre>'
        '<span class="tg-spoiler">j</span><tg-spoiler>k</tg-spoiler><blockquote expandable>l</blockquote>'
        '<tg-emoji emoji-id="5368324170671202286">m</tg-emoji>&#20154;&#x4EBA;&quot;'
    )
    assert plain == 'abcdefghijklm人人"'
    assert [e["type"] for e in entities] == [
        "bold", "italic", "underline", "underline", "strikethrough", "strikethrough", "strikethrough",
        "code", "pre", "spoiler", "spoiler", "expandable_blockquote", "custom_emoji",
    ]
    assert entities[8]["language"] == "python"


def test_text_limits_and_unknown_chat(server: FakeTelegramServer) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        with_bot(server, lambda bot: bot.send_message(CHAT, "舆" * 4097))
    # The limit applies after entity parsing: 4096 characters of text plus tags is fine.
    with_bot(server, lambda bot: bot.send_message(CHAT, "<b>" + "舆" * 4096 + "</b>", parse_mode="HTML"))
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        with_bot(server, lambda bot: bot.send_message(CHAT, "   "))
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        with_bot(server, lambda bot: bot.send_message(CHAT, "<b></b>", parse_mode="HTML"))

    server.known_chats = {CHAT}
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        with_bot(server, lambda bot: bot.send_message(42, "hi"))
    with_bot(server, lambda bot: bot.send_message(CHAT, "hi"))
    assert len(server.messages) == 2


def test_callback_data_over_64_bytes_is_rejected(server: FakeTelegramServer) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="舆" * 22)]])  # 66 bytes
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        with_bot(server, lambda bot: bot.send_message(CHAT, "hi", reply_markup=markup))


# ------------------------------------------------------------------------------------------- errors
def test_invalid_token_raises_invalid_token(server: FakeTelegramServer) -> None:
    with pytest.raises(InvalidToken):
        with_bot(server, lambda bot: bot.get_me(), token="123:short")
    with pytest.raises(InvalidToken):
        with_bot(server, lambda bot: bot.get_me(), token="not-a-token-at-all-xxxxxxxxxxxxxxxx")
    assert {r["status"] for r in server.requests} == {401}


def test_raw_protocol_shapes(server: FakeTelegramServer) -> None:
    assert raw_call(server, "/bot123:bad/getMe") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert raw_call(server, f"/bot{TOKEN}/noSuchMethod") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    # JSON body, and method names are case-insensitive as on the real server.
    status, body = raw_call(
        server,
        f"/bot{TOKEN}/SENDMESSAGE",
        json.dumps({"chat_id": 7, "text": "json 正文", "reply_markup": {"inline_keyboard": []}}).encode(),
        "application/json",
    )
    assert status == 200 and body["ok"] is True
    assert body["result"]["chat"] == {"id": 7, "type": "private", "first_name": "User7"}
    # Form body and query string.
    status, body = raw_call(
        server, f"/bot{TOKEN}/sendMessage?chat_id=7", b"text=form", "application/x-www-form-urlencoded"
    )
    assert status == 200 and body["result"]["text"] == "form" and body["result"]["message_id"] == 2
    assert [(m["chat_id"], m["text"]) for m in server.messages] == [(7, "json 正文"), (7, "form")]


# PTB 22 itself warns (inside RetryAfter) that retry_after will become a timedelta.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_fail_next_429_raises_retry_after(server: FakeTelegramServer) -> None:
    server.fail_next("sendMessage", 429, retry_after=7)

    async def action(bot: Bot) -> Any:
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(CHAT, "first")
        await bot.send_message(CHAT, "second")  # only the next call fails
        return info.value

    error = with_bot(server, action)
    retry_after = error.retry_after
    seconds = retry_after.total_seconds() if isinstance(retry_after, dtm.timedelta) else retry_after
    assert seconds == 7
    assert server.sent_texts == ["second"]
    failed = [r for r in server.requests if r["status"] == 429]
    assert failed[0]["response"] == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 7",
        "parameters": {"retry_after": 7},
    }


def test_fail_next_other_errors_and_down(server: FakeTelegramServer) -> None:
    server.fail_next("sendMessage", 400, "Bad Request: chat not found", count=2)
    for _ in range(2):
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            with_bot(server, lambda bot: bot.send_message(CHAT, "x"))
    server.down = True
    with pytest.raises(NetworkError, match=r"(?i)Bad Gateway"):
        with_bot(server, lambda bot: bot.send_message(CHAT, "x"))
    server.down = False
    with_bot(server, lambda bot: bot.send_message(CHAT, "recovered"))
    assert server.sent_texts == ["recovered"]


def test_latency_is_applied(server: FakeTelegramServer) -> None:
    server.method_latency["sendMessage"] = 0.3
    started = time.monotonic()
    with_bot(server, lambda bot: bot.send_message(CHAT, "slow"))
    assert time.monotonic() - started >= 0.3


# ------------------------------------------------------------------------------------------- updates
def test_get_updates_returns_pushed_callback_query(server: FakeTelegramServer) -> None:
    async def action(bot: Bot) -> Any:
        sent = await bot.send_message(CHAT, "<b>预警</b>", parse_mode="HTML", reply_markup=keyboard())
        pushed = server.push_callback_query(CHAT, 555, "ack:42", sent.message_id)
        updates = await bot.get_updates(timeout=5)
        query = updates[0].callback_query
        assert query is not None
        assert await query.answer("已记录") is True
        # Confirming with offset drops the update; the next poll returns empty.
        again = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
        return sent, pushed, updates, again

    sent, pushed, updates, again = with_bot(server, action)
    assert len(updates) == 1 and updates[0].update_id == pushed["update_id"]
    query = updates[0].callback_query
    assert query.data == "ack:42"
    assert query.from_user.id == 555 and query.from_user.is_bot is False
    assert query.message.message_id == sent.message_id
    assert query.message.chat.id == CHAT
    assert query.message.reply_markup == keyboard()
    assert again == ()
    assert server.pending_updates == []
    assert server.callback_answers[0]["text"] == "已记录"
    # Answering an unknown / already answered query fails like on Telegram.
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        with_bot(server, lambda bot: bot.answer_callback_query(query.id))


def test_long_poll_returns_as_soon_as_an_update_is_pushed(server: FakeTelegramServer) -> None:
    timer = threading.Timer(0.3, server.push_message, args=(1001, 1001, "/status 1"))
    timer.start()
    started = time.monotonic()
    updates = with_bot(server, lambda bot: bot.get_updates(timeout=10))
    elapsed = time.monotonic() - started
    timer.join()
    assert 0.25 <= elapsed < 5
    message = updates[0].message
    assert message is not None
    assert message.text == "/status 1"
    assert message.chat.type == "private"
    assert message.parse_entities() == {message.entities[0]: "/status"}
    assert message.entities[0].type == "bot_command"


def test_edit_message_text_and_reply_markup(server: FakeTelegramServer) -> None:
    async def action(bot: Bot) -> Any:
        sent = await bot.send_message(CHAT, "待处置", reply_markup=keyboard())
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text(
                "待处置", chat_id=CHAT, message_id=sent.message_id, reply_markup=keyboard()
            )
        # Without reply_markup the keyboard disappears, as on Telegram.
        edited = await bot.edit_message_text(
            "<b>已处置</b>", chat_id=CHAT, message_id=sent.message_id, parse_mode="HTML"
        )
        restored = await bot.edit_message_reply_markup(CHAT, sent.message_id, reply_markup=keyboard())
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("x", chat_id=CHAT, message_id=999)
        return sent, edited, restored

    sent, edited, restored = with_bot(server, action)
    assert edited.text == "已处置" and edited.reply_markup is None and edited.edit_date is not None
    assert restored.reply_markup == keyboard()
    methods = [m["method"] for m in server.messages]
    assert methods == ["sendMessage", "editMessageText", "editMessageReplyMarkup"]
    assert all(m["message_id"] == sent.message_id for m in server.messages)


def test_send_document_multipart_is_recorded(server: FakeTelegramServer) -> None:
    content = "日期,事件\r\n2024-05-01,测试\r\n".encode() + bytes(range(256))

    async def action(bot: Bot) -> Any:
        return await bot.send_document(
            CHAT, document=content, filename="舆情日报.csv", caption="<b>日报</b>", parse_mode="HTML"
        )

    message = with_bot(server, action)
    assert message.document.file_name == "舆情日报.csv"
    assert message.document.file_size == len(content)
    assert message.caption == "日报"
    [record] = server.documents
    assert record["filename"] == "舆情日报.csv"
    assert record["content"] == content  # byte-exact, CRLF and binary included
    assert record["caption"] == "<b>日报</b>" and record["parse_mode"] == "HTML"
    assert record["chat_id"] == CHAT
    assert server.requests[-1]["files"]["document"]["size"] == len(content)


def test_commands_webhook_and_misc_methods(server: FakeTelegramServer) -> None:
    async def action(bot: Bot) -> Any:
        assert await bot.delete_webhook(drop_pending_updates=True) is True
        assert await bot.set_my_commands([("status", "查看状态"), ("ack", "确认预警")]) is True
        commands = await bot.get_my_commands()
        with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
            await bot.set_my_commands([("Bad-Name", "x")])
        assert await bot.send_chat_action(CHAT, "typing") is True
        assert await bot.log_out() is True
        assert await bot.close() is True
        return commands

    commands = with_bot(server, action)
    assert [(c.command, c.description) for c in commands] == [("status", "查看状态"), ("ack", "确认预警")]
    assert server.commands == [
        {"command": "status", "description": "查看状态"},
        {"command": "ack", "description": "确认预警"},
    ]


# ------------------------------------------------------------------------------------------- helpers
def test_wait_for_count_predicate_and_timeout(server: FakeTelegramServer) -> None:
    def send_later() -> None:
        time.sleep(0.2)
        with_bot(server, lambda bot: bot.send_message(CHAT, "一级预警"))

    thread = threading.Thread(target=send_later)
    thread.start()
    messages = server.wait_for(1, timeout=10)
    found = server.wait_for(lambda ms: next((m for m in ms if "预警" in m["text"]), None), timeout=1)
    thread.join()
    assert messages[0]["text"] == "一级预警"
    assert found["chat_id"] == CHAT
    with pytest.raises(TimeoutError, match="1 message"):
        server.wait_for(2, timeout=0.2)
    server.clear()
    assert server.messages == [] and server.requests == []


def test_stop_is_prompt_even_with_a_pending_long_poll() -> None:
    server = FakeTelegramServer().start()
    result: list[Any] = []
    thread = threading.Thread(
        target=lambda: result.append(raw_call(server, f"/bot{TOKEN}/getUpdates?timeout=30")), daemon=True
    )
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    thread.join(timeout=5)
    assert time.monotonic() - started < 3
    assert result and result[0][1]["result"] == []


# ------------------------------------------------------------------------------------------- CLI
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_standalone_cli_serves_and_prints_messages() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_telegram", "--port", str(port)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    try:
        url = f"http://127.0.0.1:{port}/bot{TOKEN}"
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{url}/getMe", timeout=1) as response:
                    assert json.loads(response.read())["result"]["is_bot"] is True
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "standalone fake Telegram server did not answer"
                time.sleep(0.1)
        data = json.dumps({"chat_id": 99, "text": "第一行\n第二行", "parse_mode": "HTML"}).encode()
        request = urllib.request.Request(f"{url}/sendMessage", data, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.loads(response.read())["ok"] is True
    finally:
        proc.terminate()
        stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert f"listening on http://127.0.0.1:{port}" in stdout
    assert 'sendMessage chat=99 id=1 parse_mode=HTML text="第一行\\n第二行"' in stdout.splitlines()
