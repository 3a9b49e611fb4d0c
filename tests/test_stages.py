"""Notify stages on a fake clock: silences (and the statutory notices they may not hide), de-duplication
across a restart, sliding-window rate limits, folding a burst into one 【汇总】 message (never an I/II
opening alert), jittered backoff, and in-doubt resends after a crash mid-send."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from alerts.clock import FakeClock
from alerts.notifiers.base import Notifier
from alerts.notifiers.console import ConsoleNotifier
from alerts.notifiers.limits import LIMITS, measure
from alerts.notifiers.telegram import TelegramNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.outbox import Dispatcher, DispatchStats, enqueue, receivers_of
from alerts.render import Message
from alerts.stages import (
    RESEND_MARK,
    ChannelLimits,
    Notice,
    Send,
    SilenceRule,
    SlidingWindows,
    Window,
    backoff,
    batch_body,
    headline,
    plan_receiver,
    resend_body,
    silenced_by,
    validate_matchers,
)
from config.schema import RateLimits, RateLimitSettings
from models.db import session_scope
from models.enums import DeliveryOutcome, NotifyReason
from models.tables import Delivery, Incident, Silence
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegramServer
from tests.fake_webhook import DEFAULT_SECRET, WebhookReceiver

T0 = datetime(2026, 11, 21, 8, tzinfo=UTC)
GROUP = -100123


def _notice(i: int, *, reason: str = "update", severity: str | None = "III", channel: str = "telegram",
            incident_id: int | None = 1, body: str = "") -> Notice:
    return Notice(id=i, channel=channel, receiver=str(GROUP), reason=reason, body=body or f"<b>告警{i}</b>\n正文",
                  incident_id=incident_id, category="EMERGENCY", severity=severity)


def _rule(**matchers: object) -> SilenceRule:
    return SilenceRule(1, validate_matchers(dict(matchers)), T0, T0 + timedelta(hours=2), "张三", "演练")


# -- silences (pure) ---------------------------------------------------------------------------------------
def test_every_given_matcher_must_match_within_the_window() -> None:
    rule = _rule(category="EMERGENCY", severity="III")
    assert silenced_by([rule], _notice(1), T0) is rule
    assert silenced_by([rule], _notice(1, severity="IV"), T0) is None
    assert silenced_by([rule], _notice(1), T0 + timedelta(hours=2)) is None  # ended
    assert silenced_by([rule], _notice(1), T0 - timedelta(seconds=1)) is None  # not started
    assert silenced_by([_rule(channel="wecom")], _notice(1), T0) is None
    assert silenced_by([_rule(incident_id=1, reason="reminder")], _notice(1, reason="reminder"), T0) is not None
    assert silenced_by([_rule(incident_id=2)], _notice(1), T0) is None
    assert silenced_by([_rule(reason="health")], _notice(1, reason="health", incident_id=None), T0) is not None


def test_overdue_notices_of_severity_i_and_ii_are_never_silenced() -> None:
    rule = _rule(category="EMERGENCY")
    assert silenced_by([rule], _notice(1, reason="overdue", severity="I"), T0) is None
    assert silenced_by([rule], _notice(1, reason="overdue", severity="II"), T0) is None
    assert silenced_by([rule], _notice(1, reason="overdue", severity="III"), T0) is rule
    assert silenced_by([rule], _notice(1, reason="reminder", severity="I"), T0) is rule


def test_matchers_are_validated() -> None:
    assert validate_matchers({"incident_id": "7", "severity": "II", "channel": None}) == {"incident_id": 7,
                                                                                        "severity": "II"}
    for bad in ({}, {"channel": None}, {"colour": "red"}, {"severity": "V"}, {"reason": "whenever"}):
        with pytest.raises(ValueError):
            validate_matchers(bad)


# -- rate limits (pure) ------------------------------------------------------------------------------------
def test_sliding_windows_count_per_receiver_group_and_channel() -> None:
    windows = SlidingWindows(ChannelLimits.from_settings(RateLimits().telegram))
    assert windows.room("42", T0) > 1000 and windows.room(None, T0) == 30  # private chats: no per-chat cap
    for i in range(20):
        windows.record(str(GROUP), T0 + timedelta(seconds=i))
    at = T0 + timedelta(seconds=30)
    assert windows.room(str(GROUP), at) == 0
    assert windows.free_at(str(GROUP), at) == T0 + timedelta(seconds=60)  # the oldest leaves the minute
    assert windows.room(str(GROUP), T0 + timedelta(seconds=61)) == 2
    assert windows.room(None, at) == 30  # the 30/s window has long moved on


def test_short_and_long_windows() -> None:
    windows = SlidingWindows(ChannelLimits(per_receiver=(Window(100, timedelta(minutes=1)),
                                                         Window(5, timedelta(seconds=1)))))
    for _ in range(5):
        windows.record("default", T0)
    assert windows.room("default", T0) == 0 and windows.room("default", T0, longest=True) == 95
    assert windows.free_at("default", T0) == T0 + timedelta(seconds=1)


# -- batching (pure) ---------------------------------------------------------------------------------------
def test_within_room_each_notice_goes_alone() -> None:
    plan = plan_receiver([_notice(i) for i in range(3)], room=5)
    assert [s.folded for s in plan.sends] == [(), (), ()] and plan.deferred == []


def test_excess_is_folded_into_the_last_free_slot() -> None:
    notices = [_notice(i) for i in range(25)]
    plan = plan_receiver(notices, room=20)
    assert len(plan.sends) == 20 and plan.deferred == []
    carrier = plan.sends[-1]
    assert carrier.carrier.id == 19 and [n.id for n in carrier.folded] == list(range(20, 25))


def test_opening_alerts_of_i_and_ii_are_never_folded() -> None:
    urgent = [_notice(i, reason="opened", severity="I") for i in range(4)]
    others = [_notice(i, reason="reminder") for i in range(4, 10)]
    plan = plan_receiver(urgent + others, room=5)
    alone = [s.carrier.id for s in plan.sends if not s.folded]
    assert set(range(4)) <= set(alone)
    [carrier] = [s for s in plan.sends if s.folded]
    assert all(not (n.reason == "opened" and n.severity == "I") for n in (carrier.carrier, *carrier.folded))
    crowded = plan_receiver(urgent, room=2)
    assert [s.carrier.id for s in crowded.sends] == [0, 1] and [n.id for n in crowded.deferred] == [2, 3]


def test_full_window_or_short_wait_defers_without_folding() -> None:
    assert plan_receiver([_notice(1)], room=0).deferred == [_notice(1)]
    plan = plan_receiver([_notice(i) for i in range(8)], room=5, soon=95)  # the minute has room: just wait
    assert len(plan.sends) == 5 and not any(s.folded for s in plan.sends) and len(plan.deferred) == 3


def test_batch_body_lists_each_folded_alert_escaped_and_fits_the_limit() -> None:
    folded = tuple(_notice(i, body=f"<b>【一般舆情】标题&lt;{i}&gt;</b>\n正文") for i in range(2, 5))
    body = batch_body(Send(_notice(1), folded), "html", LIMITS["telegram"])
    assert body.startswith("<b>告警1</b>\n正文\n")
    assert "<b>【汇总】另有 3 条告警：</b>\n1. 【一般舆情】标题&lt;2&gt;\n2. " in body
    plain = batch_body(Send(_notice(1, body="告警1"), (_notice(2, body="<x>\n正文"),)), "text", None)
    assert plain == "告警1\n\n【汇总】另有 1 条告警：\n1. <x>"
    many = tuple(_notice(i, body="很长的标题" * 30) for i in range(400))
    big = batch_body(Send(_notice(1), many), "html", LIMITS["telegram"])
    assert measure(big, "utf16") <= LIMITS["telegram"].size and big.rstrip().endswith("条未列出")


def test_headline_is_the_first_line_as_plain_text() -> None:
    assert headline("\n<b>【重大舆情】A&amp;B</b>\n正文", "html") == "【重大舆情】A&B"
    assert headline("x" * 100, "text", 10) == "x" * 9 + "…"


# -- retries and doubt (pure) ------------------------------------------------------------------------------
def test_backoff_grows_with_bounded_deterministic_jitter() -> None:
    waits = [backoff(n, "key") for n in range(1, 12)]
    for n, wait in enumerate(waits, 1):
        base = min(timedelta(seconds=5 * 2 ** (n - 1)), timedelta(minutes=10))
        assert base <= wait <= base * 1.2
    assert waits == [backoff(n, "key") for n in range(1, 12)]  # deterministic
    assert {backoff(1, f"k{i}") for i in range(20)} != {backoff(1, "k0")}  # but spread across rows
    assert backoff(3, "key", retry_after=42) == timedelta(seconds=42)


def test_resend_marks_all_but_idempotent_channels_once() -> None:
    assert resend_body("telegram", "<b>告警</b>") == RESEND_MARK + "<b>告警</b>"
    assert resend_body("telegram", RESEND_MARK + "x") == RESEND_MARK + "x"
    assert resend_body("webhook", "告警") == "告警"


# -- through the dispatcher, on a fake clock ---------------------------------------------------------------
def _incident(db: Engine, severity: str = "III", category: str = "EMERGENCY") -> int:
    with session_scope(db) as s:
        inc = Incident(group_key=f"g-{severity}-{category}", title="某事件", category=category, severity=severity,
                       first_seen_at=T0, opened_at=T0, updated_at=T0)
        s.add(inc)
        s.flush()
        assert inc.id is not None
        return inc.id


def _enqueue(db: Engine, notifiers: list[Notifier], keys: list[str], *, reason: NotifyReason = NotifyReason.UPDATE,
             incident_id: int | None = None, now: datetime = T0) -> int:
    with session_scope(db) as s:
        return sum(enqueue(s, alert_key=k, reason=reason, message=Message(text=f"告警 {k}", html=f"<b>告警 {k}</b>"),
                           receivers=receivers_of(notifiers), now=now, incident_id=incident_id) for k in keys)


def _rows(db: Engine) -> list[Delivery]:
    with Session(db) as s:
        return list(s.exec(select(Delivery).order_by(col(Delivery.id))).all())


async def _once(dispatcher: Dispatcher, notifier: Notifier) -> DispatchStats:
    """One dispatch, then the notifier closed (each asyncio.run is a new event loop: a new process)."""
    try:
        return await dispatcher.dispatch()
    finally:
        await notifier.close()


def _tg(server: FakeTelegramServer, chats: list[int]) -> TelegramNotifier:
    return TelegramNotifier(TOKEN, chats, base_url=server.base_url, timeout=3)


def test_silenced_notice_is_logged_once_counted_and_never_sent(
    db: Engine, telegram: FakeTelegramServer, caplog: pytest.LogCaptureFixture
) -> None:
    tg = _tg(telegram, [42])
    inc, urgent = _incident(db, "III"), _incident(db, "I")
    with session_scope(db) as s:
        s.add(Silence(matchers={"category": "EMERGENCY"}, starts_at=T0, ends_at=T0 + timedelta(hours=1),
                      created_by="张三", created_at=T0, comment="已知事件，演练中"))
    _enqueue(db, [tg], ["a", "b"], incident_id=inc)
    _enqueue(db, [tg], ["overdue"], reason=NotifyReason.OVERDUE, incident_id=urgent)
    _enqueue(db, [tg], ["health"], reason=NotifyReason.HEALTH)
    caplog.set_level(logging.WARNING)
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [tg], clock)

    async def scenario() -> DispatchStats:
        stats = await dispatcher.dispatch()
        clock.advance(timedelta(hours=2))  # the silence ended: what it held back stays unsent
        await dispatcher.dispatch()
        await tg.close()
        return stats

    stats = asyncio.run(scenario())
    assert stats.silenced == 2 and stats.sent == 2 and dispatcher.totals.silenced == 2
    assert sorted(m["text"] for m in telegram.messages) == ["<b>告警 health</b>", "<b>告警 overdue</b>"]
    outcomes = {r.alert_key: (r.outcome, r.error) for r in _rows(db)}
    assert outcomes["a"][0] == DeliveryOutcome.SILENCED and outcomes["a"][1] and "silence #" in outcomes["a"][1]
    assert caplog.text.count("holds back notices") == 1


def test_the_same_notice_enqueued_again_after_a_restart_is_one_delivery(
    db: Engine, telegram: FakeTelegramServer
) -> None:
    tg = _tg(telegram, [42])
    assert _enqueue(db, [tg], ["incident:1:opened"]) == 1
    asyncio.run(_once(Dispatcher(db, [tg], FakeClock(T0)), tg))
    tg2 = _tg(telegram, [42])  # a new process: new notifier, new dispatcher, same database
    assert _enqueue(db, [tg2], ["incident:1:opened"], now=T0 + timedelta(minutes=5)) == 0

    async def restarted() -> DispatchStats:
        stats = await Dispatcher(db, [tg2], FakeClock(T0 + timedelta(minutes=5))).dispatch()
        await tg2.close()
        return stats

    assert asyncio.run(restarted()) == DispatchStats()
    assert len(telegram.messages) == 1 and len(_rows(db)) == 1


def test_burst_to_a_group_is_folded_then_the_window_defers(db: Engine, telegram: FakeTelegramServer) -> None:
    tg = _tg(telegram, [GROUP])
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [tg], clock, RateLimits())
    _enqueue(db, [tg], [f"n{i:02}" for i in range(25)])

    async def scenario() -> tuple[DispatchStats, DispatchStats, DispatchStats]:
        burst = await dispatcher.dispatch()
        clock.advance(timedelta(seconds=5))
        _enqueue(db, [tg], ["late1", "late2"], now=clock.now())
        full = await dispatcher.dispatch()
        clock.set(T0 + timedelta(seconds=60))
        freed = await dispatcher.dispatch()
        await tg.close()
        return burst, full, freed

    burst, full, freed = asyncio.run(scenario())
    assert (burst.sent, burst.batched) == (20, 5) and full.deferred == 2 and full.sent == 0 and freed.sent == 2
    assert len(telegram.messages) == 22
    summary = telegram.messages[19]["text"]
    assert summary.startswith("<b>告警 n19</b>") and "【汇总】另有 5 条告警：" in summary and "5. 告警 n24" in summary
    rows = {r.alert_key: r for r in _rows(db)}
    carrier = rows["n19"]
    assert carrier.external_id == str(telegram.messages[19]["message_id"])
    for i in range(20, 25):
        assert rows[f"n{i}"].outcome == DeliveryOutcome.BATCHED and rows[f"n{i}"].batch_of_id == carrier.id
    assert dispatcher.totals.batched == 5 and dispatcher.totals.deferred == 2


def test_opening_alerts_of_i_ii_wait_for_room_instead_of_folding(db: Engine, telegram: FakeTelegramServer) -> None:
    tg = _tg(telegram, [GROUP])
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [tg], clock, RateLimits())
    inc = _incident(db, "I")
    _enqueue(db, [tg], [f"incident:{i}:opened" for i in range(22)], reason=NotifyReason.OPENED, incident_id=inc)

    async def scenario() -> None:
        first = await dispatcher.dispatch()
        assert (first.sent, first.batched, first.deferred) == (20, 0, 2)
        clock.advance(timedelta(seconds=60))
        assert (await dispatcher.dispatch()).sent == 2
        await tg.close()

    asyncio.run(scenario())
    assert len(telegram.messages) == 22 and not any("汇总" in m["text"] for m in telegram.messages)


def test_channel_wide_window_defers_across_receivers(db: Engine, telegram: FakeTelegramServer) -> None:
    tg = _tg(telegram, [1, 2, 3])
    limits = RateLimits(telegram=RateLimitSettings(overall=["2/1s"]))
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [tg], clock, limits)
    _enqueue(db, [tg], ["x"])

    async def scenario() -> None:
        stats = await dispatcher.dispatch()
        assert stats.sent == 2 and stats.deferred == 1 and stats.batched == 0
        clock.advance(timedelta(seconds=1))
        assert (await dispatcher.dispatch()).sent == 1
        await tg.close()

    asyncio.run(scenario())
    assert sorted(m["chat_id"] for m in telegram.messages) == [1, 2, 3]


def test_a_restart_remembers_what_the_window_already_holds(db: Engine, telegram: FakeTelegramServer) -> None:
    tg = _tg(telegram, [GROUP])
    _enqueue(db, [tg], [f"a{i}" for i in range(20)])
    asyncio.run(_once(Dispatcher(db, [tg], FakeClock(T0), RateLimits()), tg))
    tg2 = _tg(telegram, [GROUP])
    _enqueue(db, [tg2], ["after-restart"])

    async def restarted() -> DispatchStats:
        stats = await Dispatcher(db, [tg2], FakeClock(T0 + timedelta(seconds=10)), RateLimits()).dispatch()
        await tg2.close()
        return stats

    assert asyncio.run(restarted()).deferred == 1 and len(telegram.messages) == 20


def test_rows_left_sending_by_a_crash_are_resent_marked(db: Engine, telegram: FakeTelegramServer,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    tg = _tg(telegram, [42])
    _enqueue(db, [tg], ["k"])
    with session_scope(db) as s:  # what a kill -9 between "sending" and "sent" leaves behind
        row = s.exec(select(Delivery)).one()
        row.outcome, row.attempts = DeliveryOutcome.SENDING, 1

    async def restarted() -> DispatchStats:
        stats = await Dispatcher(db, [tg], FakeClock(T0)).dispatch()
        await tg.close()
        return stats

    caplog.set_level(logging.WARNING)
    stats = asyncio.run(restarted())
    assert stats.in_doubt == 1 and stats.sent == 1
    assert [m["text"] for m in telegram.messages] == [RESEND_MARK + "<b>告警 k</b>"]
    [row] = _rows(db)
    assert row.outcome == DeliveryOutcome.SENT and row.attempts == 2 and "interrupted mid-send" in caplog.text


def test_webhook_rows_left_sending_are_resent_with_the_same_key(db: Engine) -> None:
    with WebhookReceiver() as receiver:
        hook = WebhookNotifier(receiver.url, DEFAULT_SECRET, timeout=3)
        _enqueue(db, [hook], ["k"])
        with session_scope(db) as s:
            row = s.exec(select(Delivery)).one()
            row.outcome = DeliveryOutcome.SENDING
            key = row.idempotency_key

        async def restarted() -> DispatchStats:
            stats = await Dispatcher(db, [hook], FakeClock(T0)).dispatch()
            await hook.close()
            return stats

        assert asyncio.run(restarted()).in_doubt == 1
    [req] = receiver.requests
    assert req["headers"]["Idempotency-Key"] == key and receiver.texts == ["告警 k"]  # unchanged, no marker


def test_transient_failures_are_given_up_after_retry_for(db: Engine, telegram: FakeTelegramServer) -> None:
    tg = _tg(telegram, [42])
    telegram.down = True
    clock = FakeClock(T0)
    dispatcher = Dispatcher(db, [tg], clock, retry_for=timedelta(minutes=1))
    _enqueue(db, [tg], ["k"])

    async def scenario() -> list[DispatchStats]:
        out = []
        for _ in range(4):
            out.append(await dispatcher.dispatch())
            clock.advance(timedelta(seconds=25))
        await tg.close()
        return out

    stats = asyncio.run(scenario())
    assert [s.retrying for s in stats] == [1, 1, 1, 0] and stats[3].failed == 1  # 75 s after queueing
    [row] = _rows(db)
    assert row.outcome == DeliveryOutcome.FAILED and row.attempts == 4 and "Bad Gateway" in (row.error or "")


def test_a_stalled_channel_leaves_other_channels_to_the_next_pass(db: Engine, telegram: FakeTelegramServer) -> None:
    """A fired deadline dispatches while the 5-second dispatch job is still stuck on a slow channel: the new
    notice goes out on the free channel at once, and the busy channel is left to the pass that holds it."""
    out = io.StringIO()
    tg, console = _tg(telegram, [42]), ConsoleNotifier(out)
    dispatcher = Dispatcher(db, [tg, console], FakeClock(T0))
    _enqueue(db, [tg, console], ["a"])
    telegram.method_latency["sendMessage"] = 1.0  # slow, not failing: the notifier waits up to 3 s

    async def scenario() -> tuple[DispatchStats, DispatchStats, bool]:
        first = asyncio.create_task(dispatcher.dispatch())
        for _ in range(10_000):  # let the first pass run up to its network wait (yields only, no sleeping)
            if "告警 a" in out.getvalue() and dispatcher.busy == {"telegram"}:
                break
            await asyncio.sleep(0)
        _enqueue(db, [tg, console], ["b"])
        second = await dispatcher.dispatch()
        overlapped = not first.done()
        await first
        await tg.close()
        return second, first.result(), overlapped

    second, first, overlapped = asyncio.run(scenario())
    assert overlapped and second.sent == 1 and first.sent == 2  # "b" on the console did not wait for Telegram
    assert "告警 b" in out.getvalue() and [m["text"] for m in telegram.messages] == ["<b>告警 a</b>"]
    assert {(r.alert_key, r.channel): r.outcome for r in _rows(db)}[("b", "telegram")] == DeliveryOutcome.PENDING
