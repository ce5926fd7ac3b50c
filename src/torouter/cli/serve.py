"""`torouter serve`, `emulator` and `demo`: the commands that run servers."""

from __future__ import annotations

from typing import Annotated

import typer

from torouter.cli.common import ConfigOpt, settings_or_exit


def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes sharing the port (default: the config's workers, else one per core).",
            min=1,
        ),
    ] = None,
) -> None:
    """Run the gateway. With no config it serves on 127.0.0.1:8080 with SQLite in ./torouter.db."""
    settings = settings_or_exit(config)
    if host:
        settings.host = host
    if port is not None:
        settings.port = port
    if log_level:
        settings.log_level = log_level
    from torouter.server import run, worker_count

    run(settings, worker_count(settings, workers))


def emulator(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9100,
) -> None:
    """Run the vendor emulator alone: a fake OpenAI, Anthropic and Gemini API for tests and demos."""
    from torouter.emulator import serve as serve_emulator

    serve_emulator(host=host, port=port)


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
