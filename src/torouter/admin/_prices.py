"""/admin/api/prices: the price table (USD per million tokens) that costs calls and budgets."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from sqlalchemy import select

from torouter.admin._common import Body, GatewayDep, Page, Usd, given, invalid, reading, writing
from torouter.store.errors import NotFound
from torouter.store.prices import list_prices, reset_price, set_price
from torouter.store.schema import ModelPrice

router = APIRouter(prefix="/prices", tags=["prices"])


class PriceIn(Body):
    input: Usd = 0.0
    output: Usd = 0.0
    cache_read: Usd = Field(0.0, description="Defaults to input for a new model")
    cache_write: Usd = Field(0.0, description="Defaults to input for a new model")
    cache_write_1h: Usd = Field(0.0, description="Defaults to cache_write for a new model")


class LongContext(BaseModel):
    threshold: int
    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float


class Price(BaseModel):
    model: str
    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    long_context: LongContext | None = Field(description="The rates above `threshold` prompt tokens")
    source: str = Field(description="default (shipped) or custom (edited)")
    updated_at: float


def _price(row: ModelPrice) -> Price:
    return Price(
        model=row.model,
        input=row.input,
        output=row.output,
        cache_read=row.cache_read,
        cache_write=row.cache_write,
        cache_write_1h=row.cache_write_1h,
        long_context=row.long_context,
        source=row.source,
        updated_at=row.updated_at,
    )


@router.get("", response_model=Page[Price])
async def list_all(gw: GatewayDep, model: str | None = None) -> Page[Price]:
    """Every price; `model` keeps the models whose id contains it (any case)."""
    async with reading(gw) as session:
        rows = await list_prices(session)
    if model:
        rows = [r for r in rows if model.lower() in r.model.lower()]
    return Page[Price](data=[_price(r) for r in rows])


@router.put("/{model:path}", response_model=Price)
async def put(model: str, body: PriceIn, gw: GatewayDep) -> Price:
    """Set some or all rates; a model with no price yet needs input and output. The price becomes custom."""
    values = given(body)
    if not values:
        raise invalid(
            "body", [], "give at least one of input, output, cache_read, cache_write, cache_write_1h"
        )
    async with writing(gw) as session:
        if await session.get(ModelPrice, model) is None:
            missing = [name for name in ("input", "output") if name not in values]
            if missing:
                raise _missing(model, missing)
        row = await set_price(session, model, values)
    return _price(row)


def _missing(model: str, fields: list[str]) -> RequestValidationError:
    message = f"{model!r} has no price yet: give input and output"
    return RequestValidationError([{"loc": ("body", f), "msg": message, "type": "missing"} for f in fields])


@router.delete("/{model:path}", response_model=Price | None)
async def reset(model: str, gw: GatewayDep) -> Price | Response:
    """Back to the shipped price (answered), or no price when none is shipped (204)."""
    async with writing(gw) as session:
        if not await reset_price(session, model):
            raise NotFound(f"no price is set for {model!r}", "price")
        row = (await session.execute(select(ModelPrice).where(ModelPrice.model == model))).scalar()
        price = None if row is None else _price(row)
    return Response(status_code=204) if price is None else price
