"""Admitting calls against their key's and group's limits and budgets, and settling them after.

Keys and groups with no limits cost nothing here: their rule list is empty and nothing is
counted. Everything else goes through one backend call to admit and one to settle.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.accounting.limits import Held, LimitBackend, MemoryLimits, Meter, Refusal, Rule, period_start
from torouter.catalog import Account, GroupEntry, KeyEntry
from torouter.errors import GatewayError
from torouter.store.reports import spends
from torouter.store.schema import UsageRecord

log = logging.getLogger("torouter.limits")

# The output a call may produce when it names no limit: reserved against budgets and TPM.
DEFAULT_OUTPUT_RESERVE = 4096
_OUTPUT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def requested_output(body: Any) -> int:
    """The output tokens a request asks for at most, from whichever protocol's field it uses."""
    if isinstance(body, dict):
        for name in _OUTPUT_FIELDS:
            value = body.get(name)
            if isinstance(value, int) and value > 0:
                return value
        config = body.get("generationConfig") or body.get("generation_config")
        if isinstance(config, dict):
            value = config.get("maxOutputTokens") or config.get("max_output_tokens")
            if isinstance(value, int) and value > 0:
                return value
    return DEFAULT_OUTPUT_RESERVE


def key_rules(key: KeyEntry) -> tuple[Rule, ...]:
    rules = [
        Rule(f"key:{key.id}", key.rpm, key.tpm, key.max_concurrency, key.budget_usd, key.budget_period),
        group_rule(key.group),
    ]
    return tuple(r for r in rules if not r.empty)


def group_rule(group: GroupEntry) -> Rule:
    return Rule(
        f"group:{group.id}",
        group.rpm,
        group.tpm,
        group.max_concurrency,
        group.budget_usd,
        group.budget_period,
    )


def account_rule(account: Account) -> Rule:
    return Rule(f"account:{account.id}", account.rpm, account.tpm, account.max_concurrency)


def _go_duration(seconds: float) -> str:
    """OpenAI's reset format: 1s, 59.9s, 6m0s."""
    if seconds < 60:
        return f"{round(seconds, 1):g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def meter_headers(style: str, meter: Meter | None, now: float) -> list[tuple[bytes, bytes]]:
    """The vendor's own rate-limit headers: x-ratelimit-* (OpenAI) or anthropic-ratelimit-*.

    Every call of a limited key sends them, so they are written as bytes directly.
    """
    if meter is None or style == "gemini":
        return []
    out: list[tuple[bytes, bytes]] = []
    if style == "anthropic":
        if meter.requests_limit:
            out += [
                (b"anthropic-ratelimit-requests-limit", b"%d" % meter.requests_limit),
                (b"anthropic-ratelimit-requests-remaining", b"%d" % meter.requests_remaining),
                (b"anthropic-ratelimit-requests-reset", _rfc3339_bytes(int(now + meter.requests_reset))),
            ]
        if meter.tokens_limit:
            out += [
                (b"anthropic-ratelimit-tokens-limit", b"%d" % meter.tokens_limit),
                (b"anthropic-ratelimit-tokens-remaining", b"%d" % meter.tokens_remaining),
                (b"anthropic-ratelimit-tokens-reset", _rfc3339_bytes(int(now + meter.tokens_reset))),
            ]
    else:
        if meter.requests_limit:
            out += [
                (b"x-ratelimit-limit-requests", b"%d" % meter.requests_limit),
                (b"x-ratelimit-remaining-requests", b"%d" % meter.requests_remaining),
                (b"x-ratelimit-reset-requests", _go_duration_bytes(meter.requests_reset)),
            ]
        if meter.tokens_limit:
            out += [
                (b"x-ratelimit-limit-tokens", b"%d" % meter.tokens_limit),
                (b"x-ratelimit-remaining-tokens", b"%d" % meter.tokens_remaining),
                (b"x-ratelimit-reset-tokens", _go_duration_bytes(meter.tokens_reset)),
            ]
    return out


@functools.lru_cache(maxsize=256)
def _go_duration_bytes(seconds: float) -> bytes:
    """Resets are whole seconds within the minute's window nearly always: formatted once each."""
    return _go_duration(seconds).encode()


@functools.lru_cache(maxsize=256)
def _rfc3339_bytes(second: int) -> bytes:
    """Reset times fall on a few distinct seconds at a time: formatted once each."""
    return _rfc3339(second).encode()


def _owner(rule: Rule) -> str:
    kind = rule.scope.split(":", 1)[0]
    return {"key": "API key", "group": "group", "account": "upstream account"}.get(kind, kind)


def refusal_error(refusal: Refusal, tokens: int, now: float) -> GatewayError:
    rule, owner = refusal.rule, _owner(refusal.rule)
    finite = refusal.retry_after != float("inf")
    wait = max(1, math.ceil(refusal.retry_after)) if finite else 0
    headers = {"retry-after": str(wait)} if finite else {}
    if refusal.kind == "budget":
        when = f" It resets at {_rfc3339(now + refusal.retry_after)}." if finite else ""
        return GatewayError(
            "insufficient_quota",
            f"You exceeded your current quota: this {owner} has spent ${refusal.used:.4f} of its "
            f"${refusal.limit:.2f} {rule.period or 'total'} budget.{when}",
            code="insufficient_quota",
            headers=headers,
        )
    if refusal.kind == "concurrency":
        return GatewayError(
            "rate_limit",
            f"Too many concurrent requests for this {owner}: the limit is {int(refusal.limit)} at once. "
            "Please retry when one of them finishes.",
            code="rate_limit_exceeded",
            headers=headers,
        )
    what = "requests per minute (RPM)" if refusal.kind == "requests" else "tokens per minute (TPM)"
    asked = 1 if refusal.kind == "requests" else tokens
    return GatewayError(
        "rate_limit",
        f"Rate limit reached for {what} on this {owner}: Limit {int(refusal.limit)}, "
        f"Used {int(refusal.used)}, Requested {asked}. Please try again in {wait}s.",
        code="rate_limit_exceeded",
        headers=headers,
    )


class Gate:
    """The front of the limit backend: rules, estimates, errors, and budget spend loaded lazily."""

    def __init__(self, backend: LimitBackend, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.backend = backend
        self._sessions = sessions
        self._rules: dict[int, tuple[KeyEntry, tuple[Rule, ...]]] = {}
        self._names: dict[str, tuple[str, Any]] = {}  # scope -> (usage column, value) for spend sums
        self._pending: set[asyncio.Task[None]] = set()
        self._loading: dict[tuple[str, int], asyncio.Task[None]] = {}  # spend reads under way
        self._memory = backend if isinstance(backend, MemoryLimits) else None

    def rules_for(self, key: KeyEntry) -> tuple[Rule, ...]:
        cached = self._rules.get(key.id)
        if cached is not None and cached[0] is key:
            return cached[1]
        rules = key_rules(key)
        self._rules[key.id] = (key, rules)
        self._names[f"key:{key.id}"] = ("key_id", key.id)
        self._names[f"group:{key.group.id}"] = ("group_name", key.group.name)
        return rules

    def admit_now(self, rules: tuple[Rule, ...], tokens: int, cost: float) -> Held | None:
        """admit() without a coroutine, for in-process limits whose budgets are loaded: the held
        call, or the error raised. None: only admit() can tell (another backend, or a budget's
        spend still to be read)."""
        memory = self._memory
        if memory is None:
            return None
        now = time.time()
        verdict = memory.admit_now(rules, tokens, cost, now)
        if verdict.held is not None:
            return verdict.held
        refusal = verdict.refusal
        assert refusal is not None
        if refusal.kind == "missing":
            return None  # nothing was taken: admit() reads the spend and asks again
        raise refusal_error(refusal, tokens, now)

    async def admit(self, rules: tuple[Rule, ...], tokens: int, cost: float) -> Held:
        """Take the call or raise the error to answer it with; loads a budget's spend on first use."""
        memory = self._memory
        for _ in range(3):
            now = time.time()
            if memory is not None:  # it never waits: no coroutine for the common case
                verdict = memory.admit_now(rules, tokens, cost, now)
            else:
                verdict = await self.backend.admit(rules, tokens, cost, now)
            if verdict.held is not None:
                return verdict.held
            refusal = verdict.refusal
            assert refusal is not None
            if refusal.kind != "missing":
                raise refusal_error(refusal, tokens, now)
            await self._load_spend(refusal.rule, now)
        raise GatewayError("unavailable", "The budget state could not be loaded.", code="limits_unavailable")

    async def try_account(self, account: Account, tokens: int) -> Held | None:
        """An account's own caps: None when it is full, so the call moves to the next account."""
        verdict = await self.backend.admit((account_rule(account),), tokens, 0.0, time.time())
        return verdict.held

    def settle(self, held: Held | None, tokens: int = 0, cost: float = 0.0) -> None:
        if held is None or held.settled:
            return
        held.settled = True
        if self._memory is not None:
            self._memory.settle_now(held, tokens, cost, time.time())
            return
        task = asyncio.create_task(self._settle(held, tokens, cost))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _settle(self, held: Held, tokens: int, cost: float) -> None:
        try:
            await self.backend.settle(held, tokens, cost, time.time())
        except Exception as exc:  # a lost settlement frees itself: leases expire, windows slide
            log.warning("settling limits failed: %s", type(exc).__name__)

    async def _load_spend(self, rule: Rule, now: float) -> None:
        """Every call that finds a budget's spend missing waits for one read of it: after a
        restart under load, each call in flight would otherwise sum the same usage rows."""
        start = period_start(rule.period, now)
        loading = self._loading.get((rule.scope, start))
        if loading is None:
            loading = asyncio.create_task(self._read_spend(rule, start))
            self._loading[rule.scope, start] = loading
            loading.add_done_callback(functools.partial(self._loaded, (rule.scope, start)))
        await asyncio.shield(loading)  # a caller that goes away does not cancel the others' read

    def _loaded(self, key: tuple[str, int], task: asyncio.Task[None]) -> None:
        self._loading.pop(key, None)
        if not task.cancelled():
            task.exception()  # its waiters were told; with none left, it must not be logged as lost

    async def _read_spend(self, rule: Rule, start: int) -> None:
        column, value = self._names.get(rule.scope, ("", None))
        spent = 0.0
        if column:
            col = UsageRecord.key_id if column == "key_id" else UsageRecord.group_name
            async with self._sessions() as session:
                spent = (await spends(session, col, {value: float(start)}))[value]
        await self.backend.load_spend(rule, start, spent)

    async def spend(self, rule: Rule) -> float | None:
        return await self.backend.spend(rule, time.time())

    async def stop(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.backend.close()
