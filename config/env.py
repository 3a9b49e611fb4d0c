"""Environment settings and secrets. Secrets come only from the environment (or a `*_FILE` variable)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///var/yuqing.db"
DEFAULT_TELEGRAM_API_BASE = "https://api.telegram.org/bot"


class EnvError(Exception):
    """An environment variable is unusable; `str()` names the variable and the reason."""


@dataclass(frozen=True)
class Environment:
    database_url: str = DEFAULT_DATABASE_URL
    telegram_token: str | None = field(default=None, repr=False)
    telegram_api_base: str = DEFAULT_TELEGRAM_API_BASE
    telegram_chat_ids: tuple[int, ...] = ()
    wecom_webhook_url: str | None = field(default=None, repr=False)
    dingtalk_webhook_url: str | None = field(default=None, repr=False)
    dingtalk_secret: str | None = field(default=None, repr=False)
    feishu_webhook_url: str | None = field(default=None, repr=False)
    feishu_secret: str | None = field(default=None, repr=False)
    smtp_user: str | None = field(default=None, repr=False)
    smtp_password: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if environ is None else environ
        chat_ids = _chat_ids(env.get("YUQING_TELEGRAM_CHAT_IDS", ""))
        return cls(
            database_url=_secret(env, "YUQING_DATABASE_URL") or DEFAULT_DATABASE_URL,
            telegram_token=_secret(env, "YUQING_TELEGRAM_TOKEN"),
            telegram_api_base=env.get("YUQING_TELEGRAM_API_BASE", "").strip() or DEFAULT_TELEGRAM_API_BASE,
            telegram_chat_ids=chat_ids,
            wecom_webhook_url=_secret(env, "YUQING_WECOM_WEBHOOK_URL"),
            dingtalk_webhook_url=_secret(env, "YUQING_DINGTALK_WEBHOOK_URL"),
            dingtalk_secret=_secret(env, "YUQING_DINGTALK_SECRET"),
            feishu_webhook_url=_secret(env, "YUQING_FEISHU_WEBHOOK_URL"),
            feishu_secret=_secret(env, "YUQING_FEISHU_SECRET"),
            smtp_user=_secret(env, "YUQING_SMTP_USER"),
            smtp_password=_secret(env, "YUQING_SMTP_PASSWORD"),
            webhook_secret=_secret(env, "YUQING_WEBHOOK_SECRET"),
        )


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """NAME, or the contents of the file named by NAME_FILE (trailing newline stripped)."""
    value = env.get(name, "").strip()
    if value:
        return value
    file = env.get(f"{name}_FILE", "").strip()
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise EnvError(f"{name}_FILE: cannot read {file}: {exc.strerror}") from None
    return None


def _chat_ids(raw: str) -> tuple[int, ...]:
    ids = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            ids.append(int(part))
        except ValueError:
            raise EnvError(f"YUQING_TELEGRAM_CHAT_IDS: {part!r} is not a numeric chat id") from None
    return tuple(ids)
