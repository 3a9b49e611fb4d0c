"""Chinese publish-time parsing: absolute, year-less, ISO 8601, RFC 822, Unix timestamps and relative forms,
found inside surrounding text, resolved against a fixed `now`; bad input gives None, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from crawlers.timeparse import cn_number, has_zone, parse_chinese_time

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 21, 2, 40, tzinfo=SH)  # a Saturday, 02:40 in Beijing (Friday 18:40 UTC)


def _sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH).astimezone(UTC)  # type: ignore[misc]


CASES: list[tuple[str, datetime | None]] = [
    # absolute, with a year
    ("2024年5月1日 08:30", _sh(2024, 5, 1, 8, 30)),
    ("2024年05月01日08:30:15", _sh(2024, 5, 1, 8, 30, 15)),
    ("2024年5月1日", _sh(2024, 5, 1)),
    ("2024-05-01", _sh(2024, 5, 1)),
    ("2024-05-01 08:30", _sh(2024, 5, 1, 8, 30)),
    ("2024-05-01 08:30:15", _sh(2024, 5, 1, 8, 30, 15)),
    ("2024/5/1 8:30", _sh(2024, 5, 1, 8, 30)),
    ("2024.05.01", _sh(2024, 5, 1)),
    ("2024年5月1日 下午3点30分", _sh(2024, 5, 1, 15, 30)),
    ("2024年5月1日 上午9时05分", _sh(2024, 5, 1, 9, 5)),
    ("二〇二四年五月一日", _sh(2024, 5, 1)),
    ("二〇二四年十二月三十一日", _sh(2024, 12, 31)),
    ("２０２４年５月１日　０８：３０", _sh(2024, 5, 1, 8, 30)),  # full-width digits and colon
    # without a year: this year unless that is more than a day ahead
    ("05-01 08:30", _sh(2026, 5, 1, 8, 30)),
    ("5月1日 08:30", _sh(2026, 5, 1, 8, 30)),
    ("5月1日", _sh(2026, 5, 1)),
    ("11-21 20:00", _sh(2026, 11, 21, 20, 0)),  # later today: within a day, still this year
    ("11-22 20:00", _sh(2025, 11, 22, 20, 0)),  # 41 hours ahead: last year
    ("12-31 23:50", _sh(2025, 12, 31, 23, 50)),
    # machine formats
    ("2024-05-01T08:30:00Z", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ("2024-05-01T08:30:00+08:00", _sh(2024, 5, 1, 8, 30)),
    ("2024-05-01T08:30:00.123456-05:00", datetime(2024, 5, 1, 13, 30, 0, 123456, tzinfo=UTC)),
    ("2024-05-01T08:30:00", _sh(2024, 5, 1, 8, 30)),
    ("Wed, 01 May 2024 08:30:00 +0800", _sh(2024, 5, 1, 8, 30)),
    ("Wed, 01 May 2024 00:30:00 GMT", datetime(2024, 5, 1, 0, 30, tzinfo=UTC)),
    ("01 May 2024 08:30:00 -0000", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ("Wed, 01 May 2024 08:30:00 CST", _sh(2024, 5, 1, 8, 30)),  # China Standard Time when tz is UTC+8
    ("Wed May 01 08:30:00 CST 2024", _sh(2024, 5, 1, 8, 30)),  # Java's Date.toString()
    ("Wed May 01 08:30:00 GMT 2024", datetime(2024, 5, 1, 8, 30, tzinfo=UTC)),
    ("Mon, 26 Jan 2004 16:31:00 ET", None),  # a zone Python does not know: unread, not misread
    ("1714523400", _sh(2024, 5, 1, 8, 30)),
    ("1714523400000", _sh(2024, 5, 1, 8, 30)),
    # relative to now
    ("刚刚", NOW.astimezone(UTC)),
    ("30秒前", (NOW - timedelta(seconds=30)).astimezone(UTC)),
    ("5分钟前", (NOW - timedelta(minutes=5)).astimezone(UTC)),
    ("5 分钟前", (NOW - timedelta(minutes=5)).astimezone(UTC)),
    ("3小时前", _sh(2026, 11, 20, 23, 40)),
    ("2天前", _sh(2026, 11, 19, 2, 40)),
    ("半小时前", _sh(2026, 11, 21, 2, 10)),
    ("一小时前", _sh(2026, 11, 21, 1, 40)),
    ("两天前", _sh(2026, 11, 19, 2, 40)),
    ("十二小时前", _sh(2026, 11, 20, 14, 40)),
    ("1周前", _sh(2026, 11, 14, 2, 40)),
    ("今天 08:30", _sh(2026, 11, 21, 8, 30)),
    ("今天08:30", _sh(2026, 11, 21, 8, 30)),
    ("昨天 12:30", _sh(2026, 11, 20, 12, 30)),
    ("昨天 下午3:30", _sh(2026, 11, 20, 15, 30)),
    ("前天", _sh(2026, 11, 19)),
    ("前天 09:00", _sh(2026, 11, 19, 9, 0)),
    ("01:00", _sh(2026, 11, 21, 1, 0)),
    ("08:30", _sh(2026, 11, 20, 8, 30)),  # six hours ahead of now: yesterday's
    # inside surrounding text
    ("发布于 2024-05-01 08:30", _sh(2024, 5, 1, 8, 30)),
    ("来源：新华网 2024-05-01", _sh(2024, 5, 1)),
    ("发布时间：2024-05-01 08:30:00 来源：人民网 浏览次数：1234", _sh(2024, 5, 1, 8, 30)),
    ("来源：某市政府网  发布于 3小时前", _sh(2026, 11, 20, 23, 40)),
    ("2024年5月1日 08:30 来源：人民日报", _sh(2024, 5, 1, 8, 30)),
    ("（2024-05-01 08:30:15）", _sh(2024, 5, 1, 8, 30, 15)),
    # nothing to read
    ("", None),
    ("   ", None),
    ("某日", None),
    ("hello world", None),
    ("2024-13-01", None),
    ("2024-02-30 08:00", None),
    ("05-01", None),  # a bare month-day with dashes is too easily something else
    ("12345", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_parse_chinese_time(text: str, expected: datetime | None) -> None:
    got = parse_chinese_time(text, now=NOW)
    assert got == expected
    if got is not None:
        assert got.tzinfo is UTC


def test_year_boundary_puts_late_december_in_last_year() -> None:
    new_year = datetime(2027, 1, 1, 0, 10, tzinfo=SH)
    assert parse_chinese_time("12-31 23:50", now=new_year) == _sh(2026, 12, 31, 23, 50)
    assert parse_chinese_time("12月31日 23:50", now=new_year) == _sh(2026, 12, 31, 23, 50)
    assert parse_chinese_time("1月1日 00:05", now=new_year) == _sh(2027, 1, 1, 0, 5)
    assert parse_chinese_time("昨天 23:50", now=new_year) == _sh(2026, 12, 31, 23, 50)


def test_relative_days_follow_the_local_calendar_not_utc() -> None:
    # 02:40 in Beijing is still the previous day in UTC; 昨天 is the Beijing yesterday
    assert parse_chinese_time("昨天 12:30", now=NOW.astimezone(UTC)) == _sh(2026, 11, 20, 12, 30)


def test_naive_times_are_read_in_the_given_zone() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    assert parse_chinese_time("2024-05-01 08:30", now=NOW, tz=tokyo) == datetime(2024, 4, 30, 23, 30, tzinfo=UTC)
    assert parse_chinese_time("2024-05-01T08:30:00+08:00", now=NOW, tz=tokyo) == _sh(2024, 5, 1, 8, 30)


def test_cst_is_us_central_time_outside_china() -> None:
    chicago = ZoneInfo("America/Chicago")
    got = parse_chinese_time("Wed, 01 May 2024 08:30:00 CST", now=NOW, tz=chicago)
    assert got == datetime(2024, 5, 1, 14, 30, tzinfo=UTC)


def test_february_29_without_a_year_goes_back_to_a_leap_year_only_if_valid() -> None:
    now = datetime(2028, 3, 1, 12, 0, tzinfo=SH)  # 2028 is a leap year
    assert parse_chinese_time("02-29 10:00", now=now) == _sh(2028, 2, 29, 10, 0)
    assert parse_chinese_time("02-29 10:00", now=datetime(2027, 3, 1, tzinfo=SH)) is None


@pytest.mark.parametrize("bad", [None, 42, b"2024-05-01", "\x00\x01", "9" * 400, "2024-05-01 99:99"])
def test_bad_input_is_none_not_an_exception(bad: object) -> None:
    assert parse_chinese_time(bad, now=NOW) is None  # type: ignore[arg-type]


def test_naive_now_is_taken_as_utc() -> None:
    naive = NOW.astimezone(UTC).replace(tzinfo=None)
    assert parse_chinese_time("3小时前", now=naive) == _sh(2026, 11, 20, 23, 40)


@pytest.mark.parametrize(("text", "zoned"), [
    ("2024-05-01T08:30:00Z", True), ("2024-05-01T08:30:00+08:00", True), ("Wed, 01 May 2024 08:30:00 +0800", True),
    ("Wed, 01 May 2024 08:30:00 GMT", True), ("2024-05-01 08:30", False), ("2024-05-01", False),
    ("2024年5月1日 08:30", False),
])
def test_has_zone(text: str, zoned: bool) -> None:
    assert has_zone(text) is zoned


@pytest.mark.parametrize(("text", "value"), [
    ("一", 1), ("两", 2), ("十", 10), ("十二", 12), ("二十", 20), ("二十三", 23), ("一百零五", 105), ("12", 12),
    ("abc", None),
])
def test_cn_number(text: str, value: int | None) -> None:
    assert cn_number(text) == value


def test_fixed_offset_now_is_accepted() -> None:
    now = datetime(2026, 11, 21, 2, 40, tzinfo=timezone(timedelta(hours=8)))
    assert parse_chinese_time("刚刚", now=now) == NOW.astimezone(UTC)
