"""Duty roster (值班表): who holds which rung of the escalation chain at a given moment, and how to reach them.

People and their channels live in config (`roster.people`); shifts are `DutyShift` rows (UTC), written from
config (`roster.shifts`, origin "config") at start-up and from CSV files (`yuqing roster import`, origin = the
file's name; re-importing a file replaces only that file's rows). Shift times are entered in the agency's
local time (Asia/Shanghai): `date` + `start`/`end` as HH:MM (an overnight shift ends "次日08:00" or "24:00"),
or full "YYYY-MM-DD HH:MM". Holidays and 调休 duty are simply dated shifts.

Who is on duty for a rung (role R, incident department D) at moment t — the first non-empty pool of:
  1. shifts of role R covering t in department D, 2. … agency-wide (department ""),
  3. people whose role is R in department D, 4. … agency-wide, 5. shifts of role R covering t in any
  department, 6. people of role R in any department.
So shifts decide; where no shift of a role covers the moment, everyone holding that role is reachable.
Leaders usually have no shifts at all and are reachable at any time; a gap in the duty officers' roster
reaches all duty officers rather than nobody. An incident without a department uses the agency-wide pools
first. Lookups are pure (`Roster`); `load` reads the shifts covering one moment from the database.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, delete, select

from config.schema import RosterSettings, ShiftSettings, parse_role
from models.enums import DutyRole
from models.tables import DutyShift

CONFIG_ORIGIN = "config"


@dataclass(frozen=True)
class Person:
    name: str
    role: DutyRole
    department: str = ""
    telegram: int | None = None
    email: str | None = None
    mobile: str | None = None


@dataclass(frozen=True)
class Shift:
    person: str
    role: DutyRole
    department: str
    starts_at: datetime  # UTC
    ends_at: datetime
    origin: str = CONFIG_ORIGIN

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class OnDuty:
    person: Person
    shift: Shift | None  # None: reachable through the role alone (no shift of the role covers the moment)


@dataclass(frozen=True)
class Roster:
    """People (from config) and the shifts known at one moment; every lookup is pure."""

    people: Mapping[str, Person]
    shifts: tuple[Shift, ...] = ()
    with_shifts: frozenset[str] = field(default_factory=frozenset)  # people who have any shift at all

    def on_duty(self, role: DutyRole, department: str | None, at: datetime) -> list[OnDuty]:
        """Who holds rung `role` for an incident of `department` at `at` (see the module docstring)."""
        covering = [sh for sh in self.shifts if sh.role == role and sh.covers(at) and sh.person in self.people]
        holders = [p for p in self.people.values() if p.role == role]
        dept = department or None
        pools: list[list[OnDuty]] = [
            [OnDuty(self.people[sh.person], sh) for sh in covering if dept and sh.department == dept],
            [OnDuty(self.people[sh.person], sh) for sh in covering if sh.department == ""],
            [OnDuty(p, None) for p in holders if dept and p.department == dept],
            [OnDuty(p, None) for p in holders if p.department == ""],
            [OnDuty(self.people[sh.person], sh) for sh in covering],
            [OnDuty(p, None) for p in holders],
        ]
        for pool in pools:
            if pool:
                return _unique(pool)
        return []

    def available(self, person: Person, at: datetime) -> bool:
        """On shift now, or without any shift at all (reachable any time)."""
        if person.name not in self.with_shifts:
            return True
        return any(sh.person == person.name and sh.covers(at) for sh in self.shifts)

    def department_people(self, department: str, at: datetime) -> list[Person]:
        """The department's people who are reachable now, and anyone on a shift for the department."""
        own = [p for p in self.people.values() if p.department == department and self.available(p, at)]
        shifted = [self.people[sh.person] for sh in self.shifts
                   if sh.department == department and sh.covers(at) and sh.person in self.people]
        return list(dict.fromkeys(own + shifted))


def _unique(pool: list[OnDuty]) -> list[OnDuty]:
    seen: set[str] = set()
    out = []
    for item in pool:
        if item.person.name not in seen:
            seen.add(item.person.name)
            out.append(item)
    return out


def people_of(settings: RosterSettings) -> dict[str, Person]:
    return {name: Person(name, p.role, p.department.strip(), p.telegram, p.email, p.mobile)
            for name, p in settings.people.items()}


# ---------------------------------------------------------------------------------------------- loading


def load(s: Session, people: Mapping[str, Person], at: datetime) -> Roster:
    """The roster at `at`: the shifts covering it, and who has any shift at all."""
    rows = s.exec(select(DutyShift).where(col(DutyShift.starts_at) <= at, col(DutyShift.ends_at) > at)).all()
    named = s.exec(select(DutyShift.person).distinct()).all()
    return Roster(people, tuple(_shift(r) for r in rows), frozenset(named))


def _shift(row: DutyShift) -> Shift:
    return Shift(row.person, DutyRole(row.role), row.department, row.starts_at, row.ends_at, row.origin)


def replace_shifts(s: Session, origin: str, shifts: Iterable[Shift]) -> int:
    """Replace every shift of `origin` (the config, or one imported file) with `shifts`. Does not commit."""
    s.exec(delete(DutyShift).where(col(DutyShift.origin) == origin))
    n = 0
    for sh in shifts:
        s.add(DutyShift(person=sh.person, role=sh.role.value, department=sh.department, starts_at=sh.starts_at,
                        ends_at=sh.ends_at, origin=origin))
        n += 1
    return n


def sync_config(s: Session, settings: RosterSettings, tz: tzinfo) -> int:
    """Write the config's shifts as rows of origin "config" (called at start-up). Does not commit."""
    return replace_shifts(s, CONFIG_ORIGIN, config_shifts(settings, tz))


# ---------------------------------------------------------------------------------------------- shift times


class ShiftError(ValueError):
    """A shift's times or names are unusable: `key` is the field, `reason` English, `zh` for CSV reports."""

    def __init__(self, key: str, reason: str, zh: str) -> None:
        super().__init__(reason)
        self.key, self.reason, self.zh = key, reason, zh


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_TIME = re.compile(r"^(次日|翌日|\+1)?\s*(\d{1,2})\s*[:：]\s*(\d{2})$")


def _date(text: str, key: str) -> date:
    m = _DATE.match(text.strip())
    try:
        if m:
            return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        pass
    raise ShiftError(key, f"{text!r} is not a date (use YYYY-MM-DD)", f"日期“{text}”无法识别（应为 2026-10-01）")


def _point(text: str, day: date | None, key: str, *, allow_next: bool) -> datetime:
    """A naive local datetime from "HH:MM", "次日HH:MM" (end only) or "YYYY-MM-DD HH:MM"."""
    raw = text.strip()
    head, _, tail = raw.rpartition(" ")
    if head and _DATE.match(head.strip()):
        day, raw = _date(head, key), tail
    m = _TIME.match(raw)
    if not m or int(m[3]) > 59 or int(m[2]) > 24 or (int(m[2]) == 24 and int(m[3]) != 0) or (m[1] and not allow_next):
        raise ShiftError(key, f"{text!r} is not a time (use HH:MM, 次日HH:MM or YYYY-MM-DD HH:MM)",
                         f"时间“{text}”无法识别（应为 08:00、次日08:00 或 2026-10-01 08:00）")
    if day is None:
        raise ShiftError("date", "required when start is only a time of day", "缺少日期")
    extra = 1 if m[1] else 0
    return datetime(day.year, day.month, day.day) + timedelta(days=extra, hours=int(m[2]), minutes=int(m[3]))


def local_span(day: str | None, start: str, end: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """(starts_at, ends_at) in UTC from local-time text; ShiftError when unusable or not positive."""
    base = _date(day, "date") if day and day.strip() else None
    begin = _point(start, base, "start", allow_next=False)
    finish = _point(end, begin.date(), "end", allow_next=True)
    if finish <= begin:
        raise ShiftError("end", f"the shift ends ({end}) at or before it starts ({start}); "
                         "an overnight shift ends 次日HH:MM", "结束时间不晚于开始时间（跨夜班请写“次日08:00”）")
    return begin.replace(tzinfo=tz).astimezone(UTC), finish.replace(tzinfo=tz).astimezone(UTC)


def shift_of(entry: ShiftSettings, people: Mapping[str, Person], tz: tzinfo, origin: str = CONFIG_ORIGIN) -> Shift:
    person = people.get(entry.person.strip())
    if person is None:
        raise ShiftError("person", f"unknown person {entry.person!r} (not in roster.people)",
                         f"未知人员“{entry.person}”（不在 roster.people 中）")
    starts, ends = local_span(entry.date, entry.start, entry.end, tz)
    dept = person.department if entry.department is None else entry.department.strip()
    return Shift(person.name, entry.role or person.role, dept, starts, ends, origin)


def config_shifts(settings: RosterSettings, tz: tzinfo) -> list[Shift]:
    people = people_of(settings)
    return [shift_of(entry, people, tz) for entry in settings.shifts]


def check_shifts(settings: RosterSettings, timezone: str) -> tuple[int, str, str] | None:
    """The first unusable config shift as (index, key, reason), or None (used by config validation)."""
    people, tz = people_of(settings), ZoneInfo(timezone)
    for i, entry in enumerate(settings.shifts):
        try:
            shift_of(entry, people, tz)
        except ShiftError as exc:
            return i, exc.key, exc.reason
    return None


# ---------------------------------------------------------------------------------------------- CSV import

COLUMNS: dict[str, tuple[str, ...]] = {
    "date": ("日期", "值班日期", "date", "day"),
    "start": ("开始", "开始时间", "start", "starts", "from"),
    "end": ("结束", "结束时间", "end", "ends", "to"),
    "person": ("姓名", "值班人", "值班人员", "人员", "person", "name"),
    "role": ("角色", "岗位", "职务", "role"),
    "department": ("部门", "科室", "处室", "department", "dept"),
}
REQUIRED = ("start", "end", "person")


@dataclass
class CsvReport:
    shifts: list[Shift]
    errors: list[tuple[int, str]]  # (line in the file, reason in Chinese); line 0 = the whole file
    rows: int = 0


def decode(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else GB18030 (GBK exports)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030", errors="replace")


def parse_csv(text: str, people: Mapping[str, Person], tz: tzinfo, origin: str) -> CsvReport:
    """Shifts from a duty-roster CSV; each bad row is reported with its line number, the rest are kept."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return CsvReport([], [(0, "文件为空")])
    index = _header(header)
    missing = [COLUMNS[k][0] for k in REQUIRED if k not in index]
    if missing:
        return CsvReport([], [(1, f"表头缺少列：{'、'.join(missing)}（可用：日期、开始、结束、姓名、角色、部门）")])
    report = CsvReport([], [])
    while True:
        line = reader.line_num + 1
        cells = next(reader, None)
        if cells is None:
            break
        if not any(c.strip() for c in cells):
            continue
        report.rows += 1
        values = {k: cells[i].strip() for k, i in index.items() if i < len(cells)}
        try:
            report.shifts.append(_row_shift(values, people, tz, origin))
        except ShiftError as exc:
            report.errors.append((line, exc.zh))
    return report


def _header(cells: list[str]) -> dict[str, int]:
    names = [c.strip().lstrip("\ufeff").lower() for c in cells]
    index: dict[str, int] = {}
    for key, aliases in COLUMNS.items():
        for i, name in enumerate(names):
            if name in aliases and key not in index:
                index[key] = i
    return index


def _row_shift(values: dict[str, str], people: Mapping[str, Person], tz: tzinfo, origin: str) -> Shift:
    role = None
    if values.get("role"):
        try:
            role = parse_role(values["role"])
        except ValueError:
            zh = f"未知角色“{values['role']}”（值班员、科室负责人、分管领导或主要领导）"
            raise ShiftError("role", "unknown role", zh) from None
    if not values.get("person"):
        raise ShiftError("person", "missing", "缺少姓名")
    entry = ShiftSettings(person=values["person"], date=values.get("date") or None, start=values.get("start", ""),
                          end=values.get("end", ""), role=role, department=values.get("department") or None)
    return shift_of(entry, people, tz, origin)
