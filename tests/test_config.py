"""Config: the default is valid and fully documented; each invalid file is rejected with one line that names
the file, the key path and the reason; the CLI exits 2 without a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import get_args, get_origin

import pytest
from pydantic import BaseModel

from config.env import EnvError, Environment
from config.loader import DEFAULT_CONFIG, ConfigError, load_config, parse_config
from config.schema import Settings
from tests.conftest import FIXTURES

INVALID = sorted((FIXTURES / "config" / "invalid").glob("*.yaml"))
ROOT = Path(__file__).resolve().parent.parent


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# expect: (\S+): (.+)", first)
    assert match, f"{path.name} must start with '# expect: KEY: REASON'"
    return match.group(1), match.group(2)


def test_default_config_is_valid() -> None:
    loaded = load_config(DEFAULT_CONFIG)
    assert loaded.settings.sources, "the default config ships offline demo sources"
    assert loaded.settings.response.deadlines["release_5h"].within.total_seconds() == 5 * 3600


def test_default_yaml_matches_schema_defaults_except_examples() -> None:
    examples = {"sources", "imports"}  # the default file ships demo sources and an example import mapping
    loaded = load_config(DEFAULT_CONFIG).settings.model_dump(exclude=examples)
    assert loaded == Settings().model_dump(exclude=examples)


def _documented_keys(text: str) -> dict[str, str]:
    """Map each YAML key path to the comment block directly above it (plus its inline comment)."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            comment = []
            continue
        if stripped.startswith("#"):
            comment.append(stripped)
            continue
        match = re.match(r"^(\s*)(?:- )?([A-Za-z_][\w]*):", line)
        if match:
            indent = len(match.group(1))
            while stack and stack[-1][0] >= indent:
                stack.pop()
            path = ".".join([k for _, k in stack] + [match.group(2)])
            inline = line.split("#", 1)[1] if " #" in line else ""
            out.setdefault(path, " ".join(comment) + inline)
            stack.append((indent, match.group(2)))
        comment = []
    return out


def _models_in(ann: object) -> list[type[BaseModel]]:
    """Every pydantic model inside a type (through list/dict/Union/Annotated)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for arg in get_args(ann) for m in _models_in(arg)]


def _all_fields(models: list[type[BaseModel]]) -> list[str]:
    """Field names of the models and of the models nested in them (they are documented together)."""
    names: list[str] = []
    for m in models:
        for name, field in m.model_fields.items():
            names.append(name)
            names += _all_fields(_models_in(field.annotation))
    return sorted(set(names))


def _schema_paths(model: type[BaseModel], prefix: str = "") -> list[tuple[str, list[str]]]:
    """(key path, sub-keys that must be mentioned in its comment) for every field of the schema."""
    out: list[tuple[str, list[str]]] = []
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.append((path, []))
            out += _schema_paths(ann, path + ".")
        elif get_origin(ann) in (list, dict) and _models_in(ann):
            out.append((path, _all_fields(_models_in(ann))))
        else:
            out.append((path, []))
    return out


def test_every_setting_is_documented_in_default_yaml() -> None:
    documented = _documented_keys(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    for path, subkeys in _schema_paths(Settings):
        assert path in documented, f"{path} is missing from config/default.yaml"
        assert documented[path].strip(), f"{path} has no comment in config/default.yaml"
        for sub in subkeys:
            assert sub in documented[path], f"{path}: the comment does not explain '{sub}'"


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_config_is_rejected_with_key_path(path: Path) -> None:
    key, reason = _expectation(path)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.file == str(path.absolute())
    if key != "(file)":
        assert err.key == key
    assert reason in err.reason
    assert "\n" not in str(err)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_durations_accept_seconds_and_units() -> None:
    s = parse_config(
        "response:\n  deadlines:\n"
        "    release_5h: {label: 权威信息发布, within: 18000, reminders: [1h30m, 90s]}\n"
        "    press_conference_24h: {label: 新闻发布会, within: 1d}\n"
        "    response_48h: {label: 回应, within: 2d}\n"
    )
    spec = s.response.deadlines["release_5h"]
    assert spec.within.total_seconds() == 18000
    assert [r.total_seconds() for r in spec.reminders] == [5400, 90]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})}, timeout=120,
    )


def test_cli_check_config_ok() -> None:
    res = _cli("check-config", str(DEFAULT_CONFIG))
    assert res.returncode == 0, res.stderr
    assert "ok:" in res.stdout


@pytest.mark.parametrize("name", ["reminder_after_deadline", "unknown_key", "yaml_syntax"])
def test_cli_invalid_config_exits_2_with_one_line(name: str) -> None:
    path = FIXTURES / "config" / "invalid" / f"{name}.yaml"
    key, _ = _expectation(path)
    res = _cli("check-config", str(path))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert str(path) in lines[0]
    if key != "(file)":
        assert key in lines[0]


def test_cli_run_with_invalid_config_stops_at_start_up(tmp_path: Path) -> None:
    path = FIXTURES / "config" / "invalid" / "unknown_key.yaml"
    res = _cli("run", "--once", env={"YUQING_CONFIG": str(path), "YUQING_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"config error: {path}: agency.colour: unknown key"]


def test_cli_missing_config_file(tmp_path: Path) -> None:
    res = _cli("check-config", str(tmp_path / "absent.yaml"))
    assert res.returncode == 2
    assert res.stderr.strip() == f"config error: {tmp_path / 'absent.yaml'}: file not found"


def test_environment_secrets_and_file_variant(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("123:abc\n")
    env = Environment.from_environ({"YUQING_TELEGRAM_TOKEN_FILE": str(secret), "YUQING_TELEGRAM_CHAT_IDS": "1, -100"})
    assert env.telegram_token == "123:abc"
    assert env.telegram_chat_ids == (1, -100)
    assert env.database_url == "sqlite:///var/yuqing.db"
    assert "123:abc" not in repr(env)
    with pytest.raises(EnvError, match="YUQING_TELEGRAM_CHAT_IDS"):
        Environment.from_environ({"YUQING_TELEGRAM_CHAT_IDS": "ops-room"})




def test_every_source_kind_loads() -> None:
    s = load_config(FIXTURES / "config" / "valid" / "all_kinds.yaml").settings
    assert [src.kind for src in s.sources] == ["feed", "site", "json_api"]
    assert s.sources[1].list_page.links == "ul.news-list a"  # type: ignore[union-attr]
    assert s.imports["hotline"].columns["诉求内容"] == "text"
    assert s.sources[0].silent_after.total_seconds() == 86400  # 6 × 10 min is less than a day
