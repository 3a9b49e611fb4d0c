"""Email and webhook specifics against real local peers (what every channel shares is in test_channels.py):
smtplib talks to tests/fake_smtp.py, httpx to tests/fake_webhook.py, which verifies the HMAC signature as a
receiver would. SMTP reply codes and HTTP statuses are classified as the outbox needs them (fatal or
transient), and no secret ever appears in an error message."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from alerts.clock import FakeClock
from alerts.notifiers.base import DeliveryError, NotConfiguredError, SendMeta
from alerts.notifiers.email import EmailNotifier
from alerts.notifiers.webhook import WebhookNotifier, idempotency_key, parse_retry_after
from tests.fake_smtp import FakeSmtpServer
from tests.fake_webhook import WebhookReceiver

NOW = datetime(2024, 7, 1, 12, 42, 5, tzinfo=UTC)
BODY = "【特别重大舆情】某县煤矿发生透水事故 已致32人遇难\n类别：突发事件　等级：I 特别重大\n.以点开头的行"
HEADLINE = "【特别重大舆情】某县煤矿发生透水事故 已致32人遇难"
SENDER = "yuqing@agency.example"
USER, PASSWORD = "duty", "s3cr3t+pw/&ok"
SECRET = "webhook-shared-secret-XYZ"


# ---------------------------------------------------------------------------------------------------- email


def _mail(port: int, *, security: str = "none", to: list[str] | None = None, timeout: float = 3,
          creds: bool = False, ctx: ssl.SSLContext | None = None) -> EmailNotifier:
    return EmailNotifier(
        "127.0.0.1", port, security=security, sender=SENDER, to=to or ["officer@agency.example"],  # type: ignore[arg-type]
        timeout=timeout, user=USER if creds else None, password=PASSWORD if creds else None,
        clock=FakeClock(NOW), ssl_context=ctx, helo_name="yuqing.test",
    )


def _send(notifier: EmailNotifier | WebhookNotifier, body: str = BODY, receiver: str | None = None) -> None:
    async def go() -> None:
        try:
            await notifier.send(receiver or notifier.receivers()[0], body)
        finally:
            await notifier.close()
    asyncio.run(go())


def _fail(notifier: EmailNotifier | WebhookNotifier, body: str = BODY) -> DeliveryError:
    with pytest.raises(DeliveryError) as info:
        _send(notifier, body)
    return info.value


def _parse(data: bytes) -> EmailMessage:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for a self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    issued = datetime.now(UTC)  # certificate validity is checked against the real clock by OpenSSL
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued - timedelta(days=1)).not_valid_after(issued + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return server, ssl.create_default_context(cafile=str(folder / "cert.pem"))


@pytest.fixture
def smtp() -> Iterator[FakeSmtpServer]:
    with FakeSmtpServer() as server:
        yield server


def test_email_delivers_exact_text_with_chinese_subject(smtp: FakeSmtpServer) -> None:
    async def go() -> str | None:
        return await _mail(smtp.port).send("officer@agency.example", BODY)

    message_id = asyncio.run(go())
    [got] = smtp.messages
    assert got.mail_from == SENDER and got.rcpt_to == ["officer@agency.example"]
    assert b"=?utf-8?" in got.data.split(b"\r\n\r\n")[0]  # the Chinese subject is RFC 2047-encoded on the wire
    msg = _parse(got.data)
    assert msg["Subject"] == HEADLINE
    assert msg["From"] == SENDER and msg["To"] == "officer@agency.example"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Message-ID"].endswith("@agency.example>") and msg["Message-ID"] == message_id
    assert msg.get_content_charset() == "utf-8" and msg["Content-Transfer-Encoding"] == "base64"
    assert msg.get_content().rstrip("\n") == BODY


def test_email_sends_one_message_per_configured_address(smtp: FakeSmtpServer) -> None:
    to = ["a@agency.example", "b@agency.example"]
    notifier = _mail(smtp.port, to=to)
    assert notifier.receivers() == to
    for receiver in to:
        _send(notifier, receiver=receiver)
    assert [m.rcpt_to for m in smtp.messages] == [["a@agency.example"], ["b@agency.example"]]


def test_email_starttls_with_login(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with FakeSmtpServer(credentials=(USER, PASSWORD), tls_context=tls[0]) as server:
        _send(_mail(server.port, security="starttls", creds=True, ctx=tls[1]))
    [got] = server.messages
    assert got.tls and got.user == USER
    assert server.commands[:3] == ["EHLO", "STARTTLS", "EHLO"]


def test_email_implicit_tls(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with FakeSmtpServer(tls_context=tls[0], implicit_tls=True) as server:
        _send(_mail(server.port, security="tls", ctx=tls[1]))
    assert server.messages[0].tls


def test_email_untrusted_certificate_is_fatal(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with FakeSmtpServer(tls_context=tls[0], implicit_tls=True) as server:
        err = _fail(_mail(server.port, security="tls", ctx=ssl.create_default_context()))
    assert err.fatal and "certificate" in str(err)


def test_email_starttls_not_offered_is_fatal(smtp: FakeSmtpServer) -> None:
    err = _fail(_mail(smtp.port, security="starttls"))
    assert err.fatal and not smtp.messages


@pytest.mark.parametrize(
    ("stage", "reply", "fatal"),
    [
        ("rcpt", (550, "5.1.1 mailbox unavailable"), True),
        ("rcpt", (553, "5.1.3 mailbox name not allowed"), True),
        ("rcpt", (451, "4.3.0 try again later"), False),
        ("rcpt", (452, "4.2.2 mailbox full"), False),
        ("data", (554, "5.6.0 message rejected"), True),
        ("data", (451, "4.7.1 greylisted"), False),
        ("greeting", (421, "4.3.2 too busy"), False),
        ("greeting", (554, "5.7.1 no SMTP service here"), True),
    ],
)
def test_email_reply_codes_are_classified(stage: str, reply: tuple[int, str], fatal: bool) -> None:
    with FakeSmtpServer(greeting=reply if stage == "greeting" else (220, "fake ESMTP")) as server:
        if stage == "rcpt":
            server.rcpt_replies["officer@agency.example"] = reply
        elif stage == "data":
            server.data_reply = reply
        err = _fail(_mail(server.port))
    assert err.fatal is fatal
    assert str(reply[0]) in str(err)
    assert not server.messages


@pytest.mark.parametrize("command", ["MAIL", "RCPT", "DATA"])
def test_email_dropped_connection_is_transient(smtp: FakeSmtpServer, command: str) -> None:
    smtp.drop_on = command
    err = _fail(_mail(smtp.port))
    assert not err.fatal and not smtp.messages


@pytest.mark.parametrize(("receiver", "body"), [("x@a.example\r\nBcc: y@b.example", BODY), (None, "bad \ud800")])
def test_email_unbuildable_message_is_fatal(smtp: FakeSmtpServer, receiver: str | None, body: str) -> None:
    with pytest.raises(DeliveryError) as info:
        _send(_mail(smtp.port), body=body, receiver=receiver)
    assert info.value.fatal and not smtp.commands


def test_email_silent_server_times_out_transiently() -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        err = _fail(_mail(silent.getsockname()[1], timeout=0.3))
    assert not err.fatal and "timed out" in str(err)


@pytest.mark.parametrize(("reply", "fatal"), [(None, True), ((454, "4.7.0 temporary authentication failure"), False)])
def test_email_auth_failure_never_shows_password(reply: tuple[int, str] | None, fatal: bool) -> None:
    with FakeSmtpServer(credentials=(USER, "another password")) as server:
        server.auth_reply, server.echo_credentials = reply, True  # a careless server echoes what it got
        err = _fail(_mail(server.port, creds=True))
    assert err.fatal is fatal and ("535" in str(err) if fatal else "454" in str(err))
    assert "(got ***)" in str(err)
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, plain, base64.b64encode(PASSWORD.encode()).decode()):
        assert secret not in str(err) and secret not in repr(err.args)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"host": ""}, "alerts.email.host"),
        ({"sender": ""}, "alerts.email.sender"),
        ({"to": []}, "alerts.email.to"),
        ({"user": "duty"}, "YUQING_SMTP_PASSWORD"),
        ({"host": "smtp.agency.example", "user": "u", "password": "p", "security": "none"}, "unencrypted"),
        ({"user": "u", "password": "密码"}, "ASCII"),
    ],
)
def test_email_not_configured(kwargs: dict[str, Any], needle: str) -> None:
    args: dict[str, Any] = {"host": "127.0.0.1", "port": 25, "security": "starttls", "sender": SENDER,
                            "to": ["x@agency.example"], "timeout": 1.0} | kwargs
    with pytest.raises(NotConfiguredError, match=needle):
        EmailNotifier(**args)


# -------------------------------------------------------------------------------------------------- webhook


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def _hook(url: str, clock: FakeClock | None = None, timeout: float = 3) -> WebhookNotifier:
    return WebhookNotifier(url, SECRET, timeout=timeout, clock=clock or FakeClock(NOW))


def test_webhook_posts_signed_json(hook: WebhookReceiver) -> None:
    notifier = _hook(hook.url)
    assert notifier.receivers() == ["default"]
    _send(notifier)
    [req] = hook.requests
    assert req["valid"]
    assert req["headers"]["Content-Type"] == "application/json"
    assert json.loads(req["raw"]) == {"version": 1, "text": BODY, "sent_at": "2024-07-01T12:42:05+00:00"}
    assert req["headers"]["X-Yuqing-Timestamp"] == str(int(NOW.timestamp()))
    assert req["headers"]["Idempotency-Key"] == idempotency_key("default", BODY)


def test_webhook_wrong_secret_is_rejected_by_receiver_and_fatal() -> None:
    with WebhookReceiver(secret="the receiver's own secret") as other:
        err = _fail(_hook(other.url))
    assert err.fatal and "401" in str(err) and not other.requests[0]["valid"]


def test_webhook_sends_the_delivery_key_whatever_the_text(hook: WebhookReceiver) -> None:
    meta = SendMeta(alert_key="incident:7:opened", idempotency_key="0123456789abcdef0123456789abcdef")

    async def go() -> None:
        notifier = _hook(hook.url)
        try:
            await notifier.send("default", BODY, meta)
            await notifier.send("default", "（重发，可能重复）" + BODY, meta)
        finally:
            await notifier.close()

    asyncio.run(go())
    assert [r["headers"]["Idempotency-Key"] for r in hook.requests] == [meta.idempotency_key] * 2


def test_webhook_retry_keeps_idempotency_key(hook: WebhookReceiver) -> None:
    clock = FakeClock(NOW)
    hook.responses.append((503, {}, "busy"))
    assert not _fail(_hook(hook.url, clock)).fatal
    clock.advance(timedelta(seconds=30))
    _send(_hook(hook.url, clock))
    first, second = hook.requests
    assert first["valid"] and second["valid"]
    assert first["raw"] != second["raw"]  # sent_at moved on, so the signature differs …
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]  # … but not the key
    assert idempotency_key("default", BODY + "x") != idempotency_key("default", BODY)
    assert idempotency_key("other", BODY) != idempotency_key("default", BODY)


@pytest.mark.parametrize(
    ("status", "headers", "fatal", "retry_after"),
    [
        (500, {}, False, None),
        (502, {}, False, None),
        (503, {"Retry-After": "120"}, False, 120.0),
        (429, {"Retry-After": "7"}, False, 7.0),
        (429, {"Retry-After": "Mon, 01 Jul 2024 12:43:05 GMT"}, False, 60.0),
        (408, {}, False, None),
        (400, {}, True, None),
        (403, {}, True, None),
        (404, {}, True, None),
        (410, {}, True, None),
        (301, {"Location": "http://127.0.0.1:1/elsewhere"}, True, None),
    ],
)
def test_webhook_status_is_classified(
    hook: WebhookReceiver, status: int, headers: dict[str, str], fatal: bool, retry_after: float | None
) -> None:
    hook.responses.append((status, headers, f"status {status}"))
    err = _fail(_hook(hook.url))
    assert err.fatal is fatal and err.retry_after == retry_after
    assert str(status) in str(err) and len(hook.requests) == 1


def test_webhook_error_never_shows_secret(hook: WebhookReceiver) -> None:
    hook.responses.append((400, {}, f"bad signature for secret {SECRET}"))  # a receiver that leaks it back
    err = _fail(_hook(hook.url))
    assert SECRET not in str(err) and "***" in str(err)


def test_webhook_unencodable_text_is_fatal(hook: WebhookReceiver) -> None:
    assert _fail(_hook(hook.url), "bad \ud800").fatal and not hook.requests


@pytest.mark.parametrize(
    ("url", "secret", "needle"),
    [("", SECRET, "alerts.webhook.url"), ("ftp://x/", SECRET, "http"), ("https://hooks.example/", None, "SECRET")],
)
def test_webhook_not_configured(url: str, secret: str | None, needle: str) -> None:
    with pytest.raises(NotConfiguredError, match=needle):
        WebhookNotifier(url, secret, timeout=1)


def test_parse_retry_after() -> None:
    assert parse_retry_after("30", NOW) == 30
    assert parse_retry_after("Mon, 01 Jul 2024 12:42:00 GMT", NOW) == 0  # in the past
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None
