"""Source health (pure): each poll updates a source's state row; `assess` says whether the source is ok,
silent (nothing new for longer than its expected period), failing (polls keep erroring) or blocked (pages
arrive but hold no extractable article: a login wall, an anti-bot page, a changed layout).

Huginn's `working?` is the model: a crawler that silently returns nothing must raise an alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from config.schema import SourceBase
from crawlers.items import FetchResult
from models.enums import SourceHealth
from models.tables import SourceState


@dataclass(frozen=True)
class HealthVerdict:
    state: SourceHealth
    reason: str  # Chinese, shown to the administrator


def record_poll(row: SourceState, result: FetchResult, *, new_items: int, now: datetime) -> None:
    """Fold one poll's outcome into the source's state row (validators, counters, timestamps)."""
    row.last_attempt_at = now
    if row.state_since is None:
        row.state_since = now
    if result.state is not None:
        row.etag = result.state.etag
        row.last_modified = result.state.last_modified
        row.cursor = dict(result.state.cursor)
    if result.error:
        row.consecutive_errors += 1
        row.last_error, row.last_error_at = result.error[:2000], now
        return
    row.consecutive_errors = 0
    row.last_success_at = now
    if result.empty_pages and not result.items:
        row.consecutive_empty += 1
    elif result.items or result.not_modified:
        row.consecutive_empty = 0
    if new_items:
        row.last_new_item_at = now
        row.items_total += new_items


def assess(row: SourceState, src: SourceBase, *, failing_after: int, now: datetime) -> HealthVerdict:
    """The source's health now. Failing and blocked outrank silent: they say why it is quiet."""
    if row.consecutive_errors >= failing_after:
        return HealthVerdict(SourceHealth.FAILING, f"连续{row.consecutive_errors}次抓取失败：{row.last_error or ''}")
    if row.consecutive_empty >= failing_after:
        return HealthVerdict(
            SourceHealth.BLOCKED, f"连续{row.consecutive_empty}次抓取到页面但提取不到文章（疑似登录墙、反爬页面或改版）"
        )
    since = row.last_new_item_at or row.state_since
    if since is not None and now - since > src.silent_after:
        return HealthVerdict(SourceHealth.SILENT, f"超过{_span(src.silent_after)}未获取到新内容")
    return HealthVerdict(SourceHealth.OK, "正常")


def transition(row: SourceState, verdict: HealthVerdict, *, now: datetime) -> bool:
    """Apply a verdict; True when the state changed (and an alert is due)."""
    if row.state == verdict.state.value:
        return False
    row.state = verdict.state.value
    row.state_since = now
    return True


def _span(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        return f"{int(hours // 24)}天"
    if hours >= 1:
        return f"{hours:g}小时"
    return f"{int(delta.total_seconds() // 60)}分钟"
