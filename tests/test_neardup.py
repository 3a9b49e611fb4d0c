"""Near-duplicate index: reposts, edits and truncations of short posts are found; different posts on the same
topic are not; the window evicts; a rebuilt index answers like the one built by adds; signatures are stable."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawlers.neardup import (
    MIN_SHINGLES,
    SIGNATURE_BYTES,
    NearDupIndex,
    SignatureError,
    decode,
    fold,
    is_indexable,
    signature,
    similarity,
)

FIXTURES = Path(__file__).parent / "fixtures" / "neardup"
T0 = datetime(2026, 5, 12, 7, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def _jsonl(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").split("\n") if line.strip()]


ORIGINALS = {int(str(row["id"])): str(row["text"]) for row in _jsonl("originals.jsonl")}
VARIANTS = _jsonl("variants.jsonl")
NEGATIVES = _jsonl("negatives.jsonl")


def _index(texts: dict[int, str] = ORIGINALS) -> NearDupIndex:
    index = NearDupIndex(WEEK)
    for post_id, text in texts.items():
        assert index.add(post_id, signature(text), T0 + timedelta(minutes=post_id))
    return index


def _variant(text: str, rng: random.Random) -> str:
    """A small version of benchmarks/neardup.py's generator: one or two repost-style changes."""
    changes: list[Callable[[str], str]] = [
        lambda t: f"//@{rng.choice(['用户名', '江城观察'])}: 说得对 {t}",
        lambda t: f"#{rng.choice(['突发', '关注'])}# {t}",
        lambda t: t[: round(len(t) * rng.uniform(0.6, 0.9))] + "…",
        lambda t: "".join(ch if rng.random() > 0.03 else rng.choice("的了是在有") for ch in t),
        lambda t: t.translate({ord(","): "，", ord("，"): ",", ord("5"): "５", ord("１"): "1"}),
        lambda t: f"{t}（转载自某某网）",
        lambda t: t[:10] + "😭🙏" + t[10:] + "[蜡烛]",
    ]
    for change in rng.sample(changes, rng.choice([1, 2])):
        text = change(text)
    return text


@pytest.mark.parametrize("case", VARIANTS, ids=lambda c: f"{c['of']}-{c['kind']}")
def test_hand_written_variant_finds_its_original(case: dict[str, object]) -> None:
    assert _index().find(signature(str(case["text"])), now=T0 + timedelta(hours=1)) == case["of"]


def test_generated_variants_recall_at_least_95_percent() -> None:
    index, rng = _index(), random.Random(11)
    queries = [(post_id, _variant(text, rng)) for post_id, text in ORIGINALS.items() for _ in range(15)]
    found = sum(index.find(signature(v), now=T0 + timedelta(hours=1)) == post_id for post_id, v in queries)
    assert found / len(queries) >= 0.95


@pytest.mark.parametrize("case", NEGATIVES, ids=lambda c: f"near-{c['near']}")
def test_different_post_on_the_same_topic_is_not_a_duplicate(case: dict[str, object]) -> None:
    assert _index().find_match(signature(str(case["text"])), now=T0 + timedelta(hours=1)) is None


def test_truncation_matches_by_containment() -> None:
    text = ORIGINALS[2]
    match = _index().find_match(signature(text[: len(text) * 6 // 10] + "…"), now=T0 + timedelta(hours=1))
    assert match is not None and match.post_id == 2
    assert match.containment >= 0.8 and match.jaccard < 0.7
    assert match.at == T0 + timedelta(minutes=2)


def test_earliest_matching_post_wins_whatever_the_insertion_order() -> None:
    index = NearDupIndex(WEEK)
    text = ORIGINALS[6]
    index.add(30, signature(f"//@江城交通: {text}"), T0 + timedelta(hours=2))
    index.add(31, signature(text), T0 + timedelta(hours=1))
    assert index.find(signature(f"扩散 {text}"), now=T0 + timedelta(hours=3)) == 31


def test_posts_leave_the_index_after_the_window() -> None:
    index = _index({1: ORIGINALS[1], 2: ORIGINALS[2]})
    sig = signature(_variant(ORIGINALS[1], random.Random(1)))
    assert index.find(sig, now=T0 + WEEK) == 1  # added at T0 + 1 min: still inside
    later = T0 + WEEK + timedelta(minutes=1, seconds=1)
    assert index.find(sig, now=later) is None  # outside the window before evict() runs
    assert index.evict(later) == 1
    assert len(index) == 1
    assert index.evict(later) == 0  # idempotent
    assert not index.add(40, signature(ORIGINALS[3]), T0)  # older than what was evicted: not held
    assert len(index) == 1 and index.find(signature(ORIGINALS[2]), now=later) == 2


def test_eviction_frees_memory() -> None:
    index = NearDupIndex(timedelta(days=1))
    rng = random.Random(3)
    for i in range(5000):
        index.add(i, signature(_random_post(rng)), T0 + timedelta(seconds=20 * i))
    full = index.memory_bytes()
    last = T0 + timedelta(seconds=20 * 4999)
    assert index.evict(last + timedelta(days=1, hours=-2)) == 5000 - 361  # the last two hours stay
    assert len(index) == 361 and index.memory_bytes() < full * 0.2


def test_rebuild_answers_like_the_index_built_by_adds() -> None:
    rng = random.Random(5)
    rows = [(i, signature(_random_post(rng)), T0 + timedelta(minutes=i)) for i in range(3000)]
    rows += [(10_000 + k, signature(v), T0 + timedelta(minutes=k)) for k, v in ORIGINALS.items()]
    built = NearDupIndex(WEEK)
    for row in rows:
        built.add(*row)
    rebuilt = NearDupIndex(WEEK)
    outcome = rebuilt.rebuild(rows)
    assert outcome.added == len(rows) == len(built) == len(rebuilt)
    queries = [signature(_variant(ORIGINALS[k], rng)) for k in ORIGINALS] + [sig for _, sig, _ in rows[::7]]
    now = T0 + timedelta(days=2)
    assert [built.find(q, now=now) for q in queries] == [rebuilt.find(q, now=now) for q in queries]
    assert built.evict(T0 + WEEK + timedelta(minutes=1000)) == 1000 + len(ORIGINALS)
    survivors = [row for row in rows if row[2] >= T0 + timedelta(minutes=1000)]
    rebuilt.rebuild(survivors)
    now = T0 + WEEK + timedelta(minutes=1500)
    assert [built.find(q, now=now) for q in queries] == [rebuilt.find(q, now=now) for q in queries]


def test_rebuild_skips_bad_rows_and_counts_them() -> None:
    good = signature(ORIGINALS[1])
    naive = datetime(2026, 5, 12, 7, 0)
    rows = [(1, good, T0), (2, b"junk", T0), (3, good[:-2], T0), (4, good, naive), (5, signature("好"), T0)]
    index = NearDupIndex(WEEK)
    outcome = index.rebuild(rows)
    assert (outcome.added, outcome.invalid, outcome.unindexable) == (1, 3, 1)
    assert index.find(good, now=T0) == 1


def test_malformed_signature_is_a_caller_error() -> None:
    index = _index()
    with pytest.raises(SignatureError):
        index.find(b"\x00" * SIGNATURE_BYTES, now=T0)
    with pytest.raises(SignatureError):
        index.add(1, b"short", T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        index.add(1, signature(ORIGINALS[1]), datetime(2026, 5, 12))


def test_signatures_are_deterministic_across_processes() -> None:
    golden = json.loads((FIXTURES / "signatures.json").read_text(encoding="utf-8"))
    assert {text: signature(text).hex() for text in golden} == golden
    code = "import json,sys; from crawlers.neardup import signature; print(json.dumps(signature(sys.argv[1]).hex()))"
    root = Path(__file__).resolve().parent.parent
    text = next(iter(golden))
    out = subprocess.run([sys.executable, "-c", code, text], capture_output=True, text=True, check=True, cwd=root,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(out.stdout) == golden[text]


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("说得对//@江城观察: 滨江大桥出现裂缝！", "说得对滨江大桥出现裂缝"),
        ("转发微博 //@某某：#山火# 北坡起火了🙏[蜡烛] http://t.cn/A6xYz12", "北坡起火了"),
        ("回复@小王:真的吗 @市住建局 管一管", "真的吗管一管"),
        ("市教育局发布通知（转载自某某网）", "市教育局发布通知"),
        ("停水通知 来源：某市发布", "停水通知"),
        ("５月１２日 ＡＢＣ，全角", "5月12日abc全角"),
        ("今天下午三点多，北坡林场起火…全文", "今天下午三点多北坡林场起火"),
    ],
)
def test_fold_keeps_only_the_words_of_the_post(raw: str, folded: str) -> None:
    assert fold(raw) == folded


@pytest.mark.parametrize("text", ["", "   ", "🙏🙏🙏", "转发微博", "//@某某:", "好", "\x00\x01", "字" * 200_000])
def test_signature_never_raises(text: str) -> None:
    sig = signature(text)
    assert len(sig) == SIGNATURE_BYTES
    assert is_indexable(sig) == (decode(sig)[0] >= MIN_SHINGLES)
    if len(fold(text)) < 5:
        assert not is_indexable(sig) and not _index().add(99, sig, T0)


def test_similarity_estimates_jaccard_and_containment() -> None:
    text = ORIGINALS[13]
    assert similarity(signature(text), signature(text)) == (1.0, 1.0)
    jaccard, containment = similarity(signature(text), signature(text[: len(text) // 2]))
    assert 0.3 <= jaccard <= 0.7 and containment >= 0.85


def test_memory_estimate_is_close_to_what_is_allocated() -> None:
    rng = random.Random(9)
    sigs = [signature(_random_post(rng)) for _ in range(3000)]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    index = NearDupIndex(WEEK)
    for i, sig in enumerate(sigs):
        index.add(i, sig, T0)
    traced = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert 0.8 <= index.memory_bytes() / traced <= 1.3
    assert index.memory_bytes() / len(index) <= 2048


def test_real_weibo_posts_recall(shared_data: Path) -> None:
    lines = (shared_data / "ced_weibo_rumor" / "ced_original_microblogs.jsonl").read_text(encoding="utf-8")
    texts = [json.loads(line)["text"] for line in lines.split("\n")[:400] if line.strip()]
    posts = {i: t for i, t in enumerate(texts) if is_indexable(signature(t))}
    index, rng = _index(posts), random.Random(2)
    queries = [(i, signature(_variant(t, rng))) for i, t in posts.items()]
    queries = [(i, q) for i, q in queries if is_indexable(q)]
    hits = 0
    for i, q in queries:
        got = index.find(q, now=T0 + timedelta(days=1))
        hits += got is not None and (got == i or similarity(signature(posts[got]), q)[0] >= 0.5)
    assert hits / len(queries) >= 0.95


def _random_post(rng: random.Random) -> str:
    """A distinct post-sized text: 40-90 random common characters (no two share many 3-grams)."""
    return "".join(rng.choice("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动")
                   for _ in range(rng.randint(40, 90)))
