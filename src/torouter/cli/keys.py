"""`torouter keys`: create, update, list, show and revoke client API keys."""

from __future__ import annotations

import math
import sys
import time
from typing import Annotated, Any

import typer
from rich.table import Table

from torouter.cli.common import ConfigOpt, bad_option, out, parse_duration, run_store, settings_or_exit

app = typer.Typer(help="Create, list, show, update and revoke client API keys.", no_args_is_help=True)


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


def _money(usd: float) -> str:
    """$3.20, $10.00; small amounts keep their digits ($0.0034), up to six decimals."""
    whole, _, frac = f"{usd:.6f}".rstrip("0").partition(".")
    return f"${whole}.{frac.ljust(2, '0')}"


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


@app.command("create")
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


@app.command("update")
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


@app.command("list")
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


@app.command("show")
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


@app.command("revoke")
def keys_revoke(ref: RefArg, config: ConfigOpt = None) -> None:
    """Revoke a key. Running gateways stop accepting it within 2 seconds."""
    from torouter.store.keys import revoke_key

    k = run_store(settings_or_exit(config), lambda s: revoke_key(s, ref))
    out.print(f"Revoked key {k.id} ({k.prefix}…).", markup=False, highlight=False)
