"""Read-only queries behind the CLI's listings and usage report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from torouter.store.schema import ApiKey, Group, GroupUpstream, UpstreamAccount, UsageRecord

# What `usage_by` groups on: the usage record column behind each dimension.
USAGE_DIMENSIONS: dict[str, Any] = {
    "key": UsageRecord.key_id,
    "group": UsageRecord.group_name,
    "model": UsageRecord.model,
    "account": UsageRecord.account_name,
}


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


def _usage_sums() -> list[ColumnElement[Any]]:
    """The measures of the usage report, each an SQL aggregate (so totals are the database's own sums)."""
    u = UsageRecord
    return [
        func.count().label("calls"),
        func.coalesce(func.sum(case((u.status_code >= 400, 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(u.input_tokens), 0).label("input_tokens"),
        func.coalesce(func.sum(u.output_tokens), 0).label("output_tokens"),
        func.coalesce(func.sum(u.cached_tokens), 0).label("cached_tokens"),
        func.coalesce(func.sum(u.cache_write_tokens), 0).label("cache_write_tokens"),
        func.coalesce(func.sum(u.cost_usd), 0.0).label("cost_usd"),
        func.coalesce(func.sum(case((u.estimated, 1), else_=0)), 0).label("estimated"),
        func.avg(u.latency_ms).label("mean_latency_ms"),
    ]


def _measures(row: Any) -> dict[str, Any]:
    m = row._mapping
    counts = ("calls", "errors", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens")
    out: dict[str, Any] = {name: int(m[name]) for name in counts}
    out["cost_usd"] = float(m["cost_usd"])
    out["estimated"] = int(m["estimated"])
    out["mean_latency_ms"] = float(m["mean_latency_ms"] or 0.0)  # AVG of no rows is NULL
    return out


async def usage_by(
    session: AsyncSession, by: str | Sequence[str], since: float | None = None
) -> list[dict[str, Any]]:
    """One dict per value of `by` ("key", "group", "model", "account", or several): calls, errors,
    token sums, cost, estimated calls and mean latency, all summed by SQL over the usage records.

    Grouping by key adds `key_id` and `key` (the key's current name, else the name it had on the
    call, else `#id`) and, unless grouping by model too, `models`: the models each key called.
    The other dimensions add a field of their own name ("" when not recorded).
    """
    dims = [by] if isinstance(by, str) else list(by)
    unknown = [d for d in dims if d not in USAGE_DIMENSIONS]
    if unknown or not dims:
        raise ValueError(f"cannot group usage by {unknown or dims}; use {', '.join(USAGE_DIMENSIONS)}")
    u = UsageRecord
    columns: list[Any] = [USAGE_DIMENSIONS[d].label(d) for d in dims]
    query = select(*columns, *_usage_sums())
    if "key" in dims:
        query = query.add_columns(
            func.max(ApiKey.name).label("current_name"), func.max(u.key_name).label("recorded_name")
        ).outerjoin(ApiKey, ApiKey.id == u.key_id)
    query = query.group_by(*(USAGE_DIMENSIONS[d] for d in dims)).order_by(
        *(USAGE_DIMENSIONS[d] for d in dims)
    )
    if since is not None:
        query = query.where(u.created_at >= since)
    rows = []
    for r in (await session.execute(query)).all():
        m = r._mapping
        row: dict[str, Any] = {}
        for d in dims:
            if d == "key":
                kid = m["key"]
                row["key_id"] = kid
                row["key"] = m["current_name"] or m["recorded_name"] or ("-" if kid is None else f"#{kid}")
            else:
                row[d] = m[d] or ""
        rows.append(row | _measures(r))
    if "key" in dims and "model" not in dims:
        models = select(u.key_id, u.model).distinct().order_by(u.key_id, u.model)
        if since is not None:
            models = models.where(u.created_at >= since)
        called: dict[int | None, list[str]] = {}
        for kid, model in (await session.execute(models.where(u.model != ""))).all():
            called.setdefault(kid, []).append(model)
        for row in rows:
            row["models"] = called.get(row["key_id"], [])
    return rows


async def usage_total(session: AsyncSession, since: float | None = None) -> dict[str, Any]:
    """The same measures as `usage_by` over every record since `since`: the report's TOTAL line."""
    query = select(*_usage_sums())
    if since is not None:
        query = query.where(UsageRecord.created_at >= since)
    return _measures((await session.execute(query)).one())


async def spends(session: AsyncSession, column: Any, starts: dict[Any, float]) -> dict[Any, float]:
    """SUM(cost_usd) per value of `column` (key_id or group_name), each from its own period start on."""
    by_start: dict[float, list[Any]] = {}
    for value, start in starts.items():
        by_start.setdefault(start, []).append(value)
    spent = dict.fromkeys(starts, 0.0)
    for start, values in by_start.items():
        query = (
            select(column, func.sum(UsageRecord.cost_usd))
            .where(column.in_(values), UsageRecord.created_at >= start)
            .group_by(column)
        )
        spent.update({value: float(total or 0.0) for value, total in (await session.execute(query)).all()})
    return spent


async def key_spends(session: AsyncSession, starts: dict[int, float]) -> dict[int, float]:
    """What each key spent since `starts[key_id]` (its budget period's start)."""
    return await spends(session, UsageRecord.key_id, starts)


async def group_spends(session: AsyncSession, starts: dict[str, float]) -> dict[str, float]:
    """What each group spent since `starts[group_name]`."""
    return await spends(session, UsageRecord.group_name, starts)


async def set_account_status(session: AsyncSession, name: str, status: str) -> UpstreamAccount:
    """An admin enables or disables an account; updated_at moves, so running gateways reload it."""
    import time

    from torouter.store.errors import NotFound

    row = (
        await session.execute(select(UpstreamAccount).where(UpstreamAccount.name == name))
    ).scalar_one_or_none()
    if row is None:
        names = (
            (await session.execute(select(UpstreamAccount.name).order_by(UpstreamAccount.name)))
            .scalars()
            .all()
        )
        raise NotFound(
            f"no upstream is named {name!r}; known upstreams: {', '.join(names) or 'none'}", "upstream"
        )
    row.status = status
    row.status_reason = None if status == "active" else "disabled by an admin"
    row.cooldown_until = None
    row.updated_at = max(time.time(), row.updated_at + 0.001)
    return row
