"""File imports: export files (monitoring-platform exports, 12345 hotline records, 领导信箱 messages) read
into raw items by a column mapping (`yuqing import FILE --mapping NAME`, or `--source S --column 列名=字段`).

`import_file(path, mapping, *, now, tz) -> ImportReport` never raises for bad input. The report holds the
items, the problems as (line, reason) pairs and the number of data rows read. The line is the one a person
sees: the CSV line where the record starts, the Excel row number, the JSONL line; 0 means the whole file.
Reasons are Simplified Chinese (the officer running the import reads them).

- Formats: CSV (UTF-8 with or without BOM, UTF-16 with BOM, GBK/GB2312 read as GB18030, otherwise
  detected; the delimiter — comma, tab or semicolon — is the one under which the header shows the mapped
  columns), JSON lines (a file holding one JSON array is read too; its "lines" are then the element
  positions), XLSX (openpyxl, read-only, the first sheet or `mapping.sheet`). `format: auto` goes by the
  file's leading bytes (xlsx zip, old .xls), then by extension, then by the first character.
- Header: the first row, among the first 20, that holds every mapped column (exports often start with a
  title line). Names match exactly after stripping white space and a BOM. When no row does, the file is
  rejected with one error naming the missing columns.
- A row with neither text nor title, a count that is not a number, or a malformed JSON line is reported
  and left out; the other rows are imported. Fix the file and import it again: rows already imported are
  dropped by the raw-post store (same source and URL), so re-importing is harmless.
- Only mapped columns are kept (hotline records carry callers' phone and ID numbers; unmapped columns are
  deliberately not stored). When several columns map to one field, the first non-empty one wins.
- Spreadsheet datetimes become ISO 8601 with `tz` (default Asia/Shanghai) when naive; numbers stay
  numbers; counts accept "1.2万", "3,456", "10万+"; a row without URL gets `<source>:<id>` or
  `<source>:<content hash>` (see crawlers.json_api.build_item). `extra["import"]` records file and line.

`parse_column_args(["标题=title", …])` turns CLI `--column` pairs into a mapping's `columns`, raising
`ColumnArgError` with a one-line Chinese reason; `mapping_from_args` builds the whole ImportMapping.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Literal

import openpyxl
from pydantic import ValidationError

from config.schema import POST_FIELDS, ImportMapping
from crawlers.encoding import decode_document
from crawlers.items import RawItem
from crawlers.records import COUNT_FIELDS, SHANGHAI, ItemError, build_item, parse_count, scalar_text, select_path

Format = Literal["csv", "jsonl", "xlsx"]
HEADER_SEARCH_ROWS = 20
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".jsonl": "jsonl",
                                  ".ndjson": "jsonl", ".json": "jsonl", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_FORMATS: dict[str, Format] = {"csv": "csv", "jsonl": "jsonl", "xlsx": "xlsx"}
_DELIMITERS = (",", "\t", ";")
_GB_LABELS = frozenset({"gbk", "gb2312", "cp936", "gb_2312", "gb-2312", "936", "gb18030"})


@dataclass(frozen=True)
class ImportReport:
    items: list[RawItem]
    errors: list[tuple[int, str]]  # (line as counted in the file, 0 = the whole file; reason in Chinese)
    rows: int  # data rows read (header and blank lines not counted)


class ColumnArgError(ValueError):
    """A `--column` argument is unusable; the message is one line for the CLI to print."""


class ImportFileError(Exception):
    """The file (or the rest of it from `line` on) cannot be read; import_file reports it as an error."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.line = line


@dataclass(frozen=True)
class _Context:
    path: Path
    mapping: ImportMapping
    now: datetime
    tz: tzinfo
    columns: tuple[tuple[str, str], ...]  # (file column as matched, post field), in mapping order


def import_file(path: Path, mapping: ImportMapping, *, now: datetime, tz: tzinfo = SHANGHAI) -> ImportReport:
    """Read one export file with a column mapping; never raises for bad input (see the module docstring)."""
    columns = tuple((_clean_name(c), f) for c, f in mapping.columns.items())
    ctx = _Context(path, mapping, now, tz, columns)
    try:
        fmt = detect_format(path, mapping.format)
        if fmt == "jsonl":
            return _import_records(ctx, _read_text(path, mapping.encoding))
        if fmt == "xlsx":
            with _workbook(path) as book:
                rows, hint = _sheet_rows(book, mapping.sheet)
                return _import_table(ctx, rows, hint)
        text = _read_text(path, mapping.encoding)
        return _import_table(ctx, _csv_rows(text, _sniff_delimiter(text, mapping.columns, path.suffix)))
    except ImportFileError as exc:
        return ImportReport(items=[], errors=[(exc.line, str(exc))], rows=0)


def detect_format(path: Path, declared: str = "auto") -> Format:
    """The file's format: as declared, else by its leading bytes, its extension, its first character.
    Raises ImportFileError (unreadable file, legacy .xls, HTML table)."""
    if declared != "auto":
        if declared not in _FORMATS:
            raise ImportFileError(f"未知的文件格式 {declared!r}；可用：csv、jsonl、xlsx")
        return _FORMATS[declared]
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise ImportFileError(f"无法读取文件 {path}：{exc.strerror or exc}") from None
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError("这是旧版 Excel（.xls）文件，请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    suffix = path.suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if suffix in (".xls", ".htm", ".html") and first == b"<":
        raise ImportFileError("文件是网页表格（HTML），不是 Excel 表格；请在 Excel 中另存为 .xlsx 或 CSV 后再导入")
    return "jsonl" if first in (b"{", b"[") else "csv"


def _read_text(path: Path, encoding: str | None) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"无法读取文件 {path}：{exc.strerror or exc}") from None
    if encoding:
        codec = "gb18030" if encoding.lower().strip() in _GB_LABELS else encoding
        try:
            return data.decode(codec).lstrip("\ufeff")
        except LookupError:
            raise ImportFileError(f"未知的编码 {encoding!r}") from None
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise ImportFileError(f"第{line}行不是 {encoding} 编码的文字；请检查编码设置", line) from None
    decoded = decode_document(data, kind="auto")
    if decoded.how == "fallback":
        raise ImportFileError(f"无法确定文件编码（按 {decoded.encoding} 读取会有乱码）；请指定编码，例如 gbk 或 utf-8")
    return decoded.text.lstrip("\ufeff")


def _sniff_delimiter(text: str, columns: Iterable[str], suffix: str) -> str:
    """The delimiter under which some early row shows the most mapped columns; else the most frequent one
    on the first line (tab for .tsv, comma when nothing tells)."""
    wanted = {_clean_name(c) for c in columns}
    sample = "\n".join(text.split("\n", HEADER_SEARCH_ROWS)[:HEADER_SEARCH_ROWS])
    best, best_hits = "\t" if suffix.lower() == ".tsv" else ",", 0
    for delimiter in _DELIMITERS:
        rows = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        try:
            hits = max((len(wanted & {_clean_name(c) for c in row}) for row in rows), default=0)
        except csv.Error:
            continue
        if hits > best_hits:
            best, best_hits = delimiter, hits
    if best_hits == 0:
        first = text.split("\n", 1)[0]
        counts = {d: first.count(d) for d in _DELIMITERS}
        if max(counts.values()) > 0:
            best = max(counts, key=lambda d: counts[d])
    return best


def _csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(f"第{start}行起无法按 CSV 读取（{exc}），其后的行未导入", start) from None
        yield start, list(row)


@contextmanager
def _workbook(path: Path) -> Iterator[Any]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImportFileError(f"无法读取文件 {path}：{exc.strerror or exc}") from None
    with handle:
        try:  # openpyxl raises many kinds of errors on damaged files; all mean "not a readable .xlsx"
            book = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:
            raise ImportFileError(f"不是可读取的 Excel（.xlsx）文件：{type(exc).__name__}: {exc}") from None
        try:
            yield book
        finally:
            book.close()


def _sheet_rows(book: Any, sheet: str | None) -> tuple[Iterator[tuple[int, list[Any]]], str]:
    """The chosen sheet's rows (numbered as Excel numbers them) and a hint naming the sheet for messages."""
    names: list[str] = list(book.sheetnames)
    if sheet is not None and sheet not in names:
        raise ImportFileError(f"没有名为 {sheet!r} 的工作表；现有：{'、'.join(names)}")
    ws = book[sheet] if sheet is not None else book.worksheets[0]
    ws.reset_dimensions()  # some writers store wrong dimensions; read what is there
    others = [n for n in names if n != ws.title]
    hint = f"；工作表：{ws.title}" + (f"（另有：{'、'.join(others)}，可指定 sheet）" if others else "")
    return _guarded(enumerate(ws.iter_rows(min_row=1, values_only=True), 1)), hint


def _guarded(rows: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, list[Any]]]:
    """Rows of a sheet; a damaged sheet ends the file with an error at the row that could not be read."""
    line = 0
    try:
        for line, row in rows:
            yield line, list(row)
    except Exception as exc:  # openpyxl/XML errors of many kinds on damaged sheets
        reason = f"第{line + 1}行起无法读取（{type(exc).__name__}: {exc}），其后的行未导入"
        raise ImportFileError(reason, line + 1) from None


def _import_table(ctx: _Context, rows: Iterator[tuple[int, list[Any]]], hint: str = "") -> ImportReport:
    wanted = [c for c, _ in ctx.columns]
    items: list[RawItem] = []
    errors: list[tuple[int, str]] = []
    count = 0
    try:
        positions = _find_header(rows, wanted, hint)
        for line, cells in rows:
            if all(scalar_text(c) is None for c in cells):
                continue
            count += 1
            cell_values = {col: cells[i] if i < len(cells) else None for col, i in positions.items()}
            _add_row(ctx, line, cell_values, items, errors)
    except ImportFileError as exc:
        errors.append((exc.line, str(exc)))
    return ImportReport(items=items, errors=errors, rows=count)


def _find_header(rows: Iterator[tuple[int, list[Any]]], wanted: list[str], hint: str) -> dict[str, int]:
    """Consume rows up to the header; return each mapped column's position."""
    best: tuple[int, int, list[str]] | None = None  # (hits, line, names)
    for line, cells in rows:
        names = [_clean_name(scalar_text(c) or "") for c in cells]
        if not any(names):
            continue
        hits = sum(1 for w in wanted if w in names)
        if hits == len(wanted):
            return {w: names.index(w) for w in wanted}
        if best is None or hits > best[0]:
            best = (hits, line, names)
        if line >= HEADER_SEARCH_ROWS:
            break
    if best is None:
        raise ImportFileError(f"文件中没有数据{hint}")
    _, line, names = best
    missing = "、".join(w for w in wanted if w not in names)
    shown = "、".join(n for n in names if n)[:200]
    raise ImportFileError(f"表头缺少列：{missing}（第{line}行的表头是：{shown}）{hint}", line)


def _import_records(ctx: _Context, text: str) -> ImportReport:
    items: list[RawItem] = []
    errors: list[tuple[int, str]] = []
    seen: set[str] = set()
    count = 0
    for line, raw in _json_records(text):
        count += 1
        if isinstance(raw, str):
            errors.append((line, raw))
            continue
        values: dict[str, Any] = {}
        for column, _ in ctx.columns:
            value = select_path(raw, column, None)
            if value is not None:
                seen.add(column)
            values[column] = value
        _add_row(ctx, line, values, items, errors)
    never = [c for c, _ in ctx.columns if c not in seen]
    if count and never:
        errors.append((0, f"文件中没有任何一条记录含有这些字段：{'、'.join(never)}（请检查字段名）"))
    return ImportReport(items=items, errors=errors, rows=count)


def _json_records(text: str) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line, object) per record, or (line, reason) for a malformed one. A JSON array file yields its
    elements numbered by position."""
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except RecursionError:
            raise ImportFileError("JSON 嵌套层数过多，文件未导入") from None
        except json.JSONDecodeError as exc:
            reason = f"JSON 格式错误：{exc.msg}（第{exc.lineno}行第{exc.colno}列），文件未导入"
            raise ImportFileError(reason, exc.lineno) from None
        lines: Iterable[tuple[int, Any]] = enumerate(data if isinstance(data, list) else [data], 1)
        for number, element in lines:
            yield number, element if isinstance(element, dict) else f"第{number}项不是 JSON 对象"
        return
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"JSON 格式错误（第{exc.colno}列：{exc.msg}）"
            continue
        except RecursionError:
            yield number, "JSON 嵌套层数过多，无法读取"
            continue
        yield number, obj if isinstance(obj, dict) else "这一行不是 JSON 对象（应为 {...}）"


def _add_row(ctx: _Context, line: int, by_column: dict[str, Any], items: list[RawItem],
             errors: list[tuple[int, str]]) -> None:
    """Validate one row (values keyed by file column) and add its item, or its error."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for column, fieldname in ctx.columns:
        value = by_column.get(column)
        if fieldname in COUNT_FIELDS:
            try:
                value = parse_count(value)
            except ValueError:
                problems.append(f"{column}：{scalar_text(value) or value!r} 不是数字")
                continue
        if fieldname not in values and scalar_text(value) is not None:
            values[fieldname] = value
    if problems:
        errors.append((line, "；".join(problems)))
        return
    try:
        item, left_out = build_item(values, source=ctx.mapping.source, fetched_at=ctx.now, tz=ctx.tz)
    except ItemError:
        columns = "、".join(c for c, f in ctx.columns if f in ("text", "title"))
        errors.append((line, f"没有正文也没有标题（{columns} 为空）"))
        return
    if left_out:
        errors.append((line, "；".join(left_out)))
        return
    items.append(replace(item, extra={**item.extra, "import": {"file": ctx.path.name, "line": line}}))


def _clean_name(name: str) -> str:
    return name.replace("\ufeff", "").strip()


def parse_column_args(args: list[str]) -> dict[str, str]:
    """CLI `--column 列名=字段` pairs → {column: field}. Raises ColumnArgError (one line, Chinese)."""
    if not args:
        raise ColumnArgError("至少需要一个 --column 列名=字段，例如 --column 正文=text")
    columns: dict[str, str] = {}
    fields = "、".join(sorted(POST_FIELDS))
    for arg in args:
        column, sep, fieldname = arg.rpartition("=")
        column, fieldname = _clean_name(column), fieldname.strip()
        if not sep or not column or not fieldname:
            raise ColumnArgError(f"--column {arg!r} 格式不对：应为 列名=字段，例如 --column 标题=title")
        if fieldname not in POST_FIELDS:
            raise ColumnArgError(f"--column {arg!r}：没有 {fieldname!r} 这个字段；可用字段：{fields}")
        if columns.get(column, fieldname) != fieldname:
            raise ColumnArgError(f"--column：列 {column!r} 被映射了两次（{columns[column]} 和 {fieldname}）")
        columns[column] = fieldname
    if not {"text", "title"} & set(columns.values()):
        raise ColumnArgError("需要把一列映射为 text 或 title，例如 --column 正文=text")
    return columns


def mapping_from_args(source: str, args: list[str], *, fmt: Literal["auto", "csv", "jsonl", "xlsx"] = "auto",
                      encoding: str | None = None, sheet: str | None = None) -> ImportMapping:
    """The ImportMapping for `yuqing import FILE --source S --column A=b …`. Raises ColumnArgError."""
    columns = parse_column_args(args)
    try:
        return ImportMapping(source=source, columns=columns, format=fmt, encoding=encoding, sheet=sheet)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "mapping"
        raise ColumnArgError(f"导入设置无效：{where}: {first['msg']}") from None
