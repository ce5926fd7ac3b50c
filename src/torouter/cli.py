"""The `torouter` command: serve the gateway and manage its keys, groups, upstreams, prices and usage."""

from __future__ import annotations

import asyncio
import json
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from torouter.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="ToRouter: one gateway for the OpenAI, Anthropic and Gemini APIs, with keys, groups and usage.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Create, list, show, update and revoke client API keys.", no_args_is_help=True)
groups_app = typer.Typer(
    help="Inspect groups (a group names a platform and its pool of upstream accounts).", no_args_is_help=True
)
upstreams_app = typer.Typer(
    help="Inspect upstream accounts (vendor credentials and base URLs).", no_args_is_help=True
)
prices_app = typer.Typer(
    help="List and edit model prices (USD per million tokens), which cost calls and budgets.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")
app.add_typer(groups_app, name="groups")
app.add_typer(upstreams_app, name="upstreams")
app.add_typer(prices_app, name="prices")

# Piped output (scripts, tests) gets wide tables instead of Rich's 80-column wrapping.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 250)
err = Console(stderr=True, soft_wrap=True, width=None if sys.stderr.isatty() else 250)
T = TypeVar("T")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML config file (default: $TOROUTER_CONFIG, else built-in defaults)."
    ),
]


def settings_or_exit(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        err.print(f"torouter: config error: {exc}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def run_store(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store, migrate and sync the config, run `work(session)` in one transaction."""
    from torouter.catalog import announce_change
    from torouter.gateway import prepare_store
    from torouter.store.db import make_engine, sessionmaker
    from torouter.store.keys import StoreError

    async def main() -> T:
        engine = make_engine(settings.database_url)
        sessions = sessionmaker(engine)
        try:
            await prepare_store(engine, sessions, settings)
            async with sessions() as session, session.begin():
                result = await work(session)
            await announce_change(settings.redis_url)  # replicas reload at once, not at their next poll
            return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        err.print(f"torouter: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    except OSError as exc:
        err.print(
            f"torouter: cannot open the store at {settings.database_url}: {exc}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1) from None


def bad_option(message: str) -> NoReturn:
    """An invalid option: one line on stderr, exit 2 (as for an invalid config)."""
    err.print(f"torouter: {message}", markup=False, highlight=False)
    raise typer.Exit(2)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _money(usd: float) -> str:
    """$3.20, $10.00; small amounts keep their digits ($0.0034), up to six decimals."""
    whole, _, frac = f"{usd:.6f}".rstrip("0").partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


def _exact_usd(usd: float) -> str:
    """Four decimals, or as many as it takes to print the stored value exactly."""
    text = f"{usd:.4f}"
    return text if float(text) == usd else format(Decimal(repr(usd)), "f")


def _number(value: float) -> str:
    """A price as stored, without a float's trailing .0: 2.5, 10, 0.075."""
    return format(Decimal(repr(float(value))), "f").removesuffix(".0")


def parse_duration(text: str, option: str = "--since") -> float:
    """'30d', '12h', '45m', '90s' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        bad_option(f"{option} {text!r} is not a duration; write it like 30d, 12h, 45m or 90s")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def parse_models(text: str) -> tuple[str, ...]:
    return tuple(m.strip() for m in text.split(",") if m.strip())


PERIODS = ("daily", "weekly", "monthly")


def key_limits(
    budget: float | None, period: str | None, rpm: int | None, tpm: int | None, concurrency: int | None
) -> dict[str, Any]:
    """The limit options that were given, checked, as api_keys columns."""
    values: dict[str, Any] = {}
    if budget is not None:
        if not (math.isfinite(budget) and budget > 0):
            bad_option(f"--budget must be an amount of USD above 0, not {budget:g}")
        values["budget_usd"] = budget
    if period is not None:
        chosen = period.strip().lower()
        if chosen not in (*PERIODS, "none"):
            bad_option(f"--budget-period must be daily, weekly, monthly or none, not {period!r}")
        values["budget_period"] = None if chosen == "none" else chosen
    counts = (
        ("--rpm", "rpm", rpm),
        ("--tpm", "tpm", tpm),
        ("--max-concurrency", "max_concurrency", concurrency),
    )
    for option, column, value in counts:
        if value is not None:
            if value < 0:
                bad_option(f"{option} must be 0 (no limit) or more, not {value}")
            values[column] = value
    return values


BudgetOpt = Annotated[
    float | None, typer.Option("--budget", metavar="USD", help="Spending cap in USD, above 0.")
]
PeriodOpt = Annotated[
    str | None,
    typer.Option(
        "--budget-period",
        metavar="daily|weekly|monthly",
        help="When the budget resets (UTC midnight, Monday, the 1st). Without it the budget never resets.",
    ),
]
RpmOpt = Annotated[int | None, typer.Option("--rpm", metavar="N", help="Requests per minute; 0: no limit.")]
TpmOpt = Annotated[int | None, typer.Option("--tpm", metavar="N", help="Tokens per minute; 0: no limit.")]
ConcurrencyOpt = Annotated[
    int | None,
    typer.Option("--max-concurrency", metavar="N", help="Calls in flight at once; 0: no limit."),
]
ExpiresOpt = Annotated[
    str | None, typer.Option("--expires-in", help="Expire after this long from now, e.g. 30d or 12h.")
]
ModelsOpt = Annotated[
    str | None,
    typer.Option("--models", help="Comma-separated models the key may call (wildcards allowed)."),
]
RefArg = Annotated[str, typer.Argument(help="Key id, prefix, name or full value.")]


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Run the gateway. With no config it serves on 127.0.0.1:8080 with SQLite in ./torouter.db."""
    settings = settings_or_exit(config)
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    if log_level:
        settings.log_level = log_level
    from torouter.server import run

    run(settings)


@keys_app.command("create")
def keys_create(
    group: Annotated[str, typer.Option("--group", "-g", help="The group the key belongs to.")],
    name: Annotated[str, typer.Option("--name", "-n", help="A name to recognise the key by.")] = "",
    budget: BudgetOpt = None,
    budget_period: PeriodOpt = None,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    expires_in: ExpiresOpt = None,
    models: ModelsOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key. Its full value is printed once, alone on the last line of stdout."""
    from torouter.store.keys import KeyOptions, create_key

    limits = key_limits(budget, budget_period, rpm, tpm, max_concurrency)
    if budget_period is not None and budget is None:
        bad_option("--budget-period needs --budget (the amount that resets each period)")
    expires_at = time.time() + parse_duration(expires_in, "--expires-in") if expires_in else None
    settings = settings_or_exit(config)
    options = KeyOptions(
        name=name, expires_at=expires_at, allowed_models=parse_models(models or ""), **limits
    )
    row, key = run_store(settings, lambda s: create_key(s, group, options))
    out.print(
        f"Created key {row.id} ({row.prefix}…) in group {group}. Store it now: it is not shown again.",
        markup=False,
        highlight=False,
    )
    sys.stdout.flush()
    print(key)


_CHANGE_LABELS = {
    "budget_usd": "budget",
    "budget_period": "budget period",
    "max_concurrency": "max concurrency",
    "allowed_models": "models",
    "expires_at": "expiry",
}


@keys_app.command("update")
def keys_update(
    ref: RefArg,
    name: Annotated[str | None, typer.Option("--name", "-n", help="A new name.")] = None,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Move the key to this group.")] = None,
    budget: BudgetOpt = None,
    budget_period: Annotated[
        str | None,
        typer.Option(
            "--budget-period",
            metavar="daily|weekly|monthly|none",
            help="When the budget resets; none: never. Needs a budget, given now or already set.",
        ),
    ] = None,
    no_budget: Annotated[bool, typer.Option("--no-budget", help="Remove the budget.")] = False,
    rpm: RpmOpt = None,
    tpm: TpmOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    expires_in: ExpiresOpt = None,
    no_expiry: Annotated[bool, typer.Option("--no-expiry", help="The key never expires.")] = False,
    models: Annotated[
        str | None,
        typer.Option(
            "--models", help="Comma-separated models the key may call; '' allows all the group serves."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Change a key's settings: only the options given change. Running gateways follow within 2 seconds."""
    from torouter.store.keys import update_key

    changes = key_limits(budget, budget_period, rpm, tpm, max_concurrency)
    if no_budget:
        if budget is not None or budget_period is not None:
            bad_option("--no-budget cannot go with --budget or --budget-period")
        changes["budget_usd"] = None
    if expires_in is not None and no_expiry:
        bad_option("--no-expiry cannot go with --expires-in")
    if expires_in is not None:
        changes["expires_at"] = time.time() + parse_duration(expires_in, "--expires-in")
    if no_expiry:
        changes["expires_at"] = None
    if models is not None:
        changes["allowed_models"] = parse_models(models)
    if name is not None:
        changes["name"] = name
    if group is not None:
        changes["group"] = group
    if not changes:
        bad_option("nothing to change: give at least one option (see `torouter keys update --help`)")
    settings = settings_or_exit(config)
    k, _ = run_store(settings, lambda s: update_key(s, ref, changes))
    labels = ", ".join(_CHANGE_LABELS.get(c, c) for c in changes)
    out.print(f"Updated key {k.id} ({k.prefix}…): {labels}.", markup=False, highlight=False)


def _limit(value: int) -> str:
    return str(value) if value else "none"


def _budget(budget: float | None, period: str | None, spent: float | None = None) -> str:
    """$10.00 daily; with the spend, $3.20/$10.00 daily. A budget with no period says `total`."""
    if budget is None:
        return "-" if spent is not None else "none"
    amount = _money(budget) if spent is None else f"{_money(spent)}/{_money(budget)}"
    return f"{amount} {period or 'total'}"


async def _with_spend(session: Any, keys: list[tuple[Any, str]], every: bool) -> dict[int, float]:
    """Each key's spend in its current budget period (all time for a budget that never resets)."""
    from torouter.accounting.limits import period_start
    from torouter.store.reports import key_spends

    now = time.time()
    starts = {
        k.id: float(period_start(k.budget_period, now)) for k, _ in keys if every or k.budget_usd is not None
    }
    return await key_spends(session, starts)


@keys_app.command("list")
def keys_list(config: ConfigOpt = None) -> None:
    """List keys: id, prefix, name, group, status, expiry and budget (never the key itself)."""
    from torouter.store.keys import list_keys

    async def work(session: Any) -> tuple[list[tuple[Any, str]], dict[int, float]]:
        rows = await list_keys(session)
        return rows, await _with_spend(session, rows, every=False)

    rows, spent = run_store(settings_or_exit(config), work)
    table = Table("id", "prefix", "name", "group", "status", "created", "expires", "budget")
    for k, group in rows:
        table.add_row(
            str(k.id),
            k.prefix + "…",
            k.name,
            group,
            k.status,
            _when(k.created_at),
            _when(k.expires_at),
            _budget(k.budget_usd, k.budget_period, spent.get(k.id, 0.0)),
        )
    out.print(table)


@keys_app.command("show")
def keys_show(ref: RefArg, config: ConfigOpt = None) -> None:
    """Show one key's settings, limits, and its spend in the current budget period."""
    from torouter.accounting.limits import period_end, period_start
    from torouter.store.keys import find_key

    async def work(session: Any) -> tuple[Any, str, float]:
        k, group = await find_key(session, ref)
        return k, group, (await _with_spend(session, [(k, group)], every=True))[k.id]

    k, group, spent = run_store(settings_or_exit(config), work)
    start = period_start(k.budget_period, time.time())
    if k.budget_period:
        spent_text = f"{_money(spent)} since {_utc(start)}"
        resets = _utc(period_end(k.budget_period, start))
    else:
        spent_text, resets = f"{_money(spent)} (all time)", "never" if k.budget_usd is not None else "-"
    table = Table("field", "value", show_header=False)
    for label, value in (
        ("id", k.id),
        ("prefix", k.prefix + "…"),
        ("name", k.name),
        ("group", group),
        ("status", k.status),
        ("created", _when(k.created_at)),
        ("updated", _when(k.updated_at)),
        ("expires", _when(k.expires_at)),
        ("revoked", _when(k.revoked_at)),
        ("models", ", ".join(k.allowed_models or []) or "all the group serves"),
        ("rpm", _limit(k.rpm)),
        ("tpm", _limit(k.tpm)),
        ("max concurrency", _limit(k.max_concurrency)),
        ("budget", _budget(k.budget_usd, k.budget_period)),
        ("spent", spent_text),
        ("budget resets", resets),
    ):
        table.add_row(label, str(value))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(ref: RefArg, config: ConfigOpt = None) -> None:
    """Revoke a key. Running gateways stop accepting it within 2 seconds."""
    from torouter.store.keys import revoke_key

    k = run_store(settings_or_exit(config), lambda s: revoke_key(s, ref))
    out.print(f"Revoked key {k.id} ({k.prefix}…).", markup=False, highlight=False)


@groups_app.command("list")
def groups_list(config: ConfigOpt = None) -> None:
    """List groups with their platform, upstream accounts and model mapping."""
    from torouter.store.reports import groups_with_accounts

    rows = run_store(settings_or_exit(config), groups_with_accounts)
    table = Table("name", "platform", "upstreams", "models", "aliases")
    for g, names in rows:
        models = ", ".join(f"{k}→{v}" if k != v else k for k, v in (g.models or {}).items()) or "any"
        aliases = ", ".join(f"{k}→{v}" for k, v in (g.aliases or {}).items()) or "-"
        table.add_row(g.name, g.platform, ", ".join(names), models, aliases)
    out.print(table)


@upstreams_app.command("list")
def upstreams_list(config: ConfigOpt = None) -> None:
    """List upstream accounts with platform, base URL, weight, priority and health (never the credential)."""
    from torouter.store.reports import accounts

    rows = run_store(settings_or_exit(config), accounts)
    table = Table("name", "platform", "base_url", "weight", "priority", "health", "models")
    now = time.time()
    for a in rows:
        if a.status != "active":
            health = f"{a.status} ({a.status_reason})" if a.status_reason else a.status
        elif a.cooldown_until and a.cooldown_until > now:
            reason = f" ({a.status_reason})" if a.status_reason else ""
            health = f"cooldown {a.cooldown_until - now:.0f}s{reason}"
        else:
            health = "healthy"
        models = ", ".join(a.models or []) or "any"
        table.add_row(a.name, a.platform, a.base_url, str(a.weight), str(a.priority), health, models)
    out.print(table)


@upstreams_app.command("enable")
def upstreams_enable(
    name: Annotated[str, typer.Argument(help="The upstream account's name.")], config: ConfigOpt = None
) -> None:
    """Put an account back in service (after its upstream refused the credential). Gateways see it within 2 s."""
    from torouter.store.reports import set_account_status

    run_store(settings_or_exit(config), lambda s: set_account_status(s, name, "active"))
    out.print(f"Enabled upstream {name}.", markup=False, highlight=False)


@upstreams_app.command("disable")
def upstreams_disable(
    name: Annotated[str, typer.Argument(help="The upstream account's name.")], config: ConfigOpt = None
) -> None:
    """Take an account out of service. Gateways stop choosing it within 2 s."""
    from torouter.store.reports import set_account_status

    run_store(settings_or_exit(config), lambda s: set_account_status(s, name, "disabled"))
    out.print(f"Disabled upstream {name}.", markup=False, highlight=False)


@prices_app.command("list")
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


@prices_app.command("set")
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


@prices_app.command("reset")
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


def parse_by(text: str) -> list[str]:
    from torouter.store.reports import USAGE_DIMENSIONS

    dims = [d.strip().lower() for d in text.split(",")]
    if not all(d in USAGE_DIMENSIONS for d in dims) or len(set(dims)) != len(dims):
        bad_option(
            f"--by {text!r}: use key, group, model or account, or several joined by commas (key,model)"
        )
    return dims


def _measures(r: dict[str, Any]) -> list[str]:
    return [
        str(r["calls"]),
        str(r["errors"]),
        str(r["input_tokens"]),
        str(r["output_tokens"]),
        str(r["cached_tokens"]),
        str(r["cache_write_tokens"]),
        _exact_usd(r["cost_usd"]),
        str(r["estimated"]),
        f"{r['mean_latency_ms']:.1f}",
    ]


@app.command()
def usage(
    since: Annotated[str | None, typer.Option(help="Only calls newer than this, e.g. 24h or 7d.")] = None,
    by: Annotated[
        str, typer.Option("--by", help="One row per key, group, model or account; or several: key,model.")
    ] = "key",
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows and the total as JSON.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Print usage per key (or group, model, account): calls, errors, tokens, cost and mean latency."""
    from torouter.store.reports import usage_by, usage_total

    dims = parse_by(by)
    cutoff = time.time() - parse_duration(since) if since else None

    async def work(session: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await usage_by(session, dims, cutoff), await usage_total(session, cutoff)

    rows, total = run_store(settings_or_exit(config), work)
    if as_json:
        sys.stdout.write(
            json.dumps({"by": dims, "since": cutoff, "rows": rows, "total": total}, indent=2) + "\n"
        )
        return
    with_models = "key" in dims and "model" not in dims  # which models each key called
    labels = [*dims, "models"] if with_models else dims
    measures = (
        "calls",
        "errors",
        "input",
        "output",
        "cached",
        "cache write",
        "cost USD",
        "estimated",
        "mean ms",
    )
    table = Table(*labels, *measures)
    for r in rows:
        models = [", ".join(r["models"]) or "-"] if with_models else []
        table.add_row(*(str(r[d] or "-") for d in dims), *models, *_measures(r))
    table.add_section()
    table.add_row("TOTAL", *[""] * (len(labels) - 1), *_measures(total))
    out.print(table)


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
) -> None:
    """Run the vendor emulator alone: a fake OpenAI, Anthropic and Gemini API for tests and demos."""
    from torouter.emulator import serve as serve_emulator

    serve_emulator(host=host, port=port)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port for the gateway.")] = 8080,
    emulator_port: Annotated[int, typer.Option(help="Port for the vendor emulator.")] = 9100,
    database: Annotated[
        str, typer.Option(help="Store for the demo.")
    ] = "sqlite+aiosqlite:///./torouter-demo.db",
) -> None:
    """Start the gateway with the vendor emulator as its upstream and print ready keys: no vendor account needed."""
    from torouter.demo import run_demo

    run_demo(port=port, emulator_port=emulator_port, database_url=database)


def main() -> None:
    app()
