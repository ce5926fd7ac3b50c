"""The `torouter` command: serve the gateway and manage its keys, groups, upstreams, prices and usage.

Each command family lives in its own module; this one builds the root app from them. `torouter --help`
lists the commands in the order they are registered here.
"""

from __future__ import annotations

import typer

from torouter.cli import keys, prices, serve, upstreams, usage

app = typer.Typer(
    help="ToRouter: one gateway for the OpenAI, Anthropic and Gemini APIs, with keys, groups and usage.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve.serve)
app.command()(usage.usage)
app.command()(serve.emulator)
app.command()(serve.demo)
app.add_typer(keys.app, name="keys")
app.add_typer(upstreams.groups_app, name="groups")
app.add_typer(upstreams.upstreams_app, name="upstreams")
app.add_typer(prices.app, name="prices")


def main() -> None:
    app()
