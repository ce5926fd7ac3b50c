"""The price table in the store: seeded from the shipped defaults, edited with `torouter prices`."""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from torouter.accounting.prices import Price, load_default_prices, price_from_dict, price_to_dict
from torouter.store.schema import ModelPrice

_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "long_context")


def _values(price: Price) -> dict[str, object]:
    data = price_to_dict(price)
    return {name: data.get(name) for name in _FIELDS}


async def seed_prices(session: AsyncSession) -> None:
    """Add the shipped prices; refresh rows still at their default. Edited (`custom`) rows are kept."""
    defaults, _ = load_default_prices()
    rows = {p.model: p for p in (await session.execute(select(ModelPrice))).scalars()}
    now = time.time()
    for model, price in defaults.items():
        values = _values(price)
        row = rows.get(model)
        if row is None:
            session.add(ModelPrice(model=model, source="default", updated_at=now, **values))
        elif row.source == "default" and any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            row.updated_at = now


def row_price(row: ModelPrice) -> Price:
    return price_from_dict({name: getattr(row, name) for name in _FIELDS})


async def load_prices(session: AsyncSession) -> dict[str, Price]:
    return {row.model: row_price(row) for row in (await session.execute(select(ModelPrice))).scalars()}


async def list_prices(session: AsyncSession) -> list[ModelPrice]:
    return list((await session.execute(select(ModelPrice).order_by(ModelPrice.model))).scalars())


async def set_price(session: AsyncSession, model: str, values: dict[str, float]) -> ModelPrice:
    """Set some or all of a model's prices (USD per million tokens); the row becomes `custom`."""
    row = await session.get(ModelPrice, model)
    now = time.time()
    if row is None:
        if "input" not in values or "output" not in values:
            raise ValueError(f"{model!r} has no price yet: give at least --input and --output")
        full = {
            "input": values["input"],
            "output": values["output"],
            "cache_read": values.get("cache_read", values["input"]),
            "cache_write": values.get("cache_write", values["input"]),
            "cache_write_1h": values.get("cache_write_1h", values.get("cache_write", values["input"])),
        }
        row = ModelPrice(model=model, source="custom", updated_at=now, long_context=None, **full)
        session.add(row)
    else:
        for k, v in values.items():
            setattr(row, k, v)
        row.source, row.updated_at = "custom", now
    await session.flush()
    return row


async def reset_price(session: AsyncSession, model: str) -> bool:
    """Back to the shipped price (or no price, for a model the defaults do not know)."""
    defaults, _ = load_default_prices()
    row = await session.get(ModelPrice, model)
    if row is None:
        return False
    price = defaults.get(model)
    if price is None:
        await session.execute(delete(ModelPrice).where(ModelPrice.model == model))
    else:
        for k, v in _values(price).items():
            setattr(row, k, v)
        row.source, row.updated_at = "default", time.time()
    return True
