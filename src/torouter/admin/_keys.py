"""/admin/api/keys: client API keys. The full key is answered once, by the create call."""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.accounting.limits import period_start
from torouter.admin._common import (
    Body,
    Count,
    GatewayDep,
    KeyId,
    Name,
    Page,
    Period,
    Usd,
    given,
    invalid,
    reading,
    writing,
)
from torouter.store.errors import NotFound
from torouter.store.keys import KeyOptions, create_key, find_key, list_keys, revoke_key, update_key
from torouter.store.reports import key_spends
from torouter.store.schema import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"])
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds(value: Any) -> Any:
    """30d, 12h, 45m, 90s or a number of seconds -> seconds (above 0)."""
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if not m:
            raise ValueError(f"{value!r} is not a duration; write it like 30d, 12h, 45m, 90s or 3600")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    return value


Duration = Annotated[
    float,
    BeforeValidator(_seconds),
    Field(gt=0, allow_inf_nan=False, description="30d, 12h, 45m, 90s or seconds", examples=["30d"]),
]

# Python's JSON reader takes NaN and Infinity; a key would then never expire, and answer invalid JSON.
Timestamp = Annotated[float, Field(allow_inf_nan=False, description="Unix seconds")]


class KeyCreate(Body):
    group: Name
    name: str = Field("", max_length=200)
    budget_usd: Usd | None = None
    budget_period: Period | None = None
    rpm: Count = 0
    tpm: Count = 0
    max_concurrency: Count = 0
    expires_in: Duration | None = None
    expires_at: Timestamp | None = None
    models: list[str] = Field(default_factory=list, description="Models the key may call; [] for all")


class KeyPatch(Body):
    group: Name | None = None
    name: str = Field("", max_length=200)
    budget_usd: Usd | None = None
    budget_period: Period | None = None
    rpm: Count = 0
    tpm: Count = 0
    max_concurrency: Count = 0
    expires_in: Duration | None = None
    expires_at: Timestamp | None = None
    models: list[str] = Field(default_factory=list)


class Key(BaseModel):
    id: int
    prefix: str
    name: str
    group: str
    status: str = Field(description="active, revoked or expired")
    created_at: float
    updated_at: float
    expires_at: float | None
    revoked_at: float | None
    budget_usd: float | None
    budget_period: str | None
    spent_usd: float = Field(description="Spend since period_start: this budget period, or all time")
    period_start: float = Field(description="0 when spent_usd is of all time")
    rpm: int
    tpm: int
    max_concurrency: int
    models: list[str]


class CreatedKey(Key):
    key: str = Field(description="The full key: shown this once, never again")


async def _keys(session: AsyncSession, rows: list[tuple[ApiKey, str]]) -> list[Key]:
    now = time.time()
    starts = {k.id: float(period_start(k.budget_period, now)) for k, _ in rows}
    spent = await key_spends(session, starts)
    return [
        Key(
            id=k.id,
            prefix=k.prefix,
            name=k.name,
            group=group,
            status="expired" if k.status == "active" and k.expires_at and k.expires_at <= now else k.status,
            created_at=k.created_at,
            updated_at=k.updated_at,
            expires_at=k.expires_at,
            revoked_at=k.revoked_at,
            budget_usd=k.budget_usd,
            budget_period=k.budget_period,
            spent_usd=spent[k.id],
            period_start=starts[k.id],
            rpm=k.rpm,
            tpm=k.tpm,
            max_concurrency=k.max_concurrency,
            models=list(k.allowed_models or []),
        )
        for k, group in rows
    ]


def _expiry(body: KeyCreate | KeyPatch) -> dict[str, float | None]:
    fields = body.model_fields_set
    if "expires_in" in fields and "expires_at" in fields:
        raise invalid("body", "expires_in", "give expires_in or expires_at, not both")
    if "expires_in" in fields:
        return {"expires_at": None if body.expires_in is None else time.time() + body.expires_in}
    if "expires_at" in fields:
        return {"expires_at": body.expires_at}
    return {}


@router.get("", response_model=Page[Key])
async def list_all(gw: GatewayDep) -> Page[Key]:
    async with reading(gw) as session:
        return Page[Key](data=await _keys(session, await list_keys(session)))


@router.post("", status_code=201, response_model=CreatedKey)
async def create(body: KeyCreate, gw: GatewayDep) -> CreatedKey:
    """Create a key. The answer holds its full value under `key`: store it, it is not shown again."""
    options = KeyOptions(
        name=body.name,
        budget_usd=body.budget_usd,
        budget_period=body.budget_period,
        rpm=body.rpm,
        tpm=body.tpm,
        max_concurrency=body.max_concurrency,
        allowed_models=tuple(body.models),
        **_expiry(body),
    )
    async with writing(gw) as session:
        try:
            row, full = await create_key(session, body.group, options)
        except NotFound as exc:
            raise invalid("body", "group", str(exc)) from None
        (key,) = await _keys(session, [(row, body.group)])
    return CreatedKey(**key.model_dump(), key=full)


@router.get("/{key_id}", response_model=Key)
async def get_one(key_id: KeyId, gw: GatewayDep) -> Key:
    async with reading(gw) as session:
        (key,) = await _keys(session, [await find_key(session, str(key_id))])
    return key


@router.patch("/{key_id}", response_model=Key)
async def change(key_id: KeyId, body: KeyPatch, gw: GatewayDep) -> Key:
    """Change the fields given. null clears budget_usd, budget_period and expires_at; [] clears models; 0 a limit."""
    changes = given(body)
    for name in ("expires_in", "expires_at"):
        changes.pop(name, None)
    changes.update(_expiry(body))
    if "models" in changes:
        changes["allowed_models"] = tuple(changes.pop("models"))
    if "group" in changes and changes["group"] is None:
        raise invalid("body", "group", "a key always belongs to a group; give a group name")
    async with writing(gw) as session:
        await find_key(session, str(key_id))  # 404 before any check of the body's references
        try:
            row, group = await update_key(session, str(key_id), changes)
        except NotFound as exc:
            raise invalid("body", "group", str(exc)) from None
        (key,) = await _keys(session, [(row, group)])
    return key


@router.post("/{key_id}/revoke", response_model=Key)
async def revoke(key_id: KeyId, gw: GatewayDep) -> Key:
    """Revoke the key: running gateways refuse it at once (replicas within key_refresh_interval)."""
    async with writing(gw) as session:
        row, group = await find_key(session, str(key_id))
        if row.status != "revoked":
            row = await revoke_key(session, str(key_id))
        (key,) = await _keys(session, [(row, group)])
    return key
