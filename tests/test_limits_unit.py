"""The limit arithmetic on its own: budget periods in UTC, sliding windows, reservations."""

from __future__ import annotations

import asyncio
import calendar
import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from torouter.accounting.gate import meter_headers
from torouter.accounting.limits import (
    WINDOW,
    MemoryLimits,
    Meter,
    Rule,
    Window,
    meter_of,
    period_end,
    period_start,
)


def ts(text: str) -> float:
    return float(calendar.timegm(datetime.fromisoformat(text).replace(tzinfo=UTC).timetuple()))


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("daily", "2026-11-28T15:30:00", "2026-11-28T00:00:00", "2026-11-29T00:00:00"),
        ("weekly", "2026-11-28T15:30:00", "2026-11-23T00:00:00", "2026-11-30T00:00:00"),  # Monday to Monday
        ("monthly", "2026-11-28T15:30:00", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
        ("monthly", "2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("monthly", "2028-02-29T12:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
    ],
)
def test_budget_periods_start_and_end_on_utc_boundaries(period: str, now: str, start: str, end: str) -> None:
    s = period_start(period, ts(now))
    assert s == ts(start)
    assert period_end(period, s) == ts(end)


def test_a_budget_without_a_period_never_resets() -> None:
    assert period_start(None, ts("2026-11-28T15:30:00")) == 0
    assert period_end(None, 0) == float("inf")


def test_a_new_period_starts_with_nothing_spent() -> None:
    limits = MemoryLimits()
    rule = Rule("key:1", budget=1.0, period="daily")

    async def story() -> None:
        day1 = ts("2026-11-28T23:59:00")
        assert (await limits.admit((rule,), 0, 0.5, day1)).refusal.kind == "missing"  # type: ignore[union-attr]
        await limits.load_spend(rule, period_start("daily", day1), 0.0)
        held = (await limits.admit((rule,), 0, 0.5, day1)).held
        assert held is not None
        await limits.settle(held, 0, 1.25, day1)  # the call cost more than its reservation
        refused = (await limits.admit((rule,), 0, 0.5, day1 + 30)).refusal
        assert refused is not None and refused.kind == "budget" and refused.used == pytest.approx(1.25)
        assert refused.retry_after == pytest.approx(30)  # until midnight UTC
        day2 = ts("2026-11-29T00:00:01")
        assert (await limits.admit((rule,), 0, 0.5, day2)).refusal.kind == "missing"  # type: ignore[union-attr]
        await limits.load_spend(rule, period_start("daily", day2), 0.0)
        assert (await limits.admit((rule,), 0, 0.5, day2)).held is not None

    asyncio.run(story())


def test_reservations_bound_concurrent_spend() -> None:
    limits = MemoryLimits()
    rule = Rule("group:1", budget=1.0)

    async def story() -> None:
        await limits.load_spend(rule, 0, 0.0)
        admitted = []
        for _ in range(10):
            verdict = await limits.admit((rule,), 0, 0.3, 1000.0)
            if verdict.held is not None:
                admitted.append(verdict.held)
        assert len(admitted) == 4  # 0, 0.3, 0.6 and 0.9 were under 1.0 when each asked
        for held in admitted:
            await limits.settle(held, 0, 0.3, 1001.0)
        assert await limits.spend(rule, 1001.0) == pytest.approx(1.2)  # at most one reservation over

    asyncio.run(story())


def test_a_window_forgets_what_is_older_than_a_minute() -> None:
    w = Window()
    w.add(100, 3)
    w.add(130, 2)
    assert w.used(130) == (5, 100)
    assert w.used(159) == (5, 100)
    assert w.used(160) == (2, 130)  # the bucket of second 100 has left the window
    assert w.used(190) == (0, 190)
    w.add(160 + 60, 1)  # a slot reused a minute later starts again from zero
    assert w.used(220) == (1, 220)


def test_the_key_and_group_rules_take_a_call_together_or_not_at_all() -> None:
    limits = MemoryLimits()
    key, group = Rule("key:1", rpm=5), Rule("group:1", rpm=1)

    async def story() -> None:
        assert (await limits.admit((key, group), 0, 0.0, 50.0)).held is not None
        refused = (await limits.admit((key, group), 0, 0.0, 51.0)).refusal
        assert refused is not None and refused.rule == group
        # The refused call took nothing from the key's own window.
        assert limits.requests["key:1"].used(51) == (1, 50)

    asyncio.run(story())


class _SummedWindow:
    """The Window that added up all 60 buckets on every call: what the running total must equal."""

    def __init__(self) -> None:
        self.counts = [0] * WINDOW
        self.stamps = [-WINDOW] * WINDOW

    def used(self, sec: int) -> tuple[int, int]:
        total, oldest = 0, sec
        for count, stamp in zip(self.counts, self.stamps, strict=True):
            if count and sec - stamp < WINDOW:
                total += count
                oldest = min(oldest, stamp)
        return total, oldest

    def add(self, sec: int, n: int) -> None:
        i = sec % WINDOW
        if self.stamps[i] != sec:
            self.stamps[i], self.counts[i] = sec, 0
        self.counts[i] += n

    def take_back(self, sec: int, n: int) -> None:
        i = sec % WINDOW
        if self.stamps[i] == sec:
            self.counts[i] = max(0, self.counts[i] - n)


def test_a_windows_running_total_matches_summing_every_bucket() -> None:
    rng = random.Random(20240611)
    ref, w = _SummedWindow(), Window()
    # Asked rarely, so that add and take_back run far from its last used().
    lazy_ref, lazy = _SummedWindow(), Window()
    sec = last = 1_700_000_000
    for step in range(20_000):
        roll = rng.random()
        if roll < 0.03:
            sec += rng.randint(61, 200)  # idle for over a minute
        elif roll < 0.06:
            sec -= rng.randint(1, 70)  # the wall clock stepped back
        else:
            sec += rng.choice((0, 0, 0, 1, 1, 2, 3))
        op = rng.random()
        if op < 0.55:
            n = rng.choice((0, 1, 1, 1, rng.randint(2, 5000)))
            for window in (ref, w, lazy_ref, lazy):
                window.add(sec, n)
        elif op < 0.7:
            at, n = sec - rng.randint(0, 90), rng.randint(0, 5000)  # sometimes a bucket reused since
            for window in (ref, w, lazy_ref, lazy):
                window.take_back(at, n)
        elif op < 0.85:  # a call settling: its reservation replaced by what it used
            at = sec - rng.choice((0, 0, 0, 1, rng.randint(2, 90)))
            reserved, actual = rng.randint(0, 5000), rng.choice((0, rng.randint(1, 5000), -rng.randint(1, 9)))
            for window in (w, lazy):
                window.settle(at, reserved, sec, actual)
            for window in (ref, lazy_ref):
                window.take_back(at, reserved)
                if actual:
                    window.add(sec, actual)
        else:
            ask = sec + rng.randint(-70, 70)
            assert w.used(ask) == ref.used(ask), (step, ask)
            if op > 0.97:
                assert lazy.used(ask) == lazy_ref.used(ask), (step, ask)
            last = ask
        if op < 0.85 and rng.random() < 0.5:
            # The second last asked about, after a change made at another: what it answered may
            # be stale now, however it remembers it.
            assert w.used(last) == ref.used(last), (step, last)
        assert w.used(sec) == ref.used(sec), (step, sec)
        last = sec
    # Counts that cancel out still count: the oldest is that of the first non-zero bucket.
    ref, w = _SummedWindow(), Window()
    for window in (ref, w):
        window.add(100, 3)
        window.add(101, -3)
    assert w.used(101) == ref.used(101) == (0, 100)
    # The same when the cancelling count goes to a bucket this second already started.
    ref, w = _SummedWindow(), Window()
    for window in (ref, w):
        window.add(100, 3)
        window.used(101)
        window.add(101, 1)
        window.add(101, -4)
    assert w.used(102) == ref.used(102) == (0, 100)


@pytest.mark.parametrize(
    ("reset", "text"),
    [
        (0, b"0s"),
        (1, b"1s"),
        (0.5, b"0.5s"),
        (12.25, b"12.2s"),
        (59, b"59s"),
        (59.96, b"60s"),
        (60, b"1m0s"),
        (61.2, b"1m2s"),
    ],
)
def test_openai_reset_headers_say_how_long_in_go_s_duration_format(reset: float, text: bytes) -> None:
    meter = Meter(
        requests_limit=100, requests_remaining=7, requests_reset=reset, tokens_limit=9, tokens_remaining=3
    )
    meter.tokens_reset = reset
    for _ in range(2):  # formatted once, then reused: the same either way
        headers = dict(meter_headers("openai", meter, 0.0))
        assert headers[b"x-ratelimit-reset-requests"] == text
        assert headers[b"x-ratelimit-reset-tokens"] == text
        assert (headers[b"x-ratelimit-limit-requests"], headers[b"x-ratelimit-remaining-requests"]) == (
            b"100",
            b"7",
        )


def test_an_admissions_meter_is_the_tightest_rules_counts() -> None:
    """admit_now works the meter out as it checks the rules: it must be meter_of's, from the
    counts each rule's windows held just before the call."""
    rng = random.Random(5)
    limits = MemoryLimits()
    rules = [
        # Small caps, so that two rules often leave as much: the first of them is the meter's.
        Rule("key:1", rpm=30, tpm=7_100, budget=1e9),
        Rule("group:1", rpm=25, tpm=0),
        Rule("group:2", rpm=0, tpm=7_000, concurrency=50),
        Rule("key:2", concurrency=3),
    ]
    asyncio.run(limits.load_spend(rules[0], 0, 0.0))
    now, admitted, compared = 1_700_000_000.0, [], 0
    for _ in range(3000):
        now += rng.choice((0.0, 0.01, 0.3, 1.0, 7.0))
        chosen = tuple(rng.sample(rules, rng.randint(1, 3)))
        sec, tokens = int(now), rng.choice((0, 100, 200))
        views = [
            (
                *limits.requests.get(r.scope, Window()).used(sec),
                *limits.tokens.get(r.scope, Window()).used(sec),
            )
            for r in chosen
        ]
        verdict = limits.admit_now(chosen, tokens, 0.01, now)
        if verdict.held is not None:
            assert verdict.held.meter == meter_of(chosen, views, sec)
            compared += 1
            admitted.append(verdict.held)
        if admitted and rng.random() < 0.6:
            limits.settle_now(
                admitted.pop(rng.randrange(len(admitted))), rng.choice((0, 100, 300)), 0.01, now
            )
    assert compared > 500


def test_the_gates_admission_without_a_coroutine_defers_only_what_it_cannot_decide() -> None:
    from torouter.accounting.gate import Gate
    from torouter.errors import GatewayError

    async def story() -> None:
        gate = Gate(MemoryLimits(), None)  # type: ignore[arg-type]  # no store: nothing spent yet
        rules = (Rule("key:9", rpm=2, budget=5.0),)
        assert gate.admit_now(rules, 10, 0.1) is None  # the budget's spend is not loaded yet
        first = await gate.admit(rules, 10, 0.1)  # reads it, then takes the call
        second = gate.admit_now(rules, 10, 0.1)
        assert second is not None and second.meter is not None
        assert (first.meter and first.meter.requests_remaining, second.meter.requests_remaining) == (1, 0)
        with pytest.raises(GatewayError) as refused:
            gate.admit_now(rules, 10, 0.1)
        assert refused.value.code == "rate_limit_exceeded"
        assert Gate(SimpleNamespace(), None).admit_now(rules, 10, 0.1) is None  # type: ignore[arg-type]

    asyncio.run(story())
