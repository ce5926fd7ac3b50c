"""`torouter prices`: list, set and reset model prices (USD per million tokens)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.table import Table

from torouter.cli.common import ConfigOpt, bad_option, err, out, run_store, settings_or_exit

app = typer.Typer(
    help="List and edit model prices (USD per million tokens), which cost calls and budgets.",
    no_args_is_help=True,
)


def _number(value: float) -> str:
    """A price as stored, without a float's trailing .0: 2.5, 10, 0.075."""
    return format(Decimal(repr(float(value))), "f").removesuffix(".0")


@app.command("list")
def prices_list(
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Only models whose id contains this (any case).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """List model prices in USD per million tokens: shipped (`default`) and edited (`custom`)."""
    from torouter.accounting.prices import load_default_prices
    from torouter.store.prices import list_prices

    rows = run_store(settings_or_exit(config), list_prices)
    if model:
        rows = [r for r in rows if model.lower() in r.model.lower()]
        if not rows:
            err.print(f"torouter: no priced model contains {model!r}", markup=False, highlight=False)
            raise typer.Exit(1)
    _, as_of = load_default_prices()
    table = Table(
        "model",
        "input",
        "output",
        "cache read",
        "cache write 5m",
        "cache write 1h",
        "long context",
        "source",
        caption=f"USD per million tokens. Shipped prices checked {as_of}.",
    )
    for r in rows:
        lc = r.long_context
        long_context = (
            f"over {lc['threshold']}: {_number(lc['input'])} / {_number(lc['output'])}" if lc else "-"
        )
        rates = (r.input, r.output, r.cache_read, r.cache_write, r.cache_write_1h)
        table.add_row(r.model, *(_number(x) for x in rates), long_context, r.source)
    out.print(table)


@app.command("set")
def prices_set(
    model: Annotated[str, typer.Argument(help="The model id, as clients or upstreams send it.")],
    input_: Annotated[float | None, typer.Option("--input", help="Input tokens.")] = None,
    output: Annotated[float | None, typer.Option("--output", help="Output tokens.")] = None,
    cache_read: Annotated[float | None, typer.Option("--cache-read", help="Cache reads.")] = None,
    cache_write: Annotated[
        float | None, typer.Option("--cache-write", help="Cache writes (5-minute, or the only kind).")
    ] = None,
    cache_write_1h: Annotated[
        float | None, typer.Option("--cache-write-1h", help="1-hour cache writes.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Set a model's prices in USD per million tokens; the others stay. A new model needs --input and --output."""
    from torouter.store.keys import StoreError
    from torouter.store.prices import set_price

    values: dict[str, float] = {}
    given = (
        ("--input", "input", input_),
        ("--output", "output", output),
        ("--cache-read", "cache_read", cache_read),
        ("--cache-write", "cache_write", cache_write),
        ("--cache-write-1h", "cache_write_1h", cache_write_1h),
    )
    for option, field, value in given:
        if value is not None:
            if not (math.isfinite(value) and value >= 0):
                bad_option(f"{option} must be a price of 0 or more (USD per million tokens), not {value:g}")
            values[field] = value
    if not model.strip():
        bad_option("MODEL must not be empty")
    if not values:
        bad_option("nothing to set: give --input, --output, --cache-read, --cache-write or --cache-write-1h")

    async def work(session: Any) -> Any:
        try:
            return await set_price(session, model.strip(), values)
        except ValueError as exc:
            raise StoreError(str(exc)) from None

    r = run_store(settings_or_exit(config), work)
    rates = ", ".join(
        f"{label} {_number(getattr(r, field))}"
        for label, field in (
            ("input", "input"),
            ("output", "output"),
            ("cache read", "cache_read"),
            ("cache write 5m", "cache_write"),
            ("cache write 1h", "cache_write_1h"),
        )
    )
    out.print(f"Set {r.model} (custom): {rates} USD per million tokens.", markup=False, highlight=False)


@app.command("reset")
def prices_reset(
    model: Annotated[str, typer.Argument(help="The model id, as `torouter prices list` shows it.")],
    config: ConfigOpt = None,
) -> None:
    """Put a model back to its shipped price; a model ToRouter ships no price for loses its price."""
    from torouter.accounting.prices import load_default_prices
    from torouter.store.keys import StoreError
    from torouter.store.prices import reset_price

    async def work(session: Any) -> bool:
        if not await reset_price(session, model):
            raise StoreError(f"no price is set for {model!r}; see `torouter prices list`")
        return model in load_default_prices()[0]

    if run_store(settings_or_exit(config), work):
        out.print(f"Reset {model} to its shipped price.", markup=False, highlight=False)
    else:
        out.print(
            f"Removed the price of {model}: ToRouter ships none for it, so its calls cost 0.",
            markup=False,
            highlight=False,
        )
