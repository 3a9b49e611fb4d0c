"""分类处置 (alerts/handling.py): every handling type has a draft to publish, filled with the incident's title,
department and local date; before 研判 the type is suggested from the category."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.handling import TEMPLATES, draft, handling_of
from models.enums import Category, HandlingType
from models.tables import Incident

NOW = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 2026-12-01 01:00 in Shanghai
SH = ZoneInfo("Asia/Shanghai")


def _incident(category: Category, handling: HandlingType | None = None, department: str | None = None) -> Incident:
    return Incident(id=1, group_key="g", title="某县林区发生森林火灾\n2名扑火队员失联", category=category.value,
                    severity="II", first_seen_at=NOW, opened_at=NOW, updated_at=NOW,
                    handling_type=handling.value if handling else None, department=department)


def test_every_handling_type_has_a_draft_naming_what_it_publishes() -> None:
    assert set(TEMPLATES) == set(HandlingType)
    for kind in HandlingType:
        text = draft(_incident(Category.EMERGENCY, kind, "防火处"), now=NOW, tz=SH)
        assert text is not None and "某县林区发生森林火灾 2名扑火队员失联" in text and "\n" not in text
    assert "移交公安机关" in TEMPLATES[HandlingType.FALSE_INFO] and "调查结果" in TEMPLATES[HandlingType.MAJOR_PROBLEM]


@pytest.mark.parametrize(("category", "expected"), [
    (Category.EMERGENCY, HandlingType.CONFUSION), (Category.FALSE_INFO, HandlingType.FALSE_INFO),
    (Category.GOV_IMAGE, HandlingType.MAJOR_PROBLEM), (Category.LIVELIHOOD, HandlingType.REAL_DIFFICULTY),
    (Category.MAJOR_POLICY, HandlingType.CONFUSION), (Category.IRRELEVANT, None),
])
def test_before_assessment_the_type_is_suggested_from_the_category(category: Category,
                                                                  expected: HandlingType | None) -> None:
    assert handling_of(_incident(category)) == (expected, False)


def test_assessment_wins_and_the_draft_uses_department_and_local_date() -> None:
    inc = _incident(Category.EMERGENCY, HandlingType.FALSE_INFO, "防火处")
    assert handling_of(inc) == (HandlingType.FALSE_INFO, True)
    text = draft(inc, now=NOW, tz=SH)
    assert text is not None and text.startswith("辟谣：近日网传“某县林区发生森林火灾") and "经防火处核实" in text
    unassigned = draft(_incident(Category.EMERGENCY), now=NOW, tz=SH)
    assert unassigned is not None and "2026年12月01日" in unassigned and "【责任单位】" in unassigned
