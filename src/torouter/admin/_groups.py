"""/admin/api/groups: groups, each a platform with its pool of upstream accounts and its limits."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.accounting.limits import period_start
from torouter.admin._common import (
    Body,
    Count,
    GatewayDep,
    ModelMap,
    Name,
    Page,
    Period,
    Platform,
    Usd,
    given,
    reading,
    writing,
)
from torouter.store.groups import (
    create_group,
    delete_group,
    find_group,
    group_upstreams,
    key_counts,
    update_group,
)
from torouter.store.reports import group_spends, groups_with_accounts
from torouter.store.schema import Group as GroupRow

router = APIRouter(prefix="/groups", tags=["groups"])


def _mapping(value: Any) -> Any:
    """A list of model names maps each to itself, as in the config file."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {v: v for v in value}
    return value


Models = Annotated[
    ModelMap,
    BeforeValidator(_mapping),
    Field(description="Client model id (wildcards allowed) -> upstream id; '*' keeps the name"),
]


class GroupCreate(Body):
    name: Name
    platform: Platform
    upstreams: list[Name] = Field(min_length=1, description="Upstream account names on this platform")
    models: Models = Field(default_factory=dict)
    aliases: ModelMap = Field(default_factory=dict)
    price_multiplier: Usd = 1.0
    rpm: Count = 0
    tpm: Count = 0
    max_concurrency: Count = 0
    budget_usd: Usd | None = None
    budget_period: Period | None = None


class GroupPatch(Body):
    platform: Platform = "openai"
    upstreams: list[Name] = Field(default_factory=list, min_length=1)
    models: Models = Field(default_factory=dict)
    aliases: ModelMap = Field(default_factory=dict)
    price_multiplier: Usd = 1.0
    rpm: Count = 0
    tpm: Count = 0
    max_concurrency: Count = 0
    budget_usd: Usd | None = None
    budget_period: Period | None = None


class Group(BaseModel):
    name: str
    platform: str
    upstreams: list[str]
    models: dict[str, str]
    aliases: dict[str, str]
    price_multiplier: float
    rpm: int
    tpm: int
    max_concurrency: int
    budget_usd: float | None
    budget_period: str | None
    source: str = Field(description="config (synced from the file at start-up) or admin")
    spent_usd: float = Field(description="Spend of the current budget period (all time without one)")
    key_count: int
    created_at: float
    updated_at: float


async def _groups(session: AsyncSession, rows: list[tuple[GroupRow, list[str]]]) -> list[Group]:
    now = time.time()
    spent = await group_spends(session, {g.name: float(period_start(g.budget_period, now)) for g, _ in rows})
    counts = await key_counts(session)
    return [
        Group(
            name=g.name,
            platform=g.platform,
            upstreams=upstreams,
            models=dict(g.models or {}),
            aliases=dict(g.aliases or {}),
            price_multiplier=g.price_multiplier,
            rpm=g.rpm,
            tpm=g.tpm,
            max_concurrency=g.max_concurrency,
            budget_usd=g.budget_usd,
            budget_period=g.budget_period,
            source=g.source,
            spent_usd=spent[g.name],
            key_count=counts.get(g.id, 0),
            created_at=g.created_at,
            updated_at=g.updated_at,
        )
        for g, upstreams in rows
    ]


async def _one(session: AsyncSession, row: GroupRow) -> Group:
    (group,) = await _groups(session, [(row, (await group_upstreams(session, [row.id]))[row.id])])
    return group


@router.get("", response_model=Page[Group])
async def list_all(gw: GatewayDep) -> Page[Group]:
    async with reading(gw) as session:
        return Page[Group](data=await _groups(session, await groups_with_accounts(session)))


@router.post("", status_code=201, response_model=Group)
async def create(body: GroupCreate, gw: GatewayDep) -> Group:
    fields = body.model_dump(exclude={"name", "platform", "upstreams"})
    async with writing(gw) as session:
        row = await create_group(session, body.name, body.platform, body.upstreams, fields)
        return await _one(session, row)


@router.get("/{name}", response_model=Group)
async def get_one(name: str, gw: GatewayDep) -> Group:
    async with reading(gw) as session:
        return await _one(session, await find_group(session, name))


@router.patch("/{name}", response_model=Group)
async def change(name: str, body: GroupPatch, gw: GatewayDep) -> Group:
    """Change the fields given. A group from the config file gets the file's values again at start-up."""
    async with writing(gw) as session:
        await find_group(session, name)  # 404 before any check of the body
        row = await update_group(session, name, given(body))
        return await _one(session, row)


@router.delete("/{name}", status_code=204)
async def remove(name: str, gw: GatewayDep) -> Response:
    """Delete a group that has no keys (409 otherwise: move its keys first)."""
    async with writing(gw) as session:
        await delete_group(session, name)
    return Response(status_code=204)
