"""Publish times as Chinese sites and feeds write them, turned into aware UTC datetimes.

`parse_chinese_time(text, *, now, tz)` finds one time in `text` (surrounding words such as "发布于" or
"来源：新华网" are ignored) and returns it as an aware UTC datetime, or None when there is none. It never
raises. Accepted forms:

- absolute: 2024年5月1日 08:30, 2024年05月01日08:30:15, 二〇二四年五月一日, 2024-05-01, 2024-05-01 08:30,
  2024/5/1 8:30, 2024.05.01, optional 上午/下午/晚上 before the hour, optional zone (Z, +08:00) after it;
- without a year: 05-01 08:30, 5月1日, 5月1日 08:30 — the year of `now` in `tz`, or the year before when
  that would put the time more than a day after `now`;
- ISO 8601 and RFC 822 strings, Java's Date.toString() ("Sat Nov 21 10:00:00 CST 2026"), Unix timestamps in
  seconds (10 digits) or milliseconds (13 digits). "CST" is China Standard Time when `tz` is UTC+8, and a
  zone name Python does not know makes the string unreadable rather than wrongly read;
- relative to `now` in `tz`: 刚刚, N秒前, N分钟前, N小时前, N天前, N周前, 半小时前, 一小时前/两天前 (Chinese
  numerals), 今天 08:30, 昨天 12:30, 前天 (midnight), 前天 09:00; a bare "08:30" is today (yesterday when
  that is over an hour ahead of `now`).

Times without a zone are in `tz`. `has_zone(text)` says whether a time string names its zone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

_CN_DIGITS = {"〇": 0, "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
              "九": 9}
_NUM = r"(\d+|[〇零一二两三四五六七八九十百]+)"
_TIME = (r"(?:\s*(?:T|\s)?\s*(?P<ampm>上午|下午|晚上|早上|凌晨|中午)?\s*(?P<H>\d{1,2})\s*[:时點点]\s*(?P<M>\d{1,2})"
         r"(?:\s*[:分]\s*(?P<S>\d{1,2})(?:\.\d+)?)?\s*秒?(?P<zone>\s*(?:Z|[+-]\d{2}:?\d{2})\b)?)?")
_FULL_DATE = re.compile(r"(?<!\d)(?P<y>\d{4})\s*[年\-/.]\s*(?P<m>\d{1,2})\s*[月\-/.]\s*(?P<d>\d{1,2})(?!\d)\s*日?"
                        + _TIME)
_MONTH_DAY_CN = re.compile(r"(?<!\d)(?P<m>\d{1,2})\s*月\s*(?P<d>\d{1,2})\s*日" + _TIME)
_MONTH_DAY_NUM = re.compile(r"(?<![\d\-/.])(?P<m>\d{1,2})[\-/](?P<d>\d{1,2})(?![\d\-/.])" + _TIME)
_CN_DATE = re.compile(r"([〇零一二三四五六七八九]{4})\s*年\s*([一二三四五六七八九十]{1,3})\s*月"
                      r"\s*([一二三四五六七八九十]{1,3})\s*日")
_RELATIVE = re.compile(_NUM + r"\s*(?:个)?\s*(秒钟|秒|分钟|分|小时|钟头|天|日|周|星期|礼拜)\s*(?:以)?前")
_HALF_HOUR = re.compile(r"半\s*(?:个)?\s*(小时|钟头)\s*前")
_JUST_NOW = re.compile(r"刚刚|刚才|片刻前")
_DAY_WORD = re.compile(r"(?P<word>今天|今日|昨天|昨日|前天|前日)" + _TIME)
_TIME_ONLY = re.compile(r"^\s*(?P<ampm>上午|下午|晚上|早上|凌晨|中午)?\s*(?P<H>\d{1,2}):(?P<M>\d{2})"
                        r"(?::(?P<S>\d{2}))?\s*$")
_RFC822_IN_TEXT = re.compile(r"(?:[A-Z][a-z]{2},\s*)?\d{1,2}\s+[A-Z][a-z]{2}\s+\d{2,4}\s+\d{1,2}:\d{2}(?::\d{2})?"
                             r"(?:\s*(?P<zone>[+-]\d{4}|[A-Z]{1,5})\b)?")
_JAVA_DATE = re.compile(r"\b[A-Z][a-z]{2}\s+(?P<mon>[A-Z][a-z]{2})\s+(?P<d>\d{1,2})\s+(?P<time>\d{1,2}:\d{2}:\d{2})"
                        r"\s+(?P<zone>[A-Z]{2,5})\s+(?P<y>\d{4})\b")
_ZONE = re.compile(r"(?:\d(?:Z|z)|[+-]\d{2}:?\d{2}|\b(?:GMT|UTC|UT|[ECMP][SD]T|CST|HKT|JST|KST|Z)\b)\s*$")
_UNITS = {"秒钟": "seconds", "秒": "seconds", "分钟": "minutes", "分": "minutes", "小时": "hours", "钟头": "hours",
          "天": "days", "日": "days", "周": "weeks", "星期": "weeks", "礼拜": "weeks"}
_DAY_OFFSETS = {"今天": 0, "今日": 0, "昨天": 1, "昨日": 1, "前天": 2, "前日": 2}
_MAX_TIMESTAMP_YEARS = 200


def parse_chinese_time(text: str, *, now: datetime, tz: tzinfo = SHANGHAI) -> datetime | None:
    """The first time found in `text` as an aware UTC datetime, or None. Never raises."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        cleaned = _clean(text)
        for parse in _PARSERS:
            found = parse(cleaned, now, tz)
            if found is not None:
                return found.astimezone(UTC)
    except (ValueError, OverflowError, OSError, TypeError, IndexError):
        return None
    return None


def has_zone(text: str) -> bool:
    """Whether a time string names its zone (Z, +08:00, +0800, GMT, UTC …) at its end."""
    return bool(_ZONE.search(_clean(text)))


def cn_number(text: str) -> int | None:
    """Arabic or simple Chinese numerals up to 999 (一, 两, 十二, 二十, 一百零五) as an int; None otherwise."""
    if text.isdigit():
        return int(text)
    total, digit = 0, 0
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch == "十":
            total += (digit or 1) * 10
            digit = 0
        elif ch == "百":
            total += (digit or 1) * 100
            digit = 0
        else:
            return None
    return total + digit


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u3000", " ").strip()
    return _CN_DATE.sub(_cn_date_digits, text)


def _cn_date_digits(match: re.Match[str]) -> str:
    year = "".join(str(_CN_DIGITS[ch]) for ch in match.group(1))
    return f"{year}年{cn_number(match.group(2))}月{cn_number(match.group(3))}日"


def _whole_timestamp(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    if not re.fullmatch(r"\d{10}|\d{13}", text):
        return None
    seconds = int(text) / (1000 if len(text) == 13 else 1)
    found = datetime.fromtimestamp(seconds, UTC)
    return found if abs(found.year - now.year) < _MAX_TIMESTAMP_YEARS else None


def _whole_iso(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    if not re.match(r"\d{4}-\d{2}-\d{2}", text):
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=tz)


def _rfc822(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    match = _RFC822_IN_TEXT.search(text)
    if match is None:
        return None
    stamp, zone = match.group(0), match["zone"]
    if zone == "CST" and tz.utcoffset(now.replace(tzinfo=None)) == timedelta(hours=8):
        stamp = stamp[: match.start("zone") - match.start()] + "+0800"  # China Standard Time, not US Central
    try:
        found = parsedate_to_datetime(stamp)
    except (TypeError, ValueError, IndexError):
        return None
    if found.tzinfo is None and zone and zone != "-0000":
        return None  # a zone Python does not know (e.g. "ET"): better unread than read in the wrong zone
    if found.tzinfo is None:  # "-0000" (UTC, local zone unknown) or no zone at all
        return found.replace(tzinfo=UTC if zone == "-0000" else tz)
    return found


def _java_date(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    """Java's Date.toString(), common on Chinese sites: "Sat Nov 21 10:00:00 CST 2026"."""
    match = _JAVA_DATE.search(text)
    if match is None:
        return None
    return _rfc822(f"{match['d']} {match['mon']} {match['y']} {match['time']} {match['zone']}", now, tz)


def _full_date(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    match = _FULL_DATE.search(text)
    if match is None:
        return None
    return _build(match, int(match["y"]), tz)


def _relative(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    if _JUST_NOW.search(text):
        return now
    if _HALF_HOUR.search(text):
        return now - timedelta(minutes=30)
    match = _RELATIVE.search(text)
    if match is None:
        return None
    amount = cn_number(match.group(1))
    if amount is None:
        return None
    return now - timedelta(**{_UNITS[match.group(2)]: amount})


def _day_word(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    match = _DAY_WORD.search(text)
    if match is None:
        return None
    day = now.astimezone(tz).date() - timedelta(days=_DAY_OFFSETS[match["word"]])
    hour, minute, second = _clock(match)
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=tz)


def _month_day(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    match = _MONTH_DAY_CN.search(text)
    if match is None:
        match = _MONTH_DAY_NUM.search(text)
        if match is None or match["H"] is None:  # a bare "05-01" is too easily something else
            return None
    year = now.astimezone(tz).year
    for candidate in (year, year - 1):
        try:
            found = _build(match, candidate, tz)
        except ValueError:  # 02-29 in a year without one
            continue
        if found is not None and found <= now + timedelta(days=1):
            return found
    return None


def _time_only(text: str, now: datetime, tz: tzinfo) -> datetime | None:
    match = _TIME_ONLY.match(text)
    if match is None:
        return None
    hour, minute, second = _clock(match)
    today = now.astimezone(tz).date()
    found = datetime(today.year, today.month, today.day, hour, minute, second, tzinfo=tz)
    return found - timedelta(days=1) if found > now + timedelta(hours=1) else found


def _build(match: re.Match[str], year: int, tz: tzinfo) -> datetime:
    hour, minute, second = _clock(match)
    zone: tzinfo = tz
    zone_text = match.groupdict().get("zone")
    if zone_text:
        zone = _fixed_zone(zone_text.strip())
    return datetime(year, int(match["m"]), int(match["d"]), hour, minute, second, tzinfo=zone)


def _clock(match: re.Match[str]) -> tuple[int, int, int]:
    if match["H"] is None:
        return 0, 0, 0
    hour = int(match["H"])
    if (match["ampm"] in ("下午", "晚上") and hour < 12) or (match["ampm"] == "中午" and hour < 6):
        hour += 12
    return hour, int(match["M"]), int(match["S"] or 0)


def _fixed_zone(text: str) -> tzinfo:
    if text in ("Z", "z"):
        return UTC
    return datetime.strptime(text.replace(":", ""), "%z").tzinfo or UTC


_PARSERS: tuple[Callable[[str, datetime, tzinfo], datetime | None], ...] = (
    _whole_timestamp, _whole_iso, _full_date, _rfc822, _java_date, _relative, _day_word, _month_day, _time_only,
)
