"""Article extraction quality on the real GNE news pages (../shared/data/gne_news_html); prints JSON.

The dataset ships pages only, no expected output, so the reference is hand-made:
tests/fixtures/extract/gne_reference.json names, per page, the element holding the real headline and the
element(s) holding the article body. Two extractors are measured against it:

- "trafilatura": trafilatura alone (bare_extraction on the raw bytes, its own decoding and title);
- "final": crawlers.extract.extract_article (our decoding, title and body heuristics, trafilatura inside).

Figures: title exact-match rate (white space ignored), body overlap as character-bigram F1 (ROUGE-2 on
characters, white space ignored; mean and median over article pages, a page with no output scores 0),
the share of pages with F1 >= 0.9, and how many non-article pages (list pages, an empty shell) were
rejected (ExtractError / no output).

Usage: .venv/bin/python benchmarks/extract.py [--data DIR] [--per-page]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import parsel  # noqa: E402
import trafilatura  # noqa: E402

from crawlers.encoding import decode_document  # noqa: E402
from crawlers.extract import ExtractError, extract_article  # noqa: E402

REFERENCE = ROOT / "tests" / "fixtures" / "extract" / "gne_reference.json"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "gne_news_html"
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def squash(text: str) -> str:
    return "".join(text.split())


def bigram_f1(candidate: str, reference: str) -> float:
    """ROUGE-2 F1 over characters, white space ignored."""
    cand, ref = squash(candidate), squash(reference)
    if len(ref) < 2 or len(cand) < 2:
        return float(cand == ref and bool(ref))
    c = Counter(cand[i:i + 2] for i in range(len(cand) - 1))
    r = Counter(ref[i:i + 2] for i in range(len(ref) - 1))
    overlap = sum((c & r).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(c.values()), overlap / sum(r.values())
    return 2 * precision * recall / (precision + recall)


def _select(sel: parsel.Selector, spec: str) -> parsel.SelectorList[parsel.Selector]:
    return sel.xpath(spec[6:]) if spec.startswith("xpath:") else sel.css(spec)


def _text(node: parsel.Selector) -> str:
    if isinstance(node.root, str):
        return " ".join(node.root.split())
    parts = node.xpath("descendant-or-self::text()[not(ancestor::script) and not(ancestor::style)]").getall()
    return " ".join("".join(parts).split())


def reference(entry: dict[str, Any], body: bytes) -> tuple[str, str]:
    """The hand-chosen title and body of one article page."""
    sel = parsel.Selector(text=decode_document(body).text)
    titles = _select(sel, entry["title"])
    return (_text(titles[0]) if titles else ""), " ".join(_text(n) for n in _select(sel, entry["body"]))


def run_trafilatura(body: bytes, url: str) -> tuple[str, str] | None:
    doc: Any = trafilatura.bare_extraction(body, url=url, with_metadata=True, include_comments=False)
    if doc is None:
        return None
    return (doc.title or ""), (doc.text or "")


def run_final(body: bytes, url: str) -> tuple[str, str] | None:
    try:
        article = extract_article(body, url=url, now=NOW)
    except ExtractError:
        return None
    return article.title, article.text


RUNNERS = {"trafilatura": run_trafilatura, "final": run_final}


def measure(data: Path, *, runners: tuple[str, ...] = tuple(RUNNERS), per_page: bool = False) -> dict[str, Any]:
    """Figures per extractor (see the module docstring); `data` is the gne_news_html folder."""
    entries = json.loads(REFERENCE.read_text(encoding="utf-8"))["pages"]
    report: dict[str, Any] = {"pages": len(entries), "reference": str(REFERENCE.relative_to(ROOT))}
    for name in runners:
        runner = RUNNERS[name]
        titles_ok, f1s, rejected, pages = 0, [], 0, {}
        started = time.perf_counter()
        for entry in entries:
            body = (data / entry["page"]).read_bytes()
            url = f"https://example.invalid/{entry['page']}"
            got = runner(body, url)
            if entry["kind"] != "article":
                rejected += got is None or len(squash(got[1])) < 50
                continue
            ref_title, ref_body = reference(entry, body)
            title, text = got or ("", "")
            ok = squash(title) == squash(ref_title)
            f1 = bigram_f1(text, ref_body)
            titles_ok += ok
            f1s.append(f1)
            pages[entry["page"]] = {"title_ok": ok, "body_f1": round(f1, 3), "title": title[:60]}
        articles = len(f1s)
        report[name] = {
            "article_pages": articles,
            "title_exact": round(titles_ok / articles, 3),
            "body_f1_mean": round(statistics.mean(f1s), 3),
            "body_f1_median": round(statistics.median(f1s), 3),
            "body_f1_ge_0.9": round(sum(f >= 0.9 for f in f1s) / articles, 3),
            "non_articles_rejected": rejected,
            "non_articles": len(entries) - articles,
            "seconds": round(time.perf_counter() - started, 2),
        }
        if per_page:
            report[name]["per_page"] = pages
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-page", action="store_true")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"dataset not found: {args.data}")
    print(json.dumps(measure(args.data, per_page=args.per_page), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
