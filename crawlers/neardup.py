"""Near-duplicate detection for short posts (reposts, 转载 with edits, truncations) in bounded memory.

Contract:
- `fold(text)` is the text a signature is computed from: NFKC, lower case, without URLs, @mentions, repost
  markers ("//@某某:", "转发微博"), #话题#, [表情], emoji, attributions ("（转载自某某网）"), punctuation or
  white space. Pure.
- `signature(text) -> bytes` is a compact, deterministic MinHash sketch (`SIGNATURE_BYTES` long) of the
  character 3-grams of the first `MAX_CHARS` folded characters, stored in `post.signature` so that an index
  can be rebuilt at start-up without the text. It never raises; text with too little content gets a
  signature that never matches (`is_indexable(sig)` is False).
- `NearDupIndex(window)` holds the signatures of the posts of the last `window` (by their `at` time) and
  answers `find(sig, now=…)` with the id of the earliest held post the signature's text duplicates: an
  estimated Jaccard similarity ≥ `threshold`, or an estimated containment ≥ `containment` of the shorter text
  in the longer one (truncations, excerpts) when their lengths are comparable (ratio ≥ `min_ratio`: a post
  quoting one paragraph of a long article is not its duplicate). Candidates come from LSH
  banding; the index stores only numpy arrays (sorted runs of band keys, signatures, ids, times) plus a
  small dict for the newest posts. No global state; the same calls give the same answers.
A malformed signature given to `add`/`find` raises `SignatureError` (a caller bug); `rebuild` skips and counts
such rows instead, so a damaged row never stops start-up.
"""

from __future__ import annotations

import re
import struct
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

NUM_PERM = 96  # MinHash values per signature (16 bits kept of each)
ROWS = 3  # values per LSH band
BANDS = NUM_PERM // ROWS
MIN_SHINGLES = 10  # fewer distinct 3-grams (≈ 12 folded characters) is too little text to call a near-duplicate
MAX_CHARS = 2000  # folded characters signed (≈ 1 µs each); articles that share their first 2,000 are duplicates
SIGNATURE_VERSION = 1  # bump when folding, shingling, hashing or NUM_PERM change (old signatures then fail)
_HEADER = struct.Struct("<BBH")  # version, NUM_PERM, distinct-shingle count (capped at 65535)
SIGNATURE_BYTES = _HEADER.size + 2 * NUM_PERM

_U64 = np.uint64
_LOW32 = _U64(0xFFFFFFFF)
_RNG = np.random.default_rng(20261121)  # fixed seed: signatures are stable across processes and releases
_PERM_A = (_RNG.integers(0, 2**63, NUM_PERM, dtype=np.uint64) << _U64(1)) | _U64(1)  # odd multipliers
_PERM_B = _RNG.integers(0, 2**63, NUM_PERM, dtype=np.uint64)
_MIX_A, _KEY_A = (_U64(v) | _U64(1) for v in _RNG.integers(0, 2**63, 2, dtype=np.uint64) << _U64(1))
_BAND_NUMBERS = np.arange(BANDS, dtype="<u2")[:, None]
del _RNG
for _constant in (_PERM_A, _PERM_B, _BAND_NUMBERS):
    _constant.flags.writeable = False
assert ROWS <= 3 and BANDS * ROWS <= NUM_PERM  # a band and its number fit in one 64-bit word

_NOISE_PATTERNS = [
    r"(?:https?://|www\.)[\x21-\x7e]+",  # links (ASCII only, so Chinese right after a link survives)
    r"(?:\.\.\.|…)\s*(?:展开)?全文",  # "...全文" of a truncated Weibo post
    r"(?://|回复)\s*@[^:\s]{1,30}\s*:?",  # repost chain markers "//@某某:" and replies
    r"@[\w\-·]{1,20}",  # mentions
    r"#[^#\n]{1,40}#",  # #话题#
    r"\[[^\[\]\n]{1,8}\]",  # Weibo emoticons [哈哈] [蜡烛]
    r"[(\[【]\s*(?:转载?自|转自|摘自|来源|来自|via|source)[^)\]】\n]{0,40}[)\]】]",  # (转载自某某网)
    r"(?:转载?自|转自|摘自|来源\s*:?)\s*[^\s。!?]{1,20}\s*$",  # trailing attribution
    r"转发微博|轉發微博|网页链接|網頁鏈接|repost",
]
_NOISE = re.compile("|".join(f"(?:{p})" for p in _NOISE_PATTERNS), re.IGNORECASE | re.MULTILINE)
_NON_WORD = re.compile(r"[\W_]+")


class SignatureError(ValueError):
    """Bytes that are not a signature of this version."""


@dataclass(frozen=True)
class NearMatch:
    """Why a post was called a near-duplicate: the earliest matching held post and the estimated similarity."""

    post_id: int
    at: datetime
    jaccard: float
    containment: float


@dataclass(frozen=True)
class RebuildOutcome:
    added: int
    expired: int  # older than an earlier evict() allowed
    unindexable: int  # too little text to ever match
    invalid: int  # not a signature of this version, or a naive time


# ---------------------------------------------------------------- signatures (pure)


def fold(text: str) -> str:
    """The text near-duplicates are compared on (see the module docstring)."""
    folded = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub("", _NOISE.sub(" ", folded))


def shingles(folded: str) -> NDArray[np.uint64]:
    """Distinct character 3-grams as injective 64-bit codes (code points are < 2**21)."""
    if len(folded) < 3:
        return np.empty(0, dtype=np.uint64)
    cp = np.frombuffer(folded.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    return np.unique((cp[:-2] << _U64(42)) | (cp[1:-1] << _U64(21)) | cp[2:])


def signature(text: str) -> bytes:
    """The MinHash sketch of `text` (`SIGNATURE_BYTES` bytes). Deterministic; never raises."""
    codes = shingles(fold(text[: 4 * MAX_CHARS])[:MAX_CHARS])
    if len(codes) == 0:
        return _HEADER.pack(SIGNATURE_VERSION, NUM_PERM, 0) + b"\xff\xff" * NUM_PERM
    mixed = codes * _MIX_A  # then one xor-shift: the high bits of a product reach the low ones
    mixed ^= mixed >> _U64(29)
    mins = ((mixed[:, None] * _PERM_A + _PERM_B) >> _U64(32)).min(axis=0)
    low: bytes = (mins & _U64(0xFFFF)).astype("<u2").tobytes()  # b-bit MinHash: unrelated minima agree w.p. 2**-16
    return _HEADER.pack(SIGNATURE_VERSION, NUM_PERM, min(len(codes), 0xFFFF)) + low


def decode(sig: bytes) -> tuple[int, NDArray[np.uint16]]:
    """(distinct-shingle count, MinHash values) of a signature; `SignatureError` for anything else."""
    if not isinstance(sig, bytes | bytearray | memoryview) or len(sig) != SIGNATURE_BYTES:
        raise SignatureError(f"a signature has {SIGNATURE_BYTES} bytes")
    version, perms, size = _HEADER.unpack_from(sig)
    if version != SIGNATURE_VERSION or perms != NUM_PERM:
        raise SignatureError(f"signature version {version}/{perms}, expected {SIGNATURE_VERSION}/{NUM_PERM}")
    return size, np.frombuffer(sig, dtype="<u2", offset=_HEADER.size).astype(np.uint16)


def is_indexable(sig: bytes) -> bool:
    """Whether the signature's text is long enough to be matched at all."""
    return decode(sig)[0] >= MIN_SHINGLES


def similarity(a: bytes, b: bytes) -> tuple[float, float]:
    """Estimated (Jaccard, containment of the smaller in the larger) of two signatures' shingle sets."""
    size_a, mins_a = decode(a)
    size_b, mins_b = decode(b)
    jac = np.array([np.count_nonzero(mins_a == mins_b) / NUM_PERM])
    cont = _containment(jac, np.array([size_a]), np.array([size_b]))
    return float(jac[0]), float(cont[0])


def band_keys(mins: NDArray[np.uint16]) -> NDArray[np.uint64]:
    """32-bit LSH keys, one per band (last axis), for one signature or a matrix of them.

    A band's ROWS values and its number fill one 64-bit word; multiply-shift hashes it to 32 bits.
    """
    lead = mins.shape[:-1]
    words = np.empty((*lead, BANDS, 4), dtype="<u2")
    words[..., :ROWS] = mins[..., : BANDS * ROWS].reshape(*lead, BANDS, ROWS)
    words[..., ROWS:] = _BAND_NUMBERS
    return (words.view("<u8")[..., 0].astype(np.uint64) * _KEY_A) >> _U64(32)


def _containment(
    jac: NDArray[np.float64], size_a: NDArray[np.int64], size_b: NDArray[np.int64]
) -> NDArray[np.float64]:
    """|A∩B| / min(|A|,|B|) from Jaccard and set sizes: |A∩B| = J(|A|+|B|)/(1+J)."""
    inter = jac * (size_a + size_b) / (1.0 + jac)
    return np.minimum(1.0, inter / np.maximum(1, np.minimum(size_a, size_b)))


# ---------------------------------------------------------------- the index

_PENDING_MAX = 1024  # newest posts (up to 1/16 of those held) live in a dict, then become a sorted run
_MAX_BUCKET = 64  # candidates taken from one band bucket (the earliest added); bounds the cost of a query
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NearDupIndex:
    """Signatures of the posts of the last `window`; see the module docstring.

    Layout: per held post a slot in parallel numpy arrays (id, time, shingle count, MinHash values); per post
    and band an entry `band_key << 32 | slot` (uint64) in one of a few sorted runs (merged like an LSM tree),
    or, for the newest posts, in a dict from band key to slots. Evicted slots are dropped and the survivors
    renumbered once they are a quarter of all slots, so memory follows the number of posts held.
    """

    def __init__(
        self, window: timedelta, threshold: float = 0.5, *, containment: float = 0.8, min_ratio: float = 0.4
    ) -> None:
        if window <= timedelta(0) or not 0 < threshold <= 1 or not 0 < containment <= 1 or not 0 <= min_ratio <= 1:
            raise ValueError("window must be positive; threshold, containment, min_ratio within (0, 1]")
        self.window, self.threshold, self.containment, self.min_ratio = window, threshold, containment, min_ratio
        self._window_s = int(window.total_seconds())
        # fewest agreeing MinHash values that can pass either test (containment needs J ≥ c·r / (1 + r − c·r))
        least = min(threshold, containment * min_ratio / (1 + min_ratio - containment * min_ratio))
        self._min_agree = max(1, int(least * NUM_PERM) - 1)
        self._clear()

    def _clear(self) -> None:
        self._n = 0  # slots in use (held posts plus evicted ones not yet compacted)
        self._live = 0
        self._floor = -(2**62)  # times below this are evicted
        self._ids = np.empty(0, dtype=np.int64)
        self._times = np.empty(0, dtype=np.int64)
        self._sizes = np.empty(0, dtype=np.int32)
        self._sigs = np.empty((0, NUM_PERM), dtype=np.uint16)
        self._runs: list[NDArray[np.uint64]] = []
        self._pending: dict[int, int] = {}  # band key -> slot, for the newest posts
        self._pending_more: dict[int, list[int]] = {}  # band key -> further slots (rare: similar posts)
        self._pending_entries = np.empty(_PENDING_MAX * BANDS, dtype=np.uint64)
        self._pending_posts = 0

    def __len__(self) -> int:
        return self._live

    def find(self, sig: bytes, *, now: datetime) -> int | None:
        """The id of the earliest held post (within the window before `now`) that `sig` duplicates."""
        match = self.find_match(sig, now=now)
        return None if match is None else match.post_id

    def find_match(self, sig: bytes, *, now: datetime) -> NearMatch | None:
        """Like `find`, with the matched post's time and the estimated similarities."""
        size, mins = decode(sig)
        if size < MIN_SHINGLES or self._live == 0:
            return None
        slots = self._candidates(band_keys(mins))
        agree = np.count_nonzero(self._sigs[slots] == mins, axis=1)
        slots, jac = slots[agree >= self._min_agree], agree[agree >= self._min_agree] / NUM_PERM
        fresh = self._times[slots] >= max(_seconds(now) - self._window_s, self._floor)
        slots, jac = slots[fresh], jac[fresh]
        if len(slots) == 0:
            return None
        sizes = self._sizes[slots]
        cont = _containment(jac, sizes, np.full_like(sizes, size))
        ratio = np.minimum(sizes, size) / np.maximum(sizes, size)
        hits = np.flatnonzero((jac >= self.threshold) | ((cont >= self.containment) & (ratio >= self.min_ratio)))
        if len(hits) == 0:
            return None
        best = hits[np.lexsort((self._ids[slots[hits]], self._times[slots[hits]]))[0]]
        slot = int(slots[best])
        at = _EPOCH + timedelta(seconds=int(self._times[slot]))
        return NearMatch(int(self._ids[slot]), at, float(jac[best]), float(cont[best]))

    def add(self, post_id: int, sig: bytes, at: datetime) -> bool:
        """Hold a post; False (and nothing held) when its text is too short or `at` was already evicted."""
        size, mins = decode(sig)
        t = _seconds(at)
        if size < MIN_SHINGLES or t < self._floor:
            return False
        slot = self._n
        if slot == len(self._ids):
            self._resize(max(1024, slot * 5 // 4))
        self._ids[slot], self._times[slot], self._sizes[slot], self._sigs[slot] = post_id, t, size, mins
        self._n += 1
        self._live += 1
        keys = band_keys(mins)
        start = self._pending_posts * BANDS
        self._pending_entries[start : start + BANDS] = (keys << _U64(32)) | _U64(slot)
        for key in keys.tolist():
            if key in self._pending:
                self._pending_more.setdefault(key, []).append(slot)
            else:
                self._pending[key] = slot
        self._pending_posts += 1
        if self._pending_posts >= min(_PENDING_MAX, max(64, self._live // 16)):
            self._flush()
        return True

    def evict(self, now: datetime) -> int:
        """Drop the posts older than the window before `now`; returns how many were dropped."""
        cutoff = _seconds(now) - self._window_s
        if cutoff <= self._floor:
            return 0
        self._floor = cutoff
        alive = self._times[: self._n] >= cutoff
        held = int(np.count_nonzero(alive))
        dropped, self._live = self._live - held, held
        if self._n - held > max(256, self._n // 4) or (held == 0 and self._n):
            self._compact(alive)
        return dropped

    def rebuild(self, rows: Iterable[tuple[int, bytes, datetime]]) -> RebuildOutcome:
        """Replace the content with `rows` (post id, signature, time), e.g. read from `post` at start-up.

        The result answers `find` as an index that `add`ed the same rows in the same order would (apart from
        which candidates are kept when one band bucket holds more than `_MAX_BUCKET` similar posts).
        """
        floor = self._floor
        self._clear()
        self._floor = floor
        held: list[tuple[int, int, int, NDArray[np.uint16]]] = []
        outcome: Counter[str] = Counter()
        for post_id, sig, at in rows:
            try:
                size, mins = decode(bytes(sig))
                t = _seconds(at)
            except (SignatureError, ValueError, TypeError):
                outcome["invalid"] += 1
                continue
            if size < MIN_SHINGLES:
                outcome["unindexable"] += 1
            elif t < floor:
                outcome["expired"] += 1
            else:
                held.append((int(post_id), t, size, mins))
        if held:
            ids, times, sizes, sigs = zip(*held, strict=True)
            self._append(np.array(ids), np.array(times), np.array(sizes), np.stack(sigs))
            keys = band_keys(self._sigs[: self._n])
            slots = np.arange(self._n, dtype=np.uint64)[:, None]
            self._runs = [np.sort(((keys << _U64(32)) | slots).ravel())]
        return RebuildOutcome(len(held), outcome["expired"], outcome["unindexable"], outcome["invalid"])

    def memory_bytes(self) -> int:
        """Bytes held by the index: arrays at their capacity, runs, and the dicts with their ints and lists."""
        arrays: list[NDArray[Any]] = [self._ids, self._times, self._sizes, self._sigs, self._pending_entries]
        arrays += self._runs
        total = sum(a.nbytes for a in arrays) + sys.getsizeof(self._runs)
        total += sys.getsizeof(self._pending) + sys.getsizeof(self._pending_more)
        total += sum(sys.getsizeof(v) for v in self._pending_more.values())
        ints = len(self._pending) + len(self._pending_more) + self._pending_posts  # keys, and one int per slot
        return total + ints * sys.getsizeof(2**31) + 1024  # + the object, its attributes and array headers

    # -- internals

    def _append(
        self, ids: NDArray[Any], times: NDArray[Any], sizes: NDArray[Any], sigs: NDArray[Any]
    ) -> int:
        first, count = self._n, len(ids)
        if first + count > len(self._ids):
            self._resize(max(first + count, 1024))
        sl = slice(first, first + count)
        self._ids[sl], self._times[sl], self._sizes[sl], self._sigs[sl] = ids, times, sizes, sigs
        self._n += count
        self._live += count
        return first

    def _resize(self, capacity: int) -> None:
        n = self._n
        for name in ("_ids", "_times", "_sizes", "_sigs"):
            old = getattr(self, name)
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)

    def _candidates(self, keys: NDArray[np.uint64]) -> NDArray[np.int64]:
        """Slots that share a band key with `keys`: at most `_MAX_BUCKET` per bucket and run, earliest first."""
        lo_keys = keys << _U64(32)
        bounds = np.concatenate([lo_keys, lo_keys | _LOW32])  # no slot is 2**32-1, so 'left' finds both ends
        parts: list[NDArray[np.uint64]] = []
        for run in self._runs:
            pos = np.searchsorted(run, bounds)
            counts = np.minimum(pos[BANDS:] - pos[:BANDS], _MAX_BUCKET)
            total = int(counts.sum())
            if total:
                starts = pos[:BANDS] - np.cumsum(counts) + counts
                parts.append(run[np.repeat(starts, counts) + np.arange(total)])
        found: list[int] = []
        for key in keys.tolist():
            slot = self._pending.get(key)
            if slot is not None:
                found.append(slot)
                if key in self._pending_more:
                    found.extend(self._pending_more[key][: _MAX_BUCKET - 1])
        if found:
            parts.append(np.array(found, dtype=np.uint64))
        if not parts:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate(parts) & _LOW32).astype(np.int64)

    def _flush(self) -> None:
        entries = np.sort(self._pending_entries[: self._pending_posts * BANDS])
        self._pending.clear()
        self._pending_more.clear()
        self._pending_posts = 0
        self._runs.append(entries)
        while len(self._runs) >= 2 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            newer, older = self._runs.pop(), self._runs.pop()
            self._runs.append(np.insert(older, np.searchsorted(older, newer), newer))

    def _compact(self, alive: NDArray[np.bool_]) -> None:
        """Drop evicted slots and renumber the rest in order (runs stay sorted: only low bits change)."""
        if self._pending_posts:
            self._flush()
        renumber = (np.cumsum(alive) - 1).astype(np.uint64)
        runs = []
        for run in self._runs:
            slots = (run & _LOW32).astype(np.int64)
            keep = alive[slots]
            if keep.any():
                runs.append((run[keep] & ~_LOW32) | renumber[slots[keep]])
        self._runs = runs
        ids, times, sizes, sigs = (a[: self._n][alive] for a in (self._ids, self._times, self._sizes, self._sigs))
        self._n = self._live = 0
        self._resize(max(1024, len(ids)))  # a smaller allocation: memory follows the posts held
        self._append(ids, times, sizes, sigs)


def _seconds(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return int((at - _EPOCH).total_seconds())
