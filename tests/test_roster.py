"""Duty roster (alerts/roster.py): who holds each rung at a moment in Asia/Shanghai — across shift boundaries,
the National Day holiday and a 调休 Saturday; the rule for roles no shift covers; CSV import with bad rows
reported by line and re-import replacing only that file's rows; the `yuqing roster` commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from alerts.roster import Roster, config_shifts, decode, load, parse_csv, people_of, replace_shifts, sync_config
from config.loader import load_config
from models.enums import DutyRole
from models.tables import DutyShift
from pipeline import main
from tests.conftest import FIXTURES

SH = ZoneInfo("Asia/Shanghai")
ROSTER = FIXTURES / "roster"
SETTINGS = load_config(ROSTER / "holiday.yaml").settings.roster
PEOPLE = people_of(SETTINGS)
OFFICER, CHIEF, DEPUTY = DutyRole.DUTY_OFFICER, DutyRole.SECTION_CHIEF, DutyRole.DEPUTY_LEADER


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SH).astimezone(UTC)


def names(roster: Roster, role: DutyRole, at: str, department: str | None = None) -> list[str]:
    return [d.person.name for d in roster.on_duty(role, department, local(at))]


@pytest.fixture
def roster() -> Roster:
    shifts = tuple(config_shifts(SETTINGS, SH))
    return Roster(PEOPLE, shifts, frozenset(s.person for s in shifts))


def test_shift_times_are_local_and_stored_utc() -> None:
    first = config_shifts(SETTINGS, SH)[0]
    assert first.starts_at == datetime(2026, 9, 30, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert first.ends_at == datetime(2026, 10, 1, 0, tzinfo=UTC)
    midnight = config_shifts(SETTINGS, SH)[2]  # "24:00" ends at the next local midnight
    assert midnight.ends_at == local("2026-10-03 00:00")


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-10-01 07:59", ["张三"]),  # the night shift of 09-30 runs to 08:00 on 10-01
    ("2026-10-01 08:00", ["李四"]),  # a shift ends exclusive: the next one starts at the boundary
    ("2026-10-02 02:00", ["李四"]),  # National Day night duty
    ("2026-10-02 23:59", ["张三"]),
    ("2026-10-10 08:30", ["李四"]),  # 调休 Saturday: a dated shift like any other
    ("2026-10-10 17:30", ["张三", "李四"]),  # no shift covers: every agency-wide duty officer
])
def test_duty_officer_across_boundaries_and_holidays(roster: Roster, at: str, expected: list[str]) -> None:
    assert names(roster, OFFICER, at) == expected


def test_leaders_without_shifts_are_reachable_any_time_but_a_holiday_shift_decides(roster: Roster) -> None:
    assert names(roster, DutyRole.PRINCIPAL_LEADER, "2026-10-03 03:00") == ["吴厅长"]
    assert names(roster, DEPUTY, "2026-10-03 03:00") == ["赵副厅长"]  # 带班领导 during the holiday
    assert names(roster, DEPUTY, "2026-10-08 00:00") == ["赵副厅长", "钱副厅长"]  # after it: both


def test_department_people_come_first(roster: Roster) -> None:
    assert names(roster, CHIEF, "2026-10-03 03:00", "防火处") == ["王科长"]
    assert names(roster, CHIEF, "2026-10-03 03:00") == ["周主任"]  # no department: the agency-wide chief
    assert names(roster, CHIEF, "2026-10-03 03:00", "宣传处") == ["周主任"]
    # a shift of the role covering the moment outranks the department's people without one
    assert names(roster, OFFICER, "2026-10-02 02:00", "防火处") == ["李四"]
    assert names(roster, OFFICER, "2026-10-10 18:00", "防火处") == ["孙七"]


def test_availability_of_department_people(roster: Roster) -> None:
    assert [p.name for p in roster.department_people("防火处", local("2026-10-02 02:00"))] == ["孙七", "王科长"]
    assert roster.available(PEOPLE["张三"], local("2026-10-01 07:00"))
    assert not roster.available(PEOPLE["张三"], local("2026-10-01 09:00"))


def test_config_shifts_round_trip_through_the_database(db: Engine) -> None:
    with Session(db) as s:
        assert sync_config(s, SETTINGS, SH) == 5
        s.commit()
        assert sync_config(s, SETTINGS, SH) == 5  # start-up again: replaced, not doubled
        s.commit()
        assert len(s.exec(select(DutyShift)).all()) == 5
        roster = load(s, PEOPLE, local("2026-10-01 07:59"))
        assert sorted(sh.person for sh in roster.shifts) == ["张三", "赵副厅长"]
        assert min(sh.starts_at for sh in roster.shifts) == datetime(2026, 9, 30, 0, tzinfo=UTC)  # UTC survives SQLite
        assert roster.with_shifts == {"张三", "李四", "赵副厅长"}
        assert [d.person.name for d in roster.on_duty(OFFICER, None, local("2026-10-01 07:59"))] == ["张三"]


def test_csv_import_reports_bad_rows_by_line_and_keeps_the_rest() -> None:
    text = (ROSTER / "national_day.csv").read_text(encoding="utf-8")
    report = parse_csv(text, PEOPLE, SH, origin="national_day.csv")
    assert report.rows == 6
    assert [(s.person, s.role, s.department) for s in report.shifts] == [
        ("张三", OFFICER, ""), ("李四", OFFICER, ""), ("孙七", OFFICER, "防火处")]
    assert [line for line, _ in report.errors] == [3, 5, 7]
    assert "未知人员“王五”" in report.errors[0][1]
    assert "结束时间不晚于开始时间" in report.errors[1][1]
    assert "未知角色“处长”" in report.errors[2][1]
    assert report.shifts[1].starts_at == local("2026-10-05 08:00")  # 2026/10/5 is read too


def test_csv_with_english_headers_and_gbk_encoding() -> None:
    en = parse_csv((ROSTER / "weekend_en.csv").read_text(encoding="utf-8"), PEOPLE, SH, origin="en")
    assert [s.person for s in en.shifts] == ["李四", "张三"] and not en.errors
    gbk = parse_csv(decode((ROSTER / "gbk_export.csv").read_bytes()), PEOPLE, SH, origin="gbk")
    assert [(s.person, s.starts_at) for s in gbk.shifts] == [("李四", local("2026-10-24 08:00"))]


def test_csv_without_required_columns_is_refused() -> None:
    report = parse_csv("日期,值班领导\n2026-10-01,张三\n", PEOPLE, SH, origin="x")
    assert not report.shifts and report.errors[0][0] == 1 and "姓名" in report.errors[0][1]


def test_reimporting_a_file_replaces_only_its_own_rows(db: Engine) -> None:
    csv_text = (ROSTER / "national_day.csv").read_text(encoding="utf-8")
    with Session(db) as s:
        sync_config(s, SETTINGS, SH)
        replace_shifts(s, "weekend_en.csv", parse_csv((ROSTER / "weekend_en.csv").read_text(encoding="utf-8"),
                                                      PEOPLE, SH, origin="weekend_en.csv").shifts)
        for _ in range(2):
            replace_shifts(s, "national_day.csv", parse_csv(csv_text, PEOPLE, SH, origin="national_day.csv").shifts)
            s.commit()
        origins = [r.origin for r in s.exec(select(DutyShift)).all()]
    assert origins.count("national_day.csv") == 3 and origins.count("weekend_en.csv") == 2
    assert origins.count("config") == 5


def _cli(args: list[str], db_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("YUQING_DATABASE_URL", db_url)
    return main(args)


def test_roster_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url, cfg = f"sqlite:///{tmp_path / 'cli.db'}", str(ROSTER / "holiday.yaml")
    assert _cli(["roster", "import", str(ROSTER / "national_day.csv"), "--config", cfg], url, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"file": "national_day.csv", "rows": 6, "imported": 3, "errors": 3}
    assert "第3行：未知人员“王五”" in err
    assert _cli(["roster", "show", "--at", "2026-10-04 02:00", "--config", cfg], url, monkeypatch) == 0
    shown = capsys.readouterr().out
    assert "值班情况 2026-10-04 02:00" in shown
    assert "值班员\t张三（值班 10-03 08:00–10-04 08:00）" in shown
    assert "分管领导\t赵副厅长（值班 10-01 00:00–10-08 00:00）" in shown
    assert "主要领导\t吴厅长（常备）" in shown
    assert _cli(["roster", "show", "--at", "2026-10-04 02:00", "--department", "防火处", "--config", cfg], url,
                monkeypatch) == 0
    assert "科室负责人\t王科长（常备）" in capsys.readouterr().out


def test_roster_show_without_a_roster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["roster", "show"], f"sqlite:///{tmp_path / 'cli.db'}", monkeypatch) == 0
    assert "未配置值班表" in capsys.readouterr().out
