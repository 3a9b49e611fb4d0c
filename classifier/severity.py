"""Severity cues from the text (pure): casualty and loss figures mapped to the emergency-plan scale.

Deaths include the missing (死亡（含失踪）), as the national emergency plans count them. Thresholds follow the
production-safety scale: ≥30 dead, ≥100 seriously injured or ≥1亿元 loss is I (特别重大); 10–29 / 50–99 /
5000万 is II; 3–9 / 10–49 / 1000万 is III; anything less is IV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.enums import Severity

_NUM = r"(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千万]+|数十|数百|几十|几百|上百|近百|逾百)"
_APPROX = r"(?:余|多|几)?"
_WHO = r"(?:人|名|位)[\u4e00-\u9fff]{0,6}?"
_DEATH_WORDS = r"(?:死亡|遇难|罹难|身亡|丧生|殒命)"
_MISSING_WORDS = r"(?:失联|失踪)"
_INJURY_WORDS = r"(?:受伤|重伤|伤亡)"

_PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "dead": [
        re.compile(_NUM + _APPROX + _WHO + _DEATH_WORDS),
        re.compile(_DEATH_WORDS + r"(?:人数)?(?:已)?(?:升至|上升至|增至|达到?|为|共)?" + _NUM + _APPROX + r"(?:人|名)"),
    ],
    "missing": [
        re.compile(_NUM + _APPROX + _WHO + _MISSING_WORDS),
        re.compile(_MISSING_WORDS + r"(?:人数)?(?:升至|达到?|为)?" + _NUM + _APPROX + r"(?:人|名)"),
    ],
    "injured": [
        re.compile(_NUM + _APPROX + _WHO + _INJURY_WORDS),
        re.compile(_INJURY_WORDS + r"(?:人数)?(?:升至|达到?|为)?" + _NUM + _APPROX + r"(?:人|名)"),
    ],
    "trapped": [re.compile(_NUM + _APPROX + _WHO + r"被困")],
}
_LOSS = re.compile(
    r"(?:经济)?损失(?:约|达|超过?|高达|逾)?(\d+(?:\.\d+)?|[零〇一二两三四五六七八九十百千]+)\s*(万|亿)元"
)

# (minimum count, severity) from most to least severe, per figure kind.
_THRESHOLDS: dict[str, list[tuple[float, Severity]]] = {
    "dead": [(30, Severity.I), (10, Severity.II), (3, Severity.III), (1, Severity.IV)],
    "injured": [(100, Severity.I), (50, Severity.II), (10, Severity.III), (1, Severity.IV)],
    "trapped": [(30, Severity.II), (10, Severity.III), (1, Severity.IV)],
    "loss_wan": [(10000, Severity.I), (5000, Severity.II), (1000, Severity.III), (0.01, Severity.IV)],
}
_LABEL = {"dead": "死亡（含失踪）", "injured": "受伤", "trapped": "被困", "loss_wan": "经济损失"}

_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10000}
_VAGUE = {"数十": 20, "几十": 20, "数百": 200, "几百": 200, "上百": 100, "近百": 90, "逾百": 100}


@dataclass(frozen=True)
class SeverityCue:
    severity: Severity
    reason: str


def parse_number(token: str) -> float | None:
    """Arabic or Chinese numerals (三十二, 两百, 1.5) and vague amounts (数十 → 20)."""
    if token in _VAGUE:
        return float(_VAGUE[token])
    try:
        return float(token)
    except ValueError:
        pass
    total, section, digit = 0, 0, 0
    for ch in token:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            unit = _UNITS[ch]
            if unit == 10000:
                total += (section + digit) * unit
                section, digit = 0, 0
            else:
                section += (digit or 1) * unit
                digit = 0
        else:
            return None
    return float(total + section + digit)


def figures(text: str) -> dict[str, float]:
    """The largest figure of each kind stated in the text (dead includes missing)."""
    found: dict[str, float] = {}
    for kind, patterns in _PATTERNS.items():
        best = 0.0
        for pattern in patterns:
            for match in pattern.finditer(text):
                value = parse_number(match.group(1))
                if value is not None:
                    best = max(best, value)
        if best:
            found[kind] = best
    if "missing" in found:
        found["dead"] = found.get("dead", 0.0) + found.pop("missing")
    for match in _LOSS.finditer(text):
        value = parse_number(match.group(1))
        if value is not None:
            wan = value * (10000 if match.group(2) == "亿" else 1)
            found["loss_wan"] = max(found.get("loss_wan", 0.0), wan)
    return found


def figure_severity(text: str) -> SeverityCue | None:
    """The most severe level the stated figures reach, with a reason in Chinese; None without figures."""
    best: SeverityCue | None = None
    for kind, value in figures(text).items():
        for minimum, level in _THRESHOLDS[kind]:
            if value >= minimum:
                shown = f"{value:g}万元" if kind == "loss_wan" else f"{value:g}人"
                cue = SeverityCue(level, f"{_LABEL[kind]}{shown}→{level.label}({level.value})")
                if best is None or level.rank < best.severity.rank:
                    best = cue
                break
    return best


# ---------------------------------------------------------------- context: spread, authority, involvement

CENTRAL_MEDIA = ("新华社", "新华网", "人民日报", "人民网", "央视", "中央电视台", "中国新闻网", "中新社",
                 "央广", "光明日报", "经济日报", "中国日报", "求是")
CENTRAL_DOMAINS = ("xinhuanet.com", "news.cn", "people.com.cn", "cctv.com", "cctv.cn", "chinanews.com.cn",
                   "chinanews.com", "cnr.cn", "gmw.cn", "ce.cn", "chinadaily.com.cn", "qstheory.cn")
OFFICIALS = ("官员", "干部", "书记", "县长", "市长", "镇长", "乡长", "局长", "处长", "科长", "主任",
             "公职人员", "工作人员", "执法人员", "城管", "民警", "村干部")
# (reposts + comments + likes/10 at least, severity) from most to least severe.
_SPREAD = [(100_000, Severity.II), (10_000, Severity.III)]


def spread_cue(metrics: dict[str, object]) -> SeverityCue | None:
    """Wide spread raises the level: engagement of 100k is 重大 at least, 10k 较大."""
    def n(key: str) -> float:
        value = metrics.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    engagement = n("reposts") + n("comments") + n("likes") / 10
    for minimum, level in _SPREAD:
        if engagement >= minimum:
            return SeverityCue(level, f"传播量{engagement / 10000:.1f}万→{level.label}({level.value})")
    return None


def authority_cue(*, source: str, author: str | None, url: str) -> SeverityCue | None:
    """A report by central media makes a matter 较大 at least."""
    names = f"{source} {author or ''}"
    if any(m in names for m in CENTRAL_MEDIA) or any(d in url for d in CENTRAL_DOMAINS):
        return SeverityCue(Severity.III, "中央媒体报道→较大(III)")
    return None


def involvement_cue(text: str, category: str) -> SeverityCue | None:
    """Officials' own conduct in a government-image matter makes it 较大 at least."""
    if category == "GOV_IMAGE" and any(word in text for word in OFFICIALS):
        return SeverityCue(Severity.III, "涉及公职人员→较大(III)")
    return None
