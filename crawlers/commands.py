"""Ingestion commands of the `yuqing` CLI (registered by pipeline.py): sources, reprocess, crawl, extract,
import and lead. Each builds what it needs, calls the crawler modules and prints; no business rules here."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from config.env import Environment
from config.loader import load_config
from config.schema import SiteSource
from crawlers.extract import ExtractError
from crawlers.health import assess, record_poll
from crawlers.imports import ColumnArgError, import_file, mapping_from_args
from crawlers.inspect_url import extract_document
from crawlers.leads import LeadError, manual_lead
from crawlers.store import DAY, items_since, requeue_failed, source_state, store_raw
from models.db import session_scope
from models.enums import SourceHealth
from models.migrate import open_database


def _db() -> Engine:
    return open_database(Environment.from_environ().database_url)


def cmd_sources(args: argparse.Namespace) -> int:
    """Each configured source: kind, state, last success, last error, items in the last day."""
    settings = load_config(args.config).settings
    engine = _db()
    now = datetime.now(UTC)
    tz = ZoneInfo(settings.agency.timezone)
    rows: list[dict[str, Any]] = []
    with Session(engine) as s:
        for src in settings.sources:
            st = source_state(s, src.name)
            verdict = assess(st, src, failing_after=settings.health.failing_after, now=now)
            rows.append({
                "name": src.name, "kind": src.kind, "enabled": src.enabled,
                "state": verdict.state.value if src.enabled else "disabled",
                "reason": verdict.reason,
                "last_success": _local(st.last_success_at, tz), "last_error": st.last_error,
                "last_error_at": _local(st.last_error_at, tz), "items_last_day": items_since(s, src.name, now - DAY),
            })
        s.rollback()  # looking only: never create state rows from here
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    labels = {h.value: h.label for h in SourceHealth} | {"disabled": "已停用"}
    print(f"{'数据源':<24}{'类型':<10}{'状态':<8}{'最近成功':<18}{'近24小时':>8}  最近错误")
    for r in rows:
        error = (r["last_error"] or "")[:60]
        print(f"{r['name']:<26}{r['kind']:<12}{labels[str(r['state'])]:<8}{r['last_success'] or '-':<20}"
              f"{r['items_last_day']:>8}  {error}")
    return 0


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Failed raw posts go back to the queue (after a fix); the running service picks them up."""
    engine = _db()
    with session_scope(engine) as s:
        count = requeue_failed(s, args.source)
    print(json.dumps({"requeued": count}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Import an export file (CSV, JSONL, Excel) as raw posts; bad rows are reported with their line number."""
    settings = load_config(args.config).settings
    try:
        if args.mapping:
            if args.mapping not in settings.imports:
                known = ", ".join(sorted(settings.imports)) or "none configured"
                print(f"error: unknown import mapping {args.mapping!r} (known: {known})", file=sys.stderr)
                return 2
            mapping = settings.imports[args.mapping]
        else:
            if not args.source or not args.column:
                print("error: give --mapping NAME, or --source NAME with --column HEADER=field …", file=sys.stderr)
                return 2
            mapping = mapping_from_args(args.source, args.column, fmt=args.format, encoding=args.encoding,
                                        sheet=args.sheet)
    except ColumnArgError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = import_file(Path(args.file), mapping, now=datetime.now(UTC), tz=ZoneInfo(settings.agency.timezone))
    with session_scope(_db()) as s:
        new = store_raw(s, report.items)
    for line, reason in report.errors:
        print(f"第{line}行：{reason}" if line else reason, file=sys.stderr)
    print(json.dumps({"rows": report.rows, "imported": len(report.items), "new": new, "errors": len(report.errors)}))
    if report.errors and not report.items:
        return 2
    return 1 if report.errors else 0


def cmd_lead(args: argparse.Namespace) -> int:
    """A duty officer registers a post by hand; the running service classifies it like any other."""
    try:
        item = manual_lead(title=args.title or "", text=args.text or "", url=args.url, author=args.author,
                           reporter=args.reporter or getpass.getuser(), now=datetime.now(UTC))
    except LeadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with session_scope(_db()) as s:
        new = store_raw(s, [item])
    print(json.dumps({"url": item.url, "new": bool(new)}, ensure_ascii=False))
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    """Print what yuqing extracts from a URL: one JSON object for an article page, an array for a feed."""
    settings = load_config(args.config).settings
    selectors = None
    if args.source:
        site = next((s for s in settings.sources if s.name == args.source and isinstance(s, SiteSource)), None)
        if site is None:
            print(f"error: no site source named {args.source!r} in the config", file=sys.stderr)
            return 2
        selectors = site.article
    try:
        is_feed, records = extract_document(args.url, fetch=settings.fetch, now=datetime.now(UTC), selectors=selectors)
    except ExtractError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 1
    print(json.dumps(records if is_feed else records[0], ensure_ascii=False, indent=2))
    return 0


def cmd_crawl(args: argparse.Namespace) -> int:
    """Crawl one site source in this process (Scrapy owns its reactor, so `yuqing run` starts one of these per
    crawl), store new articles as raw posts, record the poll in the source's state, print a JSON summary."""
    settings = load_config(args.config).settings
    src = next((s for s in settings.sources if s.name == args.name), None)
    if not isinstance(src, SiteSource):
        print(f"error: no site source named {args.name!r} in the config", file=sys.stderr)
        return 2
    engine = _db()
    now = datetime.now(UTC)
    from crawlers.site import run_crawl  # Scrapy is heavy: import it only for crawls

    report = run_crawl(src, settings.fetch, db_url=Environment.from_environ().database_url, now=now)
    with session_scope(engine) as s:
        record_poll(source_state(s, src.name), report.result, new_items=report.result.stored, now=now)
    print(json.dumps(report.summary(), ensure_ascii=False))
    return 1 if report.result.error else 0


def _local(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else None


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    src = sub.add_parser("sources", help="list sources with their health (last success, last error, items/day)")
    src.add_argument("--config")
    src.add_argument("--json", action="store_true", help="machine-readable output")
    src.set_defaults(func=cmd_sources)
    rep = sub.add_parser("reprocess", help="queue raw posts that failed processing again")
    rep.add_argument("--source", help="only this source")
    rep.set_defaults(func=cmd_reprocess)
    imp = sub.add_parser("import", help="import a CSV/JSONL/Excel export as posts")
    imp.add_argument("file")
    imp.add_argument("--config")
    imp.add_argument("--mapping", help="a mapping from the config's `imports`")
    imp.add_argument("--source", help="source name for the posts (with --column)")
    imp.add_argument("--column", action="append", metavar="HEADER=FIELD", help="column mapping (repeatable)")
    imp.add_argument("--format", default="auto", choices=["auto", "csv", "jsonl", "xlsx"])
    imp.add_argument("--encoding", help="CSV encoding (default: detected)")
    imp.add_argument("--sheet", help="Excel sheet (default: the first)")
    imp.set_defaults(func=cmd_import)
    crawl = sub.add_parser("crawl", help="crawl one site source now (Scrapy, in this process)")
    crawl.add_argument("name")
    crawl.add_argument("--config")
    crawl.set_defaults(func=cmd_crawl)
    ext = sub.add_parser("extract", help="print the article (or feed entries) yuqing extracts from a URL, as JSON")
    ext.add_argument("url", help="an http(s) URL, a file:// URL or a path")
    ext.add_argument("--config")
    ext.add_argument("--source", help="use this site source's article selectors")
    ext.set_defaults(func=cmd_extract)
    lead = sub.add_parser("lead", help="register a post by hand (a lead from a phone call, a meeting …)")
    lead.add_argument("--title")
    lead.add_argument("--text")
    lead.add_argument("--url")
    lead.add_argument("--author")
    lead.add_argument("--reporter", help="who registers it (default: the login name)")
    lead.set_defaults(func=cmd_lead)


