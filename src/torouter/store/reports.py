"""Read-only queries behind the CLI's listings and usage report."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.store.schema import Group, GroupUpstream, UpstreamAccount, UsageRecord


async def groups_with_accounts(session: AsyncSession) -> list[tuple[Group, list[str]]]:
    groups = (await session.execute(select(Group).order_by(Group.name))).scalars().all()
    links = await session.execute(
        select(GroupUpstream.group_id, UpstreamAccount.name)
        .join(UpstreamAccount, UpstreamAccount.id == GroupUpstream.account_id)
        .order_by(GroupUpstream.group_id, GroupUpstream.position)
    )
    names: dict[int, list[str]] = {}
    for gid, name in links.all():
        names.setdefault(gid, []).append(name)
    return [(g, names.get(g.id, [])) for g in groups]


async def accounts(session: AsyncSession) -> list[UpstreamAccount]:
    return list((await session.execute(select(UpstreamAccount).order_by(UpstreamAccount.name))).scalars())


async def usage_by_key_and_model(session: AsyncSession, since: float | None = None) -> list[dict[str, Any]]:
    u = UsageRecord
    query = (
        select(
            u.key_name,
            u.key_id,
            u.model,
            func.count().label("calls"),
            func.sum(case((u.status_code >= 400, 1), else_=0)).label("errors"),
            func.sum(u.input_tokens).label("input_tokens"),
            func.sum(u.output_tokens).label("output_tokens"),
            func.sum(u.cached_tokens).label("cached_tokens"),
            func.avg(u.latency_ms).label("avg_latency_ms"),
        )
        .group_by(u.key_id, u.key_name, u.model)
        .order_by(u.key_id, u.model)
    )
    if since is not None:
        query = query.where(u.created_at >= since)
    return [dict(r._mapping) for r in (await session.execute(query)).all()]


async def set_account_status(session: AsyncSession, name: str, status: str) -> UpstreamAccount:
    """An admin enables or disables an account; updated_at moves, so running gateways reload it."""
    import time

    from torouter.store.keys import StoreError

    row = (
        await session.execute(select(UpstreamAccount).where(UpstreamAccount.name == name))
    ).scalar_one_or_none()
    if row is None:
        names = (
            (await session.execute(select(UpstreamAccount.name).order_by(UpstreamAccount.name)))
            .scalars()
            .all()
        )
        raise StoreError(f"no upstream is named {name!r}; known upstreams: {', '.join(names) or 'none'}")
    row.status = status
    row.status_reason = None if status == "active" else "disabled by an admin"
    row.cooldown_until = None
    row.updated_at = time.time()
    return row
