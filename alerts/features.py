"""What correlation matches on (pure given the jieba resources): keywords and places of a text.

`FeatureExtractor.extract(title, text)` gives `PostFeatures`:

- `terms`: keyword weights (jieba words × IDF from jieba's IDF table, the title counted twice, places, stop
  words and numbers left out), unit length, the strongest `TERMS_PER_POST` only;
- `places`: place-name stems with their level — province (云南, 四川省), local (cities, prefectures, counties,
  districts: 宾川县 → 宾川, 大理白族自治州 → 大理) or minor (towns, villages: 鸡足山镇). Found from the
  agency profile's jurisdiction terms, the 34 provincial-level names, jieba's place tag (ns), and a
  …省/市/州/县/区/旗/盟/镇/乡/村 pattern over jieba words ("木里" + "县"); generic ones (某县, 全市, 林区,
  城市 …) are left out;
- `tokens`: every word, so an incident's place stem can be found in a post that names it bare ("宾川山火").

jieba's dictionary, IDF table and tag table load once per extractor, on first use (≈1 s); `extractor_for`
keeps one per jurisdiction list for the process (no import-time globals).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import statistics
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from classifier.segment import STOPWORDS

TERMS_PER_POST = 24
MAX_TEXT = 1500  # characters of the body read: the lede names the event, its place and its people
def _wordlist(text: str) -> frozenset[str]:
    return frozenset(text.split())


PROVINCES = _wordlist(
    "北京 天津 河北 山西 内蒙古 辽宁 吉林 黑龙江 上海 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 广西 海南 "
    "重庆 四川 贵州 云南 西藏 陕西 甘肃 青海 宁夏 新疆 台湾 香港 澳门"
)
ETHNIC = ("蒙古|回|藏|维吾尔|苗|彝|壮|布依|朝鲜|满|侗|瑶|白|土家|哈尼|哈萨克|傣|黎|傈僳|佤|畲|高山|拉祜|水|东乡|纳西|"
          "景颇|柯尔克孜|土|达斡尔|仫佬|羌|布朗|撒拉|毛南|仡佬|锡伯|阿昌|普米|塔吉克|怒|乌孜别克|俄罗斯|鄂温克|德昂|"
          "保安|裕固|京|塔塔尔|独龙|鄂伦春|赫哲|门巴|珞巴|基诺")
_AUTONOMOUS = re.compile(rf"^(.{{2,}}?)(?:(?:{ETHNIC})族)*自治(?:州|县|区|旗)$")
_LOCAL_SUFFIX = "市州县区旗盟"
_MINOR_SUFFIX = "镇乡村"
_SUFFIXES = "省" + _LOCAL_SUFFIX + _MINOR_SUFFIX
_FUNCTION_TAGS = "mqrpcudy"  # numerals, measure words, pronouns, prepositions, conjunctions, particles …
_GENERIC_HEAD = "某该本全各此这那每我贵外"
NON_PLACES = _wordlist(
    "中国 全国 国内 国外 境内 境外 海外 各地 外地 本地 当地 城市 都市 城区 市区 郊区 山区 林区 景区 社区 地区 "
    "辖区 园区 小区 灾区 牧区 矿区 街区 片区 新区 开发区 风景区 保护区 示范区 试验区 功能区 重灾区 "
    "禁区 战区 时区 误区 盲区 专区 选区 "
    "农村 乡村 城乡 县城 省市 市县 县区 县市 乡镇 村镇 城镇 集镇 村村 超市 股市 楼市 车市 夜市 早市 上市 直辖市 省会 "
    "省区 市场 老区 校区 厂区 营区 湖区 江南 江北 南方 北方 东部 西部 中部 大陆 内地"
)
NEWS_WORDS = _wordlist(
    "发生 记者 今天 昨天 今日 昨日 日前 目前 近日 相关 进行 表示 情况 网友 视频 消息 报道 新闻 获悉 据悉 了解 "
    "其中 已经 正在 目前 一名 一位 一起 有关 方面 工作 时间 凌晨 上午 下午 晚上 左右 此前 随后 之后 现场 介绍 "
    "转发 评论 扩散 微博 网传 一个 没有 我们 大家 还是 就是 这个 什么 看到 知道 已于 当天 次日 当地 余人 多人 "
    "目击 记者从 通报 发布 回应 最新 进展 持续"
)
_WORD = re.compile(r"[\u4e00-\u9fffA-Za-z]")
_CJK = re.compile(r"^[\u4e00-\u9fff]+$")


def place_stem(name: str) -> str:
    """宾川县 → 宾川, 大理白族自治州 → 大理, 云南省 → 云南, 鸡足山镇 → 鸡足山 (at least two characters kept)."""
    m = _AUTONOMOUS.match(name)
    if m:
        return m.group(1)
    if name.endswith("特别行政区") and len(name) > 6:
        return name[:-5]
    if len(name) >= 3 and name[-1] in "省" + _LOCAL_SUFFIX + _MINOR_SUFFIX:
        return name[:-1]
    return name


def place_level(name: str, stem: str) -> str:
    if stem in PROVINCES or name.endswith(("省", "自治区", "特别行政区")):
        return "province"
    if name[-1] in _MINOR_SUFFIX:
        return "minor"
    return "local"


@dataclass(frozen=True)
class PostFeatures:
    terms: dict[str, float]  # unit length
    places: dict[str, str]  # stem → province / local / minor
    tokens: frozenset[str] = field(default_factory=frozenset)

    def as_json(self) -> dict[str, Any]:
        return {"terms": {k: round(v, 4) for k, v in self.terms.items()}, "places": dict(self.places), "n": 1}


class FeatureExtractor:
    """Keywords and places of a text. Thread-safe lazy initialisation of jieba's resources."""

    def __init__(self, jurisdiction: Iterable[str] = ()) -> None:
        names = [_fold(t) for t in jurisdiction if t.strip()]
        self.jurisdiction = tuple(sorted({n for n in names if len(n) >= 2}, key=len, reverse=True))
        # bare stems (大理 of 大理州) count only as whole words: 大理石 is one word and no place
        self.stems = frozenset(s for s in map(place_stem, self.jurisdiction) if len(s) >= 2)
        self._lock = threading.Lock()
        self._tok: Any = None
        self._idf: dict[str, float] = {}
        self._median_idf = 10.0
        self._tags: dict[str, str] = {}

    def _load(self) -> Any:
        if self._tok is None:
            with self._lock:
                if self._tok is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tok = jieba.Tokenizer()
                    tok.initialize()
                    for term in self.jurisdiction:
                        tok.add_word(term, 1000, "ns")
                    home = Path(jieba.__file__).parent  # tables read here: jieba.posseg / jieba.analyse would
                    self._tags = _tags(home / "dict.txt")  # load them again as import-time globals
                    self._tags.update({term: "ns" for term in self.jurisdiction})
                    self._idf = _idf(home / "analyse" / "idf.txt")
                    self._median_idf = statistics.median(self._idf.values()) if self._idf else 10.0
                    self._tok = tok
        return self._tok

    def extract(self, title: str, text: str = "") -> PostFeatures:
        tok = self._load()
        head, body = _fold(title), _fold(text[:MAX_TEXT])
        if body.startswith(head):
            body = body[len(head):]
        title_words = [w for w in tok.lcut(head) if w.strip()] if head else []
        body_words = [w for w in tok.lcut(body) if w.strip()] if body else []
        places = self._places(title_words) | self._places(body_words)
        for term in self.jurisdiction:
            if term in head or term in body:
                places.add(term)
        found = {place_stem(p): place_level(p, place_stem(p)) for p in sorted(places, key=len)}
        skip = set(places) | set(found)
        counts: Counter[str] = Counter()
        for weight, words in ((2, title_words), (1, body_words)):
            for w in words:
                if w not in skip and self._is_term(w):
                    counts[w] += weight
        terms = {w: (1 + math.log(c)) * self._idf.get(w, self._median_idf) for w, c in counts.items()}
        return PostFeatures(_unit(_top(terms, TERMS_PER_POST)), found, frozenset(title_words + body_words))

    def _is_term(self, w: str) -> bool:
        return (len(w) >= 2 and bool(_WORD.search(w)) and w not in STOPWORDS and w not in NEWS_WORDS
                and not w.isdigit() and self._tags.get(w, "n")[0] not in _FUNCTION_TAGS)

    def _places(self, words: list[str]) -> set[str]:
        out: set[str] = set()
        for i, w in enumerate(words):
            if not _CJK.match(w) or w in NON_PLACES or w[0] in _GENERIC_HEAD:
                continue
            nxt = words[i + 1] if i + 1 < len(words) else ""
            tag = self._tags.get(w)
            if len(nxt) == 1 and nxt in _SUFFIXES and 2 <= len(w) <= 5 and tag in (None, "ns"):
                out.add(w + nxt)  # 木里 + 县
            elif self._is_place(w, tag):
                out.add(w)
        return {p for p in out if p not in NON_PLACES}

    def _is_place(self, w: str, tag: str | None) -> bool:
        named = len(w) >= 3 and (w[-1] in _SUFFIXES or w.endswith("自治州")) and tag in (None, "ns")
        return named or tag == "ns" or w in PROVINCES or w in self.stems


def _tags(path: Path) -> dict[str, str]:
    """Part-of-speech tags of jieba's dictionary that matter here: places (ns), verbs and function words."""
    out: dict[str, str] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and (parts[2] == "ns" or parts[2][0] in _FUNCTION_TAGS + "v"):
                out[parts[0]] = parts[2]
    return out


def _idf(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            word, _, value = line.strip().partition(" ")
            if value:
                out[word] = float(value)
    return out


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _top(weights: dict[str, float], n: int) -> dict[str, float]:
    if len(weights) <= n:
        return weights
    return dict(sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def _unit(weights: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in weights.values()))
    return {k: v / norm for k, v in weights.items()} if norm else {}


@functools.lru_cache(maxsize=4)
def extractor_for(jurisdiction: tuple[str, ...]) -> FeatureExtractor:
    """One extractor per jurisdiction list for the process (jieba's resources are loaded once)."""
    return FeatureExtractor(jurisdiction)
