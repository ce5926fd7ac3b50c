"""The same limits as `MemoryLimits`, kept in Redis so that every replica enforces them together.

Admission and settlement are each one Lua script: Redis runs a script atomically, so two
replicas admitting at once cannot both take the last slot. Every key shares one hash tag, so
the scripts also run on a Redis Cluster.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from torouter.accounting.limits import (
    WINDOW,
    Held,
    Refusal,
    Rule,
    Verdict,
    meter_of,
    new_lease,
    period_end,
    period_start,
)

PREFIX = "torouter:{lim}:"
LEASE_TTL_MS = 900_000

# KEYS, per rule: requests window, tokens window, concurrency leases, budget.
# ARGV: now, now_ms, lease, tokens, cost, lease_ttl_ms, n; per rule: rpm, tpm, cc, budget (-1: none), budget ttl.
_ADMIT = """
local now, now_ms, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local tokens, cost, lease_ttl, n = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local function window(key)
  local used, oldest = 0, now
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local sec = tonumber(all[j])
    if sec <= now - 60 then
      redis.call('HDEL', key, all[j])
    else
      local c = tonumber(all[j + 1])
      if c > 0 then
        used = used + c
        if sec < oldest then oldest = sec end
      end
    end
  end
  return used, oldest
end
local views = {}
for i = 1, n do
  local k, a = (i - 1) * 4, 7 + (i - 1) * 5
  local rpm, tpm, cc, budget = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if cc > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now_ms)
    if redis.call('ZCARD', KEYS[k + 3]) >= cc then return {'concurrency', i, cc, cc, 1} end
  end
  local rq_used, rq_old, tk_used, tk_old = 0, now, 0, now
  if rpm > 0 then
    rq_used, rq_old = window(KEYS[k + 1])
    if rq_used >= rpm then return {'requests', i, rpm, rq_used, rq_old + 60 - now} end
  end
  if tpm > 0 then
    tk_used, tk_old = window(KEYS[k + 2])
    if tk_used + tokens > tpm then
      local wait = 60
      if tk_used > 0 then wait = tk_old + 60 - now end
      return {'tokens', i, tpm, tk_used, wait}
    end
  end
  if budget >= 0 then
    local spent = redis.call('HGET', KEYS[k + 4], 'spent')
    if not spent then return {'missing', i, 0, 0, 0} end
    local reserved = tonumber(redis.call('HGET', KEYS[k + 4], 'reserved') or '0')
    if tonumber(spent) + reserved >= budget then return {'budget', i, 0, spent, 0} end
  end
  views[#views + 1] = rq_used
  views[#views + 1] = rq_old
  views[#views + 1] = tk_used
  views[#views + 1] = tk_old
end
for i = 1, n do
  local k, a = (i - 1) * 4, 7 + (i - 1) * 5
  local rpm, tpm, cc, budget = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  if cc > 0 then
    redis.call('ZADD', KEYS[k + 3], now_ms + lease_ttl, lease)
    redis.call('PEXPIRE', KEYS[k + 3], lease_ttl)
  end
  if rpm > 0 then
    redis.call('HINCRBY', KEYS[k + 1], now, 1)
    redis.call('EXPIRE', KEYS[k + 1], 61)
  end
  if tpm > 0 and tokens > 0 then
    redis.call('HINCRBY', KEYS[k + 2], now, tokens)
    redis.call('EXPIRE', KEYS[k + 2], 61)
  end
  if budget >= 0 then
    redis.call('HINCRBYFLOAT', KEYS[k + 4], 'reserved', cost)
  end
end
return {'ok', 0, 0, 0, 0, unpack(views)}
"""

# KEYS, per rule: tokens window, concurrency leases, budget.
# ARGV: now, admitted, lease, reserved tokens, tokens, reserved cost, cost, n; per rule: tpm, cc, budget?, budget ttl.
_SETTLE = """
local now, admitted, lease = ARGV[1], ARGV[2], ARGV[3]
local reserved, tokens, rcost, cost, n = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
for i = 1, n do
  local k, a = (i - 1) * 3, 8 + (i - 1) * 4
  if tonumber(ARGV[a + 1]) > 0 then
    if reserved > 0 and redis.call('HEXISTS', KEYS[k + 1], admitted) == 1 then
      redis.call('HINCRBY', KEYS[k + 1], admitted, -reserved)
    end
    if tokens > 0 then redis.call('HINCRBY', KEYS[k + 1], now, tokens) end
    redis.call('EXPIRE', KEYS[k + 1], 61)
  end
  if tonumber(ARGV[a + 2]) > 0 then redis.call('ZREM', KEYS[k + 2], lease) end
  if tonumber(ARGV[a + 3]) > 0 then
    redis.call('HINCRBYFLOAT', KEYS[k + 3], 'reserved', '-' .. rcost)
    redis.call('HINCRBYFLOAT', KEYS[k + 3], 'spent', cost)
    redis.call('EXPIRE', KEYS[k + 3], tonumber(ARGV[a + 4]))
  end
end
return 1
"""

_SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('HSETNX', KEYS[1], 'reserved', '0')
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 1
"""


def _keys(rule: Rule, start: int) -> tuple[str, str, str, str]:
    base = PREFIX + rule.scope
    return base + ":rq", base + ":tk", base + ":cc", f"{base}:budget:{start}"


def _budget_ttl(rule: Rule, start: int, now: float) -> int:
    end = period_end(rule.period, start)
    # A budget that never resets is kept a long time; it is re-seeded from the store if it expires.
    return int(end - now) + 86400 if end != float("inf") else 90 * 86400


def _fixed(value: float) -> str:
    return f"{value:.10f}"


class RedisLimits:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)
        self._seed = redis.register_script(_SEED)

    async def admit(self, rules: tuple[Rule, ...], tokens: int, cost: float, now: float) -> Verdict:
        sec = int(now)
        lease = new_lease()
        keys: list[str] = []
        args: list[Any] = [sec, int(now * 1000), lease, tokens, _fixed(cost), LEASE_TTL_MS, len(rules)]
        periods = []
        for rule in rules:
            start = period_start(rule.period, now)
            periods.append(start)
            keys.extend(_keys(rule, start))
            budget = -1 if rule.budget is None else rule.budget
            args.extend([rule.rpm, rule.tpm, rule.concurrency, _fixed(budget), _budget_ttl(rule, start, now)])
        reply = await self._admit(keys=keys, args=args)
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if status != "ok":
            rule = rules[int(reply[1]) - 1]
            if status == "budget":
                start = periods[int(reply[1]) - 1]
                wait = period_end(rule.period, start) - now
                return Verdict(refusal=Refusal("budget", rule, rule.budget or 0.0, float(reply[3]), wait))
            return Verdict(refusal=Refusal(status, rule, float(reply[2]), float(reply[3]), float(reply[4])))
        flat = [int(v) for v in reply[5:]]
        views = [(flat[i], flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, len(flat), 4)]
        held = Held(rules, tokens, cost, lease, sec, tuple(periods), meter_of(rules, views, sec))
        return Verdict(held=held)

    async def settle(self, held: Held, tokens: int, cost: float, now: float) -> None:
        keys: list[str] = []
        args: list[Any] = [
            int(now),
            held.admitted,
            held.lease,
            held.tokens,
            tokens,
            _fixed(held.cost),
            _fixed(cost),
            len(held.rules),
        ]
        for rule, start in zip(held.rules, held.periods, strict=True):
            _, tk, cc, budget = _keys(rule, start)
            keys.extend([tk, cc, budget])
            args.extend(
                [rule.tpm, rule.concurrency, int(rule.budget is not None), _budget_ttl(rule, start, now)]
            )
        await self._settle(keys=keys, args=args)

    async def load_spend(self, rule: Rule, start: int, spent: float) -> None:
        budget_key = _keys(rule, start)[3]
        await self._seed(keys=[budget_key], args=[_fixed(spent), _budget_ttl(rule, start, start + 1.0)])

    async def spend(self, rule: Rule, now: float) -> float | None:
        value = await self.redis.hget(_keys(rule, period_start(rule.period, now))[3], "spent")
        return None if value is None else float(value)

    async def close(self) -> None:
        return None


__all__ = ["WINDOW", "RedisLimits"]
