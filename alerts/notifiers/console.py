"""Console notifier: prints each alert to standard output (always available, no configuration)."""

from __future__ import annotations

import sys
from typing import ClassVar, Literal, TextIO

from alerts.notifiers.base import SendMeta


class ConsoleNotifier:
    name: ClassVar[str] = "console"
    format: ClassVar[Literal["text", "html"]] = "text"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def receivers(self) -> list[str]:
        return ["stdout"]

    async def send(self, receiver: str, body: str, meta: SendMeta | None = None) -> str | None:
        stream = self._stream or sys.stdout
        rule = "─" * 40
        stream.write(f"{rule}\n{body}\n{rule}\n")
        stream.flush()
        return None

    async def close(self) -> None:
        return None
