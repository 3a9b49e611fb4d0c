"""Ingestion throughput on this machine: crawl a local site (Scrapy, crawlers.site) and local feeds, then
normalize, de-duplicate and store. Prints JSON.

    .venv/bin/python benchmarks/ingest.py [--articles 5000] [--feeds 200] [--auto 1000] [--concurrency 32]

A separate server process on 127.0.0.1 generates the pages on the fly from a seeded generator over the
shipped seed corpus (classifier/seed/*.jsonl): list pages of 50 links, article pages (even numbers UTF-8,
odd numbers GBK declaring gb2312 with no charset in the HTTP header; every tenth article repeats an earlier
one's text, as reposts do) and RSS feeds of 20 items. Phases, each timed on its own:

1. site crawl with configured article selectors (as a real configured site), robots.txt off, AutoThrottle
   off, high concurrency: pages/s fetched, extracted and stored as raw posts (its own process: one reactor);
2. the same kind of site crawled with automatic extraction (no selectors), over `--auto` articles;
3. processing: raw posts → crawlers.normalize.normalize → fingerprint de-duplication → post rows;
4. feeds: `--feeds` feeds fetched with httpx, parsed with crawlers.feeds.parse_feed, stored and processed;
5. extraction alone (no I/O) per page, with selectors and automatic, to show what bounds the crawl.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.schema import FetchSettings, SiteSource  # noqa: E402
from crawlers.items import RawItem  # noqa: E402

PER_LIST = 50
FEED_ITEMS = 20
TZ = ZoneInfo("Asia/Shanghai")
SELECTORS = {"title": "div.article h1", "body": "div.content", "published": "span.date", "author": "span.source"}
BOILERPLATE = "".join(f'<li><a href="/s/nav/{i}.html">栏目{i}</a></li>' for i in range(30))
PAGE = """<!DOCTYPE html><html lang="zh-CN"><head><meta {charset}><title>{title} - 某省人民政府</title>
<link rel="stylesheet" href="/static/site.css"></head><body>
<div class="top"><ul class="nav">{nav}</ul><form action="/search"><input name="q"></form></div>
<div class="crumb"><a href="/">首页</a> &gt; <a href="../list/1.html">政务动态</a></div>
<div class="article"><h1>{title}</h1>
<div class="info"><span class="date">{date}</span> <span class="source">来源：{author}</span></div>
<div class="content">{body}</div></div>
<div class="related"><h3>相关链接</h3><ul>{nav}</ul></div>
<div class="footer">主办单位：某省人民政府办公厅　网站标识码：0000000000　备案号：示例ICP备00000000号</div>
</body></html>"""
LIST = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>政务动态 第{n}页</title></head><body>
<ul class="nav">{nav}</ul><ul class="news-list">{items}</ul><div class="pager">{next}</div></body></html>"""


# -- the generated site (server process) ------------------------------------------------------------------------

def load_texts() -> list[str]:
    """Seed-corpus texts, reduced to characters GBK can encode (so both encodings carry the same text)."""
    texts = []
    for path in sorted((ROOT / "classifier" / "seed").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                text = "".join(ch for ch in json.loads(line)["text"] if _gbk(ch)).replace("\n", " ")
                if len(text) >= 20:
                    texts.append(text)
    return texts


def _gbk(ch: str) -> bool:
    try:
        ch.encode("gbk")
    except UnicodeEncodeError:
        return False
    return True


class Generator:
    """Deterministic pages: the same path always gives the same bytes."""

    def __init__(self, texts: list[str], articles: int) -> None:
        self.texts = texts
        self.articles = articles

    def article(self, i: int) -> tuple[bytes, str]:
        rng = random.Random(f"article:{i if i % 10 != 9 else random.Random(i).randrange(i)}")
        title = rng.choice(self.texts)[:26]
        body = "".join(f"<p>{rng.choice(self.texts)}</p>" for _ in range(rng.randint(4, 8)))
        date = f"2026-11-{1 + rng.randrange(20):02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}"
        author = rng.choice(["省政府办公厅", "省林业厅", "省应急管理厅", "省住建厅"])
        if i % 2:
            html = PAGE.format(charset='http-equiv="Content-Type" content="text/html; charset=gb2312"', title=title,
                               date=date, author=author, body=body, nav=BOILERPLATE)
            return html.encode("gbk"), "text/html"
        html = PAGE.format(charset='charset="utf-8"', title=title, date=date, author=author, body=body,
                           nav=BOILERPLATE)
        return html.encode("utf-8"), "text/html; charset=utf-8"

    def list_page(self, site: str, n: int, articles: int) -> bytes:
        first = (n - 1) * PER_LIST
        items = "".join(
            f'<li><a href="../a/{i}.html">标题{i}</a><span>2026-11-20</span></li>'
            for i in range(first, min(first + PER_LIST, articles))
        )
        more = first + PER_LIST < articles
        following = f'<a class="next" href="{n + 1}.html">下一页</a>' if more else ""
        return LIST.format(n=n, items=items, next=following, nav=BOILERPLATE).encode("utf-8")

    def feed(self, k: int) -> bytes:
        rng = random.Random(f"feed:{k}")
        entries = []
        for j in range(FEED_ITEMS):
            text = rng.choice(self.texts)
            entries.append(f"<item><title>{text[:24]}</title><link>http://feeds.example.cn/{k}/{j}.html</link>"
                           f"<description>{text} #{k}-{j}</description>"
                           f"<pubDate>Fri, 20 Nov 2026 {j % 24:02d}:00:00 +0800</pubDate></item>")
        return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>feed {k}</title>'
                f"<link>http://feeds.example.cn/{k}</link>{''.join(entries)}</channel></rss>").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:
        gen: Generator = self.server.gen  # type: ignore[attr-defined]
        parts = self.path.strip("/").split("/")
        try:
            body, ctype = _route(gen, parts)
        except (ValueError, IndexError):
            body, ctype = b"not found", "text/plain"
            self.send_response(404)
        else:
            self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _route(gen: Generator, parts: list[str]) -> tuple[bytes, str]:
    if parts[0] == "feed":
        return gen.feed(int(parts[1].removesuffix(".xml"))), "application/rss+xml; charset=utf-8"
    if parts[0] == "s" and parts[2] == "list":
        size = gen.articles if parts[1] == "main" else int(parts[1].removeprefix("auto"))
        return gen.list_page(parts[1], int(parts[3].removesuffix(".html")), size), "text/html; charset=utf-8"
    if parts[0] == "s" and parts[2] == "a":
        return gen.article(int(parts[3].removesuffix(".html")))
    raise ValueError(parts)


def serve(articles: int, port_out: Any) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.request_queue_size = 256
    server.gen = Generator(load_texts(), articles)  # type: ignore[attr-defined]
    port_out.put(server.server_address[1])
    server.serve_forever()


# -- crawl (its own process: the reactor runs once per process) -------------------------------------------------

def crawl_child(src_json: str, db_url: str, concurrency: int, out: Any) -> None:
    from crawlers.site import run_crawl

    src = SiteSource.model_validate_json(src_json)
    overrides = {"AUTOTHROTTLE_ENABLED": False, "CONCURRENT_REQUESTS": concurrency, "LOG_LEVEL": "ERROR"}
    start, cpu = time.perf_counter(), time.process_time()
    report = run_crawl(src, FetchSettings(), db_url=db_url, now=datetime.now(UTC), overrides=overrides)
    seconds = time.perf_counter() - start
    out.put({"seconds": seconds, "cpu_seconds": time.process_time() - cpu, "summary": report.summary(),
             "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def run_crawl_process(ctx: Any, src: SiteSource, db_url: str, concurrency: int) -> dict[str, Any]:
    out = ctx.Queue()
    proc = ctx.Process(target=crawl_child, args=(src.model_dump_json(), db_url, concurrency, out))
    proc.start()
    got: dict[str, Any] = out.get()
    proc.join()
    summary = got.pop("summary")
    pages, seconds = summary["pages"], got["seconds"]
    counts = summary["counts"]
    return {
        "pages": pages, "articles_stored": counts["stored"], "empty_pages": summary["empty_pages"],
        "error": summary["error"], "seconds": round(seconds, 2), "pages_per_s": round(pages / seconds, 1),
        "articles_per_s": round(counts["stored"] / seconds, 1), "peak_rss_mb": round(got["peak_rss_mb"], 1),
        "crawler_cpu_share": round(got["cpu_seconds"] / seconds, 2),  # near 1.0: bound by the crawler's CPU
    }


def site(base: str, name: str, path: str, *, articles: int, selectors: bool, concurrency: int) -> SiteSource:
    pages = -(-articles // PER_LIST)
    return SiteSource.model_validate({
        "kind": "site", "name": name, "start_urls": [f"{base}/s/{path}/list/1.html"],
        "list_page": {"links": "ul.news-list a", "next_page": "a.next::attr(href)", "max_pages": pages},
        "article": SELECTORS if selectors else None, "obey_robots": False,
        "concurrency_per_domain": concurrency, "retries": 1,
    })


# -- processing: normalize → de-duplicate → store ----------------------------------------------------------------

def process_all(db_url: str, source: str, batch: int = 500) -> dict[str, Any]:
    from sqlmodel import Session, col, select

    from models.db import make_engine, session_scope
    from models.enums import RawPostStatus
    from models.tables import Post, RawPost

    engine = make_engine(db_url)
    posts = duplicates = failed = 0
    start = time.perf_counter()
    while True:
        with session_scope(engine) as s:
            raws = s.exec(select(RawPost).where(RawPost.source == source, RawPost.status == RawPostStatus.NEW)
                          .order_by(col(RawPost.id)).limit(batch)).all()
            if not raws:
                break
            n, d, f = _process_batch(s, list(raws), Post, Session)
            posts, duplicates, failed = posts + n, duplicates + d, failed + f
    seconds = time.perf_counter() - start
    engine.dispose()
    total = posts + duplicates
    return {"raw_posts": total + failed, "posts": posts, "duplicates": duplicates, "failed": failed,
            "seconds": round(seconds, 2), "posts_per_s": round(total / seconds, 1) if seconds else None}


def _process_batch(s: Any, raws: list[Any], post_cls: Any, _session: Any) -> tuple[int, int, int]:
    from sqlmodel import col, select

    from crawlers.dedup import fingerprint
    from crawlers.normalize import NormalizeError, normalize
    from models.enums import RawPostStatus

    fresh = []
    failed = 0
    for raw in raws:
        try:
            norm = normalize(raw.source, raw.url, raw.fetched_at, raw.payload, tz=TZ)
        except NormalizeError as exc:
            raw.status, raw.error, failed = RawPostStatus.FAILED, str(exc), failed + 1
            continue
        assert norm.fingerprint == fingerprint(norm.title, norm.text)
        fresh.append((raw, norm))
    prints = list({n.fingerprint for _, n in fresh})
    known = {p.fingerprint: p for p in s.exec(select(post_cls).where(col(post_cls.fingerprint).in_(prints))).all()}
    new = dup = 0
    for raw, norm in fresh:
        raw.status = RawPostStatus.PROCESSED
        if norm.fingerprint in known:
            known[norm.fingerprint].spread_count += 1
            dup += 1
            continue
        post = post_cls(source=norm.source, url=norm.url, title=norm.title, text=norm.text, author=norm.author,
                        published_at=norm.published_at, fetched_at=norm.fetched_at, fingerprint=norm.fingerprint,
                        metrics=norm.metrics)
        s.add(post)
        known[norm.fingerprint] = post
        new += 1
    s.flush()
    return new, dup, failed


# -- feeds -------------------------------------------------------------------------------------------------------

def feeds_phase(base: str, feeds: int, db_url: str) -> dict[str, Any]:
    import httpx

    from crawlers.feeds import parse_feed
    from crawlers.store import store_raw
    from models.db import make_engine, session_scope

    engine = make_engine(db_url)
    now = datetime.now(UTC)
    items: list[RawItem] = []
    start = time.perf_counter()
    with httpx.Client(timeout=20) as client:
        for k in range(feeds):
            resp = client.get(f"{base}/feed/{k}.xml")
            result = parse_feed(resp.content, source="bench-feeds", fetched_at=now,
                                content_type=resp.headers.get("content-type"), base_url=str(resp.url))
            items.extend(result.items)
    fetch_s = time.perf_counter() - start
    with session_scope(engine) as s:
        stored = store_raw(s, items)
    store_s = time.perf_counter() - start - fetch_s
    engine.dispose()
    processed = process_all(db_url, "bench-feeds")
    total = time.perf_counter() - start
    return {"feeds": feeds, "items": len(items), "stored": stored, "fetch_parse_seconds": round(fetch_s, 2),
            "store_seconds": round(store_s, 2), "feeds_per_s": round(feeds / fetch_s, 1),
            "items_per_s_end_to_end": round(len(items) / total, 1), "processing": processed}


# -- extraction alone --------------------------------------------------------------------------------------------

def extraction_only(n: int) -> dict[str, Any]:
    from config.schema import ArticleSelectors
    from crawlers.extract import ExtractError, extract_article

    gen = Generator(load_texts(), n)
    pages = [gen.article(i) for i in range(n)]
    out: dict[str, Any] = {"pages": n}
    for label, selectors in (("selectors", ArticleSelectors(**SELECTORS)), ("automatic", None)):
        now = datetime.now(UTC)
        errors = 0
        start = time.perf_counter()
        for i, (body, ctype) in enumerate(pages):
            try:
                extract_article(body, url=f"http://x/{i}.html", now=now, content_type=ctype, selectors=selectors)
            except ExtractError:
                errors += 1
        seconds = time.perf_counter() - start
        out[label] = {"ms_per_page": round(1000 * seconds / n, 2), "pages_per_s": round(n / seconds, 1),
                      "errors": errors}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=5000)
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--auto", type=int, default=1000, help="articles for the automatic-extraction crawl")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--db", help="database URL (default: a new SQLite file)")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    port_q = ctx.Queue()
    server = ctx.Process(target=serve, args=(args.articles, port_q), daemon=True)
    server.start()
    base = f"http://127.0.0.1:{port_q.get(timeout=30)}"
    work = Path(tempfile.mkdtemp(prefix="yuqing-ingest-"))
    db_url = args.db or f"sqlite:///{work / 'ingest.db'}"
    from models.db import make_engine
    from models.migrate import upgrade

    engine = make_engine(db_url)
    upgrade(engine)
    engine.dispose()
    try:
        report = run_phases(ctx, base, db_url, args)
    finally:
        server.terminate()
        server.join()
    report["main_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, ensure_ascii=False, indent=2))


def run_phases(ctx: Any, base: str, db_url: str, args: argparse.Namespace) -> dict[str, Any]:
    c = args.concurrency
    crawl = run_crawl_process(ctx, site(base, "bench-site", "main", articles=args.articles, selectors=True,
                                        concurrency=c), db_url, c)
    processing = process_all(db_url, "bench-site")
    both = crawl["seconds"] + processing["seconds"]
    auto = run_crawl_process(ctx, site(base, "bench-auto", f"auto{args.auto}", articles=args.auto,
                                       selectors=False, concurrency=c), db_url, c)
    return {
        "machine_cores": mp.cpu_count(),
        "site_crawl_with_selectors": crawl,
        "processing_normalize_dedup_store": processing,
        "site_end_to_end": {"pages_per_s": round(crawl["pages"] / both, 1),
                            "posts_per_s": round(crawl["articles_stored"] / both, 1)},
        "site_crawl_automatic_extraction": auto,
        "feeds": feeds_phase(base, args.feeds, db_url),
        "extraction_only": extraction_only(min(500, args.articles)),
    }


if __name__ == "__main__":
    main()
