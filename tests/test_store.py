"""The store on both backends: migrations, config sync, hashed keys, revocation seen by the catalog, usage batches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.services import temporary_postgres_database
from torouter.accounting.gate import Gate
from torouter.accounting.limits import MemoryLimits
from torouter.accounting.usage import Usage, UsageWriter, sqlite_statements, usage_row
from torouter.catalog import Catalog, GroupEntry, KeyEntry
from torouter.config import parse_settings
from torouter.errors import GatewayError
from torouter.gateway import prepare_store
from torouter.store.db import MIGRATIONS, make_engine, sessionmaker
from torouter.store.keys import KeyOptions, create_key, find_key, hash_key, revoke_key
from torouter.store.schema import ApiKey, GroupUpstream, UpstreamAccount, UsageRecord

CONFIG = {
    "upstreams": [
        {"name": "a", "platform": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "sk-up-a"},
        {
            "name": "b",
            "platform": "openai",
            "base_url": "http://127.0.0.1:2/v1",
            "api_key": "sk-up-b",
            "weight": 3,
        },
    ],
    "groups": [
        {"name": "g", "platform": "openai", "upstreams": ["a", "b"], "aliases": {"fast": "gpt-4o-mini"}}
    ],
}


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        with temporary_postgres_database() as url:
            yield url


def plain_row(request_id: str, model: str = "m", usage: Usage | None = None, status: int = 200) -> dict:
    return usage_row(
        request_id=request_id,
        created_at=time.time(),
        key_id=1,
        key_name="k",
        group_name="g",
        account_name="a",
        surface="openai",
        platform="openai",
        endpoint="chat.completions",
        model=model,
        upstream_model=model,
        stream=False,
        status_code=status,
        usage=usage,
        latency_ms=1.0,
        ttft_ms=None,
        attempts=1,
    )


async def fresh_store(database_url: str) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    sessions = sessionmaker(engine)
    await prepare_store(engine, sessions, parse_settings(CONFIG, "test.yaml"))
    return engine, sessions


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_migrations_and_sync_are_idempotent(database_url: str) -> None:
    async def main() -> None:
        engine = make_engine(database_url)
        sessions = sessionmaker(engine)
        settings = parse_settings(CONFIG, "test.yaml")
        await prepare_store(engine, sessions, settings)
        async with sessions() as s:
            stamp = (await s.execute(select(func.max(UpstreamAccount.updated_at)))).scalar_one()
        await prepare_store(engine, sessions, settings)  # a restart with the same config changes nothing
        async with sessions() as s:
            assert (await s.execute(select(func.count()).select_from(UpstreamAccount))).scalar_one() == 2
            assert (await s.execute(select(func.max(UpstreamAccount.updated_at)))).scalar_one() == stamp
            links = (
                (await s.execute(select(GroupUpstream.position).order_by(GroupUpstream.position)))
                .scalars()
                .all()
            )
            assert links == [0, 1]
            version = (await s.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            assert version == ScriptDirectory(str(MIGRATIONS)).get_current_head()
        # A changed config updates the rows it touches.
        changed = dict(CONFIG, upstreams=[dict(CONFIG["upstreams"][0], weight=9), CONFIG["upstreams"][1]])
        await prepare_store(engine, sessions, parse_settings(changed, "test.yaml"))
        async with sessions() as s:
            weight = (
                await s.execute(select(UpstreamAccount.weight).where(UpstreamAccount.name == "a"))
            ).scalar_one()
            assert weight == 9
        await engine.dispose()

    run(main())


def test_keys_are_stored_as_hashes_and_revocation_reaches_the_catalog(database_url: str) -> None:
    async def main() -> None:
        engine = make_engine(database_url)
        sessions = sessionmaker(engine)
        await prepare_store(engine, sessions, parse_settings(CONFIG, "test.yaml"))
        async with sessions() as s, s.begin():
            row, key = await create_key(s, "g", KeyOptions(name="alice"))
        async with sessions() as s:
            stored = (await s.execute(select(ApiKey))).scalars().one()
            assert stored.key_hash == hash_key(key) and key not in (stored.prefix + stored.key_hash)
            assert key.startswith(stored.prefix)
            assert (await find_key(s, "alice"))[0].id == row.id
            assert (await find_key(s, stored.prefix))[0].id == row.id
        catalog = Catalog(sessions, interval=0.05)
        await catalog.start()
        try:
            entry = catalog.snapshot.keys[hash_key(key)]
            assert entry.status == "active" and entry.group.name == "g"
            assert [a.name for a in entry.group.accounts] == ["a", "b"]
            async with sessions() as s, s.begin():
                await revoke_key(s, str(row.id))
            deadline = time.monotonic() + 2
            while catalog.snapshot.keys[hash_key(key)].status == "active":
                assert time.monotonic() < deadline, "the catalog never saw the revocation"
                await asyncio.sleep(0.02)
        finally:
            await catalog.stop()
            await engine.dispose()

    run(main())


def test_usage_writer_batches_and_flushes_on_stop(database_url: str) -> None:
    async def main() -> None:
        engine, sessions = await fresh_store(database_url)
        writer = UsageWriter(sessions, interval=3600)  # never ticks: only stop() can flush
        await writer.start()
        n = 1300  # several batches; on SQLite, INSERTs of 256, 128, … rows and a few of one
        for i in range(n):
            writer.submit(plain_row(f"r{i}", usage=Usage(input_tokens=10, output_tokens=i, cached_tokens=2)))
        async with sessions() as s:
            assert (await s.execute(select(func.count()).select_from(UsageRecord))).scalar_one() == 0
        await writer.stop()
        async with sessions() as s:
            count, out = (await s.execute(select(func.count(), func.sum(UsageRecord.output_tokens)))).one()
            assert count == n and out == sum(range(n))
            ids = (await s.execute(select(UsageRecord.request_id).order_by(UsageRecord.id))).scalars().all()
            assert ids == [f"r{i}" for i in range(n)]  # in the order the calls ended
        await engine.dispose()

    run(main())


def test_sqlite_statements_cover_every_row_in_order() -> None:
    for n in [*range(40), 511, 512, 513, 1000, 1023, 1024, 2049]:
        values = [(i, f"v{i}") for i in range(n)]
        statements = sqlite_statements(values)
        flat = [v for _, sets in statements for params in sets for v in params]
        assert flat == [v for row in values for v in row], n
        for statement, sets in statements:  # each parameter set fills its statement's rows
            assert all(len(params) == 2 * statement.count("(?") for params in sets)
        assert len({statement for statement, _ in statements}) == len(statements) <= 10


def test_usage_batch_keeps_every_column_exactly(database_url: str) -> None:
    """The batch crosses the driver as one JSON text: each value must come back as it went in."""

    async def main() -> None:
        engine, sessions = await fresh_store(database_url)
        writer = UsageWriter(sessions, interval=3600)
        await writer.start()
        base = {
            "request_id": "req_plain",
            "created_at": 1764979200.123456,
            "key_id": 7,
            "key_name": "ключ 🔑",
            "group_name": "g",
            "account_name": "a",
            "surface": "anthropic",
            "platform": "openai",
            "endpoint": "messages",
            "model": 'claude "quoted" \\ back\nslash',
            "upstream_model": "gpt-4o",
            "stream": True,
            "status_code": 200,
            "usage": Usage(5, 6, 1, 2, 3, 4),
            "latency_ms": 12.345678901,
            "ttft_ms": 0.5,
            "attempts": 2,
            "error": None,
            "session": "sess-1",
            "attempt_log": [{"account": "b", "status": 503, "error": None}, {"account": "a", "status": 200}],
            "cost_usd": 1.25e-07,
            "estimated": True,
        }
        other = dict(
            base,
            request_id="req_nulls",
            key_id=None,
            stream=False,
            usage=None,
            ttft_ms=None,
            session=None,
            attempt_log=None,
            error="upstream_timeout",
            status_code=504,
            estimated=False,
            cost_usd=0.0,
        )
        written = [usage_row(**base), usage_row(**other)]
        for row in written:
            writer.submit(dict(row))
        await writer.stop()
        async with sessions() as s:
            stored = (await s.execute(select(UsageRecord).order_by(UsageRecord.id))).scalars().all()
        assert [{name: getattr(record, name) for name in written[0]} for record in stored] == written
        await engine.dispose()

    run(main())


def test_an_over_long_model_name_does_not_hold_up_the_usage_queue(database_url: str) -> None:
    """A client picks the model name: one too long for its column must not fail the whole batch."""

    async def main() -> None:
        engine, sessions = await fresh_store(database_url)
        writer = UsageWriter(sessions, interval=3600)
        await writer.start()
        for i, model in enumerate(["m" * 5000, "gpt-4o"]):
            writer.submit(plain_row(f"r{i}" * 40, model=model, status=404))
        await writer.stop()
        assert writer.pending == 0
        async with sessions() as s:
            models = (await s.execute(select(UsageRecord.model).order_by(UsageRecord.id))).scalars().all()
        assert [m[:200] for m in models] == ["m" * 200, "gpt-4o"]
        await engine.dispose()

    run(main())


def test_calls_that_find_a_budget_unloaded_share_one_read_of_its_spend(database_url: str) -> None:
    """After a restart under load, every call in flight finds the spend missing at once."""

    async def main() -> None:
        engine, sessions = await fresh_store(database_url)
        writer = UsageWriter(sessions, interval=3600)
        await writer.start()
        for i in range(3):
            writer.submit(dict(plain_row(f"r{i}"), key_id=9, cost_usd=0.25))
        await writer.stop()
        sums: list[str] = []

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def note(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if "sum(" in statement.lower():
                sums.append(statement)

        group = GroupEntry(1, "g", "openai", {}, {}, 1.0, 0, 0)
        key = KeyEntry(9, "k", "sk-tr-x", group, "active", None, (), 0, 0, 0, 1.0, 0.0)
        gate = Gate(MemoryLimits(), sessions)
        rules = gate.rules_for(key)
        held = await asyncio.gather(*(gate.admit(rules, 10, 0.01) for _ in range(20)))
        assert len(sums) == 1 and all(h is not None for h in held)
        assert await gate.spend(rules[0]) == pytest.approx(0.75)  # what the rows cost, read once
        with pytest.raises(GatewayError) as refused:  # 0.75 spent + 20 x 0.01 reserved + 0.06 > 1.0
            await asyncio.gather(*(gate.admit(rules, 10, 0.01) for _ in range(6)))
        assert refused.value.code == "insufficient_quota" and len(sums) == 1
        await engine.dispose()

    run(main())
