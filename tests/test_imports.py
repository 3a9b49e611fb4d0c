"""File imports: every format (CSV UTF-8/GBK/UTF-16, semicolon and tab delimiters, XLSX, JSON lines, JSON
array), row-level failures reported with the line a person sees while the other rows are imported, missing
columns rejected once for the whole file, unmapped columns never stored, CLI --column parsing."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import config
from config.loader import load_config
from config.schema import ImportMapping
from crawlers.imports import (
    ColumnArgError,
    ImportReport,
    detect_format,
    import_file,
    mapping_from_args,
    parse_column_args,
)
from tests.conftest import FIXTURES

IMPORTS = FIXTURES / "imports"
NOW = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
PLATFORM = {"标题": "title", "正文": "text", "链接": "url", "发布时间": "published", "作者": "author",
            "转发数": "reposts", "评论数": "comments", "点赞数": "likes", "粉丝数": "author_followers"}
HOTLINE = {"工单编号": "id", "来电时间": "published", "诉求人": "author", "诉求标题": "title", "诉求内容": "text"}
MAILBOX = {"msg_id": "id", "subject": "title", "content": "text", "submitted": "published", "writer.name": "author",
           "writer.followers": "author_followers"}


def _import(name: str, columns: dict[str, str], **mapping: Any) -> ImportReport:
    return import_file(IMPORTS / name, ImportMapping(source="src", columns=columns, **mapping), now=NOW)


@pytest.mark.parametrize("name", ["platform_export.csv", "platform_export_gbk.csv"])
def test_platform_export_csv_in_utf8_bom_and_gbk(name: str) -> None:
    report = import_file(IMPORTS / name, ImportMapping(source="platform", columns=PLATFORM), now=NOW)
    assert report.rows == 6  # the blank line is not a row
    assert report.errors == [(5, "没有正文也没有标题（标题、正文 为空）"), (6, "转发数：'很多' 不是数字")]
    first, second, third, fourth = report.items
    assert first.title == "某县自来水厂停水三天 居民生活受影响"
    assert "多个小区至今未恢复供水" in first.body  # a quoted field over two lines
    assert first.url == "https://weibo.example.cn/status/1001"
    assert first.published == "2026-11-20 18:30" and first.author == "市民甲"
    assert first.fetched_at == NOW and first.source == "platform"
    assert {k: first.extra[k] for k in ("reposts", "comments", "likes", "author_followers")} == {
        "reposts": 12_000, "comments": 3_456, "likes": 789, "author_followers": 100_000}
    assert first.extra["import"] == {"file": name, "line": 2}
    assert second.published == "3分钟前"  # raw relative time, parsed later by normalization
    assert second.extra["import"]["line"] == 4  # line 2-3 hold one record
    assert "reposts" not in third.extra  # "-" is how exports write "no value"
    assert fourth.url.startswith("platform:") and fourth.extra["import"]["line"] == 9


def test_shipped_monitor_platform_mapping_reads_a_platform_export() -> None:
    shipped = load_config(Path(config.__file__).parent / "default.yaml", environ={}).settings
    mapping = shipped.imports["monitor-platform"]
    report = import_file(IMPORTS / "platform_export_gbk.csv", mapping, now=NOW)
    assert len(report.items) == 4 and [line for line, _ in report.errors] == [5, 6]
    assert report.items[0].source == "monitor-platform" and report.items[0].extra["reposts"] == 12_000


def test_synthesized_url_is_stable_across_imports() -> None:
    once = _import("platform_export.csv", PLATFORM).items
    again = _import("platform_export_gbk.csv", PLATFORM).items
    assert [i.url for i in once] == [i.url for i in again]


def test_missing_columns_are_one_error_for_the_whole_file() -> None:
    columns = PLATFORM | {"情感倾向": "title", "阅读数": "likes"}
    report = _import("platform_export.csv", columns)
    assert report.items == [] and report.rows == 0
    [(line, reason)] = report.errors
    assert line == 1 and "情感倾向" in reason and "阅读数" in reason and "转发数" not in reason.split("（")[0]


def test_explicit_encoding_and_wrong_encoding() -> None:
    ok = _import("platform_export_gbk.csv", PLATFORM, encoding="GB2312")
    assert len(ok.items) == 4
    bad = _import("platform_export_gbk.csv", PLATFORM, encoding="utf-8")
    assert bad.items == [] and bad.errors[0][0] == 1 and "utf-8" in bad.errors[0][1]


def test_xlsx_hotline_with_title_row_datetimes_and_unmapped_phone() -> None:
    report = _import("hotline_12345.xlsx", HOTLINE, sheet="工单")
    assert report.rows == 4
    assert report.errors == [(5, "没有正文也没有标题（诉求标题、诉求内容 为空）")]
    first, second, third = report.items
    assert first.url == "src:GD20261120001" and first.extra["id"] == "GD20261120001"
    assert first.published == "2026-11-20T09:15:00+08:00"  # naive cell: Asia/Shanghai
    assert second.published == "2026-11-20T10:02:30+08:00"
    assert third.extra["id"] == "20261120004" and third.published == "2026-11-20T00:00:00+08:00"
    assert first.title == "小区停水" and first.author == "张先生"
    stored = json.dumps([i.payload() for i in report.items], ensure_ascii=False)
    assert "13800000001" not in stored and "某区" not in stored  # unmapped columns are not kept


def test_xlsx_sheet_choice() -> None:
    first_sheet = _import("hotline_12345.xlsx", HOTLINE)
    [(line, reason)] = first_sheet.errors
    assert line == 1 and "工单编号" in reason and "说明" in reason and "另有：工单" in reason
    unknown = _import("hotline_12345.xlsx", HOTLINE, sheet="汇总")
    assert unknown.errors == [(0, "没有名为 '汇总' 的工作表；现有：说明、工单")]


def test_damaged_sheet_keeps_rows_before_the_damage(tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(IMPORTS / "hotline_12345.xlsx") as zin, zipfile.ZipFile(damaged, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "xl/worksheets/sheet2.xml":  # the 工单 sheet, cut off inside row 5
                data = data[: data.index(b'<row r="5"')] + b'<row r="5"><c r="A5" t="inlineStr"><is><t>cut'
            zout.writestr(name, data)
    report = import_file(damaged, ImportMapping(source="src", columns=HOTLINE, sheet="工单"), now=NOW)
    assert len(report.items) == 2 and report.rows == 2
    [(line, reason)] = report.errors
    assert line == 5 and "其后的行未导入" in reason


def test_utf16_tab_separated_text_as_excel_saves_it() -> None:
    report = _import("hotline_12345_utf16.txt", HOTLINE)
    assert report.errors == [] and report.rows == 2
    assert [i.title for i in report.items] == ["小区停水", "学校食堂"]
    assert report.items[0].published == "2026/11/20 09:15"


def test_semicolon_delimiter_is_sniffed() -> None:
    report = _import("semicolon.csv", {"标题": "title", "正文": "text", "作者": "author"})
    [item] = report.items
    assert item.title == "道路积水" and item.author == "网友庚" and item.body.startswith("暴雨后")


def test_jsonl_keeps_good_lines_and_reports_bad_ones_by_line() -> None:
    report = _import("mailbox_2026-11.jsonl", MAILBOX)
    assert report.rows == 6
    lines = [line for line, _ in report.errors]
    assert lines == [2, 5, 6, 7]
    reasons = dict(report.errors)
    assert "JSON 格式错误" in reasons[2] and "不是 JSON 对象" in reasons[5]
    assert "没有正文也没有标题" in reasons[6] and "writer.followers" in reasons[7]
    first, second = report.items
    assert first.url == "src:XX-001" and first.author == "匿名" and first.extra["author_followers"] == 0
    assert second.published == "1795132800"  # a Unix timestamp, kept as digits for normalization
    assert second.title == "" and second.body.startswith("反映某街道")


def test_json_array_file_and_fields_that_never_appear() -> None:
    report = _import("mailbox_array.json", MAILBOX)
    assert [i.extra["id"] for i in report.items] == ["A-1"]
    assert report.errors[:2] == [(2, "没有正文也没有标题（subject、content 为空）"), (3, "第3项不是 JSON 对象")]
    assert report.errors[2][0] == 0 and "submitted" in report.errors[2][1]


def test_file_level_failures_are_reports_not_exceptions(tmp_path: Path) -> None:
    assert _import("old_format.xls", HOTLINE).errors[0][1].startswith("这是旧版 Excel")
    missing = _import("no_such_file.csv", HOTLINE)
    assert missing.errors[0][0] == 0 and "无法读取文件" in missing.errors[0][1]
    fake = tmp_path / "broken.xlsx"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    broken = import_file(fake, ImportMapping(source="s", columns=HOTLINE), now=NOW)
    assert broken.items == [] and "Excel" in broken.errors[0][1]
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"content": "第一行"}\n' + "[" * 100_000 + "\n", encoding="utf-8")
    nested = import_file(deep, ImportMapping(source="s", columns={"content": "text"}), now=NOW)
    assert len(nested.items) == 1 and nested.errors == [(2, "JSON 嵌套层数过多，无法读取")]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert import_file(empty, ImportMapping(source="s", columns=HOTLINE), now=NOW).errors == [(0, "文件中没有数据")]


def test_format_detection(tmp_path: Path) -> None:
    assert detect_format(IMPORTS / "hotline_12345.xlsx") == "xlsx"
    assert detect_format(IMPORTS / "mailbox_2026-11.jsonl") == "jsonl"
    assert detect_format(IMPORTS / "platform_export.csv") == "csv"
    renamed = tmp_path / "export.dat"
    renamed.write_bytes((IMPORTS / "hotline_12345.xlsx").read_bytes())
    assert detect_format(renamed) == "xlsx"  # leading bytes win over the name
    lines = tmp_path / "export"
    lines.write_text('{"a": 1}\n', encoding="utf-8")
    assert detect_format(lines) == "jsonl"
    assert detect_format(lines, "csv") == "csv"


def test_parse_column_args() -> None:
    assert parse_column_args(["标题=title", " 正文 = text ", "a=b=author"]) == {
        "标题": "title", "正文": "text", "a=b": "author"}
    cases = {
        "格式不对": ["标题title"],
        "没有 'body' 这个字段": ["正文=body"],
        "被映射了两次": ["正文=text", "正文=title"],
        "text 或 title": ["作者=author"],
        "至少需要一个": [],
    }
    for expected, args in cases.items():
        with pytest.raises(ColumnArgError, match=expected):
            parse_column_args(args)


def test_mapping_from_args() -> None:
    mapping = mapping_from_args("hotline", ["诉求内容=text", "工单编号=id"], fmt="csv", encoding="gbk")
    assert mapping.columns == {"诉求内容": "text", "工单编号": "id"} and mapping.format == "csv"
    with pytest.raises(ColumnArgError, match="source"):
        mapping_from_args("", ["诉求内容=text"])


def test_real_weibo_records_import(shared_data: Path) -> None:
    """CED Weibo posts (research data, read in place): every record imports with integer counts."""
    path = shared_data / "ced_weibo_rumor" / "ced_original_microblogs.jsonl"
    columns = {"id": "id", "text": "text", "time": "published", "reposts": "reposts", "comments": "comments",
               "likes": "likes", "user_followers": "author_followers"}
    report = import_file(path, ImportMapping(source="ced", columns=columns), now=NOW)
    assert report.rows > 3000 and report.errors == []
    assert len(report.items) == report.rows
    assert len({i.url for i in report.items}) == len(report.items)
    assert all(isinstance(i.extra["reposts"], int) for i in report.items)
    followers = [i.extra.get("author_followers") for i in report.items]
    assert all(isinstance(f, int) for f in followers if f is not None) and None in followers  # null: left out
    times = {"digits" if i.published and i.published.isdigit() else "text" for i in report.items}
    assert times == {"digits", "text"}  # Unix timestamps and Weibo's "Sat Jun 29 12:40:09 +0800 2013", as given
