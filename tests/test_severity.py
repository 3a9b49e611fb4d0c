"""Severity cues: casualty and loss figures in Chinese text mapped to the emergency-plan scale."""

from __future__ import annotations

import pytest

from classifier.severity import figure_severity, figures, parse_number
from models.enums import Severity


@pytest.mark.parametrize(
    ("token", "value"),
    [("32", 32), ("三十二", 32), ("十", 10), ("十二", 12), ("两百", 200), ("一百零五", 105), ("数十", 20), ("1.5", 1.5),
     ("三万", 30000)],
)
def test_parse_number(token: str, value: float) -> None:
    assert parse_number(token) == value


@pytest.mark.parametrize(
    ("text", "severity", "reason"),
    [
        ("某县煤矿发生透水事故 已致32人遇难", Severity.I, "死亡（含失踪）32人→特别重大(I)"),
        ("化工厂爆炸造成十二人死亡", Severity.II, "死亡（含失踪）12人→重大(II)"),
        ("死亡人数升至5人", Severity.III, "死亡（含失踪）5人→较大(III)"),
        ("2名扑火队员失联", Severity.IV, "死亡（含失踪）2人→一般(IV)"),
        ("7人遇难、4人失联", Severity.II, "死亡（含失踪）11人→重大(II)"),
        ("事故造成120人受伤", Severity.I, "受伤120人→特别重大(I)"),
        ("直接经济损失约6000万元", Severity.II, "经济损失6000万元→重大(II)"),
        ("经济损失达1.2亿元", Severity.I, "经济损失12000万元→特别重大(I)"),
        ("数十人被困", Severity.III, "被困20人→较大(III)"),
    ],
)
def test_figures_map_to_severity(text: str, severity: Severity, reason: str) -> None:
    cue = figure_severity(text)
    assert cue is not None
    assert cue.severity is severity
    assert cue.reason == reason


@pytest.mark.parametrize("text", ["某明星演唱会现场燃爆", "A股市场大地震", "今年第3号台风生成"])
def test_no_figures_no_cue(text: str) -> None:
    assert figure_severity(text) is None


def test_largest_figure_of_a_kind_wins() -> None:
    assert figures("初步统计3人死亡，后死亡人数升至9人")["dead"] == 9
