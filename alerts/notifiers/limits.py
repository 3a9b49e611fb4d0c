"""Message size limits of every channel, in one table, and the truncation that respects them.

Each channel measures its limit in its own unit: Telegram counts UTF-16 code units of the text (we measure
the HTML source, which is never shorter than the parsed text, so the cut is always within the limit); the
group robots count UTF-8 bytes of the content (Feishu: of the whole JSON request body); email limits only
the Subject line. `truncate` cuts plain text at a character boundary and ends it with "…"; `truncate_html`
additionally never cuts a tag or an entity in half and closes the tags left open, so the result is still
valid Telegram HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ELLIPSIS = "…"
Unit = Literal["utf16", "utf8", "chars"]


@dataclass(frozen=True)
class Limit:
    size: int
    unit: Unit
    what: str  # what the limit applies to, for the reader of this table


LIMITS: dict[str, Limit] = {
    "telegram": Limit(4096, "utf16", "sendMessage text (HTML source measured)"),
    "wecom": Limit(2048, "utf8", "text.content (markdown.content would be 4096)"),
    "dingtalk": Limit(20000, "utf8", "text.content"),
    "feishu": Limit(20 * 1024, "utf8", "whole JSON request body"),
    "email_subject": Limit(200, "chars", "Subject line (the body is not limited)"),
}


def measure(text: str, unit: Unit) -> int:
    if unit == "utf16":
        return len(text.encode("utf-16-le")) // 2
    if unit == "utf8":
        return len(text.encode("utf-8"))
    return len(text)


def truncate(text: str, limit: int, unit: Unit = "chars") -> str:
    """`text` if it fits in `limit`, else its longest prefix that fits together with "…"."""
    if measure(text, unit) <= limit:
        return text
    room = max(limit - measure(ELLIPSIS, unit), 0)
    if unit == "utf8":
        return text.encode("utf-8")[:room].decode("utf-8", errors="ignore") + ELLIPSIS
    out: list[str] = []
    used = 0
    for ch in text:
        size = measure(ch, unit)
        if used + size > room:
            break
        out.append(ch)
        used += size
    return "".join(out) + ELLIPSIS


def for_channel(channel: str, text: str) -> str:
    """`text` cut to the channel's limit from LIMITS (unchanged for channels without one)."""
    limit = LIMITS.get(channel)
    return text if limit is None else truncate(text, limit.size, limit.unit)


_TOKEN = re.compile(r"<[^<>]*>|&#?\w+;|.", re.DOTALL)
_TAG = re.compile(r"<\s*(/)?\s*([a-zA-Z][\w-]*)")


def truncate_html(source: str, limit: int, unit: Unit = "utf16") -> str:
    """`source` (HTML) cut to `limit` without splitting a tag or an entity; open tags are closed after "…"."""
    if measure(source, unit) <= limit:
        return source
    kept: list[str] = []
    stack: list[str] = []
    used = 0
    reserve = measure(ELLIPSIS, unit)
    for match in _TOKEN.finditer(source):
        token = match.group(0)
        after = _after(stack, token)
        closers = "".join(f"</{name}>" for name in reversed(after))
        if used + measure(token, unit) + reserve + measure(closers, unit) > limit:
            break
        kept.append(token)
        used += measure(token, unit)
        stack = after
    return "".join(kept) + ELLIPSIS + "".join(f"</{name}>" for name in reversed(stack))


def _after(stack: list[str], token: str) -> list[str]:
    """The open-tag stack after `token`."""
    tag = _TAG.match(token) if token.startswith("<") else None
    if tag is None or token.endswith("/>"):
        return stack
    name = tag.group(2).lower()
    if tag.group(1):
        return stack[: len(stack) - 1 - stack[::-1].index(name)] if name in stack else stack
    return [*stack, name]
