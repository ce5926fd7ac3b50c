"""/admin/api/upstreams: upstream accounts. Their credential can be set, and is never answered."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import AfterValidator, BaseModel, Field

from torouter.admin._common import (
    Body,
    Count,
    GatewayDep,
    ModelMap,
    Name,
    Page,
    Platform,
    Priority,
    given,
    reading,
    writing,
)
from torouter.admin._probe import TestResult, list_models
from torouter.catalog import account_from_row
from torouter.gateway import Gateway
from torouter.store.accounts import (
    create_account,
    delete_account,
    find_account,
    recent_errors,
    update_account,
)
from torouter.store.reports import accounts, set_account_status
from torouter.store.schema import UpstreamAccount

router = APIRouter(prefix="/upstreams", tags=["upstreams"])


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value


BaseUrl = Annotated[str | None, AfterValidator(_http_url)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class TimeoutsIn(Body):
    connect: Seconds = 10.0
    first_byte: Seconds = 300.0
    idle: Seconds = 300.0


class UpstreamCreate(Body):
    name: Name
    platform: Platform
    base_url: BaseUrl = Field(None, description="The platform's default when left out")
    api_key: str = Field(min_length=1, description="Write-only: never answered")
    weight: Count = 1
    priority: Priority = 0
    models: list[str] = Field(default_factory=list)
    model_map: ModelMap = Field(default_factory=dict)
    max_concurrency: Count = 0
    rpm: Count = 0
    tpm: Count = 0
    timeouts: TimeoutsIn | None = None


class UpstreamPatch(Body):
    platform: Platform = "openai"
    base_url: Annotated[str, AfterValidator(_http_url)] = ""
    api_key: str = Field("", min_length=1)
    weight: Count = 1
    priority: Priority = 0
    models: list[str] = Field(default_factory=list)
    model_map: ModelMap = Field(default_factory=dict)
    max_concurrency: Count = 0
    rpm: Count = 0
    tpm: Count = 0
    timeouts: TimeoutsIn = Field(default_factory=TimeoutsIn)


class Upstream(BaseModel):
    name: str
    platform: str
    base_url: str
    has_api_key: bool
    weight: int
    priority: int
    models: list[str]
    model_map: dict[str, str]
    max_concurrency: int
    rpm: int
    tpm: int
    timeouts: dict[str, float]
    status: str
    status_reason: str | None
    cooldown_until: float | None
    health: str = Field(description="healthy, cooldown or disabled")
    source: str
    created_at: float
    updated_at: float


class RecentError(BaseModel):
    created_at: float
    status: int = Field(description="The upstream's status; 0 when it did not answer")
    error: str | None
    model: str
    request_id: str


class UpstreamDetail(Upstream):
    recent_errors: list[RecentError]


def _upstream(gw: Gateway, row: UpstreamAccount) -> Upstream:
    """The stored state, with this process's newer view of a cooldown or a refused credential."""
    status, reason, until = row.status, row.status_reason, row.cooldown_until
    live = gw.catalog.snapshot.accounts.get(row.id)
    state = gw.health.state(live) if live is not None else None
    if state is not None and status == "active":
        if state.disabled_reason is not None:
            status, reason = "disabled", state.disabled_reason
        elif state.cooldown_until > (until or 0.0):
            until = state.cooldown_until
    cooling = status == "active" and until is not None and until > time.time()
    health = "cooldown" if cooling else "healthy" if status == "active" else "disabled"
    return Upstream(
        name=row.name,
        platform=row.platform,
        base_url=row.base_url,
        has_api_key=bool(row.credential),
        weight=row.weight,
        priority=row.priority,
        models=list(row.models or []),
        model_map=dict(row.model_map or {}),
        max_concurrency=row.max_concurrency,
        rpm=row.rpm,
        tpm=row.tpm,
        timeouts=dict(row.timeouts or {}),
        status=status,
        status_reason=reason,
        cooldown_until=until or None,
        health=health,
        source=row.source,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """Body fields -> account columns: api_key is the credential; timeouts a plain mapping."""
    if "api_key" in fields:
        fields["credential"] = fields.pop("api_key")
    if isinstance(fields.get("timeouts"), BaseModel):
        fields["timeouts"] = fields["timeouts"].model_dump(exclude_unset=True)
    return fields


@router.get("", response_model=Page[Upstream])
async def list_all(gw: GatewayDep) -> Page[Upstream]:
    async with reading(gw) as session:
        return Page[Upstream](data=[_upstream(gw, row) for row in await accounts(session)])


@router.post("", status_code=201, response_model=Upstream)
async def create(body: UpstreamCreate, gw: GatewayDep) -> Upstream:
    fields = _columns(given(body))
    del fields["name"], fields["platform"]
    async with writing(gw) as session:
        row = await create_account(session, body.name, body.platform, fields)
    return _upstream(gw, row)


@router.get("/{name}", response_model=UpstreamDetail)
async def get_one(name: str, gw: GatewayDep) -> UpstreamDetail:
    """One account, with its last 20 failed calls or attempts."""
    async with reading(gw) as session:
        row = await find_account(session, name)
        errors = await recent_errors(session, name)
    return UpstreamDetail(**_upstream(gw, row).model_dump(), recent_errors=errors)


@router.patch("/{name}", response_model=Upstream)
async def change(name: str, body: UpstreamPatch, gw: GatewayDep) -> Upstream:
    """Change the fields given, api_key too. One from the config file gets the file's values again at start-up."""
    async with writing(gw) as session:
        row = await update_account(session, name, _columns(given(body)))
    return _upstream(gw, row)


@router.post("/{name}/enable", response_model=Upstream)
async def enable(name: str, gw: GatewayDep) -> Upstream:
    async with writing(gw) as session:
        row = await set_account_status(session, name, "active")
    return _upstream(gw, row)


@router.post("/{name}/disable", response_model=Upstream)
async def disable(name: str, gw: GatewayDep) -> Upstream:
    async with writing(gw) as session:
        row = await set_account_status(session, name, "disabled")
    return _upstream(gw, row)


@router.delete("/{name}", status_code=204)
async def remove(name: str, gw: GatewayDep) -> Response:
    """Delete an account that no group uses (409 otherwise)."""
    async with writing(gw) as session:
        await delete_account(session, name)
    return Response(status_code=204)


@router.post("/{name}/test", response_model=TestResult)
async def test(name: str, gw: GatewayDep) -> TestResult:
    """List the upstream's models with its credential: whether the URL and the credential work."""
    async with reading(gw) as session:
        account = account_from_row(await find_account(session, name))
    return await list_models(gw.client.session, account)
