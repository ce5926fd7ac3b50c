"""Rate limits, concurrency caps and budgets, for keys, groups and upstream accounts.

A call is admitted against a list of rules (its key's, its group's; an account's when it is
tried), all at once: either every rule takes the call or none does. Admission reserves an
estimate (tokens for TPM, dollars for the budget) that the call settles when it ends, so
concurrent calls cannot overspend by more than one call's reservation.

Windows are sliding: the last 60 seconds in one-second buckets. The state lives in this process
(`MemoryLimits`) or, with `redis_url`, in Redis (`RedisLimits`), so that replicas share it.
"""

from __future__ import annotations

import calendar
import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

WINDOW = 60
LEASE_TTL = 900.0  # a concurrency slot a crashed replica held frees itself after this long


@dataclass(frozen=True, slots=True)
class Rule:
    """One scope's caps. A zero cap is no cap; a budget of None is no budget."""

    scope: str  # "key:12", "group:3", "account:5"
    rpm: int = 0
    tpm: int = 0
    concurrency: int = 0
    budget: float | None = None
    period: str | None = None  # daily, weekly, monthly; None: the budget never resets

    @property
    def empty(self) -> bool:
        return not (self.rpm or self.tpm or self.concurrency or self.budget is not None)


def period_start(period: str | None, now: float) -> int:
    """The UTC start of the budget period holding `now` (0 for a budget that never resets)."""
    if period is None:
        return 0
    day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "weekly":
        day -= timedelta(days=day.weekday())
    elif period == "monthly":
        day = day.replace(day=1)
    return calendar.timegm(day.timetuple())


def period_end(period: str | None, start: int) -> float:
    if period is None:
        return float("inf")
    begin = datetime.fromtimestamp(start, UTC)
    if period == "daily":
        end = begin + timedelta(days=1)
    elif period == "weekly":
        end = begin + timedelta(days=7)
    else:
        end = (begin.replace(day=28) + timedelta(days=4)).replace(day=1)
    return float(calendar.timegm(end.timetuple()))


@dataclass(slots=True)
class Meter:
    """What the client is told in x-ratelimit-* headers: the tightest of its rules."""

    requests_limit: int = 0
    requests_remaining: int = 0
    requests_reset: float = 0.0
    tokens_limit: int = 0
    tokens_remaining: int = 0
    tokens_reset: float = 0.0


@dataclass(slots=True)
class Refusal:
    kind: str  # requests, tokens, concurrency, budget, missing (a budget whose spend is not loaded)
    rule: Rule
    limit: float
    used: float
    retry_after: float = 1.0


@dataclass(slots=True)
class Held:
    """What an admitted call holds until it settles."""

    rules: tuple[Rule, ...]
    tokens: int
    cost: float
    lease: str
    admitted: int  # the second it was admitted: where its token reservation sits
    periods: tuple[int, ...]  # each rule's budget period start at admission
    meter: Meter | None = None
    settled: bool = False
    # The counters each rule took from, for settling (MemoryLimits; None for other backends).
    counters: list[tuple[Any, Any, Any]] | None = None


@dataclass(slots=True)
class Verdict:
    held: Held | None = None
    refusal: Refusal | None = None


_lease_ids = itertools.count(1)
_LEASE_PREFIX = os.urandom(4).hex()


def new_lease() -> str:
    return f"{_LEASE_PREFIX}:{next(_lease_ids)}"


class LimitBackend(Protocol):
    async def admit(self, rules: tuple[Rule, ...], tokens: int, cost: float, now: float) -> Verdict: ...

    async def settle(self, held: Held, tokens: int, cost: float, now: float) -> None: ...

    async def load_spend(self, rule: Rule, start: int, spent: float) -> None:
        """Seed a budget's spend for a period, unless another process already did."""
        ...

    async def spend(self, rule: Rule, now: float) -> float | None: ...

    async def close(self) -> None: ...


def meter_of(rules: tuple[Rule, ...], views: list[tuple[int, int, int, int]], now: int) -> Meter | None:
    """The tightest rule's counts after this call: (requests used, oldest second, tokens used, oldest)."""
    meter: Meter | None = None
    best_req = best_tok = None
    for rule, (rq_used, rq_old, tk_used, tk_old) in zip(rules, views, strict=True):
        if rule.rpm:
            remaining = max(0, rule.rpm - rq_used - 1)
            if best_req is None or remaining < best_req:
                best_req = remaining
                meter = meter or Meter()
                meter.requests_limit, meter.requests_remaining = rule.rpm, remaining
                meter.requests_reset = max(0, rq_old + WINDOW - now) if rq_used else WINDOW
        if rule.tpm:
            remaining = max(0, rule.tpm - tk_used)
            if best_tok is None or remaining < best_tok:
                best_tok = remaining
                meter = meter or Meter()
                meter.tokens_limit, meter.tokens_remaining = rule.tpm, remaining
                meter.tokens_reset = max(0, tk_old + WINDOW - now) if tk_used else 0
    return meter


class Window:
    """A sum over the last 60 seconds, in one-second buckets."""

    # `total` is the sum of the buckets stamped after `at - WINDOW`, kept up to date by add and
    # take_back, so that used() (on every admission) only drops the seconds that left the window.
    # `oldest` is what used(at) last answered for the oldest second, while nothing since has
    # changed it: every admission within a second (most of them, under load) then skips the search.
    __slots__ = ("at", "counts", "low", "negative", "oldest", "stamps", "total")

    def __init__(self) -> None:
        self.counts = [0] * WINDOW
        self.stamps = [-WINDOW] * WINDOW
        self.total = 0
        self.at = 0
        self.negative = False  # once a count may be below zero, a zero total no longer means empty
        # No bucket stamped before `low` holds a count: the search for the oldest starts there.
        self.low = 0
        self.oldest: int | None = None

    def used(self, sec: int) -> tuple[int, int]:
        """(the sum, the oldest second still counted)."""
        if sec == self.at:
            oldest = self.oldest
            if oldest is not None:
                return self.total, oldest
        counts, stamps, total = self.counts, self.stamps, self.total
        step = sec - self.at
        if step:
            if 0 < step < WINDOW:
                for t in range(self.at - WINDOW + 1, sec - WINDOW + 1):
                    i = t % WINDOW
                    if stamps[i] == t:
                        total -= counts[i]
            else:  # idle for a minute or more, or the clock stepped back: count afresh
                start = sec - WINDOW
                total = sum(c for c, s in zip(counts, stamps, strict=True) if s > start)
                if step < 0:
                    self.low = -WINDOW  # buckets from before `low` may count again
            self.total, self.at = total, sec
        if not total and not self.negative:
            self.oldest = sec
            return 0, sec  # an idle key: skip the scan
        # A live bucket's stamp is congruent to its index, so checking second by second from the
        # window's start (or from `low`, when later) finds the oldest.
        for t in range(max(sec - WINDOW + 1, self.low), sec):
            i = t % WINDOW
            if counts[i] and stamps[i] == t:
                self.low = self.oldest = t
                return total, t
        self.oldest = sec
        return total, sec

    def add(self, sec: int, n: int) -> None:
        i = sec % WINDOW
        if sec == self.at and self.stamps[i] == sec:
            # This second's bucket, already started: as every admission but a second's first.
            self.counts[i] += n
            self.total += n
            if n < 0:
                self.negative = True
                self.oldest = None
            return
        # A positive count at `at` or later cannot be older than what used(at) found.
        if n < 0 or sec < self.at or self.negative:
            self.oldest = None
        if sec < self.low:
            self.low = sec
        start = self.at - WINDOW
        if self.stamps[i] != sec:
            if self.stamps[i] > start:
                self.total -= self.counts[i]
                self.oldest = None  # a bucket of the window now holds a newer second
            self.stamps[i], self.counts[i] = sec, 0
        self.counts[i] += n
        if sec > start:
            self.total += n
        if n < 0:
            self.negative = True

    def settle(self, admitted: int, reserved: int, sec: int, actual: int) -> None:
        """take_back(admitted, reserved), then add(sec, actual): a call's reservation replaced by
        what it used. Within the second it was admitted in, one change to one bucket."""
        i = sec % WINDOW
        if admitted == sec == self.at and actual >= 0 and self.stamps[i] == sec:
            count = self.counts[i]
            # This bucket is at `at`, so no change to it can move the oldest used(at) finds.
            left = count - reserved if count > reserved else 0
            self.counts[i] = left + actual
            self.total += left + actual - count
            return
        self.take_back(admitted, reserved)
        if actual:
            self.add(sec, actual)

    def take_back(self, sec: int, n: int) -> None:
        """Remove what was added at `sec`, if that bucket still counts."""
        i = sec % WINDOW
        if self.stamps[i] == sec:
            count = self.counts[i]
            left = max(0, count - n)
            self.counts[i] = left
            if not left:  # the oldest bucket may be the one emptied
                self.oldest = None
            if sec > self.at - WINDOW:
                self.total += left - count


def window_of(windows: dict[str, Window], scope: str) -> Window:
    window = windows.get(scope)
    if window is None:  # not setdefault(scope, Window()): that builds a window on every call
        window = windows[scope] = Window()
    return window


@dataclass(slots=True)
class _Budget:
    spent: float = 0.0
    reserved: float = 0.0


@dataclass(slots=True)
class MemoryLimits:
    """The default: counters in this process. Admission is atomic since it never awaits."""

    requests: dict[str, Window] = field(default_factory=dict)
    tokens: dict[str, Window] = field(default_factory=dict)
    inflight: dict[str, dict[str, float]] = field(default_factory=dict)  # scope -> lease -> expiry
    budgets: dict[tuple[str, int], _Budget] = field(default_factory=dict)

    async def admit(self, rules: tuple[Rule, ...], tokens: int, cost: float, now: float) -> Verdict:
        return self.admit_now(rules, tokens, cost, now)

    def admit_now(self, rules: tuple[Rule, ...], tokens: int, cost: float, now: float) -> Verdict:
        """admit() without a coroutine: the gate calls this directly, on every limited call.

        One pass checks every rule and works out the meter (as meter_of would); a second takes
        the call, only once every rule has let it through. What each rule's counters are is
        kept in the Held, so that settling looks nothing up again.
        """
        sec = int(now)
        periods: list[int] = []
        found: list[tuple[Window | None, Window | None, _Budget | None]] = []
        leased = False
        rq_best = tk_best = -1  # the fewest requests and tokens left under any rule, once known
        rq_limit = tk_limit = 0
        rq_reset = tk_reset = 0.0
        for rule in rules:
            scope = rule.scope
            if rule.concurrency:
                leased = True
                leases = self.inflight.setdefault(scope, {})
                if len(leases) >= rule.concurrency:
                    for lease, expiry in list(leases.items()):
                        if expiry <= now:
                            del leases[lease]  # held by a call that never settled
                    if len(leases) >= rule.concurrency:
                        return Verdict(refusal=Refusal("concurrency", rule, rule.concurrency, len(leases)))
            requests = tokens_window = budget = None
            if rule.rpm:
                requests = self.requests.get(scope) or window_of(self.requests, scope)
                used, oldest = requests.used(sec)
                if used >= rule.rpm:
                    return Verdict(refusal=Refusal("requests", rule, rule.rpm, used, oldest + WINDOW - sec))
                left = max(0, rule.rpm - used - 1)
                if rq_best < 0 or left < rq_best:
                    rq_best, rq_limit = left, rule.rpm
                    rq_reset = max(0, oldest + WINDOW - sec) if used else WINDOW
            if rule.tpm:
                tokens_window = self.tokens.get(scope) or window_of(self.tokens, scope)
                used, oldest = tokens_window.used(sec)
                if used + tokens > rule.tpm:
                    wait = oldest + WINDOW - sec if used else WINDOW
                    return Verdict(refusal=Refusal("tokens", rule, rule.tpm, used, wait))
                left = max(0, rule.tpm - used)
                if tk_best < 0 or left < tk_best:
                    tk_best, tk_limit = left, rule.tpm
                    tk_reset = max(0, oldest + WINDOW - sec) if used else 0
            start = 0 if rule.period is None else period_start(rule.period, now)
            periods.append(start)
            if rule.budget is not None:
                budget = self.budgets.get((scope, start))
                if budget is None:
                    return Verdict(refusal=Refusal("missing", rule, rule.budget, 0))
                if budget.spent + budget.reserved >= rule.budget:
                    return Verdict(
                        refusal=Refusal(
                            "budget", rule, rule.budget, budget.spent, period_end(rule.period, start) - now
                        )
                    )
            found.append((requests, tokens_window, budget))
        lease = new_lease() if leased else ""  # only concurrency caps hold a lease
        for rule, (requests, tokens_window, budget) in zip(rules, found, strict=True):
            if leased and rule.concurrency:
                self.inflight[rule.scope][lease] = now + LEASE_TTL
            if requests is not None:
                requests.add(sec, 1)
            if tokens_window is not None and tokens:
                tokens_window.add(sec, tokens)
            if budget is not None:
                budget.reserved += cost
        meter = None
        if rq_best >= 0 or tk_best >= 0:
            meter = Meter(rq_limit, max(rq_best, 0), rq_reset, tk_limit, max(tk_best, 0), tk_reset)
        held = Held(rules, tokens, cost, lease, sec, tuple(periods), meter)
        held.counters = found
        return Verdict(held=held)

    async def settle(self, held: Held, tokens: int, cost: float, now: float) -> None:
        self.settle_now(held, tokens, cost, now)

    def settle_now(self, held: Held, tokens: int, cost: float, now: float) -> None:
        sec = int(now)
        found = held.counters
        if found is None:  # not admitted here: look its counters up
            found = [
                (None, self.tokens.get(rule.scope), self.budgets.get((rule.scope, start)))
                for rule, start in zip(held.rules, held.periods, strict=True)
            ]
        for rule, start, (_, tokens_window, budget) in zip(held.rules, held.periods, found, strict=True):
            if rule.concurrency:
                self.inflight.get(rule.scope, {}).pop(held.lease, None)
            if rule.tpm:
                if tokens_window is None:
                    tokens_window = window_of(self.tokens, rule.scope)
                tokens_window.settle(held.admitted, held.tokens, sec, tokens)
            if rule.budget is not None:
                if budget is None:
                    budget = self.budgets[(rule.scope, start)] = _Budget()
                budget.reserved = max(0.0, budget.reserved - held.cost)
                budget.spent += cost

    async def load_spend(self, rule: Rule, start: int, spent: float) -> None:
        self.budgets.setdefault((rule.scope, start), _Budget(spent=spent))

    async def spend(self, rule: Rule, now: float) -> float | None:
        budget = self.budgets.get((rule.scope, period_start(rule.period, now)))
        return None if budget is None else budget.spent

    async def close(self) -> None:
        return None


def now() -> float:
    return time.time()
