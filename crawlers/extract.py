"""Article extraction from one fetched page, and the `yuqing extract URL` helper.

`extract_article(body, url=, now=, content_type=, selectors=) -> Article` decodes the bytes (crawlers.encoding)
and takes each field from its selector (CSS, or XPath after "xpath:") when one is configured, else:
- body: trafilatura's text bounded by the dense article block that agrees with it (Readability-style score
  over paragraphs, Chinese punctuation and link density), so related lists and footers fall away; the block
  alone when trafilatura finds little (e.g. hidden WeChat content); leading headline/dateline lines dropped;
- title: the headline-like element (h1–h6, *title* classes, og:title) that best matches the page <title> and
  sits right before the body, else the <title> without its " - 站点名" / "_网易新闻" parts;
- publish time: meta tags (article:published_time, pubdate, PublishTime …), JSON-LD, <time>, then a date
  between headline and body, read by crawlers.timeparse (naive = Asia/Shanghai; result in UTC);
- author: meta author.
ExtractError(reason) means no article: login wall, captcha or anti-bot page, list of links, too little text,
bad selector. `looks_like_feed` tells feeds from pages; `extract_url` fetches one URL and returns one dict per
article or feed entry (title, text, published_at, author, encoding, url).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import lxml.html
import parsel
import trafilatura
from lxml import etree

from config.schema import ArticleSelectors
from crawlers.encoding import decode_document
from crawlers.normalize import clean_text, strip_html
from crawlers.timeparse import parse_chinese_time

MIN_TEXT_CHARS = 50  # fewer non-space characters than this is not an article
_NOISE_TAGS = ("script", "style", "noscript", "template", "iframe", "svg", "button", "select", "textarea")
_TITLE_ATTR = re.compile(r"title|headline|subject|heading|(?:^|[\s_-])(?:tit|bt)(?:$|[\s_-])", re.I)
_TITLE_SPLIT = re.compile(r"\s*(?:_+|\|+|｜|--+|——+|\s[-–—]\s|::)\s*")
_PUNCT = re.compile(r"[，。！？；：、“”,.!?;]")
_SENTENCE = re.compile(r"[，。！？；]")
_META_WORDS = re.compile(r"发布|时间|来源|作者|编辑|记者|字号|浏览|阅读|点击|分享")
_TIME_META = ("article:published_time", "og:article:published_time", "article:published", "og:release_date",
              "pubdate", "publishdate", "publish_date", "publishtime", "ptime", "datepublished", "dc.date",
              "dc.date.issued", "weibo:article:create_at", "sailthru.date", "published_time", "release_date")
_DATE_TEXT = re.compile(
    r"((?:19|20)\d{2})\s*(?:[年/.\-]|\s)\s*(\d{1,2})\s*[月/.\-]\s*(\d{1,2})\s*日?"
    r"(?:\s*(\d{1,2})\s*[:：时]\s*(\d{1,2})(?:\s*[:：分]\s*(\d{1,2}))?)?")
_MONTH_DAY = re.compile(r"(?<![\d.:/-])\d{1,2}\s*[月/\-]\s*\d{1,2}\s*日?\s+\d{1,2}\s*[:：]\s*\d{2}")  # no year
_RELATIVE = re.compile(r"刚刚|\d+\s*(?:秒|分钟|小时|天)前|(?:今天|昨天|前天)(?:\s*\d{1,2}[:：]\d{2})?")
_WALL_STRONG = ("请开启JavaScript", "请启用JavaScript", "访问验证", "滑动验证", "安全验证", "人机验证", "拖动滑块",
                "请输入验证码", "访问过于频繁", "访问异常", "请完成验证", "enable JavaScript", "Checking your browser",
                "请登录后", "登录后查看", "登录后阅读", "登录后继续", "登录查看全文")
_WALL_TITLE = ("登录", "验证", "captcha", "sign in", "log in", "安全检查")  # in a short <title> part only


class ExtractError(Exception):
    """No article could be taken from a page; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        self.reason = " ".join(reason.split())
        super().__init__(self.reason)


@dataclass(frozen=True)
class Article:
    title: str
    text: str
    published: datetime | None  # aware, UTC; a page time without a zone is read as Asia/Shanghai
    published_raw: str | None  # the string the time was read from
    author: str | None
    encoding: str  # codec the page was decoded with
    url: str


def extract_article(body: bytes, *, url: str, now: datetime, content_type: str | None = None,
                    selectors: ArticleSelectors | None = None) -> Article:
    """One article from one HTML page; raises ExtractError when there is none."""
    decoded = decode_document(body, content_type=content_type, kind="html")
    root = _parse_html(decoded.text)
    sel = parsel.Selector(root=root)
    chosen = selectors or ArticleSelectors()
    text = _select_text(sel, chosen.body, block=True)
    block: Any = None
    auto = not text
    if auto:
        text, block = _auto_body(decoded.text, root, url)
    _check_article(decoded.text, root, text, backed=block is not None or not auto)
    title = _select_text(sel, chosen.title) or _auto_title(root, block, text)
    text = _trim_head(text, title) if auto else text
    raw_time = _select_text(sel, chosen.published) or _auto_time_text(decoded.text, root, block, title)
    published = parse_published(raw_time, now=now) if raw_time else None
    author = _select_text(sel, chosen.author) or _auto_author(root)
    return Article(title=title, text=text, published=published, published_raw=raw_time, author=author,
                   encoding=decoded.encoding, url=url)


def _parse_html(text: str) -> Any:
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text.replace("\x00", ""))
    try:
        root = lxml.html.document_fromstring(text) if text.strip() else None
    except (etree.ParserError, ValueError):
        root = None
    if root is None:
        raise ExtractError("empty page: no HTML to read")
    etree.strip_tags(root, etree.Comment, etree.ProcessingInstruction)  # keeps the text after them
    etree.strip_elements(root, *_NOISE_TAGS, with_tail=False)
    return root


def _select_text(sel: parsel.Selector, spec: str | None, *, block: bool = False) -> str:
    """Text of every node a selector matches (CSS, or XPath after "xpath:"); "" when it matches nothing."""
    if not spec:
        return ""
    try:
        nodes = sel.xpath(spec[6:]) if spec.startswith("xpath:") else sel.css(spec)
    except Exception as exc:  # cssselect / lxml raise several unrelated types for a bad expression
        raise ExtractError(f"bad selector {spec!r}: {exc}") from None
    parts = [_element_text(node.root) if isinstance(node.root, etree._Element) else str(node.root) for node in nodes]
    text = "\n".join(part for part in parts if part)
    return clean_text(text) if block else clean_text(text, single_line=True)


def _element_text(element: Any) -> str:
    return clean_text(strip_html(lxml.html.tostring(element, encoding="unicode", with_tail=False)))


def _auto_body(html: str, root: Any, url: str) -> tuple[str, Any]:
    """trafilatura's text bounded by the dense block that agrees with it; a dense block alone when
    trafilatura finds little (hidden or script-built content); trafilatura alone when no block agrees."""
    try:
        doc: Any = trafilatura.bare_extraction(html, url=url, include_comments=False, with_metadata=False)
    except Exception:  # a third-party parser failing on odd markup leaves the dense block to do the work
        doc = None
    traf = clean_text(str(doc.text or "")) if doc is not None else ""
    blocks = [(block, _element_text(block)) for block in _dense_blocks(root)]
    if not blocks:
        return traf, None
    traf_grams = _bigrams(traf)
    agreement = [(sum((_bigrams(text) & traf_grams).values()), block, text) for block, text in blocks]
    # the block with the most trafilatura-confirmed text net of unconfirmed text: tight, not just big
    shared, block, text = max(agreement, key=lambda row: 2 * row[0] - len(_squash(row[2])))
    size = len(_squash(text))
    if traf_grams and shared >= 0.6 * max(1, size - 1) and size >= min(100, 0.3 * len(_squash(traf))):
        key = _squash(text)
        kept = [line for line in traf.splitlines() if _squash(line) and _squash(line) in key]
        if sum(len(_squash(line)) for line in kept) >= 0.5 * len(key):
            return "\n".join(kept), block
        return text, block
    top_block, top_text = blocks[0]
    if len(_squash(top_text)) >= 3 * len(_squash(traf)):
        return top_text, top_block
    return traf, None


def _bigrams(text: str) -> Counter[str]:
    squashed = _squash(text)
    return Counter(squashed[i:i + 2] for i in range(len(squashed) - 1))


def _dense_blocks(root: Any, keep: int = 5) -> list[Any]:
    """Readability-style: each paragraph scores its parent fully and its grandparent half; link-heavy
    blocks are discounted. The best few, best first (none when the page has no paragraph-like text)."""
    scores: dict[Any, float] = {}
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag in ("a", "body", "html", "head"):
            continue
        own = _squash((element.text or "") + "".join(child.tail or "" for child in element))  # not in children
        if len(own) < 10:
            continue
        score = 1 + len(_PUNCT.findall(own)) + min(len(own) // 100, 3)
        holder = element if element.tag not in ("p", "span", "font", "strong", "b", "em") else element.getparent()
        for weight, target in ((1.0, holder), (0.5, holder.getparent() if holder is not None else None)):
            if target is not None and target.tag not in ("body", "html"):
                scores[target] = scores.get(target, 0.0) + score * weight
    ranked = sorted(((score * (1 - _link_density(el)), el) for el, score in scores.items()),
                    key=lambda row: row[0], reverse=True)
    return [element for score, element in ranked[:keep] if score >= 5]


def _link_density(element: Any) -> float:
    total = len(_squash(element.text_content()))
    if not total:
        return 1.0
    linked = sum(len(_squash(a.text_content())) for a in element.iter("a"))
    return min(1.0, linked / total)


def _squash(text: str) -> str:
    return "".join(text.split())


def _check_article(html: str, root: Any, text: str, *, backed: bool) -> None:
    """Raise ExtractError for a wall, a list of links or a stub. `backed`: a dense text block (or a configured
    selector) supports the text, not trafilatura alone."""
    body_chars = len(_squash(text))
    if body_chars < 300 and (cue := _wall_cue(html, root, body_chars)):
        raise ExtractError(f"login, verification or anti-bot page, not an article (cue: {cue!r})")
    if body_chars < MIN_TEXT_CHARS:
        raise ExtractError(f"too little text for an article: {body_chars} characters")
    if not backed:
        lines = [_squash(line) for line in text.splitlines()]
        prose = sum(len(line) for line in lines if _SENTENCE.search(line)) / body_chars
        body = root.find("body")
        if prose < 0.6 or (body is not None and _link_density(body) > 0.6):
            raise ExtractError("no article found: the page looks like a list of links or a navigation page")


def _wall_cue(html: str, root: Any, body_chars: int) -> str | None:
    noscript = re.findall(r"<noscript[^>]*>(.*?)</noscript>", html, flags=re.S | re.I)  # stripped from root
    lowered = " ".join([root.text_content(), *noscript]).lower()
    parts = [part for part in _TITLE_SPLIT.split((root.findtext(".//title") or "").lower()) if len(part.strip()) <= 10]
    cues = [w for w in _WALL_STRONG if w.lower() in lowered]
    cues += [f"<title> {w}" for w in _WALL_TITLE for part in parts if w in part]
    if body_chars < 100 and root.xpath("//input[@type='password']"):
        cues.append("password field")
    return cues[0] if cues else None


def _trim_head(text: str, title: str) -> str:
    """Drop what leads an extracted body but is not part of it: the headline again, a dateline with its
    source/author/views, and widget crumbs of a few characters ("字号", "分享")."""
    lines = text.splitlines()
    key = _squash(title)
    start = 0
    for line in lines[:8]:
        squashed = _squash(line)
        repeat = bool(key) and key in squashed and len(squashed) <= len(key) + 10 and "原标题" not in line
        dateline = bool(_DATE_TEXT.search(line) and _META_WORDS.search(line)) and len(squashed) < 60
        if not (repeat or dateline or len(squashed) <= 4):
            break
        start += 1
    return "\n".join(lines[start:]) if start < len(lines) else text


def _auto_title(root: Any, block: Any, text: str) -> str:
    page_title = " ".join((root.findtext(".//title") or "").split())
    headline = _strip_site(page_title)
    order = {element: index for index, element in enumerate(root.iter())}
    body_pos = _body_start(block, text, order)
    best, best_score = headline, 1.5 if headline else 0.0
    candidates = _title_candidates(root, order)
    closest = max((pos for pos, _, _ in candidates if body_pos is not None and 0 <= pos < body_pos), default=None)
    for pos, tag, candidate in candidates:
        score = _title_score(candidate, tag, page_title, headline)
        if body_pos is not None and pos >= 0:
            score += (0.5 + (1.0 if pos == closest else 0.0)) if pos < body_pos else -1.5
        if score > best_score:
            best, best_score = candidate, score
    label_only = len(best) - len(headline) <= 6 and _squash(best) not in _squash(page_title)
    if headline and _squash(headline) in _squash(best) and label_only:
        return headline  # the element only adds a label such as "原创" or "[视频]"
    return best


def _body_start(block: Any, text: str, order: dict[Any, int]) -> int | None:
    """Document position of the element holding the first sentence of the body (inside the block)."""
    if block is None:
        return None
    lines = [_squash(line) for line in text.splitlines()]
    probe = next((line[:8] for line in lines if "。" in line), next((line[:8] for line in lines if line), ""))
    for element in block.iter():
        own = (element.text or "") + "".join(child.tail or "" for child in element)
        if probe and isinstance(element.tag, str) and probe in _squash(own):
            return order.get(element)
    return order.get(block)


def _strip_site(page_title: str) -> str:
    """The headline part of a <title>: the longest separator-delimited segment (bare "-" only when what
    precedes it stays long)."""
    segments = [s for s in _TITLE_SPLIT.split(page_title) if s.strip()]
    best = max(segments, key=len, default="")
    while "-" in best and len(best.rsplit("-", 1)[0]) >= 8 and len(best.rsplit("-", 1)[1]) <= 16:
        best = best.rsplit("-", 1)[0]
    return best.strip()


def _title_candidates(root: Any, order: dict[Any, int]) -> list[tuple[int, str, str]]:
    found: list[tuple[int, str, str]] = []
    for meta in root.xpath("//meta[@property='og:title' or @name='og:title' or @name='title' or "
                           "@name='ArticleTitle' or @name='twitter:title']"):
        found.append((-1, "meta", " ".join((meta.get("content") or "").split())))
    for element in root.iter():
        if not isinstance(element.tag, str) or element.tag in ("title", "meta"):
            continue
        attrs = f"{element.get('class', '')} {element.get('id', '')}"
        if element.tag not in ("h1", "h2", "h3", "h4", "h5", "h6") and not _TITLE_ATTR.search(attrs):
            continue
        if element.xpath("ancestor-or-self::a or ancestor::li or ancestor::nav or ancestor::footer"):
            continue
        for node in [element, *element.xpath("./b|./strong|./span|./font")]:
            found.append((order.get(node, 0), element.tag, " ".join(node.text_content().split())))
    return [(pos, tag, text) for pos, tag, text in found if 4 <= len(text) <= 120]


def _title_score(candidate: str, tag: str, page_title: str, headline: str) -> float:
    squashed, in_title = _squash(candidate), _squash(page_title)
    score = 0.0
    if squashed in in_title and len(squashed) >= 0.3 * len(in_title):
        score += 2 + len(squashed) / max(1, len(in_title))
    elif headline and _squash(headline) in squashed:
        score += 1.5
    score += {"h1": 0.5, "meta": 0.3, "h2": 0.25, "h3": 0.25}.get(tag, 0.1)
    return score - (1 if len(squashed) < 6 else 0)


def _auto_time_text(html: str, root: Any, block: Any, title: str) -> str | None:
    for meta in root.iter("meta"):
        key = (meta.get("property") or meta.get("name") or meta.get("itemprop") or "").lower()
        if key in _TIME_META and (meta.get("content") or "").strip():
            return str(meta.get("content")).strip()
    if match := re.search(r'"datePublished"\s*:\s*"([^"]{6,40})"', html):  # JSON-LD
        return match.group(1)
    for node in root.xpath("//time[@datetime]"):
        return str(node.get("datetime"))
    head = _text_between_title_and_body(root, block, title)
    match = _DATE_TEXT.search(head) or _MONTH_DAY.search(head) or _RELATIVE.search(head)
    return match.group(0).strip() if match else None


def _text_between_title_and_body(root: Any, block: Any, title: str) -> str:
    """Visible text from the headline element (or the page start) up to the article block, at most 600 chars."""
    collected: list[str] = []
    started = not title
    key = _squash(title)
    for element in root.body.iter() if root.find("body") is not None else []:
        if element is block and started:
            break
        if not isinstance(element.tag, str):
            continue
        if not started and key and key in _squash(element.text or ""):
            started = True
            continue
        if started:
            collected.append(f"{element.text or ''} {element.tail or ''}")
        if sum(len(part) for part in collected) > 600:
            break
    return " ".join(" ".join(collected).split())[:600]


def parse_published(raw: str, *, now: datetime) -> datetime | None:
    """crawlers.timeparse reads it (absolute, year-less and relative Chinese forms; naive is Asia/Shanghai);
    None when unreadable or implausible (before 1990, or more than a day after `now`)."""
    found = parse_chinese_time(raw, now=now)
    if found is None or found.year < 1990 or found > now + timedelta(days=1):
        return None
    return found


def _auto_author(root: Any) -> str | None:
    for meta in root.xpath("//meta[@name='author' or @property='article:author' or @name='Author']"):
        value = " ".join((meta.get("content") or "").split())
        if 2 <= len(value) <= 40 and not re.search(r"://|@|^\d+$", value):
            return value
    return None
