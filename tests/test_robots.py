"""Group-robot notifiers (WeCom, DingTalk, Feishu) against local fakes that check requests like the real services.

What every channel shares (delivery, truncation, retries, outages) is in test_channels.py; here, what the
robots share beyond it: their rate-limit error codes, bad credentials fatal, no secret in an error or a log
line, and per service its signing. Signature functions
are checked against vectors computed independently with `openssl dgst -sha256 -hmac`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.clock import FakeClock
from alerts.notifiers._robot import mentioned_mobiles, truncate_utf8
from alerts.notifiers.base import DeliveryError, NotConfiguredError, Notifier
from alerts.notifiers.dingtalk import DingTalkNotifier, dingtalk_sign, dingtalk_timestamp
from alerts.notifiers.feishu import FeishuNotifier, feishu_sign
from alerts.notifiers.wecom import WeComNotifier
from tests.fake_robots import FakeDingTalk, FakeFeishu, FakeRobot, FakeWeCom

TOKEN = "tok-5f1e9c2a-77aa-4b1c-9d0e-secretpart"
SECRET = "SECd41d8cd98f00b204e9800998ecf8427e"
TEXT = '【重大舆情】某县"煤矿"透水\n类别：突发事件　等级：I 特别重大\n链接：https://x.cn/a?b=1&c=2 <tag>'

Make = Callable[[str | None, str | None], Notifier]


@dataclass(frozen=True)
class Robot:
    name: str
    fake: type[FakeRobot]
    make: Make
    signed: bool  # the fake checks a signature made with SECRET
    rate_code: int
    content_limit: int  # the service's limit in UTF-8 bytes (content for WeCom/DingTalk, whole body for Feishu)


ROBOTS = [
    Robot("wecom", FakeWeCom, lambda url, secret: WeComNotifier(url, secret, timeout=3), False, 45009, 2048),
    Robot("dingtalk", FakeDingTalk, lambda url, s: DingTalkNotifier(url, s, timeout=3), True, 130101, 20000),
    Robot("feishu", FakeFeishu, lambda url, s: FeishuNotifier(url, s, timeout=3), True, 11232, 20 * 1024),
]


SIGNED = [r for r in ROBOTS if r.signed]  # WeCom robots have no signing


@pytest.fixture(params=ROBOTS, ids=[r.name for r in ROBOTS])
def robot(request: pytest.FixtureRequest) -> Robot:
    r: Robot = request.param
    return r


@pytest.fixture
def server(robot: Robot) -> Iterator[FakeRobot]:
    with robot.fake(token=TOKEN, secret=SECRET if robot.signed else None) as fake:
        yield fake


def _send(notifier: Notifier, body: str, receiver: str = "default") -> None:
    async def go() -> None:
        try:
            await notifier.send(receiver, body)
        finally:
            await notifier.close()

    asyncio.run(go())


def _error(notifier: Notifier, body: str = TEXT) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        _send(notifier, body)
    assert TOKEN not in str(info.value) and SECRET not in str(info.value)
    return info.value


# -- the contract, for every robot -------------------------------------------------------------------------
def test_rate_limit_is_transient_and_waits_a_minute(robot: Robot, server: FakeRobot) -> None:
    server.fail_next(code=robot.rate_code, msg="send too fast")
    err = _error(robot.make(server.webhook_url, SECRET))
    assert not err.fatal and err.retry_after == 60
    _send(robot.make(server.webhook_url, SECRET), TEXT)  # the retry goes through
    assert server.messages == [TEXT]


def test_wrong_key_is_fatal(robot: Robot, server: FakeRobot) -> None:
    url = server.webhook_url.replace(TOKEN, "tok-wrong")
    err = _error(robot.make(url, SECRET))
    assert err.fatal
    assert server.messages == []


@pytest.mark.parametrize("robot", SIGNED, ids=[r.name for r in SIGNED], indirect=True)
def test_wrong_secret_is_fatal(robot: Robot, server: FakeRobot) -> None:
    err = _error(robot.make(server.webhook_url, SECRET + "x"))
    assert err.fatal and str(err).startswith("rejected (code ")
    assert server.messages == []


@pytest.mark.parametrize("robot", SIGNED, ids=[r.name for r in SIGNED], indirect=True)
def test_stale_timestamp_is_fatal(robot: Robot, server: FakeRobot) -> None:
    server.clock = lambda: datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    late = FakeClock(datetime(2024, 5, 1, 10, 59, tzinfo=UTC))  # 61 minutes behind the service
    notifier = DingTalkNotifier if robot.name == "dingtalk" else FeishuNotifier
    err = _error(notifier(server.webhook_url, SECRET, timeout=3, clock=late))
    assert err.fatal
    late.set(datetime(2024, 5, 1, 11, 30, tzinfo=UTC))  # within the hour
    _send(notifier(server.webhook_url, SECRET, timeout=3, clock=late), TEXT)
    assert server.messages == [TEXT]


def test_server_error_is_transient(robot: Robot, server: FakeRobot) -> None:
    server.fail_next(status=502)
    err = _error(robot.make(server.webhook_url, SECRET))
    assert not err.fatal and err.retry_after is None
    server.fail_next(status=503, retry_after=30)
    assert _error(robot.make(server.webhook_url, SECRET)).retry_after == 30


@pytest.mark.parametrize("status", [400, 401, 403])
def test_other_http_4xx_without_code_is_fatal(robot: Robot, server: FakeRobot, status: int) -> None:
    server.fail_next(status=status)
    assert _error(robot.make(server.webhook_url, SECRET)).fatal


def test_secrets_stay_out_of_logs(robot: Robot, server: FakeRobot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # an in-process `yuqing …` may have quietened it
    _send(robot.make(server.webhook_url, SECRET), TEXT)
    server.fail_next(code=robot.rate_code)
    _error(robot.make(server.webhook_url, SECRET))
    assert "HTTP Request: POST" in caplog.text  # httpx did log the requests …
    assert TOKEN not in caplog.text and SECRET not in caplog.text  # … with the secrets masked


def test_missing_or_malformed_url_disables_the_notifier(robot: Robot) -> None:
    for url in (None, "", "ftp://x/y", f"https://example.cn/{TOKEN}?nothing={TOKEN}"):
        with pytest.raises(NotConfiguredError) as info:
            robot.make(url, SECRET)
        assert f"YUQING_{robot.name.upper()}_WEBHOOK_URL" in str(info.value)
        assert TOKEN not in str(info.value)


def test_unknown_receiver_is_fatal(robot: Robot, server: FakeRobot) -> None:
    notifier = robot.make(server.webhook_url, SECRET)
    assert notifier.name == robot.name and notifier.format == "text" and notifier.receivers() == ["default"]
    with pytest.raises(DeliveryError) as info:
        _send(robot.make(server.webhook_url, SECRET), TEXT, receiver="other")
    assert info.value.fatal


# -- signing, per service ----------------------------------------------------------------------------------
def test_dingtalk_sign_matches_independent_vectors() -> None:
    # printf '1700000000001\nSECtest' | openssl dgst -sha256 -hmac 'SECtest' -binary | base64
    assert dingtalk_sign("SECtest", 1700000000000) == "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="
    assert dingtalk_sign("SECtest", 1700000000001) == "r4CWp/Dz+Ng0sbTjH1vB0Fr+uQ2fn831mssaN6/C05I="
    assert dingtalk_timestamp(datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=UTC)) == 1700000000001


def test_dingtalk_signed_url_url_encodes_the_signature() -> None:
    clock = FakeClock(datetime(2023, 11, 14, 22, 13, 20, 1000, tzinfo=UTC))
    notifier = DingTalkNotifier(f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}", "SECtest",
                                timeout=3, clock=clock)
    url = str(notifier.signed_url(clock.now()))
    assert "+" not in urlsplit(url).query and "%2B" in url and "%2F" in url
    query = parse_qs(urlsplit(url).query)
    assert query == {"access_token": [TOKEN], "timestamp": ["1700000000001"],
                     "sign": ["r4CWp/Dz+Ng0sbTjH1vB0Fr+uQ2fn831mssaN6/C05I="]}


def test_dingtalk_without_secret_sends_unsigned() -> None:
    with FakeDingTalk(token=TOKEN) as fake:
        _send(DingTalkNotifier(fake.webhook_url, None, timeout=3), TEXT)
        assert fake.messages == [TEXT]
        assert set(fake.requests[0]["query"]) == {"access_token"}


def test_feishu_sign_matches_independent_vector() -> None:
    # printf '' | openssl dgst -sha256 -hmac "$(printf '1700000000\nfeishu-secret')" -binary | base64
    assert feishu_sign("feishu-secret", 1700000000) == "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU="


def test_feishu_payload_carries_string_timestamp_and_sign() -> None:
    notifier = FeishuNotifier(f"https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}", "feishu-secret", timeout=3)
    payload: dict[str, Any] = notifier.payload("你好", datetime.fromtimestamp(1700000000, UTC))
    assert payload == {"timestamp": "1700000000", "sign": "OrBzY1Y01Gq+HgJsl+7OfWcMVwc7YocohQm5iiZwjhU=",
                       "msg_type": "text", "content": {"text": "你好"}}


def test_feishu_escape_heavy_text_still_fits_the_body_limit() -> None:
    with FakeFeishu(token=TOKEN) as fake:
        _send(FeishuNotifier(fake.webhook_url, None, timeout=3), '"\n\\' * 20000)
        assert fake.messages and fake.requests[0]["size"] <= 20 * 1024


def test_feishu_too_many_request_9499_is_transient_other_9499_fatal() -> None:
    with FakeFeishu(token=TOKEN) as fake:
        fake.fail_next(status=400, code=9499, msg="too many request")
        assert not _error(FeishuNotifier(fake.webhook_url, None, timeout=3)).fatal
        fake.fail_next(status=400, code=9499, msg="Bad Request")
        assert _error(FeishuNotifier(fake.webhook_url, None, timeout=3)).fatal


def test_feishu_at_tags_in_crawled_text_mention_nobody() -> None:
    with FakeFeishu(token=TOKEN) as fake:
        _send(FeishuNotifier(fake.webhook_url, None, timeout=3), '标题<at user_id="all">所有人</at>< AT id=1>')
        assert fake.messages == ['标题＜at user_id="all">所有人＜/at>＜ AT id=1>']


def test_mention_line_becomes_a_real_mention_on_wecom_and_dingtalk() -> None:
    body = TEXT + "\n@13800000000 @13900000001"
    with FakeWeCom(token=TOKEN) as wecom:
        _send(WeComNotifier(wecom.webhook_url, None, timeout=3), body)
        text = wecom.requests[0]["json"]["text"]
        assert text == {"content": body, "mentioned_mobile_list": ["13800000000", "13900000001"]}
        _send(WeComNotifier(wecom.webhook_url, None, timeout=3), TEXT)
        assert "mentioned_mobile_list" not in wecom.requests[1]["json"]["text"]
    with FakeDingTalk(token=TOKEN) as ding:
        _send(DingTalkNotifier(ding.webhook_url, None, timeout=3), body)
        sent = ding.requests[0]["json"]
        assert sent["at"] == {"atMobiles": ["13800000000", "13900000001"], "isAtAll": False}
        assert sent["text"]["content"].endswith("@13800000000 @13900000001")  # shown where it is written


def test_only_a_last_line_of_mentions_counts() -> None:
    assert mentioned_mobiles("标题\n@13800000000") == ["13800000000"]
    assert mentioned_mobiles("标题\n@13800000000 \n") == ["13800000000"]
    assert mentioned_mobiles("网传@13800000000 说\n链接：x") == []  # crawled text mentions nobody
    assert mentioned_mobiles("@13800000000\n事件编号：#3") == []
    assert mentioned_mobiles("标题\n@13800000000 @all") == []


def test_truncate_utf8_never_splits_a_character() -> None:
    assert truncate_utf8("abc", 3) == "abc"
    for limit in range(3, 12):
        cut = truncate_utf8("舆情监测abc", limit)
        assert len(cut.encode("utf-8")) <= limit and cut.endswith("…")
    assert truncate_utf8("舆情监测", 7) == "舆…"
