"""Load and validate a config file; every failure becomes one ConfigError naming file, key path and reason."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.schema import SOURCE_KINDS, Settings

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
_PATH_PREFIX = re.compile(r"^([A-Za-z_][\w]*(?:\.[\w]+|\[\d+\])*): (.*)$", re.S)


class ConfigError(Exception):
    """A config file cannot be used. `str()` is the one line shown to the user."""

    def __init__(self, file: Path | str, key: str, reason: str) -> None:
        self.file = str(file)
        self.key = key
        self.reason = reason
        super().__init__(f"{self.file}: {key}: {reason}" if key else f"{self.file}: {reason}")


@dataclass(frozen=True)
class LoadedConfig:
    """Validated settings plus the file they came from (relative paths resolve against its folder)."""

    settings: Settings
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def resolve_config_path(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """The config to use: the argument, else $YUQING_CONFIG, else the packaged default.yaml."""
    env = os.environ if environ is None else environ
    if path:
        return Path(path)
    if env.get("YUQING_CONFIG"):
        return Path(env["YUQING_CONFIG"])
    return DEFAULT_CONFIG


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    file = resolve_config_path(path, environ).absolute()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "", "file not found") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a directory, not a YAML file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(file, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(file, "", f"cannot read: {exc.strerror}") from None
    return LoadedConfig(settings=parse_config(text, file), path=file)


def parse_config(text: str, file: Path | str = "<string>") -> Settings:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(file, "", f"invalid YAML: {where}{problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(file, "", f"the top level must be a mapping of keys, not {type(data).__name__}")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        key, reason = _first_error(exc)
        raise ConfigError(file, key, reason) from None


def _first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors(include_url=False)[0]
    key = _join_loc(err["loc"])
    reason = _reason(err)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        key, reason = f"{key}.kind", f"unknown kind {err['ctx'].get('tag')!r} (use {', '.join(SOURCE_KINDS)})"
    match = _PATH_PREFIX.match(reason)
    if match:  # a model validator named the sub-key itself
        sub, reason = match.groups()
        key = f"{key}.{sub}" if key else sub
    extra = len(exc.errors()) - 1
    if extra:
        reason += f" (and {extra} more error{'s' if extra > 1 else ''})"
    return key or "(top level)", reason


def _join_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if part in SOURCE_KINDS and i > 0 and isinstance(loc[i - 1], int):
            continue  # the union tag pydantic inserts after a list index: not a key in the file
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _reason(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    if kind not in ("value_error", "assertion_error") and "input" in err:
        shown = repr(err["input"])
        if len(shown) <= 60 and not isinstance(err["input"], dict | list):
            msg += f" (got {shown})"
    return msg
