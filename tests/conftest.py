"""Shared fixtures: a migrated database on SQLite and on a real PostgreSQL server, a trained model,
a fake Telegram Bot API server, and test settings."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from classifier.model import TextModel
from classifier.train import load_examples, seed_files, train
from config.loader import parse_config
from config.schema import Settings
from models.db import make_engine
from models.migrate import upgrade
from tests.fake_telegram import FakeTelegramServer

FIXTURES = Path(__file__).parent / "fixtures"
os.environ.setdefault("PTB_TIMEDELTA", "true")  # as pipeline.main does: timedelta durations in PTB
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
PG_URL = os.environ.get("YUQING_TEST_PG_URL", "")
REQUIRE_PG = os.environ.get("YUQING_REQUIRE_PG") == "1"


def _pg_engine() -> Engine:
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("YUQING_REQUIRE_PG=1 but YUQING_TEST_PG_URL is not set")
        pytest.skip("PostgreSQL not configured: set YUQING_TEST_PG_URL (scripts/test.sh starts a server)")
    base = make_engine(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with base.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    base.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return make_engine(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")


def _drop_pg_schema(engine: Engine) -> None:
    schema = engine.url.query["options"]
    name = str(schema).split("=", 1)[1]
    engine.dispose()
    base = make_engine(PG_URL)
    with base.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    base.dispose()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (research-only datasets, never copied into the repository); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"research datasets not available: {SHARED_DATA} is absent (it sits beside the clone in CI)")
    return SHARED_DATA


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database; every test using it runs once on SQLite and once on PostgreSQL."""
    engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}") if request.param == "sqlite" else _pg_engine()
    upgrade(engine)
    yield engine
    if request.param == "postgresql":
        _drop_pg_schema(engine)
    else:
        engine.dispose()


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default model trained once per session from the shipped seed corpus."""
    folder = tmp_path_factory.mktemp("models")
    train(load_examples(seed_files()), folder, cv_folds=0)  # cross-validation only fills meta.json
    return folder


@pytest.fixture(scope="session")
def model(model_dir: Path) -> TextModel:
    return TextModel.load(model_dir)


@pytest.fixture
def settings(model_dir: Path) -> Settings:
    return parse_config(f"classifier:\n  model_dir: {model_dir}\n")


@pytest.fixture
def telegram() -> Iterator[FakeTelegramServer]:
    with FakeTelegramServer() as server:
        yield server


TOKEN = "123456:TEST-token-abcdefghijklmnop"
