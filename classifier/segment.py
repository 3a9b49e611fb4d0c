"""Word segmentation with jieba. No import-time globals: each Segmenter owns its own jieba.Tokenizer,
created on first use, with optional user dictionaries (e.g. an agency's domain terms)."""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import Any

_WORDLIKE = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
STOPWORDS = frozenset(
    [
        "的", "了", "是", "在", "和", "与", "及", "或", "也", "就", "都", "而",
        "且", "但", "又", "被", "把", "将", "对", "于", "从", "向", "为", "以",
        "之", "其", "这", "那", "这个", "那个", "一个", "我们", "你们", "他们",
        "它", "他", "她", "我", "你", "吗", "呢", "吧", "啊", "呀", "哦", "嗯",
        "着", "过", "个", "等", "中", "上", "下", "啦", "哈", "哈哈", "哈哈哈",
    ]
)


class Segmenter:
    """Segments Chinese text into words; thread-safe lazy initialisation."""

    def __init__(self, user_dicts: Iterable[Path] = ()) -> None:
        self._user_dicts = tuple(Path(p) for p in user_dicts)
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _jieba(self) -> Any:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    import jieba

                    jieba.setLogLevel(logging.WARNING)
                    tok = jieba.Tokenizer()
                    tok.initialize()
                    for path in self._user_dicts:
                        tok.load_userdict(str(path))
                    self._tokenizer = tok
        return self._tokenizer

    def words(self, text: str) -> list[str]:
        """Content words: NFKC-folded, lower-cased, without punctuation, white space or stop words."""
        folded = unicodedata.normalize("NFKC", text).lower()
        return [w for w in self._jieba().lcut(folded) if _WORDLIKE.search(w) and w not in STOPWORDS]

    def __getstate__(self) -> dict[str, Any]:
        return {"_user_dicts": self._user_dicts}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._user_dicts = state["_user_dicts"]
        self._tokenizer = None
        self._lock = threading.Lock()


class WordNgrams:
    """A picklable scikit-learn analyzer: jieba words plus adjacent word pairs."""

    def __init__(self, segmenter: Segmenter | None = None) -> None:
        self.segmenter = segmenter or Segmenter()

    def __call__(self, text: str) -> list[str]:
        words = self.segmenter.words(text)
        return words + [f"{a} {b}" for a, b in pairwise(words)]
