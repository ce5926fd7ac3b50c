"""The in-memory view of keys, groups and upstream accounts that the hot path reads.

It is loaded from the store and refreshed in the background when the store changes, so that
authenticating and routing a call never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from torouter.accounting.prices import PriceTable
from torouter.store.prices import load_prices
from torouter.store.schema import ApiKey, Group, GroupUpstream, ModelPrice, UpstreamAccount
from torouter.store.sealing import SealError, sealer

log = logging.getLogger("torouter.catalog")
CHANGES_CHANNEL = "torouter:catalog-changed"


async def announce_change(redis_url: str | None) -> None:
    """Tell every replica sharing this Redis to reload keys, groups and accounts now."""
    if not redis_url:
        return
    redis = Redis.from_url(redis_url)
    try:
        await redis.publish(CHANGES_CHANNEL, b"1")
    except Exception as exc:  # they still reload on their next poll
        log.warning("could not announce the change over Redis: %s", type(exc).__name__)
    finally:
        await redis.aclose()


@dataclass(slots=True)
class Account:
    id: int
    name: str
    platform: str
    base_url: str
    credential: str
    weight: int
    priority: int
    status: str
    models: tuple[str, ...]
    model_map: dict[str, str]
    max_concurrency: int
    connect_timeout: float
    first_byte_timeout: float
    idle_timeout: float
    updated_at: float = 0.0
    rpm: int = 0
    tpm: int = 0
    # Whether the account has caps of its own, asked on every call: worked out once. Accounts
    # are built with each snapshot and never changed after.
    limited: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.limited = bool(self.max_concurrency or self.rpm or self.tpm)


def any_limited(accounts: list[Account]) -> bool:
    """Whether one of these accounts has caps of its own (a lone one asked without a generator)."""
    if len(accounts) == 1:
        return accounts[0].limited
    return any(a.limited for a in accounts)


@dataclass(slots=True)
class GroupEntry:
    id: int
    name: str
    platform: str
    models: dict[str, str]
    aliases: dict[str, str]
    price_multiplier: float
    rpm: int
    tpm: int
    accounts: list[Account] = field(default_factory=list)
    max_concurrency: int = 0
    budget_usd: float | None = None
    budget_period: str | None = None
    # routing.models.resolve's answers for this snapshot: (model asked, key's allow-list) -> answer
    resolved: dict[tuple[str, tuple[str, ...]], tuple[str, list[Account]]] = field(
        default_factory=dict, repr=False, compare=False
    )


@dataclass(slots=True)
class KeyEntry:
    id: int
    name: str
    prefix: str
    group: GroupEntry
    status: str
    expires_at: float | None
    allowed_models: tuple[str, ...]
    rpm: int
    tpm: int
    max_concurrency: int
    budget_usd: float | None
    spent_usd: float
    budget_period: str | None = None


@dataclass(slots=True)
class Snapshot:
    keys: dict[str, KeyEntry]
    groups: dict[str, GroupEntry]
    accounts: dict[int, Account]
    prices: PriceTable = field(default_factory=lambda: PriceTable({}))


def account_from_row(a: UpstreamAccount) -> Account:
    t = a.timeouts or {}
    status = a.status
    try:
        credential = sealer().open(a.credential)
    except SealError as exc:
        log.error("upstream account %s is out of service: %s", a.name, exc)
        credential, status = "", "disabled"
    return Account(
        id=a.id,
        name=a.name,
        platform=a.platform,
        base_url=a.base_url.rstrip("/"),
        credential=credential,
        weight=a.weight,
        priority=a.priority,
        status=status,
        models=tuple(a.models or ()),
        model_map=dict(a.model_map or {}),
        max_concurrency=a.max_concurrency,
        connect_timeout=float(t.get("connect", 10.0)),
        first_byte_timeout=float(t.get("first_byte", 300.0)),
        idle_timeout=float(t.get("idle", 300.0)),
        updated_at=a.updated_at,
        rpm=a.rpm,
        tpm=a.tpm,
    )


async def load_snapshot(session: AsyncSession) -> Snapshot:
    accounts = {a.id: account_from_row(a) for a in (await session.execute(select(UpstreamAccount))).scalars()}
    groups_by_id: dict[int, GroupEntry] = {}
    for g in (await session.execute(select(Group))).scalars():
        groups_by_id[g.id] = GroupEntry(
            id=g.id,
            name=g.name,
            platform=g.platform,
            models=dict(g.models or {}),
            aliases=dict(g.aliases or {}),
            price_multiplier=g.price_multiplier,
            rpm=g.rpm,
            tpm=g.tpm,
            max_concurrency=g.max_concurrency,
            budget_usd=g.budget_usd,
            budget_period=g.budget_period,
        )
    links = await session.execute(
        select(GroupUpstream).order_by(GroupUpstream.group_id, GroupUpstream.position)
    )
    for link in links.scalars():
        group, account = groups_by_id.get(link.group_id), accounts.get(link.account_id)
        if group is not None and account is not None:
            group.accounts.append(account)
    keys: dict[str, KeyEntry] = {}
    for k in (await session.execute(select(ApiKey))).scalars():
        group = groups_by_id.get(k.group_id)
        if group is None:
            continue
        keys[k.key_hash] = KeyEntry(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            group=group,
            status=k.status,
            expires_at=k.expires_at,
            allowed_models=tuple(k.allowed_models or ()),
            rpm=k.rpm,
            tpm=k.tpm,
            max_concurrency=k.max_concurrency,
            budget_usd=k.budget_usd,
            spent_usd=k.spent_usd,
            budget_period=k.budget_period,
        )
    return Snapshot(
        keys=keys,
        groups={g.name: g for g in groups_by_id.values()},
        accounts=accounts,
        prices=PriceTable(await load_prices(session)),
    )


async def change_marker(session: AsyncSession) -> tuple[object, ...]:
    """A cheap fingerprint of the tables the catalog mirrors: it changes whenever a row does."""
    marker: list[object] = []
    for table in (ApiKey, Group, UpstreamAccount, ModelPrice):
        row = (await session.execute(select(func.count(), func.max(table.updated_at)))).one()
        marker.extend(row)
    return tuple(marker)


class Catalog:
    """Holds the current snapshot and swaps in a new one when the store changes."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], interval: float = 1.0) -> None:
        self._sessions = sessions
        self._interval = interval
        self._marker: tuple[object, ...] | None = None
        self._task: asyncio.Task[None] | None = None
        self.snapshot = Snapshot(keys={}, groups={}, accounts={})
        self.loaded_at = 0.0
        self.on_reload: list[Callable[[Snapshot], None]] = []
        self._redis: Redis | None = None
        self._listener: asyncio.Task[None] | None = None

    def listen(self, redis: Redis) -> None:
        """Reload as soon as another process announces a change, instead of at the next poll."""
        self._redis = redis

    async def refresh(self, force: bool = False) -> bool:
        async with self._sessions() as session:
            marker = await change_marker(session)
            if not force and marker == self._marker:
                return False
            self.snapshot = await load_snapshot(session)
        self._marker = marker
        self.loaded_at = time.time()
        for hook in self.on_reload:
            try:
                hook(self.snapshot)
            except Exception:  # a listener's bug must not stop the catalog from serving
                log.exception("catalog reload hook failed")
        return True

    async def start(self) -> None:
        await self.refresh(force=True)
        self._task = asyncio.create_task(self._poll(), name="torouter-catalog-refresh")
        if self._redis is not None:
            self._listener = asyncio.create_task(self._listen(self._redis), name="torouter-catalog-listen")

    async def _listen(self, redis: Redis) -> None:
        while True:
            try:
                async with redis.pubsub() as pubsub:
                    await pubsub.subscribe(CHANGES_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the poll still reloads; try again shortly
                log.warning("catalog change listener: %s", type(exc).__name__)
                await asyncio.sleep(1.0)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if await self.refresh():
                    log.debug("catalog reloaded: %d keys", len(self.snapshot.keys))
            except Exception as exc:  # keep serving the last snapshot while the store is unreachable
                log.warning("catalog refresh failed: %s", type(exc).__name__)

    async def stop(self) -> None:
        for task in (self._task, self._listener):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
