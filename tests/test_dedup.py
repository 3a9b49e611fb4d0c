"""Exact de-duplication keys: the same post in other spacing, width or punctuation has the same fingerprint."""

from __future__ import annotations

from crawlers.dedup import fingerprint


def test_same_text_modulo_spacing_width_and_punctuation() -> None:
    a = fingerprint("某县林区发生森林火灾 2名扑火队员失联", "21日凌晨，某县林区突发森林火灾。")
    b = fingerprint("某县林区发生森林火灾　２名扑火队员失联！", "21日凌晨, 某县林区突发森林火灾")
    assert a == b


def test_different_text_differs() -> None:
    assert fingerprint("某县林区发生森林火灾", "") != fingerprint("某县林区发生森林火灾", "3人失联")
