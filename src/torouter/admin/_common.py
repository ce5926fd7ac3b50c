"""What every admin route shares: field types, the gateway, writes that reach every replica, errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.catalog import announce_change
from torouter.config import BUDGET_PERIODS, PLATFORMS
from torouter.gateway import Gateway

log = logging.getLogger("torouter.admin")
T = TypeVar("T")


def _platform(value: str) -> str:
    if value not in PLATFORMS:
        raise ValueError(f"{value!r} is not a platform; use one of {', '.join(PLATFORMS)}")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Platform = Annotated[str, AfterValidator(_platform), Field(json_schema_extra={"enum": list(PLATFORMS)})]
Period = Annotated[str, Field(pattern=f"^({'|'.join(BUDGET_PERIODS)})$", examples=list(BUDGET_PERIODS))]
# The store's INTEGER columns hold 32 bits on PostgreSQL: a larger number is a 422, not a failed write.
MAX_INT = 2**31 - 1
Count = Annotated[int, Field(ge=0, le=MAX_INT, description="0: no limit")]
Priority = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]
KeyId = Annotated[int, Path(ge=0, le=MAX_INT)]
Usd = Annotated[float, Field(ge=0, allow_inf_nan=False)]
ModelMap = dict[Annotated[str, StringConstraints(min_length=1)], str]


class Body(BaseModel):
    """A request body: unknown fields are an error, so that a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    data: list[T]


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway


GatewayDep = Annotated[Gateway, Depends(gateway)]


@asynccontextmanager
async def reading(gw: Gateway) -> AsyncIterator[AsyncSession]:
    async with gw.sessions() as session:
        yield session


@asynccontextmanager
async def writing(gw: Gateway) -> AsyncIterator[AsyncSession]:
    """One transaction; once it commits, this process reloads its catalog and the others are told."""
    async with gw.sessions() as session, session.begin():
        yield session
    await announce_change(gw.settings.redis_url)
    try:
        await gw.catalog.refresh(force=True)
    except Exception as exc:  # committed: the next poll reloads it
        log.warning("catalog reload after an admin change failed: %s", type(exc).__name__)


def invalid(where: str, field: Sequence[str | int] | str, message: str) -> RequestValidationError:
    """A 422 for one field, in the shape FastAPI gives its own: loc, msg, type."""
    path = [field] if isinstance(field, str) else list(field)
    return RequestValidationError([{"loc": (where, *path), "msg": message, "type": "value_error"}])


def given(body: BaseModel) -> dict[str, Any]:
    """The fields the request set, nulls included (a PATCH changes only these)."""
    return {name: getattr(body, name) for name in body.model_fields_set}
