"""Near-duplicate index on this machine: throughput, memory and quality. Prints JSON.

    .venv/bin/python benchmarks/neardup.py [--held 100000] [--seed 7] [--show-fp N]

Originals are real short posts: the team-written seed corpus (classifier/seed/*.jsonl) and, when
../shared/data is present, real Weibo posts (weibo_senti_100k_subset, ced_weibo_rumor; read in place, never
copied). Four fifths of them are held in the index, the rest are negatives: posts that were not indexed
(many on the same topics as indexed ones, e.g. several forest-fire posts). Filler posts bring the index to
`--held` posts; they are drawn from a character trigram model of the originals, so they have realistic
character statistics (and frequent shingles) but are not copies of anything.

Variants of held originals are what a near-duplicate detector must find: 1-3 of the transformations in
`TRANSFORMS` (转发 "//@用户名: 说得对" prefixes, adding/removing #话题#, truncation to 60-90% with "…",
character edits, full-/half-width swaps, "（转载自某某网）", emoji). Reported:
- throughput of signature(), of find()+add() and of the three together, with ≥ `--held` posts held and
  evict() called every 1,000 posts (posts span 10 days, the window is 7);
- index memory per held post, from memory_bytes() and from tracemalloc (numpy allocations are traced);
- recall on variants (find returns the original's id), overall and per transformation;
- false-positive rate on negatives, split into posts that are truly near-duplicates of an indexed post by
  the exact shingle-set measure (not counted as false positives) and the rest.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import random
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawlers.neardup import (
    BANDS,
    MIN_SHINGLES,
    NUM_PERM,
    ROWS,
    SIGNATURE_BYTES,
    NearDupIndex,
    decode,
    fold,
    shingles,
    signature,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
NAMES = ["用户名", "小王同学", "江城观察", "吃瓜群众甲", "zhang_san", "城市热线", "热心网友123"]
COMMENTS = ["说得对", "转发", "扩散", "关注一下", "求真相", "太可怕了", "顶", ""]
SITES = ["某某网", "人民网", "新浪新闻", "澎湃新闻", "今日头条", "某市发布"]
TOPICS = ["突发", "身边事", "关注", "求扩散", "热点", "民生"]
EMOJI = ["😭", "🙏", "👍", "😡", "🔥", "❤️", "[哈哈]", "[泪]", "[蜡烛]", "[怒]"]
HANZI = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
    "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总"
    "次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处理府研质"
)
TRANSFORMS: dict[str, Callable[[str, random.Random], str]] = {}


def transform(name: str) -> Callable[[Callable[[str, random.Random], str]], Callable[[str, random.Random], str]]:
    def register(fn: Callable[[str, random.Random], str]) -> Callable[[str, random.Random], str]:
        TRANSFORMS[name] = fn
        return fn
    return register


@transform("repost")
def repost(text: str, rng: random.Random) -> str:
    name, comment = rng.choice(NAMES), rng.choice(COMMENTS)
    if rng.random() < 0.5:
        return f"//@{name}: {comment} {text}"
    return f"{comment}//@{name}:{text}"  # Weibo's own layout: new comment first, then the chain


@transform("hashtag")
def hashtag(text: str, rng: random.Random) -> str:
    if "#" in text and rng.random() < 0.7:
        return "".join(part for i, part in enumerate(text.split("#")) if i % 2 == 0)
    return f"#{rng.choice(TOPICS)}# {text}" if rng.random() < 0.5 else f"{text} #{rng.choice(TOPICS)}#"


@transform("truncate")
def truncate(text: str, rng: random.Random) -> str:
    return text[: max(1, round(len(text) * rng.uniform(0.6, 0.9)))] + rng.choice(["…", "...", "...全文"])


@transform("edit")
def edit(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, max(1, min(3, len(text) // 25)))):
        pos = rng.randrange(len(chars)) if chars else 0
        kind = rng.choice(["sub", "ins", "del"])
        if kind == "del" and len(chars) > 1:
            del chars[pos]
        elif kind == "ins" or not chars:
            chars.insert(pos, rng.choice(HANZI))
        else:
            chars[pos] = rng.choice(HANZI)
    return "".join(chars)


@transform("width")
def width(text: str, rng: random.Random) -> str:
    to_full = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)} | {" ": "\u3000"}
    to_half = {v: k for k, v in to_full.items()} | {"，": ",", "。": ".", "：": ":", "！": "!", "？": "?"}
    table = to_full if rng.random() < 0.5 else to_half
    return "".join(table.get(ch, ch) for ch in text)


@transform("attribution")
def attribution(text: str, rng: random.Random) -> str:
    site = rng.choice(SITES)
    return f"{text}（转载自{site}）" if rng.random() < 0.6 else f"{text} 来源：{site}"


@transform("emoji")
def emoji(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 3)):
        chars.insert(rng.randrange(len(chars) + 1), rng.choice(EMOJI))
    return "".join(chars)


_ORDER = ["edit", "width", "truncate", "hashtag", "emoji", "attribution", "repost"]  # content first, wrappers last


def variant(text: str, rng: random.Random) -> tuple[str, list[str]]:
    """1-3 distinct transformations, content edits before wrappers (a repost does not truncate its prefix)."""
    names = sorted(rng.sample(_ORDER, rng.choice([1, 1, 2, 2, 3])), key=_ORDER.index)
    for name in names:
        text = TRANSFORMS[name](text, rng)
    return text, names


# ---------------------------------------------------------------- data


def originals() -> tuple[list[tuple[str, str]], bool]:
    """(origin, text) of real short posts, exact duplicates (after folding) and too-short texts dropped."""
    rows = [("seed", json.loads(line)["text"]) for path in sorted((ROOT / "classifier" / "seed").glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    shared = SHARED.is_dir()
    if shared:
        senti = SHARED / "weibo_senti_100k_subset" / "weibo_senti_100k_subset2400.csv"
        with senti.open(encoding="utf-8-sig", newline="") as fh:
            rows += [("weibo_senti", r["review"]) for r in csv.DictReader(fh)]
        ced = SHARED / "ced_weibo_rumor" / "ced_original_microblogs.jsonl"
        lines = ced.read_text(encoding="utf-8").split("\n")  # not splitlines(): texts hold U+2028
        rows += [("ced", json.loads(line)["text"]) for line in lines if line.strip()]
    seen: set[str] = set()
    out = []
    for origin, text in rows:
        key = fold(text)
        if key not in seen and decode(signature(text))[0] >= MIN_SHINGLES:
            seen.add(key)
            out.append((origin, text))
    return out, shared


def filler(texts: list[str], n: int, rng: random.Random) -> Iterator[str]:
    """Posts from a character bigram model of `texts`: realistic characters, copies of nothing."""
    follow: dict[str, list[str]] = defaultdict(list)
    for text in texts:
        for a, b in zip("^" + text, text + "$", strict=True):
            follow[a].append(b)
    lengths = [len(t) for t in texts]
    for _ in range(n):
        out: list[str] = []
        ch, target = "^", rng.choice(lengths)
        while len(out) < target:
            ch = rng.choice(follow[ch])
            if ch == "$":
                ch = "^"
                continue
            out.append(ch)
        yield "".join(out)


def exact_near_dup(a: str, b: str) -> tuple[float, float, bool]:
    """Exact (Jaccard, containment, verdict) on the shingle sets, with the index's default rule."""
    sa, sb = (set(shingles(fold(text)).tolist()) for text in (a, b))
    inter = len(sa & sb)
    jac = inter / max(1, len(sa | sb))
    small, large = sorted((len(sa), len(sb)))
    cont = inter / max(1, small)
    return jac, cont, jac >= 0.5 or (cont >= 0.8 and small / max(1, large) >= 0.4)


# ---------------------------------------------------------------- measurements

START = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = timedelta(days=7)
SPAN = timedelta(days=10)


def stream(args: argparse.Namespace, held: list[str], rng: random.Random) -> list[tuple[int, str, datetime]]:
    """(id, text, time) in time order over SPAN: filler throughout, held originals in the last six days, so
    that at the end about `--held` posts are within the window and every original is among them."""
    total = round(args.held * 1.03 * SPAN / WINDOW) + 1000  # a few filler posts are too short to index
    fill = list(filler(held, total - len(held), rng))
    step = SPAN / total
    late = set(rng.sample(range(total - round(total * 0.6), total), len(held)))
    it_held, it_fill = iter(held), iter(fill)
    return [(i, next(it_held) if i in late else next(it_fill), START + step * i) for i in range(total)]


def throughput(posts: list[tuple[int, str, datetime]]) -> tuple[dict[str, float], list[bytes], NearDupIndex]:
    t = time.perf_counter()
    sigs = [signature(text) for _, text, _ in posts]
    sig_s = time.perf_counter() - t
    index = NearDupIndex(WINDOW)
    gc.collect()
    t = time.perf_counter()
    for n, ((post_id, _, at), sig) in enumerate(zip(posts, sigs, strict=True)):
        index.find(sig, now=at)
        index.add(post_id, sig, at)
        if n % 1000 == 999:
            index.evict(at)
    find_add_s = time.perf_counter() - t
    index.evict(posts[-1][2])
    figures: dict[str, float] = {
        "posts_processed": len(posts), "held_at_end": len(index),
        "signature_per_s": round(len(posts) / sig_s), "find_add_per_s": round(len(posts) / find_add_s),
        "end_to_end_per_s": round(len(posts) / (sig_s + find_add_s)),
    }
    return figures, sigs, index


def memory(posts: list[tuple[int, str, datetime]], sigs: list[bytes], index: NearDupIndex) -> dict[str, float]:
    """memory_bytes() and tracemalloc of the same incremental build (add + evict), and of a rebuilt index."""
    held = len(index)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    traced = NearDupIndex(WINDOW)
    for n, ((post_id, _, at), sig) in enumerate(zip(posts, sigs, strict=True)):
        traced.add(post_id, sig, at)
        if n % 1000 == 999:
            traced.evict(at)
    traced.evict(posts[-1][2])
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cutoff = posts[-1][2] - WINDOW
    rows = [(post_id, sig, at) for (post_id, _, at), sig in zip(posts, sigs, strict=True) if at >= cutoff]
    rebuilt = NearDupIndex(WINDOW)
    t = time.perf_counter()
    rebuilt.rebuild(rows)
    rebuild_s = time.perf_counter() - t
    return {
        "held": held, "memory_bytes_per_post": round(index.memory_bytes() / held),
        "tracemalloc_bytes_per_post": round((current - base) / held),
        "tracemalloc_peak_bytes_per_post": round((peak - base) / held),
        "rebuilt_memory_bytes_per_post": round(rebuilt.memory_bytes() / len(rebuilt)),
        "rebuild_s": round(rebuild_s, 2), "signature_bytes": SIGNATURE_BYTES,
    }


def recall(index: NearDupIndex, held: dict[int, str], texts: dict[int, str], now: datetime,
           rng: random.Random, per_post: int) -> dict[str, object]:
    """Variants of held originals: found when find() returns the original, or an earlier post that the
    variant duplicates by the exact measure (reported apart)."""
    total: Counter[str] = Counter()
    found: Counter[str] = Counter()
    other = unmatchable = 0
    for post_id, text in held.items():
        for _ in range(per_post):
            var, names = variant(text, rng)
            sig = signature(var)
            if decode(sig)[0] < MIN_SHINGLES:
                unmatchable += 1
                continue
            got = index.find(sig, now=now)
            ok = got == post_id or (got is not None and exact_near_dup(texts[got], var)[2])
            other += got is not None and got != post_id and ok
            for key in [*names, f"{len(names)}_transforms", "all"]:
                total[key] += 1
                found[key] += ok
    return {
        "variants": total["all"], "recall": round(found["all"] / total["all"], 4),
        "found_earlier_equivalent": other, "unmatchable_too_short": unmatchable,
        "by_transform": {k: round(found[k] / total[k], 4) for k in sorted(total) if k != "all"},
    }


def negatives(index: NearDupIndex, held: dict[int, str], negs: list[tuple[str, str]], texts: dict[int, str],
              now: datetime, show: int) -> dict[str, object]:
    """Posts never indexed. A match is a false positive unless the exact measure confirms that the data holds
    a near-copy (real corpora contain reposts of one another); `clearly_distinct` counts false positives with
    exact Jaccard < 0.3 and containment < 0.6, the rest are rewrites just under the exact rule's line."""
    out: dict[str, object] = {}
    held_seed = [set(shingles(fold(t)).tolist()) for t in held.values() if t in _SEED_TEXTS]
    for group in sorted({origin for origin, _ in negs}):
        queries = [text for origin, text in negs if origin == group]
        counts: Counter[str] = Counter()
        for text in queries:
            got = index.find(signature(text), now=now)
            jac, cont, true_dup = exact_near_dup(texts[got], text) if got is not None else (0.0, 0.0, False)
            counts["confirmed_near_copies"] += true_dup
            is_fp = got is not None and not true_dup
            counts["false_positives"] += is_fp
            counts["clearly_distinct"] += is_fp and jac < 0.3 and cont < 0.6
            if group == "seed" and _nearest_jaccard(text, held_seed) >= 0.1:
                counts["same_topic_queries"] += 1
                counts["same_topic_false_positives"] += is_fp
            if is_fp and got is not None and show > 0:
                show -= 1
                print(f"FP exact J={jac:.2f} C={cont:.2f}\n  {text}\n  {texts[got]}", file=sys.stderr)
        out[group] = {"queries": len(queries), "fp_rate": round(counts["false_positives"] / len(queries), 5),
                      **counts}
    return out


_SEED_TEXTS: set[str] = set()


def _nearest_jaccard(text: str, others: list[set[int]]) -> float:
    mine = set(shingles(fold(text)).tolist())
    return max((len(mine & o) / len(mine | o) for o in others), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--held", type=int, default=100_000, help="posts held in the index at the end")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--variants", type=int, default=2, help="variants per held original")
    ap.add_argument("--show-fp", type=int, default=0, help="print up to N false-positive pairs to stderr")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    corpus, shared = originals()
    _SEED_TEXTS.update(text for origin, text in corpus if origin == "seed")
    rng.shuffle(corpus)
    cut = len(corpus) * 4 // 5
    held_texts, negs = [text for _, text in corpus[:cut]], corpus[cut:]
    posts = stream(args, held_texts, rng)
    speed, sigs, index = throughput(posts)
    mem = memory(posts, sigs, index)
    texts = {post_id: text for post_id, text, _ in posts}
    held = {post_id: text for post_id, text, _ in posts if text in set(held_texts)}
    now = posts[-1][2]
    report = {
        "data": {"originals": len(corpus), "held_originals": len(held), "negatives": len(negs),
                 "filler": len(posts) - len(held), "shared_data": shared},
        "params": {"num_perm": NUM_PERM, "rows": ROWS, "bands": BANDS, "threshold": index.threshold,
                   "containment": index.containment, "min_ratio": index.min_ratio, "window_days": WINDOW.days},
        "throughput": speed, "memory": mem,
        "recall": recall(index, held, texts, now, rng, args.variants),
        "negatives": negatives(index, held, negs, texts, now, args.show_fp),
    }
    print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
