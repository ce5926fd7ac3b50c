"""Account health: cooldowns with exponential back-off, and accounts disabled by their upstream.

Kept in memory and consulted on every call without I/O; changes are written to the store in
the background so `torouter upstreams list` (and other replicas, on their next reload) see them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.catalog import Account, Snapshot
from torouter.store.schema import UpstreamAccount
from torouter.writer import BackgroundWriter

log = logging.getLogger("torouter.health")


SMOOTHING = 0.3  # weight of the newest sample in the moving average of waits
SLOW_FACTOR = 3.0  # a pinned account this many times slower than the best other loses the pin
SLOW_FLOOR = 0.5  # seconds: below this nobody is slow


@dataclass(slots=True)
class AccountHealth:
    failures: int = 0
    cooldown_until: float = 0.0
    disabled_reason: str | None = None
    changed_at: float = 0.0
    wait: float | None = None  # moving average of seconds to the answer's headers


class Health(BackgroundWriter):
    def __init__(self, base: float = 1.0, cap: float = 300.0) -> None:
        super().__init__(1.0, "torouter-health-writer")
        self.base = base
        self.cap = cap
        self._by_id: dict[int, AccountHealth] = {}
        self._dirty: dict[int, tuple[str, str | None, float | None]] = {}
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    def state(self, account: Account) -> AccountHealth | None:
        return self._by_id.get(account.id)

    def usable(self, account: Account, now: float) -> bool:
        h = self._by_id.get(account.id)
        return h is None or (h.disabled_reason is None and h.cooldown_until <= now)

    def cooling(self, account: Account) -> float:
        h = self._by_id.get(account.id)
        return h.cooldown_until if h is not None and h.disabled_reason is None else float("inf")

    def succeeded(self, account: Account, wait: float | None = None) -> None:
        h = self._by_id.get(account.id)
        if wait is not None:
            if h is None:
                h = self._by_id[account.id] = AccountHealth()
            h.wait = wait if h.wait is None else h.wait + SMOOTHING * (wait - h.wait)
        if h is not None and (h.failures or h.cooldown_until):
            h.failures, h.cooldown_until = 0, 0.0
            self._dirty[account.id] = ("active", None, None)

    def failed(
        self, account: Account, status: int, retry_after: float | None = None, reason: str = ""
    ) -> None:
        """Record a failure: 401/403 disable the account; anything else cools it down."""
        h = self._by_id.setdefault(account.id, AccountHealth())
        if status in (401, 403):
            h.disabled_reason = f"upstream answered {status}: {reason}".strip(": ")[:300]
            h.changed_at = time.time()
            self._dirty[account.id] = ("disabled", h.disabled_reason, h.changed_at)
            log.warning("upstream account %s disabled: %s", account.name, h.disabled_reason)
            return
        h.failures += 1
        h.changed_at = time.time()
        # The exponent stops growing once the cap is reached: 2.0 ** 1024 would overflow a float, and
        # an account with no other to fail over to keeps being tried (and failing) while it cools.
        backoff = self.base * 2.0 ** min(h.failures - 1, 64)
        delay = retry_after if retry_after is not None else min(self.cap, backoff)
        h.cooldown_until = time.time() + delay
        self._dirty[account.id] = ("cooldown", reason[:300] or None, h.cooldown_until)
        log.info("upstream account %s cools down for %.1fs (%s)", account.name, delay, reason or status)

    def slow(self, account: Account, others: list[Account]) -> bool:
        """Much slower to answer than the best of the others: a pin to it is not worth keeping."""
        h = self._by_id.get(account.id)
        if h is None or h.wait is None or h.wait < SLOW_FLOOR:
            return False
        waits = [
            o.wait
            for o in (self._by_id.get(a.id) for a in others if a.id != account.id)
            if o and o.wait is not None
        ]
        return bool(waits) and h.wait > SLOW_FACTOR * min(waits)

    def sync(self, snapshot: Snapshot) -> None:
        """After a catalog reload: an account an admin edited since its last failure starts afresh.

        The health writer changes a row without touching updated_at, so only an admin's edit
        (torouter upstreams enable, the config, the admin API) moves it past changed_at; that
        ends a disable and a cooldown alike.
        """
        for account_id, h in list(self._by_id.items()):
            account = snapshot.accounts.get(account_id)
            if account is None or (account.status == "active" and account.updated_at > h.changed_at):
                del self._by_id[account_id]

    async def start(self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0) -> None:
        self._sessions = sessions
        self._interval = interval
        self.start_writing()

    async def flush(self) -> None:
        if not self._dirty or self._sessions is None:
            return
        changes, self._dirty = self._dirty, {}
        try:
            await self._write(changes)
        except BaseException:
            for account_id, change in changes.items():  # keep them for the next round
                self._dirty.setdefault(account_id, change)
            raise

    async def _write(self, changes: dict[int, tuple[str, str | None, float | None]]) -> None:
        assert self._sessions is not None
        async with self._sessions() as session, session.begin():
            for account_id, (status, reason, until) in changes.items():
                row = update(UpstreamAccount).where(UpstreamAccount.id == account_id)
                if status == "disabled":
                    # `until` is when it happened: an admin's edit after that wins over this write.
                    await session.execute(
                        row.where(UpstreamAccount.updated_at <= (until or 0.0)).values(
                            status="disabled", status_reason=reason, cooldown_until=None
                        )
                    )
                else:  # never overwrite an admin's disable with a cooldown or a recovery
                    await session.execute(
                        row.where(UpstreamAccount.status == "active").values(
                            status_reason=reason, cooldown_until=until
                        )
                    )
