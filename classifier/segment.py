"""Splitting text into units for the classifier.

- `Segmenter`: jieba words (rules, keywords, lexicons). No import-time globals: each Segmenter owns its own
  jieba.Tokenizer, created on first use, with optional user dictionaries (e.g. an agency's domain terms).
- `CharNgramTfidf`: the model's features, character 1..3-gram TF-IDF with no segmentation at prediction
  time. `transform` is vectorised over the whole batch with numpy (code points packed into one integer key
  per n-gram, looked up with a binary search), so it is ~10x faster than scikit-learn's Python-level
  analyzer while computing the same kind of matrix: sublinear tf, smoothed idf, L2-normalised rows.
  Deterministic: the vocabulary is sorted by key, so the same texts always give the same columns.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from scipy.sparse import csr_matrix

WORDLIKE = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
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
        return [w for w in self._jieba().lcut(folded) if WORDLIKE.search(w) and w not in STOPWORDS]

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


_SPACES = re.compile(r"\s+")
_EDGES = re.compile(r" ?\0 ?")
_BITS = 21  # a Unicode code point + 1 fits in 21 bits, so three of them fit one uint64 key
_SEP = 0  # key digit for "no character" (document boundary); real characters are code point + 1


def fold(text: str) -> str:
    """NFKC, lower case, runs of white space (and NULs) as one space: the form n-grams are taken from."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text).replace("\0", " ").lower()).strip()


def _fold_joined(texts: list[str]) -> str:
    """`fold` of every text, each followed by a NUL: one C-level pass over the batch instead of one per text."""
    joined = unicodedata.normalize("NFKC", "\0".join(t.replace("\0", " ") for t in texts)).lower()
    out = _EDGES.sub("\0", _SPACES.sub(" ", joined + "\0")) if texts else ""
    return out[1:] if out.startswith(" ") else out


class CharNgramTfidf:
    """Character 1..`max_n`-gram TF-IDF (max_n ≤ 3) with a scikit-learn style fit/transform interface."""

    def __init__(self, max_n: int = 3, min_df: int = 2) -> None:
        if not 1 <= max_n <= 3:
            raise ValueError("max_n must be 1, 2 or 3")
        self.max_n = max_n
        self.min_df = min_df
        self.keys_: NDArray[np.uint64] | None = None
        self.idf_: NDArray[np.float64] | None = None

    def config(self) -> dict[str, Any]:
        return {"kind": "char_ngram_tfidf", "ngram_range": [1, self.max_n], "min_df": self.min_df,
                "sublinear_tf": True, "smooth_idf": True, "norm": "l2", "fold": "NFKC+lower+spaces"}

    def _ngrams(self, texts: list[str]) -> tuple[NDArray[np.int64], NDArray[np.uint64]]:
        """(document index, n-gram key) for every n-gram of every text, boundaries excluded."""
        import numpy as np

        joined = _fold_joined(texts)
        codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + np.uint64(1)
        ends = np.flatnonzero(codes == np.uint64(1))  # one separator after each text
        codes[ends] = _SEP
        lengths = np.diff(np.concatenate([[-1], ends]))
        doc = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        docs, keys = [], []
        key = np.zeros(len(codes), dtype=np.uint64)
        valid = np.ones(len(codes), dtype=bool)
        for n in range(1, self.max_n + 1):
            m = len(codes) - n + 1
            key = (key[:m] << np.uint64(_BITS)) | codes[n - 1:]
            valid = valid[:m] & (codes[n - 1:] != _SEP)
            docs.append(doc[:m][valid])
            keys.append(key[valid])
        return np.concatenate(docs), np.concatenate(keys)

    def fit(self, texts: list[str]) -> CharNgramTfidf:
        import numpy as np

        docs, keys = self._ngrams(list(texts))
        pairs = np.unique(np.stack([keys, docs.astype(np.uint64)]), axis=1)
        uniq, df = np.unique(pairs[0], return_counts=True)
        keep = df >= self.min_df
        self.keys_ = uniq[keep]
        self.idf_ = np.log((1.0 + len(texts)) / (1.0 + df[keep])) + 1.0
        return self

    def fit_transform(self, texts: list[str]) -> csr_matrix:
        return self.fit(texts).transform(texts)

    def transform(self, texts: list[str]) -> csr_matrix:
        import numpy as np
        from scipy.sparse import csr_matrix

        if self.keys_ is None or self.idf_ is None:
            raise ValueError("CharNgramTfidf is not fitted")
        texts = list(texts)
        docs, keys = self._ngrams(texts)
        width = len(self.keys_)
        col = np.minimum(np.searchsorted(self.keys_, keys), max(width - 1, 0))
        hit = self.keys_[col] == keys if width else np.zeros(len(keys), dtype=bool)
        cells, counts = np.unique(docs[hit] * width + col[hit], return_counts=True)
        rows, cols = np.divmod(cells, width) if width else (cells, cells)
        values = (1.0 + np.log(counts)) * self.idf_[cols]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=len(texts)))
        values /= norms[rows]
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(texts)))])
        return csr_matrix((values, cols, indptr), shape=(len(texts), width))

    def get_feature_names_out(self) -> NDArray[np.str_]:
        import numpy as np

        if self.keys_ is None:
            raise ValueError("CharNgramTfidf is not fitted")
        return np.array([decode_key(int(k)) for k in self.keys_])


def decode_key(key: int) -> str:
    """The n-gram a packed key stands for."""
    chars = []
    while key:
        chars.append(chr((key & ((1 << _BITS) - 1)) - 1))
        key >>= _BITS
    return "".join(reversed(chars))
