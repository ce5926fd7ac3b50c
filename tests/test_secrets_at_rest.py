"""Upstream credentials are encrypted at rest, with TOROUTER_SECRET_KEY or a generated key file."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import UPSTREAM_SECRET, World, gateway_config, register_secret
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from torouter.store import sealing

register_secret("the-first-key", "a-different-key", "sk-extra", "sk-live-123")


def stored_credentials(db: Path) -> dict[str, str]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, credential FROM upstream_accounts"))


def test_the_store_never_holds_a_credential_in_plaintext(world: World) -> None:
    creds = stored_credentials(world.db_path)
    assert creds and all(c.startswith("fernet:") for c in creds.values())
    assert UPSTREAM_SECRET.encode() not in world.db_path.read_bytes()
    # ...and the gateway still sends the real credential upstream.
    openai.OpenAI(
        base_url=world.gateway.openai_base_url, api_key=world.keys["openai"]
    ).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert world.emulator.requests()[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"


def test_plaintext_from_an_older_version_is_sealed_at_start_up(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{db}")
    gw = GatewayServer(tmp_path, config)
    key = gw.create_key("openai")
    with sqlite3.connect(db) as conn:  # as a version before encryption left it
        conn.execute("UPDATE upstream_accounts SET credential = ?", (UPSTREAM_SECRET,))
    with gw:
        assert all(c.startswith("fernet:") for c in stored_credentials(db).values())
        client = openai.OpenAI(base_url=gw.openai_base_url, api_key=key)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert emulator.requests()[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"


def test_a_wrong_key_takes_unreadable_accounts_out_of_service_without_crashing(
    emulator: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "keyed.db"
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{db}", admin_token="t")
    gw = GatewayServer(tmp_path, config)
    key = gw.create_key("openai")
    monkeypatch.setenv("TOROUTER_SECRET_KEY", "the-first-key")
    with gw:  # an account only the admin API knows, sealed with the first key
        r = httpx.post(
            gw.url + "/admin/api/upstreams",
            headers={"authorization": "Bearer t"},
            json={
                "name": "extra",
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": "sk-extra",
            },
        )
        assert r.status_code == 201, r.text
    monkeypatch.setenv("TOROUTER_SECRET_KEY", "a-different-key")
    with gw:
        # Accounts from the config are sealed again from the config's value: they keep working.
        client = openai.OpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert emulator.requests()[-1]["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    log = gw.log()
    assert "upstream account extra is out of service" in log and "TOROUTER_SECRET_KEY" in log
    assert "Traceback" not in log and "sk-extra" not in log


def test_without_the_variable_a_key_file_is_made_once_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "conf" / "secret.key"
    monkeypatch.delenv("TOROUTER_SECRET_KEY", raising=False)
    monkeypatch.setenv("TOROUTER_SECRET_KEY_FILE", str(path))
    sealing.reset()
    try:
        with caplog.at_level(logging.WARNING, logger="torouter.secrets"):
            sealed = sealing.sealer().seal("sk-live-123")
        assert path.is_file() and stat.S_IMODE(os.stat(path).st_mode) == 0o600
        register_secret(path.read_text().strip())
        assert "TOROUTER_SECRET_KEY is not set" in caplog.text and str(path) in caplog.text
        sealing.reset()
        assert sealing.sealer().open(sealed) == "sk-live-123"  # a restart reads the same key
        with pytest.raises(sealing.SealError):
            sealing.Sealer("not-the-key").open(sealed)
    finally:
        sealing.reset()
