"""Sync the upstreams and groups declared in the config file into the store at start-up."""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.config import GroupConfig, Settings, UpstreamConfig
from torouter.store.schema import Group, GroupUpstream, UpstreamAccount
from torouter.store.sealing import sealer


async def seal_plaintext_credentials(session: AsyncSession) -> int:
    """Encrypt credentials stored before encryption existed; returns how many there were."""
    seal = sealer()
    rows = (await session.execute(select(UpstreamAccount))).scalars()
    changed = 0
    for row in rows:
        sealed = seal.seal(row.credential)
        if sealed != row.credential:
            row.credential, changed = sealed, changed + 1
    return changed


def _account_fields(u: UpstreamConfig) -> dict[str, object]:
    """The columns the config decides, but the credential (stored sealed, so compared apart)."""
    return {
        "platform": u.platform,
        "base_url": u.base_url,
        "weight": u.weight,
        "priority": u.priority,
        "models": list(u.models),
        "model_map": dict(u.model_map),
        "max_concurrency": u.max_concurrency,
        "rpm": u.rpm,
        "tpm": u.tpm,
        "timeouts": {
            "connect": u.timeouts.connect,
            "first_byte": u.timeouts.first_byte,
            "idle": u.timeouts.idle,
        },
    }


def _group_fields(g: GroupConfig) -> dict[str, object]:
    return {
        "platform": g.platform,
        "models": dict(g.models),
        "aliases": dict(g.aliases),
        "price_multiplier": g.price_multiplier,
        "rpm": g.rpm,
        "tpm": g.tpm,
        "max_concurrency": g.max_concurrency,
        "budget_usd": g.budget_usd,
        "budget_period": g.budget_period,
    }


async def sync_config(session: AsyncSession, settings: Settings) -> None:
    """Upsert what the config declares; touch a row only when it changed, so caches see real changes."""
    now = time.time()
    seal = sealer()
    accounts: dict[str, UpstreamAccount] = {
        a.name: a for a in (await session.execute(select(UpstreamAccount))).scalars()
    }
    for u in settings.upstreams:
        fields = _account_fields(u)
        row = accounts.get(u.name)
        if row is None:
            row = UpstreamAccount(
                name=u.name,
                source="config",
                status="active",
                created_at=now,
                updated_at=now,
                credential=seal.seal(u.api_key),
                **fields,
            )
            session.add(row)
            accounts[u.name] = row
            continue
        new_credential = not seal.same(row.credential, u.api_key)
        if new_credential or any(getattr(row, k) != v for k, v in fields.items()):
            if new_credential:
                row.credential = seal.seal(u.api_key)
                if row.status == "disabled":
                    row.status, row.status_reason = "active", None  # a new credential deserves a new try
            for k, v in fields.items():
                setattr(row, k, v)
            row.updated_at = now
    await session.flush()

    groups: dict[str, Group] = {g.name: g for g in (await session.execute(select(Group))).scalars()}
    for g in settings.groups:
        fields = _group_fields(g)
        row = groups.get(g.name)
        if row is None:
            row = Group(name=g.name, source="config", created_at=now, updated_at=now, **fields)
            session.add(row)
            await session.flush()
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            row.updated_at = now
        wanted = [accounts[name].id for name in g.upstreams]
        current = (
            (
                await session.execute(
                    select(GroupUpstream.account_id)
                    .where(GroupUpstream.group_id == row.id)
                    .order_by(GroupUpstream.position)
                )
            )
            .scalars()
            .all()
        )
        if list(current) != wanted:
            await session.execute(delete(GroupUpstream).where(GroupUpstream.group_id == row.id))
            session.add_all(
                GroupUpstream(group_id=row.id, account_id=a, position=i) for i, a in enumerate(wanted)
            )
            row.updated_at = now
    await session.flush()
