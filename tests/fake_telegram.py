"""A fake Telegram Bot API server for tests (standard library only).

It speaks the real HTTP protocol and JSON shapes of https://core.telegram.org/bots/api, so the real
python-telegram-bot library (or any other client) talks to it unchanged::

    with FakeTelegramServer() as server:
        bot = telegram.Bot("123456:" + "A" * 30, base_url=server.base_url)
        ...                                   # application code sends alerts through `bot`
        server.wait_for(1)                    # block until one message was sent (or TimeoutError)
        assert server.messages[0]["text"] == "<b>预警</b> ..."

Requests are ``{base_url}{token}/{method}`` (base_url is ``http://127.0.0.1:PORT/bot``), GET or POST,
with parameters in the query string and/or an ``application/x-www-form-urlencoded``,
``application/json`` or ``multipart/form-data`` body — python-telegram-bot uses form encoding (with
JSON-encoded values for objects such as ``reply_markup``) and multipart for file uploads.

Behaviour modelled on the real server:

* tokens must look like ``123456:ABC...`` (20+ characters after the colon) → else 401 Unauthorized;
  unknown methods → 404 Not Found; method names are case-insensitive, as on the real server;
* ``parse_mode=HTML`` is parsed like the real server: only Telegram's tags, balanced, and only the
  ``&lt; &gt; &amp; &quot;`` and numeric entities (stricter than the real server, which keeps an
  unknown ``&name;`` literally — set ``strict_html_entities = False`` for that behaviour); errors are
  ``400 Bad Request: can't parse entities: ...``. Returned messages carry the parsed plain text and
  the ``entities`` list (UTF-16 offsets), like the real API;
* ``message is too long`` (> 4096 characters after parsing), ``message text is empty``,
  ``chat not found`` (when ``known_chats`` is set), ``message is not modified``,
  ``message to edit not found``, ``BUTTON_DATA_INVALID`` (callback_data over 64 bytes),
  ``query is too old ...`` for unknown callback query ids, and editMessageText without reply_markup
  removing the inline keyboard (a real-world gotcha);
* getUpdates with offset confirmation and long polling (``timeout``), returning as soon as an update
  is pushed.

Test helpers: recordings (``messages``, ``documents``, ``requests``, ``callback_answers``), a blocking
``wait_for``, failure injection (``fail_next``, ``down``, ``latency``), update injection
(``push_update``, ``push_message``, ``push_callback_query``) and ``clear``.

Standalone, for trying the application by hand::

    python -m tests.fake_telegram --port 8081

prints one line per message the bot sends. Updates can be injected from another shell through a
small control API (not part of the Bot API)::

    curl -s localhost:8081/_fake/push_message -d '{"chat_id": 1, "user_id": 1, "text": "/start"}'
    curl -s localhost:8081/_fake/push_callback_query -d '{"chat_id": 1, "user_id": 1, "data": "ack:1"}'
    curl -s localhost:8081/_fake/messages
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import re
import signal
import socket
import sys
import threading
import time
import traceback
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

JSONDict = dict[str, Any]

TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
MAX_TEXT_LENGTH = 4096  # characters after entity parsing
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
# Fields of an InlineKeyboardButton of which exactly one must be present.
_BUTTON_ACTIONS = {
    "callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat", "login_url", "web_app", "callback_game", "pay", "copy_text",
}

__all__ = ["ApiError", "FakeTelegramServer", "HtmlParseError", "parse_html"]


# ==================================================================================================
# Errors
# ==================================================================================================
class ApiError(Exception):
    """An error response of the Bot API: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def payload(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: {detail}")


class HtmlParseError(ValueError):
    """Raised by :func:`parse_html`; the message is what follows "can't parse entities: "."""


# ==================================================================================================
# HTML parse mode (a port of the rules Telegram's server applies; see "Formatting options" in the
# Bot API documentation)
# ==================================================================================================
# tag name -> MessageEntity type
_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});")
_TAG_NAME_RE = re.compile(r"[A-Za-z0-9-]*")
_ATTR_NAME_RE = re.compile(r"[A-Za-z0-9_-]+")


def _decode_entity(text: str, index: int) -> tuple[str, int] | None:
    """Decode the entity at ``text[index] == "&"``: (character, end index), or None when unsupported."""
    m = _ENTITY_RE.match(text, index)
    if not m:
        return None
    name = m.group(1)
    if name.startswith("#"):
        code = int(name[2:], 16) if name[1:2] in ("x", "X") else int(name[1:])
        if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            return None
        return chr(code), m.end()
    if name in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[name], m.end()
    return None


def _u16len(text: str) -> int:
    """Length in UTF-16 code units — the unit of MessageEntity offsets and lengths."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset into the plain text


def parse_html(text: str, *, strict_entities: bool = True) -> tuple[str, list[JSONDict]]:
    """Parse Telegram-flavoured HTML into ``(plain_text, entities)`` or raise :class:`HtmlParseError`.

    Offsets in error messages are UTF-8 byte offsets, as in the real server's messages.
    """

    def byte_offset(index: int) -> int:
        return len(text[:index].encode("utf-8"))

    def unescape_attr(value: str, at: int) -> str:
        """Decode entities inside an attribute value (e.g. href="...&amp;...")."""
        chars: list[str] = []
        k = 0
        while k < len(value):
            if value[k] == "&":
                decoded = _decode_entity(value, k)
                if decoded is not None:
                    chars.append(decoded[0])
                    k = decoded[1]
                    continue
                if strict_entities:
                    raise HtmlParseError(
                        f"Unsupported HTML entity in attribute at byte offset {byte_offset(at)}"
                    )
            chars.append(value[k])
            k += 1
        return "".join(chars)

    out: list[str] = []
    out_len = 0  # UTF-16 length of "".join(out)
    stack: list[_OpenTag] = []
    entities: list[JSONDict] = []
    n = len(text)
    i = 0

    def emit(chunk: str) -> None:
        nonlocal out_len
        out.append(chunk)
        out_len += _u16len(chunk)

    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                emit(decoded[0])
                i = decoded[1]
                continue
            if strict_entities:
                m = re.match(r"&[^\s&;<]{0,32};?", text[i:])
                shown = m.group(0) if m else "&"
                raise HtmlParseError(
                    f'Unsupported HTML entity "{shown}" at byte offset {byte_offset(i)}; '
                    "only &lt; &gt; &amp; &quot; and numeric entities are allowed"
                )
            emit("&")
            i += 1
            continue
        if ch != "<":
            # Copy a run of ordinary characters at once.
            j = i + 1
            while j < n and text[j] not in "<&":
                j += 1
            emit(text[i:j])
            i = j
            continue

        tag_start = i
        if text.startswith("</", i):
            # ---- end tag ----
            m = _TAG_NAME_RE.match(text, i + 2)
            assert m is not None  # the pattern matches the empty string
            name = m.group(0).lower()
            j = m.end()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                raise HtmlParseError(f"Unclosed end tag at byte offset {byte_offset(tag_start)}")
            i = j + 1
            if not stack:
                raise HtmlParseError(f'Unexpected end tag at byte offset {byte_offset(tag_start)}')
            open_tag = stack.pop()
            if open_tag.name != name:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {byte_offset(tag_start)}, "
                    f'expected "</{open_tag.name}>", found "</{name}>"'
                )
            _close_entity(open_tag, out_len, "".join(out), stack, entities)
            continue

        # ---- start tag ----
        m = _TAG_NAME_RE.match(text, i + 1)
        assert m is not None
        name = m.group(0).lower()
        if name not in _TAG_ENTITY:
            raise HtmlParseError(f'Unsupported start tag "{name}" at byte offset {byte_offset(tag_start)}')
        j = m.end()
        attrs: dict[str, str] = {}
        while True:
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                raise HtmlParseError(f"Unclosed start tag at byte offset {byte_offset(tag_start)}")
            if text[j] == ">":
                j += 1
                break
            am = _ATTR_NAME_RE.match(text, j)
            if not am:
                raise HtmlParseError(f'Expected equal sign in declaration of an attribute of the tag "{name}"'
                                     f" at byte offset {byte_offset(tag_start)}")
            attr = am.group(0).lower()
            j = am.end()
            while j < n and text[j].isspace():
                j += 1
            value = ""
            if j < n and text[j] == "=":
                j += 1
                while j < n and text[j].isspace():
                    j += 1
                if j >= n:
                    raise HtmlParseError(f"Unclosed start tag at byte offset {byte_offset(tag_start)}")
                if text[j] in "\"'":
                    quote = text[j]
                    end = text.find(quote, j + 1)
                    if end < 0:
                        raise HtmlParseError(f"Unclosed start tag at byte offset {byte_offset(tag_start)}")
                    value = text[j + 1 : end]
                    j = end + 1
                else:
                    vm = re.compile(r"[^\s>]*").match(text, j)
                    assert vm is not None
                    value = vm.group(0)
                    j = vm.end()
                value = unescape_attr(value, tag_start)
            attrs[attr] = value
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError('Tag "span" must have class "tg-spoiler"')
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise HtmlParseError("Custom emoji entity must contain a valid custom emoji identifier")
        stack.append(_OpenTag(name, attrs, out_len))
        i = j

    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _close_entity(
    tag: _OpenTag, end: int, plain: str, stack: list[_OpenTag], entities: list[JSONDict]
) -> None:
    """Turn a closed tag into a MessageEntity (zero-length entities are dropped, as on Telegram)."""
    length = end - tag.start
    if length <= 0:
        return
    kind = _TAG_ENTITY[tag.name]
    entity: JSONDict = {"type": kind, "offset": tag.start, "length": length}
    if kind == "text_link":
        href = tag.attrs.get("href")
        if href is None:  # <a>url</a>: the text itself is the link
            inner = plain.encode("utf-16-le")[tag.start * 2 : end * 2].decode("utf-16-le")
            href = inner
        entity["url"] = href
    elif kind == "code":
        # <pre><code class="language-python">...</code></pre> sets the language of the pre entity.
        language = tag.attrs.get("class", "")
        if language.startswith("language-") and stack and stack[-1].name == "pre":
            stack[-1].attrs["language"] = language[len("language-") :]
            return
    elif kind == "pre" and tag.attrs.get("language"):
        entity["language"] = tag.attrs["language"]
    elif kind == "blockquote" and "expandable" in tag.attrs:
        entity["type"] = "expandable_blockquote"
    elif kind == "custom_emoji":
        entity["custom_emoji_id"] = tag.attrs["emoji-id"]
    entities.append(entity)


# ==================================================================================================
# Request parsing
# ==================================================================================================
@dataclass
class Upload:
    """A file part of a multipart/form-data request."""

    field: str
    filename: str
    content_type: str
    data: bytes


_HEADER_PARAM_RE = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def _header_params(value: str) -> dict[str, str]:
    """Parameters of a header such as ``form-data; name="document"; filename="报告.csv"``."""
    params: dict[str, str] = {}
    for key, raw in _HEADER_PARAM_RE.findall(value):
        raw = raw.strip()
        if raw.startswith('"'):
            # Quoted-string; httpx (HTML5 style) also percent-encodes '"' as %22.
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1]).replace("%22", '"')
        key = key.lower()
        if key.endswith("*"):  # RFC 5987: filename*=utf-8''%E6%8A%A5.csv
            key = key[:-1]
            charset, _, rest = raw.partition("'")
            _, _, encoded = rest.partition("'")
            raw = unquote(encoded, encoding=charset or "utf-8", errors="replace")
        params[key] = raw
    return params


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], dict[str, Upload]]:
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type, re.IGNORECASE)
    if not m:
        raise bad_request("can't parse multipart/form-data: no boundary")
    delimiter = b"\r\n--" + (m.group(1) or m.group(2)).encode("latin-1")
    fields: dict[str, Any] = {}
    files: dict[str, Upload] = {}
    # Prefixing CRLF makes the first delimiter look like all the others.
    chunks = (b"\r\n" + body).split(delimiter)
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # closing delimiter
            break
        head_end = chunk.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        headers: dict[str, str] = {}
        for line in chunk[:head_end].split(b"\r\n"):
            if b":" in line:
                key, _, value = line.partition(b":")
                headers[key.strip().lower().decode("latin-1")] = value.strip().decode("utf-8", "replace")
        content = chunk[head_end + 4 :]
        disposition = _header_params(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if name is None:
            continue
        if "filename" in disposition:
            files[name] = Upload(
                field=name,
                filename=disposition["filename"],
                content_type=headers.get("content-type", "application/octet-stream"),
                data=content,
            )
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields, files


def _parse_request(query: str, content_type: str, body: bytes) -> tuple[JSONDict, dict[str, Upload]]:
    """Merge query-string and body parameters, whatever the body's encoding."""
    params: JSONDict = dict(parse_qsl(query, keep_blank_values=True))
    files: dict[str, Upload] = {}
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            obj = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError) as exc:
            raise bad_request("can't parse JSON object") from exc
        if not isinstance(obj, dict):
            raise bad_request("can't parse JSON object")
        params.update(obj)
    elif ctype == "multipart/form-data":
        fields, files = _parse_multipart(body, content_type)
        params.update(fields)
    elif body and ctype in ("application/x-www-form-urlencoded", ""):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return params, files


# Parameter accessors: form-encoded values are strings (objects JSON-encoded), JSON bodies are typed.
def _opt_str(params: JSONDict, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _opt_int(params: JSONDict, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(float(value)) if not isinstance(value, bool) else int(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid {name} specified") from exc


def _opt_float(params: JSONDict, name: str) -> float | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"invalid {name} specified") from exc


def _opt_bool(params: JSONDict, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _opt_json(params: JSONDict, name: str, error: str) -> Any:
    value = params.get(name)
    if isinstance(value, str):
        if value == "":
            return None
        try:
            return json.loads(value)
        except ValueError as exc:
            raise bad_request(error) from exc
    return value


# ==================================================================================================
# The HTTP layer
# ==================================================================================================
class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for keep-alive connections or long polls
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeTelegramServer) -> None:
        self.fake = fake
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), which can stall on DNS; skip it.
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like api.telegram.org
    server_version = "FakeTelegramBotAPI/1.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    # Headers and body go out in separate writes: with Nagle's algorithm on, a keep-alive client's delayed ACK
    # stalls every response by ~40 ms (api.telegram.org has no such stall), which would swamp latency figures.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet; recordings are available on the FakeTelegramServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        fake = self.server.fake
        try:
            body = self._read_body()
            status, payload = fake._dispatch(
                self.command, self.path, self.headers.get("Content-Type", ""), body
            )
        except Exception as exc:  # a bug in the fake must not look like a network failure
            traceback.print_exc()
            status, payload = 500, ApiError(500, f"Internal Server Error: {exc}").payload()
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if fake._stopping.is_set():
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away (e.g. a cancelled long poll)


# ==================================================================================================
# The fake server
# ==================================================================================================
MessagePredicate = Callable[[list[JSONDict]], Any]


class FakeTelegramServer:
    """An in-process fake of the Telegram Bot API; see the module docstring.

    Recordings (read them through the properties, which return snapshots):

    * ``messages`` — one dict per message-level call (sendMessage, editMessageText,
      editMessageReplyMarkup, deleteMessage), in order: ``method, chat_id, text, parse_mode,
      reply_markup, message_id, at`` (+ ``plain_text``, ``entities``). ``text`` is exactly what the
      client sent (HTML included); ``plain_text`` is the text after parsing.
    * ``documents`` — sendDocument calls: ``method, chat_id, filename, content (bytes), mime_type,
      caption, parse_mode, reply_markup, message_id, at``.
    * ``callback_answers`` — answerCallbackQuery calls.
    * ``requests`` — every Bot API call, including failed ones: ``method, http_method, token,
      params, files, status, response, at``.

    All state is guarded by one condition variable, so the server is safe to use from test threads
    while the HTTP threads serve requests.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        known_chats: Iterable[int | str] | None = None,
        latency: float = 0.0,
        bot_username: str = "yuqing_test_bot",
        bot_first_name: str = "Yuqing Test Bot",
        strict_html_entities: bool = True,
        tokens: Iterable[str] | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        #: Chats that exist (ids or "@usernames"); None accepts any chat id.
        self.known_chats: set[int | str] | None = set(known_chats) if known_chats is not None else None
        #: Seconds added before every response; per-method extra latency in ``method_latency``.
        self.latency = latency
        self.method_latency: dict[str, float] = {}
        #: Per-method seconds to wait *after* a call succeeded (the message is recorded: Telegram has it)
        #: before answering — the window in which a sender that dies or times out cannot know it was sent.
        self.accepted_latency: dict[str, float] = {}
        #: When True every request fails with 502 Bad Gateway (Telegram unreachable behind its proxy).
        self.down = False
        #: Valid tokens; None accepts any well-formed token.
        self.tokens: set[str] | None = set(tokens) if tokens is not None else None
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.strict_html_entities = strict_html_entities
        #: Called (outside the lock) with each new ``messages``/``documents`` record; used by the CLI.
        self.on_record: Callable[[JSONDict], None] | None = None

        self._cond = threading.Condition(threading.RLock())
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bot_token = "1:"
        # Message ids and stored Message objects per numeric chat id; kept by clear() so that
        # message ids keep increasing and earlier messages stay editable.
        self._message_counters: dict[int, int] = {}
        self._stored: dict[tuple[int, int], JSONDict] = {}
        self._reset_state()
        self._update_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._methods: dict[str, Callable[[JSONDict, dict[str, Upload]], Any]] = {
            "getme": self._get_me,
            "logout": self._ok_true,
            "close": self._ok_true,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "deletemessage": self._delete_message,
            "senddocument": self._send_document,
            "sendchataction": self._send_chat_action,
            "answercallbackquery": self._answer_callback_query,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getchat": self._get_chat,
        }

    def _reset_state(self) -> None:
        self._messages: list[JSONDict] = []
        self._documents: list[JSONDict] = []
        self._requests: list[JSONDict] = []
        self._callback_answers: list[JSONDict] = []
        self._updates: list[JSONDict] = []
        self._failures: dict[str, deque[ApiError]] = {}
        self._pending_callback_ids: set[str] = set()
        self._commands: list[JSONDict] = []
        self._webhook_url = ""

    # ---------------------------------------------------------------------------------- lifecycle
    def start(self) -> FakeTelegramServer:
        """Bind and serve in a daemon thread. Returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-telegram", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wakes long polls, closes the listening socket and open connections."""
        httpd = self._httpd
        if httpd is None:
            return
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        httpd.shutdown()
        httpd.server_close()
        with httpd.connections_lock:
            connections = list(httpd.open_connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeTelegramServer is not started")
        return self._httpd.server_port

    @property
    def url(self) -> str:
        """``http://host:port``"""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The value for ``telegram.Bot(token, base_url=...)``: ``http://host:port/bot``."""
        return f"{self.url}/bot"

    # ---------------------------------------------------------------------------------- recordings
    @property
    def messages(self) -> list[JSONDict]:
        with self._cond:
            return copy.deepcopy(self._messages)

    @property
    def sent_texts(self) -> list[str]:
        """Texts of sendMessage calls, as sent (HTML included)."""
        with self._cond:
            return [m["text"] for m in self._messages if m["method"] == "sendMessage"]

    @property
    def documents(self) -> list[JSONDict]:
        with self._cond:
            return copy.deepcopy(self._documents)

    @property
    def requests(self) -> list[JSONDict]:
        with self._cond:
            return copy.deepcopy(self._requests)

    @property
    def callback_answers(self) -> list[JSONDict]:
        with self._cond:
            return copy.deepcopy(self._callback_answers)

    @property
    def pending_updates(self) -> list[JSONDict]:
        """Updates not yet confirmed by a getUpdates offset."""
        with self._cond:
            return copy.deepcopy(self._updates)

    @property
    def commands(self) -> list[JSONDict]:
        """The command list last set with setMyCommands."""
        with self._cond:
            return copy.deepcopy(self._commands)

    def wait_for(self, condition: int | MessagePredicate = 1, timeout: float = 5.0) -> Any:
        """Block until the bot has produced enough messages; returns the result, or raises TimeoutError.

        ``condition`` is either a count — wait until ``len(messages) >= count`` and return the
        messages — or a predicate called with a snapshot of ``messages`` whose first truthy result
        is returned. (From async tests, use ``await asyncio.to_thread(server.wait_for, ...)``.)
        """
        check: MessagePredicate
        if isinstance(condition, int):
            count = condition

            def check(messages: list[JSONDict]) -> Any:
                return messages if len(messages) >= count else None
        else:
            check = condition
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = check(copy.deepcopy(self._messages))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    summary = [(m["method"], m["chat_id"], m["text"]) for m in self._messages]
                    raise TimeoutError(
                        f"condition not met within {timeout}s; {len(summary)} message(s) recorded: {summary}"
                    )
                self._cond.wait(min(remaining, 0.1))

    def clear(self) -> None:
        """Forget recordings, queued updates, pending failures and the command list.

        Configuration (known_chats, latency, down, tokens) stays; message ids keep increasing.
        """
        with self._cond:
            self._reset_state()
            self._cond.notify_all()

    # ---------------------------------------------------------------------------------- failure injection
    def fail_next(
        self,
        method: str,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" = any method) fail with ``status``.

        A 429 with ``retry_after`` carries ``"parameters": {"retry_after": N}`` (python-telegram-bot
        raises ``telegram.error.RetryAfter``). The default description mimics the real server's.
        """
        if description is None:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
                retry_after = retry_after or 1
            elif status == 403:
                description = "Forbidden: bot was blocked by the user"
            elif status == 400:
                description = "Bad Request"
            else:
                try:
                    description = HTTPStatus(status).phrase
                except ValueError:
                    description = "Error"
        parameters = {"retry_after": retry_after} if retry_after is not None else None
        with self._cond:
            queue = self._failures.setdefault(method.lower(), deque())
            for _ in range(count):
                queue.append(ApiError(status, description, parameters))

    # ---------------------------------------------------------------------------------- update injection
    def push_update(self, update: JSONDict) -> JSONDict:
        """Queue a raw Update for getUpdates (``update_id`` is assigned when missing)."""
        update = copy.deepcopy(update)
        with self._cond:
            if "update_id" not in update:
                update = {"update_id": next(self._update_ids), **update}  # update_id first, as on Telegram
            else:
                # Keep our counter ahead of explicit ids.
                current = next(self._update_ids)
                self._update_ids = itertools.count(max(current, int(update["update_id"]) + 1))
            query = update.get("callback_query")
            if isinstance(query, dict) and "id" in query:
                self._pending_callback_ids.add(str(query["id"]))
            self._updates.append(update)
            self._cond.notify_all()
            return copy.deepcopy(update)

    def push_message(
        self,
        chat_id: int,
        user_id: int,
        text: str,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> JSONDict:
        """Queue an Update with a text message from a user (``/command`` gets its bot_command entity)."""
        with self._cond:
            message: JSONDict = {
                "message_id": self._next_message_id(chat_id),
                "from": self._user_obj(user_id, first_name, username),
                "chat": self._chat_obj(chat_id),
                "date": int(time.time()),
                "text": text,
            }
            command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
            if command:
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _u16len(command.group(0))}
                ]
            self._stored[(chat_id, message["message_id"])] = message
            return self.push_update({"message": message})

    def push_callback_query(
        self,
        chat_id: int,
        user_id: int,
        data: str,
        message_id: int | None = None,
        *,
        first_name: str | None = None,
        username: str | None = None,
    ) -> JSONDict:
        """Queue an Update for a user pressing an inline button with ``callback_data=data``.

        The query refers to the bot's message ``message_id`` (default: the bot's latest message in
        that chat); a message the fake has not seen is synthesised (and remembered) with empty text.
        """
        with self._cond:
            if message_id is None:
                own = [
                    mid for (cid, mid), m in self._stored.items() if cid == chat_id and m["from"]["is_bot"]
                ]
                if not own:
                    raise ValueError(f"no bot message in chat {chat_id}; pass message_id")
                message_id = max(own)
            message = self._stored.get((chat_id, message_id))
            if message is None:
                message = {
                    "message_id": message_id,
                    "from": self._bot_user(),
                    "chat": self._chat_obj(chat_id),
                    "date": int(time.time()),
                    "text": "",
                }
                self._stored[(chat_id, message_id)] = message
            query = {
                "id": str(4_000_000_000_000_000 + next(self._callback_ids)),
                "from": self._user_obj(user_id, first_name, username),
                "message": copy.deepcopy(message),
                "chat_instance": str(zlib.crc32(f"{chat_id}".encode()) + 1_000_000_000),
                "data": data,
            }
            return self.push_update({"callback_query": query})

    # ---------------------------------------------------------------------------------- dispatch
    def _dispatch(
        self, http_method: str, raw_path: str, content_type: str, body: bytes
    ) -> tuple[int, JSONDict]:
        """Handle one HTTP request; returns (status, JSON payload)."""
        parts = urlsplit(raw_path)
        if parts.path.startswith("/_fake/"):
            return self._control(parts.path[len("/_fake/") :], body)
        m = re.fullmatch(r"/bot([^/]*)/([^/]*)", parts.path)
        if not m:
            return 404, ApiError(404, "Not Found").payload()
        token, method = unquote(m.group(1)), unquote(m.group(2))

        params: JSONDict = {}
        files: dict[str, Upload] = {}
        status, payload = 200, {}
        try:
            params, files = _parse_request(parts.query, content_type, body)
            delay = self.latency + self.method_latency.get(method, 0.0)
            if delay > 0:
                time.sleep(delay)
            if self.down:
                raise ApiError(502, "Bad Gateway")
            if not TOKEN_RE.match(token) or (self.tokens is not None and token not in self.tokens):
                raise ApiError(401, "Unauthorized")
            handler = self._methods.get(method.lower())
            if handler is None:
                raise ApiError(404, "Not Found")
            with self._cond:
                for key in (method.lower(), "*"):
                    queue = self._failures.get(key)
                    if queue:
                        raise queue.popleft()
            self._bot_token = token  # the bot's id (getMe, "from") is the token's numeric part
            payload = {"ok": True, "result": handler(params, files)}
            if self.accepted_latency.get(method, 0.0) > 0:
                time.sleep(self.accepted_latency[method])
        except ApiError as exc:
            status, payload = exc.status, exc.payload()

        record = {
            "method": method,
            "http_method": http_method,
            "token": token,
            "params": copy.deepcopy(params),
            "files": {
                name: {"filename": up.filename, "content_type": up.content_type, "size": len(up.data)}
                for name, up in files.items()
            },
            "status": status,
            "response": payload,
            "at": time.time(),
        }
        with self._cond:
            self._requests.append(record)
            self._cond.notify_all()
        return status, payload

    def _record(self, target: list[JSONDict], record: JSONDict) -> None:
        with self._cond:
            target.append(record)
            self._cond.notify_all()
        callback = self.on_record
        if callback is not None:
            callback(copy.deepcopy(record))

    def _control(self, action: str, body: bytes) -> tuple[int, JSONDict]:
        """The /_fake/... control API used by the standalone CLI (not part of the Bot API)."""
        try:
            args = json.loads(body.decode("utf-8") or "{}") if body else {}
            if action == "messages":
                result: Any = self.messages
            elif action == "documents":
                result = [{k: v for k, v in d.items() if k != "content"} for d in self.documents]
            elif action == "push_update":
                result = self.push_update(args)
            elif action == "push_message":
                result = self.push_message(
                    int(args["chat_id"]), int(args.get("user_id", args["chat_id"])), str(args["text"])
                )
            elif action == "push_callback_query":
                mid = args.get("message_id")
                result = self.push_callback_query(
                    int(args["chat_id"]),
                    int(args.get("user_id", args["chat_id"])),
                    str(args["data"]),
                    int(mid) if mid is not None else None,
                )
            elif action == "clear":
                self.clear()
                result = True
            else:
                return 404, ApiError(404, "Not Found").payload()
        except (KeyError, ValueError, TypeError) as exc:
            return 400, ApiError(400, f"Bad Request: {exc}").payload()
        return 200, {"ok": True, "result": result}

    # ---------------------------------------------------------------------------------- objects
    def _bot_id(self) -> int:
        return int(self._bot_token.split(":", 1)[0])

    def _bot_user(self) -> JSONDict:
        return {
            "id": self._bot_id(),
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    @staticmethod
    def _user_obj(user_id: int, first_name: str | None, username: str | None) -> JSONDict:
        user: JSONDict = {
            "id": user_id,
            "is_bot": False,
            "first_name": first_name or f"User{user_id}",
            "language_code": "zh-hans",
        }
        if username:
            user["username"] = username
        return user

    @staticmethod
    def _chat_obj(chat_id: int, username: str | None = None) -> JSONDict:
        if username is not None:
            return {"id": chat_id, "type": "channel", "title": username, "username": username}
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User{chat_id}"}
        if str(chat_id).startswith("-100"):
            return {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        return {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}

    def _next_message_id(self, chat_id: int) -> int:
        with self._cond:
            self._message_counters[chat_id] = self._message_counters.get(chat_id, 0) + 1
            return self._message_counters[chat_id]

    # ---------------------------------------------------------------------------------- validation
    def _resolve_chat(self, params: JSONDict) -> tuple[int | str, int, str | None]:
        """Return (chat_id as sent, numeric chat id, channel username) or raise ``chat not found``."""
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        username: str | None = None
        if isinstance(raw, str) and raw.startswith("@"):
            username = raw[1:]
            given: int | str = raw
            numeric = -(1_000_000_000_000 + zlib.crc32(username.lower().encode()))
        else:
            try:
                numeric = int(raw)
            except (TypeError, ValueError) as exc:
                raise bad_request("chat not found") from exc
            given = numeric
        if self.known_chats is not None:
            known = {_normalise_chat(c) for c in self.known_chats}
            if given not in known and numeric not in known:
                raise bad_request("chat not found")
        return given, numeric, username

    def _format(self, text: str, parse_mode: str | None) -> tuple[str, list[JSONDict]]:
        mode = (parse_mode or "").strip().lower()
        if mode == "html":
            try:
                return parse_html(text, strict_entities=self.strict_html_entities)
            except HtmlParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from exc
        if mode in ("", "markdown", "markdownv2"):
            return text, []  # Markdown is not validated by this fake
        raise bad_request("unsupported parse_mode")

    @staticmethod
    def _reply_markup(params: JSONDict) -> JSONDict | None:
        markup = _opt_json(params, "reply_markup", "can't parse reply keyboard markup JSON object")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        keyboard = markup.get("inline_keyboard")
        if keyboard is not None:
            if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
                raise bad_request("field \"inline_keyboard\" of the InlineKeyboardMarkup must be an Array")
            for row in keyboard:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise bad_request("text buttons are unallowed in the inline keyboard")
                    data = button.get("callback_data")
                    size = len(str(data).encode("utf-8")) if data is not None else 1
                    if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                        raise bad_request("BUTTON_DATA_INVALID")
                    if not _BUTTON_ACTIONS & button.keys():
                        raise bad_request("text buttons are unallowed in the inline keyboard")
        return markup

    def _text_and_entities(self, params: JSONDict) -> tuple[str, str | None, str, list[JSONDict]]:
        text = _opt_str(params, "text")
        if text is None or not text.strip():
            raise bad_request("message text is empty")
        parse_mode = _opt_str(params, "parse_mode")
        plain, entities = self._format(text, parse_mode)
        if not plain.strip():
            raise bad_request("message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")
        return text, parse_mode, plain, entities

    # ---------------------------------------------------------------------------------- methods
    @staticmethod
    def _ok_true(params: JSONDict, files: dict[str, Upload]) -> bool:
        return True

    def _get_me(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _send_message(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict:
        given, chat_id, username = self._resolve_chat(params)
        text, parse_mode, plain, entities = self._text_and_entities(params)
        markup = self._reply_markup(params)
        message: JSONDict = {
            "message_id": self._next_message_id(chat_id),
            "from": self._bot_user(),
            "chat": self._chat_obj(chat_id, username),
            "date": int(time.time()),
            "text": plain,
        }
        if entities:
            message["entities"] = entities
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup  # only inline keyboards are echoed by Telegram
        with self._cond:
            self._stored[(chat_id, message["message_id"])] = message
        self._record(self._messages, {
            "method": "sendMessage",
            "chat_id": given,
            "text": text,
            "parse_mode": parse_mode,
            "reply_markup": markup,
            "message_id": message["message_id"],
            "at": time.time(),
            "plain_text": plain,
            "entities": entities,
        })
        return copy.deepcopy(message)

    def _stored_message(self, params: JSONDict, action: str) -> tuple[int | str, int, JSONDict]:
        given, chat_id, _ = self._resolve_chat(params)
        message_id = _opt_int(params, "message_id")
        if message_id is None:
            raise bad_request("message identifier is not specified")
        message = self._stored.get((chat_id, message_id))
        if message is None:
            raise bad_request(f"message to {action} not found")
        if action == "edit" and not message["from"]["is_bot"]:
            raise bad_request("message can't be edited")
        return given, chat_id, message

    def _edit_message_text(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict | bool:
        if params.get("inline_message_id"):
            self._text_and_entities(params)
            return True
        with self._cond:
            given, _chat_id, message = self._stored_message(params, "edit")
            text, parse_mode, plain, entities = self._text_and_entities(params)
            markup = self._reply_markup(params)
            inline = markup if markup and "inline_keyboard" in markup else None
            if (plain, entities, inline) == (message.get("text"), message.get("entities", []),
                                             message.get("reply_markup")):
                raise bad_request(
                    "message is not modified: specified new message content and reply markup are exactly "
                    "the same as a current content and reply markup of the message"
                )
            message["text"] = plain
            message.pop("entities", None)
            if entities:
                message["entities"] = entities
            # Like Telegram: editing the text without reply_markup removes the inline keyboard.
            message.pop("reply_markup", None)
            if inline:
                message["reply_markup"] = inline
            message["edit_date"] = int(time.time())
            result = copy.deepcopy(message)
        self._record(self._messages, {
            "method": "editMessageText",
            "chat_id": given,
            "text": text,
            "parse_mode": parse_mode,
            "reply_markup": markup,
            "message_id": message["message_id"],
            "at": time.time(),
            "plain_text": plain,
            "entities": entities,
        })
        return result

    def _edit_message_reply_markup(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict | bool:
        if params.get("inline_message_id"):
            return True
        with self._cond:
            given, _chat_id, message = self._stored_message(params, "edit")
            markup = self._reply_markup(params)
            inline = markup if markup and "inline_keyboard" in markup else None
            if inline == message.get("reply_markup"):
                raise bad_request(
                    "message is not modified: specified new message content and reply markup are exactly "
                    "the same as a current content and reply markup of the message"
                )
            message.pop("reply_markup", None)
            if inline:
                message["reply_markup"] = inline
            message["edit_date"] = int(time.time())
            result = copy.deepcopy(message)
        self._record(self._messages, {
            "method": "editMessageReplyMarkup",
            "chat_id": given,
            "text": None,
            "parse_mode": None,
            "reply_markup": markup,
            "message_id": message["message_id"],
            "at": time.time(),
        })
        return result

    def _delete_message(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        with self._cond:
            given, chat_id, message = self._stored_message(params, "delete")
            del self._stored[(chat_id, message["message_id"])]
        self._record(self._messages, {
            "method": "deleteMessage",
            "chat_id": given,
            "text": None,
            "parse_mode": None,
            "reply_markup": None,
            "message_id": message["message_id"],
            "at": time.time(),
        })
        return True

    def _send_document(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict:
        given, chat_id, username = self._resolve_chat(params)
        upload = files.get("document")
        reference = _opt_str(params, "document")
        if upload is None and reference and reference.startswith("attach://"):
            upload = files.get(reference[len("attach://") :])
        if upload is None and not reference:
            raise bad_request("there is no document in the request")
        if upload is not None and not upload.data:
            raise bad_request("file must be non-empty")
        caption = _opt_str(params, "caption")
        parse_mode = _opt_str(params, "parse_mode")
        plain_caption, caption_entities = self._format(caption, parse_mode) if caption else ("", [])
        if len(plain_caption) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
        markup = self._reply_markup(params)
        message_id = self._next_message_id(chat_id)
        file_id = f"BQACAgUAAxkBAAI{chat_id & 0xFFFFFF:06x}{message_id:06d}"
        document: JSONDict = {"file_id": file_id, "file_unique_id": f"AgAD{message_id:08d}"}
        if upload is not None:
            document.update(
                file_name=upload.filename, mime_type=upload.content_type, file_size=len(upload.data)
            )
        message: JSONDict = {
            "message_id": message_id,
            "from": self._bot_user(),
            "chat": self._chat_obj(chat_id, username),
            "date": int(time.time()),
            "document": document,
        }
        if plain_caption:
            message["caption"] = plain_caption
            if caption_entities:
                message["caption_entities"] = caption_entities
        if markup and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        with self._cond:
            self._stored[(chat_id, message_id)] = message
        self._record(self._documents, {
            "method": "sendDocument",
            "chat_id": given,
            "filename": upload.filename if upload else None,
            "content": upload.data if upload else None,
            "mime_type": upload.content_type if upload else None,
            "document": reference if upload is None else None,  # file_id / URL when not uploaded
            "caption": caption,
            "parse_mode": parse_mode,
            "reply_markup": markup,
            "message_id": message_id,
            "at": time.time(),
        })
        return copy.deepcopy(message)

    def _send_chat_action(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        self._resolve_chat(params)
        return True

    def _get_chat(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict:
        _, chat_id, username = self._resolve_chat(params)
        return {**self._chat_obj(chat_id, username), "accent_color_id": 0, "max_reaction_count": 11}

    def _answer_callback_query(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        query_id = _opt_str(params, "callback_query_id")
        with self._cond:
            if not query_id or query_id not in self._pending_callback_ids:
                raise bad_request("query is too old and response timeout expired or query ID is invalid")
            self._pending_callback_ids.discard(query_id)
            self._callback_answers.append({
                "callback_query_id": query_id,
                "text": _opt_str(params, "text"),
                "show_alert": _opt_bool(params, "show_alert"),
                "url": _opt_str(params, "url"),
                "at": time.time(),
            })
            self._cond.notify_all()
        return True

    def _get_updates(self, params: JSONDict, files: dict[str, Upload]) -> list[JSONDict]:
        offset = _opt_int(params, "offset")
        limit = max(1, min(100, _opt_int(params, "limit") or 100))
        timeout = max(0.0, _opt_float(params, "timeout") or 0.0)
        allowed = _opt_json(params, "allowed_updates", "can't parse allowed updates")
        allowed_set = set(allowed) if isinstance(allowed, list) and allowed else None

        def wanted(update: JSONDict) -> bool:
            return allowed_set is None or bool(allowed_set & update.keys())

        deadline = time.monotonic() + timeout
        with self._cond:
            if self._webhook_url:
                raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                    "use deleteWebhook to delete the webhook first")
            # Confirm (drop) updates below the offset; a negative offset keeps the last -offset ones.
            if offset is not None and offset > 0:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            elif offset is not None and offset < 0:
                self._updates = self._updates[offset:]
            while True:
                ready = [u for u in self._updates if wanted(u)]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0 or self._stopping.is_set():
                    return copy.deepcopy(ready[:limit])
                self._cond.wait(remaining)

    def _set_webhook(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        with self._cond:
            self._webhook_url = _opt_str(params, "url") or ""
        return True

    def _delete_webhook(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        with self._cond:
            self._webhook_url = ""
            if _opt_bool(params, "drop_pending_updates"):
                self._updates.clear()
        return True

    def _get_webhook_info(self, params: JSONDict, files: dict[str, Upload]) -> JSONDict:
        with self._cond:
            return {"url": self._webhook_url, "has_custom_certificate": False,
                    "pending_update_count": len(self._updates)}

    def _set_my_commands(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        commands = _opt_json(params, "commands", "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand JSON object")
            name = str(command.get("command", ""))
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("command description must be non-empty")
        with self._cond:
            self._commands = copy.deepcopy(commands)
        return True

    def _get_my_commands(self, params: JSONDict, files: dict[str, Upload]) -> list[JSONDict]:
        return self.commands

    def _delete_my_commands(self, params: JSONDict, files: dict[str, Upload]) -> bool:
        with self._cond:
            self._commands = []
        return True


def _normalise_chat(chat: int | str) -> int | str:
    """known_chats entries may be ints, numeric strings or "@username"."""
    if isinstance(chat, str) and not chat.startswith("@"):
        with contextlib.suppress(ValueError):
            return int(chat)
    return chat


# ==================================================================================================
# Standalone CLI: python -m tests.fake_telegram --port 8081
# ==================================================================================================
def _format_record(record: JSONDict) -> str:
    """One line per recorded message/document (JSON-escaped text, so newlines stay on one line)."""
    parts = [record["method"], f"chat={record['chat_id']}", f"id={record['message_id']}"]
    if record.get("parse_mode"):
        parts.append(f"parse_mode={record['parse_mode']}")
    if record["method"] == "sendDocument":
        parts.append(f"file={json.dumps(record['filename'], ensure_ascii=False)}")
        parts.append(f"bytes={len(record['content'] or b'')}")
        if record.get("caption"):
            parts.append(f"caption={json.dumps(record['caption'], ensure_ascii=False)}")
    elif record.get("text") is not None:
        parts.append(f"text={json.dumps(record['text'], ensure_ascii=False)}")
    markup = record.get("reply_markup") or {}
    buttons = [
        f"{b.get('text')}->{b.get('callback_data') or b.get('url')}"
        for row in markup.get("inline_keyboard", [])
        for b in row
    ]
    if buttons:
        parts.append(f"buttons={json.dumps(buttons, ensure_ascii=False)}")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_telegram",
        description="Fake Telegram Bot API server; prints every message the bot sends.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--known-chat", action="append", dest="known_chats", metavar="CHAT_ID",
                        help="accept only these chats (repeatable); default: any chat")
    args = parser.parse_args(argv)

    server = FakeTelegramServer(args.host, args.port, known_chats=args.known_chats, latency=args.latency)

    def emit(record: JSONDict) -> None:
        print(_format_record(record), flush=True)

    server.on_record = emit
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    print(f"fake Telegram Bot API listening on {server.url} (base_url {server.base_url})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
