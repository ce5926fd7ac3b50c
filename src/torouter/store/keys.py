"""API keys: created once in full, then only ever stored as a SHA-256 hash with a display prefix."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.config import BUDGET_PERIODS
from torouter.store.errors import Invalid, NotFound, StoreError
from torouter.store.schema import ApiKey, Group

KEY_PREFIX = "sk-tr-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]


@dataclass(slots=True)
class KeyOptions:
    name: str = ""
    expires_at: float | None = None
    budget_usd: float | None = None
    budget_period: str | None = None
    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 0
    allowed_models: tuple[str, ...] = ()


# The columns `update_key` may change; "group" (a group name) moves the key.
CHANGEABLE = frozenset(
    {
        "name",
        "expires_at",
        "budget_usd",
        "budget_period",
        "rpm",
        "tpm",
        "max_concurrency",
        "allowed_models",
        "group",
    }
)


async def group_named(session: AsyncSession, group_name: str) -> Group:
    group = (await session.execute(select(Group).where(Group.name == group_name))).scalar_one_or_none()
    if group is None:
        names = (await session.execute(select(Group.name).order_by(Group.name))).scalars().all()
        raise NotFound(
            f"no group is named {group_name!r}; known groups: {', '.join(names) or 'none'}", "group"
        )
    return group


def check_budget_period(period: str | None) -> None:
    if period is not None and period not in BUDGET_PERIODS:
        raise Invalid(
            f"budget_period must be one of {', '.join(BUDGET_PERIODS)} or null, not {period!r}",
            "budget_period",
        )


async def create_key(session: AsyncSession, group_name: str, options: KeyOptions) -> tuple[ApiKey, str]:
    check_budget_period(options.budget_period)
    if options.budget_period is not None and options.budget_usd is None:
        raise Invalid("a budget period needs a budget: give one (--budget, or budget_usd)", "budget_period")
    group = await group_named(session, group_name)
    key = new_key()
    now = time.time()
    row = ApiKey(
        key_hash=hash_key(key),
        prefix=display_prefix(key),
        name=options.name,
        group_id=group.id,
        status="active",
        expires_at=options.expires_at,
        budget_usd=options.budget_usd,
        budget_period=options.budget_period,
        spent_usd=0.0,
        rpm=options.rpm,
        tpm=options.tpm,
        max_concurrency=options.max_concurrency,
        allowed_models=list(options.allowed_models),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row, key


async def list_keys(session: AsyncSession) -> list[tuple[ApiKey, str]]:
    rows = await session.execute(
        select(ApiKey, Group.name).join(Group, Group.id == ApiKey.group_id).order_by(ApiKey.id)
    )
    return [(k, g) for k, g in rows.all()]


async def find_key(session: AsyncSession, ref: str) -> tuple[ApiKey, str]:
    """Find a key by id, full key, display prefix or name."""
    query = select(ApiKey, Group.name).join(Group, Group.id == ApiKey.group_id)
    shown = ref
    if ref.isdigit():
        cond = ApiKey.id == int(ref)
    elif ref.startswith(KEY_PREFIX) and len(ref) > len(KEY_PREFIX) + 6:
        cond = ApiKey.key_hash == hash_key(ref)
        shown = display_prefix(ref) + "…"  # an error message is often logged: never echo a whole key
    elif ref.startswith(KEY_PREFIX):
        cond = ApiKey.prefix == ref
    else:
        cond = ApiKey.name == ref
    rows = (await session.execute(query.where(cond))).all()
    if not rows:
        raise NotFound(
            f"no key matches {shown!r}; give its id, prefix, name or full value (see `torouter keys list`)",
            "key",
        )
    if len(rows) > 1:
        raise StoreError(f"{len(rows)} keys match {shown!r}; give its id instead (see `torouter keys list`)")
    return rows[0][0], rows[0][1]


async def revoke_key(session: AsyncSession, ref: str) -> ApiKey:
    key, _ = await find_key(session, ref)
    now = time.time()
    await session.execute(
        update(ApiKey).where(ApiKey.id == key.id).values(status="revoked", revoked_at=now, updated_at=now)
    )
    key.status, key.revoked_at, key.updated_at = "revoked", now, now
    return key


async def update_key(session: AsyncSession, ref: str, changes: Mapping[str, Any]) -> tuple[ApiKey, str]:
    """Change only the given fields of a key (see CHANGEABLE) and move its updated_at forward.

    Running gateways reload keys when the table's latest updated_at moves, so it always moves.
    Clearing the budget (budget_usd None) clears its period too; a period needs a budget.
    """
    unknown = set(changes) - CHANGEABLE
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))} of a key")
    key, group_name = await find_key(session, ref)
    values = {k: v for k, v in changes.items() if k != "group"}
    if "allowed_models" in values:
        values["allowed_models"] = list(values["allowed_models"])
    if "group" in changes:
        group = await group_named(session, changes["group"])
        values["group_id"], group_name = group.id, group.name
    check_budget_period(values.get("budget_period"))
    budget = values.get("budget_usd", key.budget_usd)
    if budget is None and "budget_usd" in values:
        values["budget_period"] = None
    elif budget is None and values.get("budget_period") is not None:
        raise Invalid(
            f"key {key.id} has no budget: give one (--budget, or budget_usd) with the period", "budget_period"
        )
    values["updated_at"] = max(time.time(), key.updated_at + 0.001)
    for column, value in values.items():
        setattr(key, column, value)
    await session.flush()
    return key, group_name
