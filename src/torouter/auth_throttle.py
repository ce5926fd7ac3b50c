"""Slowing down key guessing: an address that fails authentication too often is refused for a while.

Only unknown keys and wrong admin tokens count: a revoked or expired key is a known one, not a guess.
Once an address reaches the limit within its window, every call from it gets a 429 until the window
ends, valid keys included, so that a guesser learns nothing from the answers it still gets.

Counts live in this process. With Redis configured they are also summed there, so that the limit
holds across replicas and workers: a replica that did not see the earlier failures blocks the address
at its next one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from redis.asyncio import Redis

from torouter.client_address import ClientAddress
from torouter.errors import GatewayError

log = logging.getLogger("torouter.auth")
_MAX_TRACKED = 50_000  # addresses kept in memory before old windows are swept


class AuthThrottle:
    def __init__(
        self,
        limit: int,
        window: float,
        redis: Redis | None = None,
        address: ClientAddress | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.redis = redis
        self.address = address or ClientAddress()
        self.blocked: dict[str, float] = {}  # address -> monotonic time the block ends
        self._failures: dict[str, list[float]] = {}  # address -> [window start, count]
        self._pending: set[asyncio.Task[None]] = set()

    def check(self, scope: dict) -> None:
        """Raise the 429 for a blocked address. Callers test `self.blocked` first: empty is the norm."""
        address = self.address(scope)
        until = self.blocked.get(address)
        if until is None:
            return
        left = until - time.monotonic()
        if left <= 0:
            del self.blocked[address]
            return
        raise self.refusal(left)

    def refusal(self, left: float) -> GatewayError:
        wait = max(1, math.ceil(left))
        return GatewayError(
            "rate_limit",
            f"Too many failed authentication attempts from your address; try again in {wait} s.",
            code="too_many_auth_failures",
            headers={"retry-after": str(wait)},
        )

    def failed(self, scope: dict) -> None:
        """Count one failed authentication from the caller's address."""
        if self.limit <= 0:
            return
        address = self.address(scope)
        now = time.monotonic()
        entry = self._failures.get(address)
        if entry is None or now - entry[0] >= self.window:
            if len(self._failures) >= _MAX_TRACKED:
                self._sweep(now)
            entry = self._failures[address] = [now, 0]
        entry[1] += 1
        if entry[1] >= self.limit:
            self.blocked[address] = entry[0] + self.window
        if self.redis is not None:
            task = asyncio.get_running_loop().create_task(self._count_shared(address))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _count_shared(self, address: str) -> None:
        key = f"torouter:authfail:{address}"
        try:
            assert self.redis is not None
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, math.ceil(self.window), nx=True)
                pipe.pttl(key)
                count, _, ttl_ms = await pipe.execute()
        except Exception as exc:  # Redis down: the local count still applies
            log.warning("shared failed-auth count: %s", type(exc).__name__)
            return
        if count >= self.limit and ttl_ms > 0:
            self.blocked[address] = max(self.blocked.get(address, 0.0), time.monotonic() + ttl_ms / 1000)

    def _sweep(self, now: float) -> None:
        for address in [a for a, (start, _) in self._failures.items() if now - start >= self.window]:
            del self._failures[address]
        for address in [a for a, until in self.blocked.items() if until <= now]:
            del self.blocked[address]
        if len(self._failures) >= _MAX_TRACKED:  # that many live addresses: per-address counts can't help
            self._failures.clear()
