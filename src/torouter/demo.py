"""`torouter demo`: the gateway with the vendor emulator as its upstream, and a ready key per group."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
import urllib.request

import uvicorn
from rich.console import Console

from torouter.config import GroupConfig, Settings, UpstreamConfig
from torouter.gateway import prepare_store
from torouter.store.db import make_engine, sessionmaker
from torouter.store.keys import KeyOptions, create_key

DEMO_GROUPS = {
    "demo-openai": ("openai", "/v1"),
    "demo-anthropic": ("anthropic", ""),
    "demo-gemini": ("gemini", ""),
}


def demo_settings(port: int, emulator_url: str, database_url: str) -> Settings:
    # A fresh admin token each run, so the dashboard can be tried (and no fixed token ships).
    token = os.environ.get("TOROUTER_ADMIN_TOKEN") or "demo-" + secrets.token_urlsafe(18)
    settings = Settings(source="<demo>", port=port, database_url=database_url, admin_token=token)
    for group, (platform, suffix) in DEMO_GROUPS.items():
        upstream = f"emulator-{platform}"
        settings.upstreams.append(
            UpstreamConfig(
                name=upstream, platform=platform, base_url=emulator_url + suffix, api_key="emulator-key"
            )
        )
        settings.groups.append(GroupConfig(name=group, platform=platform, upstreams=[upstream]))
    return settings


async def _make_keys(settings: Settings) -> dict[str, str]:
    engine = make_engine(settings.database_url)
    sessions = sessionmaker(engine)
    try:
        await prepare_store(engine, sessions, settings)
        keys = {}
        async with sessions() as session, session.begin():
            for group in DEMO_GROUPS:
                _, key = await create_key(session, group, KeyOptions(name=f"{group}-key"))
                keys[group] = key
        return keys
    finally:
        await engine.dispose()


def _wait_for(url: str, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"torouter demo: the emulator did not start at {url}")


def _start_emulator(port: int) -> uvicorn.Server:
    """The emulator runs in a thread of this process, so it can never outlive the demo."""
    from torouter.emulator import create_app

    config = uvicorn.Config(
        create_app(), host="127.0.0.1", port=port, lifespan="off", access_log=False, log_level="warning"
    )
    server = uvicorn.Server(config)
    threading.Thread(target=lambda: asyncio.run(server.serve()), name="emulator", daemon=True).start()
    return server


def run_demo(port: int, emulator_port: int, database_url: str) -> None:
    from torouter.server import run

    console = Console()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    emulator = _start_emulator(emulator_port)
    try:
        _wait_for(emulator_url + "/_emulator/health")
        settings = demo_settings(port, emulator_url, database_url)
        keys = asyncio.run(_make_keys(settings))
        base = f"http://127.0.0.1:{port}"
        console.print(
            f"[bold]ToRouter demo[/bold] on {base}, with the vendor emulator on {emulator_url} as every upstream."
        )
        for group, key in keys.items():
            console.print(f"  {group:16} key: {key}", highlight=False)
        console.print(
            f"Dashboard: {base}/dashboard (admin token: {settings.admin_token})  "
            f"Playground: {base}/playground",
            highlight=False,
            soft_wrap=True,
        )
        console.print(
            f"Try: curl {base}/v1/chat/completions -H 'Authorization: Bearer {keys['demo-openai']}' "
            '-H \'content-type: application/json\' -d \'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}\'',
            highlight=False,
            soft_wrap=True,
        )
        run(settings)
    finally:
        emulator.should_exit = True
