"""Models and migrations: timestamps round-trip as aware UTC on SQLite and PostgreSQL; migrations are
idempotent; uniqueness holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session, select

from models.db import session_scope
from models.migrate import current_revision, head_revision, is_up_to_date, upgrade
from models.tables import Incident, RawPost

SHANGHAI = timezone(timedelta(hours=8))


def _incident(**kw: object) -> Incident:
    now = datetime(2026, 11, 21, 2, 31, 5, 123456, tzinfo=SHANGHAI)
    base = dict(group_key="g1", title="t", category="EMERGENCY", severity="II", first_seen_at=now,
                opened_at=now, updated_at=now, policy={"time_scale": 1})
    base.update(kw)
    return Incident(**base)  # type: ignore[arg-type]


def test_timestamps_round_trip_as_aware_utc(db: Engine) -> None:
    original = datetime(2026, 11, 21, 2, 31, 5, 123456, tzinfo=SHANGHAI)
    with session_scope(db) as s:
        s.add(_incident(first_seen_at=original))
    with Session(db) as s:
        got = s.exec(select(Incident)).one()
    assert got.first_seen_at == original
    assert got.first_seen_at.tzinfo is not None
    assert got.first_seen_at.utcoffset() == timedelta(0)
    assert got.first_seen_at.hour == 18  # 02:31 in Shanghai is 18:31 UTC the day before


def test_timestamps_compare_across_zones_in_queries(db: Engine) -> None:
    with session_scope(db) as s:
        s.add(_incident(group_key="a", first_seen_at=datetime(2026, 1, 1, 8, 0, tzinfo=SHANGHAI)))
        s.add(_incident(group_key="b", first_seen_at=datetime(2026, 1, 1, 1, 0, tzinfo=UTC)))
    cutoff = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)  # 00:00 UTC (a) is before it, 01:00 UTC (b) after
    with Session(db) as s:
        later = s.exec(select(Incident).where(Incident.first_seen_at > cutoff)).all()  # type: ignore[arg-type]
    assert [i.group_key for i in later] == ["b"]


def test_naive_datetime_is_rejected(db: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(db) as s:
        s.add(_incident(first_seen_at=datetime(2026, 1, 1, 8, 0)))


def test_raw_post_is_unique_per_source_and_url(db: Engine) -> None:
    now = datetime.now(UTC)
    with session_scope(db) as s:
        s.add(RawPost(source="a", url="https://x/1", fetched_at=now, payload={}))
    with pytest.raises(IntegrityError), session_scope(db) as s:
        s.add(RawPost(source="a", url="https://x/1", fetched_at=now, payload={}))
    with session_scope(db) as s:
        s.add(RawPost(source="b", url="https://x/1", fetched_at=now, payload={}))


def test_migrations_are_idempotent(db: Engine) -> None:
    assert is_up_to_date(db)
    upgrade(db)
    assert current_revision(db) == head_revision(db)


def test_migrations_match_the_models(db: Engine) -> None:
    """A model change without a migration fails here (alembic's autogenerate finds nothing to do)."""
    from alembic import command

    from models.migrate import alembic_config

    cfg = alembic_config(db)
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)


def test_downgrade_and_upgrade_again(db: Engine) -> None:
    from alembic import command

    from models.migrate import alembic_config

    cfg = alembic_config(db)
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    upgrade(db)
    assert is_up_to_date(db)
