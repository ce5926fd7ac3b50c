"""Optional services (PostgreSQL, Redis): skipped locally when missing, required in CI."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

PG_HOST = os.environ.get("TOROUTER_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TOROUTER_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TOROUTER_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("TOROUTER_TEST_PG_DB", "test")


def required() -> bool:
    return os.environ.get("TOROUTER_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    if required():
        pytest.fail(f"{service} is required (TOROUTER_REQUIRE_SERVICES=1) but {host}:{port} does not answer")
    pytest.skip(f"{service} is not running on {host}:{port}")


@contextmanager
def temporary_postgres_database() -> Iterator[str]:
    """A fresh database for one test session, dropped afterwards. Yields its SQLAlchemy URL."""
    need("PostgreSQL", PG_HOST, PG_PORT)
    import asyncpg

    name = "torouter_test_" + secrets.token_hex(4)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
