"""The gateway's running state: settings, store, catalog, upstream pool and usage writer."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from torouter.accounting.gate import Gate
from torouter.accounting.limits import LimitBackend, MemoryLimits
from torouter.accounting.prices import PriceTable
from torouter.accounting.redis_limits import RedisLimits
from torouter.accounting.usage import UsageWriter
from torouter.auth_throttle import AuthThrottle
from torouter.captures import Captures
from torouter.catalog import Catalog
from torouter.client_address import ClientAddress
from torouter.config import Settings
from torouter.metrics import Metrics
from torouter.routing.affinity import Affinity
from torouter.routing.health import Health
from torouter.store.db import make_engine, migrate, sessionmaker
from torouter.store.prices import seed_prices
from torouter.store.responses import ResponseStore
from torouter.store.sync import seal_plaintext_credentials, sync_config
from torouter.upstreams.client import UpstreamClient

log = logging.getLogger("torouter")


class Gateway:
    def __init__(self, settings: Settings, store_ready: bool = False) -> None:
        self.settings = settings
        self.store_ready = store_ready  # a supervisor migrated and synced the store before forking workers
        self.engine: AsyncEngine = make_engine(settings.database_url)
        self.sessions: async_sessionmaker[AsyncSession] = sessionmaker(self.engine)
        self.catalog = Catalog(self.sessions, settings.key_refresh_interval)
        self.usage = UsageWriter(self.sessions, settings.usage_flush_interval)
        self.client = UpstreamClient()
        self.health = Health()
        self.affinity = Affinity(settings.affinity_ttl)
        self.catalog.on_reload.append(self.health.sync)
        self.responses = ResponseStore(
            self.sessions, settings.responses_retention, settings.usage_flush_interval
        )
        self.metrics = Metrics(self, settings.usage_flush_interval)
        self.redis: Redis | None = None
        backend: LimitBackend = MemoryLimits()
        if settings.redis_url:
            self.redis = Redis.from_url(settings.redis_url)
            backend = RedisLimits(self.redis)
            self.affinity.share(self.redis)
            self.catalog.listen(self.redis)
        self.gate = Gate(backend, self.sessions)
        self.auth_throttle = AuthThrottle(
            settings.auth_failure_limit,
            settings.auth_failure_window,
            self.redis,
            ClientAddress(settings.forwarded_allow_ips),
        )
        self.captures = Captures(self.sessions, shared=store_ready or settings.redis_url is not None)

    @property
    def prices(self) -> PriceTable:
        return self.catalog.snapshot.prices

    async def start(self) -> None:
        if not self.store_ready:
            await prepare_store(self.engine, self.sessions, self.settings)
        await self.catalog.start()
        await self.usage.start()
        await self.metrics.start()
        await self.responses.start()
        await self.health.start(self.sessions, settings_interval(self.settings))
        await self.affinity.start(self.sessions, settings_interval(self.settings))
        log.info(
            "ToRouter ready: %d groups, %d upstream accounts, %d keys",
            len(self.catalog.snapshot.groups),
            len(self.catalog.snapshot.accounts),
            len(self.catalog.snapshot.keys),
        )

    async def stop(self) -> None:
        await self.catalog.stop()
        await self.usage.stop()
        await self.metrics.stop()
        await self.responses.stop()
        await self.health.stop()
        await self.affinity.stop()
        await self.gate.stop()
        await self.captures.drain()
        if self.redis is not None:
            await self.redis.aclose()
        await self.client.close()
        await self.engine.dispose()


def settings_interval(settings: Settings) -> float:
    return settings.usage_flush_interval


async def prepare_store(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Migrate the schema and sync the config's upstreams and groups: run by serve and by the CLI."""
    await migrate(engine)
    async with sessions() as session, session.begin():
        await sync_config(session, settings)
        await seal_plaintext_credentials(session)
        await seed_prices(session)
