"""A small real SMTP server on 127.0.0.1 for tests (RFC 5321 subset), with failure injection.

Speaks EHLO/HELO, STARTTLS and implicit TLS (given a server SSLContext), AUTH PLAIN, MAIL FROM, RCPT TO, DATA,
RSET, NOOP and QUIT over a socketserver thread, so the notifier's real smtplib client is exercised end to end.
Failures: a chosen greeting, per-recipient RCPT replies, a DATA reply, an AUTH reply (optionally echoing the
credentials it received, as a careless server might), dropping the connection at a given command, and
`stall_data` (the message is accepted but the reply comes late: a client timeout that did deliver). `port`
restarts a server on the port of an earlier one (a relay that was unreachable for a while).
"""

from __future__ import annotations

import base64
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

Reply = tuple[int, str]


@dataclass
class Received:
    mail_from: str
    rcpt_to: list[str]
    data: bytes
    tls: bool
    user: str | None


@dataclass
class _Session:
    tls: bool
    user: str | None = None
    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)


class FakeSmtpServer:
    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        greeting: Reply = (220, "fake.test ESMTP ready"),
        port: int = 0,
    ) -> None:
        self.credentials = credentials
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.greeting = greeting
        self.rcpt_replies: dict[str, Reply] = {}
        self.data_reply: Reply = (250, "2.0.0 OK queued")
        self.auth_reply: Reply | None = None
        self.echo_credentials = False
        self.drop_on: str | None = None
        self.stall_data = 0.0  # seconds to wait before answering the next DATA (the message is kept)
        self.commands: list[str] = []
        self.messages: list[Received] = []
        self._server = _Server(("127.0.0.1", port), _Handler, bind_and_activate=True)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> FakeSmtpServer:
        self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True


class _Handler(socketserver.StreamRequestHandler):
    fake: FakeSmtpServer
    session: _Session

    def setup(self) -> None:
        self.fake = self.server.fake  # type: ignore[attr-defined]
        if self.fake.implicit_tls and self.fake.tls_context is not None:
            self.request = self.fake.tls_context.wrap_socket(self.request, server_side=True)
        super().setup()
        self.session = _Session(tls=self.fake.implicit_tls)

    def handle(self) -> None:
        self.reply(*self.fake.greeting)
        if self.fake.greeting[0] != 220:
            return
        while line := self.rfile.readline():
            verb, _, arg = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            verb = verb.upper()
            self.fake.commands.append(verb)
            if verb == self.fake.drop_on:
                return
            command: Callable[[str], bool] | None = getattr(self, f"do_{verb}", None)
            if command is None:
                self.reply(502, "5.5.1 command not implemented")
            elif not command(arg):
                return

    def reply(self, code: int, *lines: str) -> None:
        out = [f"{code}-{text}" for text in lines[:-1]] + [f"{code} {lines[-1] if lines else ''}"]
        self.wfile.write(("\r\n".join(out) + "\r\n").encode("utf-8"))

    def do_EHLO(self, arg: str) -> bool:
        ext = ["fake.test", "SIZE 10000000", "8BITMIME"]
        if self.fake.credentials is not None:
            ext.append("AUTH PLAIN")
        if self.fake.tls_context is not None and not self.session.tls:
            ext.append("STARTTLS")
        self.reply(250, *ext)
        return True

    def do_HELO(self, arg: str) -> bool:
        self.reply(250, "fake.test")
        return True

    def do_STARTTLS(self, arg: str) -> bool:
        if self.fake.tls_context is None or self.session.tls:
            self.reply(502, "5.5.1 STARTTLS not available")
            return True
        self.reply(220, "2.0.0 ready to start TLS")
        self.request = self.fake.tls_context.wrap_socket(self.request, server_side=True)
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb", buffering=0)
        self.session = _Session(tls=True)
        return True

    def do_AUTH(self, arg: str) -> bool:
        mechanism, _, blob = arg.partition(" ")
        if mechanism.upper() != "PLAIN" or self.fake.credentials is None:
            self.reply(504, "5.5.4 mechanism not supported")
            return True
        if not blob:
            self.reply(334, "")
            blob = self.rfile.readline().decode().strip()
        echo = f" (got {blob})" if self.fake.echo_credentials else ""
        if self.fake.auth_reply is not None:
            self.reply(self.fake.auth_reply[0], self.fake.auth_reply[1] + echo)
            return True
        _, user, password = base64.b64decode(blob).decode("utf-8").split("\0")
        if (user, password) != self.fake.credentials:
            self.reply(535, "5.7.8 authentication credentials invalid" + echo)
            return True
        self.session.user = user
        self.reply(235, "2.7.0 authentication successful")
        return True

    def do_MAIL(self, arg: str) -> bool:
        if self.fake.credentials is not None and self.session.user is None:
            self.reply(530, "5.7.0 authentication required")
            return True
        self.session.mail_from = _address(arg)
        self.session.rcpt_to = []
        self.reply(250, "2.1.0 OK")
        return True

    def do_RCPT(self, arg: str) -> bool:
        address = _address(arg)
        code, text = self.fake.rcpt_replies.get(address, (250, "2.1.5 OK"))
        if code == 250:
            self.session.rcpt_to.append(address)
        self.reply(code, text)
        return True

    def do_DATA(self, arg: str) -> bool:
        if self.session.mail_from is None or not self.session.rcpt_to:
            self.reply(503, "5.5.1 need MAIL and RCPT first")
            return True
        self.reply(354, "end data with <CR><LF>.<CR><LF>")
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b""):
            lines.append(line[1:] if line.startswith(b".") else line)
        code, text = self.fake.data_reply
        if code == 250:
            s = self.session
            self.fake.messages.append(Received(s.mail_from or "", list(s.rcpt_to), b"".join(lines), s.tls, s.user))
        self.session.mail_from, self.session.rcpt_to = None, []
        stall, self.fake.stall_data = self.fake.stall_data, 0.0
        if stall:
            time.sleep(stall)  # the fake server answers late; the test itself never sleeps
            try:
                self.reply(code, text)
            except OSError:
                return False  # the client gave up waiting
            return True
        self.reply(code, text)
        return True

    def do_RSET(self, arg: str) -> bool:
        self.session.mail_from, self.session.rcpt_to = None, []
        self.reply(250, "2.0.0 OK")
        return True

    def do_NOOP(self, arg: str) -> bool:
        self.reply(250, "2.0.0 OK")
        return True

    def do_QUIT(self, arg: str) -> bool:
        self.reply(221, "2.0.0 bye")
        return False


def _address(arg: str) -> str:
    """`FROM:<a@b> SIZE=1` or `TO:<a@b>` → `a@b`."""
    _, _, rest = arg.partition(":")
    return rest.strip().split(" ")[0].strip("<>")
