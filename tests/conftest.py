"""Fixtures that build the world: the vendor emulator, a real gateway on a free port, and keys."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import gateway_harness
from tests.emulator_harness import TEST_KEY, EmulatorServer
from tests.gateway_harness import GatewayServer, free_port
from tests.log_scan import MIN_SECRET, log_files, scan_files

UPSTREAM_SECRET = "sk-upstream-SECRET-4f1c2d9e8b7a6c5d"
# Every process of the suite (gateways, the CLI, in-process key making) seals credentials alike.
os.environ.setdefault("TOROUTER_SECRET_KEY", "the-test-suite-secret-key")


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh_emulator(request: pytest.FixtureRequest) -> None:
    """Each test starts with no scripted steps and no recorded requests."""
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()


def gateway_config(emulator: EmulatorServer, database_url: str, **overrides: Any) -> dict[str, Any]:
    """Groups on every OpenAI-protocol platform, all answered by the emulator."""
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here: connection refused
    config: dict[str, Any] = {
        "database_url": database_url,
        "usage_flush_interval": 0.2,
        # The suite sends bad keys on purpose, all from 127.0.0.1; test_access_control tests the throttle.
        "auth_failure_limit": 100_000,
        "upstreams": [
            {
                "name": "emu-openai",
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": UPSTREAM_SECRET,
            },
            {
                "name": "emu-openrouter",
                "platform": "openrouter",
                "base_url": emulator.openai_base_url,
                "api_key": UPSTREAM_SECRET,
            },
            {
                "name": "emu-compat",
                "platform": "openai_compatible",
                "base_url": emulator.openai_base_url,
                "api_key": UPSTREAM_SECRET,
            },
            {
                "name": "dead-openai",
                "platform": "openai",
                "base_url": dead,
                "api_key": UPSTREAM_SECRET,
                "priority": 10,
            },
            {
                "name": "emu-openai-mapped",
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": UPSTREAM_SECRET,
                "models": ["gpt-4o-mini", "gpt-4.1"],
                "model_map": {"gpt-4.1": "gpt-4.1-2025-04-14"},
            },
            {
                "name": "emu-anthropic",
                "platform": "anthropic",
                "base_url": emulator.url,
                "api_key": UPSTREAM_SECRET,
            },
            {
                "name": "emu-gemini",
                "platform": "gemini",
                "base_url": emulator.url,
                "api_key": UPSTREAM_SECRET,
            },
        ],
        "groups": [
            {"name": "openai", "platform": "openai", "upstreams": ["emu-openai"]},
            {
                "name": "anthropic",
                "platform": "anthropic",
                "upstreams": ["emu-anthropic"],
                "models": {
                    "claude-opus-4-7": "*",
                    "claude-sonnet-4-5": "*",
                    "claude-haiku-4-5": "*",
                    "claude-*": "*",
                },
                "aliases": {"opus": "claude-opus-4-7"},
            },
            {
                "name": "gemini",
                "platform": "gemini",
                "upstreams": ["emu-gemini"],
                "models": {
                    "gemini-2.5-flash": "*",
                    "gemini-2.5-pro": "*",
                    "gemini-embedding-001": "*",
                    "gemini-*": "*",
                },
            },
            # Translated groups: clients of one protocol, upstream of another.
            {
                "name": "gemini-on-openai",
                "platform": "openai",
                "upstreams": ["emu-openai"],
                "models": {"gemini-embedding-*": "text-embedding-3-small", "gemini-*": "gpt-4o-mini"},
            },
            {
                "name": "gemini-on-anthropic",
                "platform": "anthropic",
                "upstreams": ["emu-anthropic"],
                "models": {"gemini-*": "claude-sonnet-4-5"},
            },
            {
                "name": "gpt-on-gemini",
                "platform": "gemini",
                "upstreams": ["emu-gemini"],
                "models": {"gpt-*": "gemini-2.5-flash"},
            },
            {
                "name": "claude-on-gemini",
                "platform": "gemini",
                "upstreams": ["emu-gemini"],
                "models": {"claude-*": "gemini-2.5-pro"},
            },
            {
                "name": "claude-on-openai",
                "platform": "openai",
                "upstreams": ["emu-openai"],
                "models": {"claude-*": "gpt-4o", "gpt-*": "*"},
            },
            {
                "name": "claude-on-openrouter",
                "platform": "openrouter",
                "upstreams": ["emu-openrouter"],
                "models": {"claude-*": "anthropic/claude-sonnet-4.5"},
            },
            {
                "name": "gpt-on-anthropic",
                "platform": "anthropic",
                "upstreams": ["emu-anthropic"],
                "models": {"gpt-*": "claude-sonnet-4-5", "claude-*": "*"},
            },
            {"name": "openrouter", "platform": "openrouter", "upstreams": ["emu-openrouter"]},
            {"name": "compat", "platform": "openai_compatible", "upstreams": ["emu-compat"]},
            {"name": "failover", "platform": "openai", "upstreams": ["dead-openai", "emu-openai"]},
            {
                "name": "mapped",
                "platform": "openai",
                "upstreams": ["emu-openai-mapped"],
                "models": {"gpt-4o-mini": "*", "gpt-4.1": "*", "claude-*": "gpt-4o-mini"},
                "aliases": {"fast": "gpt-4o-mini"},
            },
        ],
    }
    config.update(overrides)
    return config


@dataclass
class World:
    gateway: GatewayServer
    emulator: EmulatorServer
    keys: dict[str, str]
    db_path: Path

    def reenable(self, account: str) -> None:
        """Undo a scripted 401/403, which disables the account (gateways reload within a second)."""
        self.gateway.cli("upstreams", "enable", account)
        time.sleep(1.3)

    def usage_rows(self, request_ids: list[str] | None = None, wait: float = 5.0) -> list[dict[str, Any]]:
        """Rows from the store, waiting for the batch writer when some are still in memory."""
        deadline = time.monotonic() + wait
        while True:
            with sqlite3.connect(self.db_path) as db:
                db.row_factory = sqlite3.Row
                rows = [dict(r) for r in db.execute("SELECT * FROM usage_records ORDER BY id")]
            if request_ids is None or all(any(r["request_id"] == rid for r in rows) for rid in request_ids):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"usage rows for {request_ids} never appeared; have {[r['request_id'] for r in rows]}"
                )
            time.sleep(0.05)


@pytest.fixture(scope="session")
def world(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("gateway")
    db_path = workdir / "torouter.db"
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{db_path}")
    gw = GatewayServer(workdir, config)
    keys = seed_keys(gw.config_path, [g["name"] for g in config["groups"]])  # one key per group
    with gw:
        yield World(gw, emulator, keys, db_path)
    print(gw.log()[-4000:])


def seed_keys(config_path: Path, groups: list[str]) -> dict[str, str]:
    """One key per group, made in-process (the CLI path has its own tests; this saves a process per key)."""
    return make_keys(config_path, {g: (g, {"name": f"{g}-key"}) for g in groups})


def make_keys(config_path: Path, specs: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """label -> (group, KeyOptions fields): keys made in-process, with their limits. Named by label
    unless the fields give a name."""
    from torouter.config import load_settings
    from torouter.gateway import prepare_store
    from torouter.store.db import make_engine, sessionmaker
    from torouter.store.keys import KeyOptions, create_key

    settings = load_settings(config_path)

    async def main() -> dict[str, str]:
        engine = make_engine(settings.database_url)
        sessions = sessionmaker(engine)
        try:
            await prepare_store(engine, sessions, settings)
            async with sessions() as session, session.begin():
                out = {}
                for label, (group, fields) in specs.items():
                    options = KeyOptions(**{"name": label, **fields})
                    out[label] = (await create_key(session, group, options))[1]
                return out
        finally:
            await engine.dispose()

    return asyncio.run(main())


def wait_until_key_works(base_url: str, key: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(base_url + "/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError("a new key never started working")


# ---------------------------------------------------------------- every log of the run, scanned at the end

# Credentials the suite sets that a log must never show; tests add theirs with register_secret.
LOGGED_SECRETS: set[str] = {UPSTREAM_SECRET, os.environ["TOROUTER_SECRET_KEY"], TEST_KEY}
_run_logs: Path | None = None  # where this run's own logs go, once the session has started


def register_secret(*values: str) -> None:
    """A credential a test uses: the last test of the run fails if any log line shows it."""
    for value in values:
        assert len(value) >= MIN_SECRET, f"{value!r} is too short to look for in logs"
    LOGGED_SECRETS.update(values)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "run_last: runs after every other test of the session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The log scan comes last, whatever was selected, so that it sees every other test's logs."""
    items.sort(key=lambda item: item.get_closest_marker("run_last") is not None)


@pytest.fixture(scope="session", autouse=True)
def run_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This process's log records and the CLI's stderr go to files under basetemp, beside the gateways'."""
    global _run_logs
    folder = tmp_path_factory.getbasetemp() / "run-logs"
    folder.mkdir(exist_ok=True)
    handler = logging.FileHandler(folder / "pytest-process.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("torouter")
    level = ours.level
    ours.setLevel(logging.DEBUG)  # everything ours; other libraries at the root's WARNING
    logging.getLogger().addHandler(handler)
    gateway_harness.CLI_LOG = folder / "cli.log"
    _run_logs = folder
    try:
        yield folder
    finally:
        gateway_harness.CLI_LOG = None
        logging.getLogger().removeHandler(handler)
        handler.close()
        ours.setLevel(level)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """What tests and in-process servers wrote to stderr or logged (pytest captures both per test)."""
    sections = [(n, text) for n, text in report.sections if n.startswith(("Captured stderr", "Captured log"))]
    if _run_logs is not None and sections:
        with (_run_logs / "pytest-captured.log").open("a", encoding="utf-8") as f:
            for name, text in sections:
                f.write(f"--- {report.nodeid} {name}\n{text}\n")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Session fixtures (the shared gateway) stop after the last test: scan what they logged since."""
    if _run_logs is None or not any(i.get_closest_marker("run_last") for i in session.items):
        return
    leaks = scan_files(log_files(_run_logs.parent), LOGGED_SECRETS)
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"credentials in the logs after the last test ({len(leaks)}):", red=True)
            for leak in leaks[:50]:
                reporter.write_line(f"  {leak}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
