"""Notifiers against a real protocol peer: python-telegram-bot talks to the fake Bot API server on loopback.
Failures are classified as the outbox needs them: fatal (400/403) or transient (429, 5xx, network)."""

from __future__ import annotations

import asyncio
import io

import pytest

from alerts.notifiers import build_notifiers
from alerts.notifiers.base import DeliveryError, NotConfiguredError
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.telegram import TelegramNotifier
from config.env import Environment
from config.loader import parse_config
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegramServer


def _tg(server: FakeTelegramServer, chats: list[int] | None = None) -> TelegramNotifier:
    return TelegramNotifier(TOKEN, chats or [42], base_url=server.base_url, timeout=3)


async def _send(n: TelegramNotifier, body: str, receiver: str = "42") -> None:
    try:
        await n.send(receiver, body)
    finally:
        await n.close()


def test_telegram_sends_html_to_chat(telegram: FakeTelegramServer) -> None:
    body = "<b>【重大舆情】标题 &lt;script&gt;</b>\n链接：<a href=\"https://x.cn/?a=1&amp;b=2\">查看原文</a>"
    asyncio.run(_send(_tg(telegram), body))
    [msg] = telegram.messages
    assert msg["chat_id"] == 42
    assert msg["parse_mode"] == "HTML"
    assert msg["text"] == body
    assert msg["plain_text"].startswith("【重大舆情】标题 <script>")


def test_telegram_bad_html_is_fatal(telegram: FakeTelegramServer) -> None:
    with pytest.raises(DeliveryError) as info:
        asyncio.run(_send(_tg(telegram), "<script>x</script>"))
    assert info.value.fatal


def test_telegram_unknown_chat_is_fatal() -> None:
    with FakeTelegramServer(known_chats=[1]) as server, pytest.raises(DeliveryError) as info:
        asyncio.run(_send(_tg(server), "hi"))
    assert info.value.fatal and "chat not found" in str(info.value).lower()


def test_telegram_rate_limit_is_transient_with_retry_after(telegram: FakeTelegramServer) -> None:
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(DeliveryError) as info:
        asyncio.run(_send(_tg(telegram), "hi"))
    assert not info.value.fatal and info.value.retry_after == 7


def test_telegram_server_down_is_transient(telegram: FakeTelegramServer) -> None:
    telegram.down = True
    with pytest.raises(DeliveryError) as info:
        asyncio.run(_send(_tg(telegram), "hi"))
    assert not info.value.fatal


def test_telegram_long_message_is_truncated(telegram: FakeTelegramServer) -> None:
    asyncio.run(_send(_tg(telegram), "字" * 5000))
    assert len(telegram.messages[0]["text"]) == 4096


def test_telegram_needs_token_and_chats() -> None:
    with pytest.raises(NotConfiguredError, match="YUQING_TELEGRAM_TOKEN"):
        TelegramNotifier(None, [1], base_url="http://127.0.0.1:1/bot", timeout=1)
    with pytest.raises(NotConfiguredError, match="chat ids"):
        TelegramNotifier(TOKEN, [], base_url="http://127.0.0.1:1/bot", timeout=1)


def test_console_prints_the_plain_text() -> None:
    out = io.StringIO()
    asyncio.run(ConsoleNotifier(out).send("stdout", "【重大舆情】标题"))
    assert "【重大舆情】标题" in out.getvalue()


def test_registry_builds_active_channels_from_config_and_environment(telegram: FakeTelegramServer) -> None:
    settings = parse_config("alerts:\n  telegram:\n    chat_ids: [7, 8]\n")
    env = Environment(telegram_token=TOKEN, telegram_api_base=telegram.base_url, telegram_chat_ids=(9,))
    names = {n.name: n for n in build_notifiers(settings, env)}
    assert set(names) == {"console", "telegram"}
    assert names["telegram"].receivers() == ["7", "8"]  # config wins over YUQING_TELEGRAM_CHAT_IDS
    env_only = build_notifiers(parse_config(""), env)
    assert [n.receivers() for n in env_only if n.name == "telegram"] == [["9"]]
    assert [n.name for n in build_notifiers(parse_config(""), Environment())] == ["console"]


def test_registry_builds_every_configured_channel(telegram: FakeTelegramServer) -> None:
    from alerts.notifiers import NOTIFIERS

    assert set(NOTIFIERS) == {"console", "telegram", "wecom", "dingtalk", "feishu", "email", "webhook"}
    settings = parse_config(
        "alerts:\n"
        "  email: {host: 127.0.0.1, port: 2525, security: none, sender: yq@example.cn, to: [duty@example.cn]}\n"
        "  webhook: {url: 'http://127.0.0.1:9/hook'}\n"
    )
    env = Environment(wecom_webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1",
                      dingtalk_webhook_url="https://oapi.dingtalk.com/robot/send?access_token=t1", dingtalk_secret="s",
                      feishu_webhook_url="https://open.feishu.cn/open-apis/bot/v2/hook/h1", feishu_secret="s",
                      webhook_secret="hook-secret")
    names = [n.name for n in build_notifiers(settings, env)]
    assert names == ["console", "wecom", "dingtalk", "feishu", "email", "webhook"]
    assert [n.name for n in build_notifiers(settings, Environment())] == ["console", "email"]  # webhook unsigned: off
