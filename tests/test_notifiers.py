"""Telegram and console specifics (the behaviour every channel shares is in test_channels.py): HTML as sent,
refusals (400, 403, 401 invalid token) fatal, the message id returned, the size-limit table and its
HTML-safe truncation, and the registry that builds the active channels from config."""

from __future__ import annotations

import asyncio
import io

import pytest

from alerts.notifiers import build_notifiers
from alerts.notifiers.base import DeliveryError, NotConfiguredError
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.limits import measure, truncate, truncate_html
from alerts.notifiers.telegram import TelegramNotifier
from config.env import Environment
from config.loader import parse_config
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegramServer, parse_html


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


@pytest.mark.parametrize(("status", "description"), [(403, "Forbidden: bot was kicked from the group chat"),
                                                     (400, "Bad Request: chat not found")])
def test_telegram_refusals_are_fatal(telegram: FakeTelegramServer, status: int, description: str) -> None:
    telegram.fail_next("sendMessage", status, description)
    with pytest.raises(DeliveryError) as info:
        asyncio.run(_send(_tg(telegram), "hi"))
    assert info.value.fatal and description.split(": ")[1].lower() in str(info.value).lower()


def test_telegram_invalid_token_is_fatal() -> None:
    with FakeTelegramServer(tokens=["654321:another-valid-token-xyz"]) as server, pytest.raises(DeliveryError) as info:
        asyncio.run(_send(_tg(server), "hi"))
    assert info.value.fatal and "InvalidToken" in str(info.value)


def test_telegram_returns_the_message_id(telegram: FakeTelegramServer) -> None:
    async def go() -> str | None:
        n = _tg(telegram)
        try:
            await n.send("42", "一")
            return await n.send("42", "二")
        finally:
            await n.close()

    assert asyncio.run(go()) == str(telegram.messages[1]["message_id"])


def test_telegram_cut_of_plain_text_is_exactly_the_limit(telegram: FakeTelegramServer) -> None:
    asyncio.run(_send(_tg(telegram), "字" * 5000))
    assert len(telegram.messages[0]["text"]) == 4096 and telegram.messages[0]["text"].endswith("…")


@pytest.mark.parametrize("limit", [5, 9, 17, 30, 64, 79])
def test_truncate_html_never_splits_a_tag_or_entity_and_closes_tags(limit: int) -> None:
    source = '<b>舆情&amp;<i>监测 &#128293;</i></b> <a href="https://x.cn/?a=1&amp;b=2">原文</a> 😀尾'
    cut = truncate_html(source, limit)
    assert measure(cut, "utf16") <= limit and cut.count("…") == 1
    parse_html(cut)  # the fake's strict Telegram HTML parser accepts it: tags balanced, entities whole
    assert source.startswith(cut[: cut.index("…")])
    assert truncate_html(source, 1000) == source


def test_truncate_counts_each_unit() -> None:
    assert measure("😀a", "utf16") == 3 and measure("😀a", "utf8") == 5 and measure("😀a", "chars") == 2
    assert truncate("😀😀😀", 5, "utf16") == "😀😀…"
    assert truncate("舆情监测", 7, "utf8") == "舆…"
    assert truncate("abcdef", 4) == "abc…" and truncate("abc", 3) == "abc"


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
