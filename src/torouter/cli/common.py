"""What every command shares: the consoles, the --config option, loading settings, running work
against the store, and the one-line error for a bad option."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from torouter.config import ConfigError, Settings, load_settings

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


def parse_duration(text: str, option: str = "--since") -> float:
    """'30d', '12h', '45m', '90s' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if not m:
        bad_option(f"{option} {text!r} is not a duration; write it like 30d, 12h, 45m or 90s")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]
