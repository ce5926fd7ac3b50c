"""The `torouter` command: serve the gateway and manage its keys, groups, upstreams and usage."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from torouter.config import ConfigError, Settings, load_settings

app = typer.Typer(
    help="ToRouter: one gateway for the OpenAI, Anthropic and Gemini APIs, with keys, groups and usage.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Create, list, show and revoke client API keys.", no_args_is_help=True)
groups_app = typer.Typer(
    help="Inspect groups (a group names a platform and its pool of upstream accounts).", no_args_is_help=True
)
upstreams_app = typer.Typer(
    help="Inspect upstream accounts (vendor credentials and base URLs).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")
app.add_typer(groups_app, name="groups")
app.add_typer(upstreams_app, name="upstreams")

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
    from torouter.gateway import prepare_store
    from torouter.store.db import make_engine, sessionmaker
    from torouter.store.keys import StoreError

    async def main() -> T:
        engine = make_engine(settings.database_url)
        sessions = sessionmaker(engine)
        try:
            await prepare_store(engine, sessions, settings)
            async with sessions() as session, session.begin():
                return await work(session)
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


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def parse_duration(text: str) -> float:
    """'30d', '12h', '45m', '90s' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration; write it like 30d, 12h, 45m or 90s")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


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
    expires_in: Annotated[str | None, typer.Option(help="Expire after this long, e.g. 30d or 12h.")] = None,
    models: Annotated[
        str | None, typer.Option(help="Comma-separated models the key may call (wildcards allowed).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key. Its full value is printed once, alone on the last line of stdout."""
    from torouter.store.keys import KeyOptions, create_key

    settings = settings_or_exit(config)
    options = KeyOptions(
        name=name,
        expires_at=time.time() + parse_duration(expires_in) if expires_in else None,
        allowed_models=tuple(m.strip() for m in models.split(",") if m.strip()) if models else (),
    )
    row, key = run_store(settings, lambda s: create_key(s, group, options))
    out.print(
        f"Created key {row.id} ({row.prefix}…) in group {group}. Store it now: it is not shown again.",
        markup=False,
        highlight=False,
    )
    sys.stdout.flush()
    print(key)


@keys_app.command("list")
def keys_list(config: ConfigOpt = None) -> None:
    """List keys: id, prefix, name, group, status and expiry (never the key itself)."""
    from torouter.store.keys import list_keys

    rows = run_store(settings_or_exit(config), list_keys)
    table = Table("id", "prefix", "name", "group", "status", "created", "expires")
    for k, group in rows:
        table.add_row(
            str(k.id), k.prefix + "…", k.name, group, k.status, _when(k.created_at), _when(k.expires_at)
        )
    out.print(table)


@keys_app.command("show")
def keys_show(
    ref: Annotated[str, typer.Argument(help="Key id, prefix, name or full value.")], config: ConfigOpt = None
) -> None:
    """Show one key's settings."""
    from torouter.store.keys import find_key

    k, group = run_store(settings_or_exit(config), lambda s: find_key(s, ref))
    table = Table("field", "value", show_header=False)
    for label, value in (
        ("id", k.id),
        ("prefix", k.prefix + "…"),
        ("name", k.name),
        ("group", group),
        ("status", k.status),
        ("created", _when(k.created_at)),
        ("expires", _when(k.expires_at)),
        ("revoked", _when(k.revoked_at)),
        ("models", ", ".join(k.allowed_models or []) or "all the group serves"),
    ):
        table.add_row(label, str(value))
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(
    ref: Annotated[str, typer.Argument(help="Key id, prefix, name or full value.")], config: ConfigOpt = None
) -> None:
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


@app.command()
def usage(
    since: Annotated[str | None, typer.Option(help="Only calls newer than this, e.g. 24h or 7d.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Print usage per key and model: calls, errors, tokens and mean latency."""
    from torouter.store.reports import usage_by_key_and_model

    cutoff = time.time() - parse_duration(since) if since else None
    rows = run_store(settings_or_exit(config), lambda s: usage_by_key_and_model(s, cutoff))
    table = Table("key", "model", "calls", "errors", "input", "output", "cached", "mean ms")
    for r in rows:
        table.add_row(
            r["key_name"] or f"#{r['key_id']}",
            r["model"] or "-",
            str(r["calls"]),
            str(r["errors"] or 0),
            str(r["input_tokens"] or 0),
            str(r["output_tokens"] or 0),
            str(r["cached_tokens"] or 0),
            f"{(r['avg_latency_ms'] or 0):.1f}",
        )
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
