"""Email notifier: one plain-text UTF-8 message per configured address, over SMTP (stdlib smtplib in a thread).

Contract: `send(receiver, body)` opens one SMTP session (implicit TLS, STARTTLS or plain, per config), logs in
when a user and password are configured, and submits one message whose Subject is the body's first line
(RFC 2047-encoded by `email.message.EmailMessage`) and whose text is the whole body. It returns when the server
accepted the message, otherwise raises DeliveryError: connection failures, timeouts, a dropped session and
4xx replies are transient; 5xx replies (550 mailbox unavailable, 553 bad address, 535 authentication failed),
a refused TLS certificate and a server without a required extension are fatal. A failure once DATA has begun
(a reply that timed out, a dropped session) may come after the server kept the message (`maybe_delivered`).
`send` returns the Message-ID header of the sent message. Error messages never carry the password (a server
that echoes credentials back is scrubbed). Credentials are refused over an unencrypted session except to a
loopback relay.
"""

from __future__ import annotations

import asyncio
import base64
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import ClassVar, Literal

from alerts.clock import Clock, SystemClock
from alerts.notifiers.base import DeliveryError, NotConfiguredError, SendMeta
from alerts.notifiers.limits import LIMITS, truncate

Security = Literal["starttls", "tls", "none"]
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_SUBJECT = "舆情告警"
MAX_SUBJECT_CHARS = LIMITS["email_subject"].size


def build_message(body: str, *, sender: str, receiver: str, clock: Clock) -> EmailMessage:
    """The message for one receiver: Subject = first non-empty line of the body, text = the body."""
    headline = next((line.strip() for line in body.splitlines() if line.strip()), "") or DEFAULT_SUBJECT
    headline = truncate(headline, MAX_SUBJECT_CHARS)
    msg = EmailMessage()
    msg["Subject"] = headline
    msg["From"] = sender
    msg["To"] = receiver
    msg["Date"] = format_datetime(clock.now())
    domain = sender.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(idstring="yuqing", domain=domain)
    msg.set_content(body, charset="utf-8", cte="base64")  # 7-bit safe for any server
    return msg


class EmailNotifier:
    name: ClassVar[str] = "email"
    format: ClassVar[Literal["text", "html"]] = "text"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security,
        sender: str,
        to: list[str],
        timeout: float,
        user: str | None = None,
        password: str | None = None,
        clock: Clock | None = None,
        ssl_context: ssl.SSLContext | None = None,
        helo_name: str | None = None,
    ) -> None:
        if not host:
            raise NotConfiguredError("no SMTP server (alerts.email.host)")
        if not sender or "@" not in sender:
            raise NotConfiguredError("no sender address (alerts.email.sender)")
        if not to:
            raise NotConfiguredError("no recipients (alerts.email.to)")
        if bool(user) != bool(password):
            raise NotConfiguredError("set both YUQING_SMTP_USER and YUQING_SMTP_PASSWORD, or neither")
        if not (user or "").isascii() or not (password or "").isascii():
            raise NotConfiguredError("YUQING_SMTP_USER/YUQING_SMTP_PASSWORD must be ASCII (smtplib AUTH limitation)")
        if password and security == "none" and host.lower() not in LOOPBACK_HOSTS:
            raise NotConfiguredError("refusing to send the SMTP password unencrypted (alerts.email.security: none)")
        self._host, self._port, self._security = host, port, security
        self._sender, self._to, self._timeout = sender, list(to), timeout
        self._user, self._password = user, password
        self._clock: Clock = clock or SystemClock()
        self._ssl = ssl_context or ssl.create_default_context()
        self._helo = helo_name

    def receivers(self) -> list[str]:
        return list(self._to)

    async def send(self, receiver: str, body: str, meta: SendMeta | None = None) -> str | None:
        try:
            msg = build_message(body, sender=self._sender, receiver=receiver, clock=self._clock)
        except ValueError as exc:  # a header with a line break, text that cannot be encoded
            raise DeliveryError(self._scrub(f"message cannot be built: {exc}"), fatal=True) from None
        try:
            await asyncio.to_thread(self._submit, msg, receiver)
        except DeliveryError as exc:
            raise DeliveryError(self._scrub(str(exc)), fatal=exc.fatal, retry_after=exc.retry_after,
                                maybe_delivered=exc.maybe_delivered) from None
        return str(msg["Message-ID"])

    async def close(self) -> None:
        return None  # one SMTP session per message: nothing stays open

    def _submit(self, msg: EmailMessage, receiver: str) -> None:
        """One SMTP transaction. A failure once DATA has begun leaves it unknown whether the server kept the
        message (e.g. it stored it, then the reply timed out): such a transient error is `maybe_delivered`."""
        payload = msg.as_bytes()
        in_data = False
        try:
            with self._connect() as smtp:
                if self._security == "starttls":
                    smtp.starttls(context=self._ssl)
                if self._user and self._password:
                    smtp.login(self._user, self._password)
                smtp.ehlo_or_helo_if_needed()
                code, reply = smtp.mail(self._sender)
                if code != 250:
                    raise smtplib.SMTPSenderRefused(code, reply, self._sender)
                code, reply = smtp.rcpt(receiver)
                if code not in (250, 251):
                    raise smtplib.SMTPRecipientsRefused({receiver: (code, reply)})
                in_data = True
                code, reply = smtp.data(payload)
                if code != 250:
                    raise smtplib.SMTPDataError(code, reply)
        except (OSError, ValueError) as exc:  # smtplib, ssl and socket errors are all OSError
            err = classify(exc)
            err.maybe_delivered = in_data and not err.fatal
            raise err from None

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(
                self._host, self._port, local_hostname=self._helo, timeout=self._timeout, context=self._ssl
            )
        return smtplib.SMTP(self._host, self._port, local_hostname=self._helo, timeout=self._timeout)

    def _scrub(self, text: str) -> str:
        """Remove the password (plain or in an AUTH PLAIN/LOGIN encoding) from an error message."""
        if not self._password:
            return text
        user = self._user or ""
        forms = [
            self._password,
            base64.b64encode(self._password.encode()).decode(),
            base64.b64encode(f"\0{user}\0{self._password}".encode()).decode(),
        ]
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, "***")
        return text


def classify(exc: BaseException) -> DeliveryError:
    """A smtplib/socket failure as the outbox needs it: transient (retry later) or fatal."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {_text(reply)}" for rcpt, (code, reply) in exc.recipients.items())
        return DeliveryError(f"recipient refused: {detail}", fatal=not any(400 <= c < 500 for c in codes))
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        kind = type(exc).__name__
        return DeliveryError(f"{kind}: {code} {_text(exc.smtp_error)}", fatal=not 400 <= code < 500)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"SMTP server disconnected: {exc}", fatal=False)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return DeliveryError(f"SMTP server lacks a required extension: {exc}", fatal=True)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(f"TLS certificate refused: {exc.verify_message}", fatal=True)
    if isinstance(exc, smtplib.SMTPException):  # checked before OSError, its base class
        return DeliveryError(f"SMTP error: {exc}", fatal=True)  # e.g. no common authentication mechanism
    if isinstance(exc, TimeoutError):
        return DeliveryError("SMTP timed out", fatal=False)
    if isinstance(exc, OSError):
        return DeliveryError(f"SMTP connection failed: {exc.strerror or exc}", fatal=False)
    return DeliveryError(f"message cannot be sent: {type(exc).__name__}: {exc}", fatal=True)  # ValueError


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
