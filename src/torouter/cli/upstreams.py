"""`torouter groups` and `torouter upstreams`: the groups and the upstream accounts that serve them."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from torouter.cli.common import ConfigOpt, out, run_store, settings_or_exit

groups_app = typer.Typer(
    help="Inspect groups (a group names a platform and its pool of upstream accounts).", no_args_is_help=True
)
upstreams_app = typer.Typer(
    help="Inspect upstream accounts (vendor credentials and base URLs).", no_args_is_help=True
)


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
