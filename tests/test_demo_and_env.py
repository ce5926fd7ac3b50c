"""`torouter demo` works with no vendor account, and environment variables override the config file."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import register_secret
from tests.gateway_harness import free_port, torouter_env
from torouter.config import ConfigError, load_settings


def test_demo_serves_a_ready_key_against_the_emulator(tmp_path: Path) -> None:
    port, emulator_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("w")  # its log, for the final scan; stdout shows the keys by design
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torouter",
            "demo",
            "--port",
            str(port),
            "--emulator-port",
            str(emulator_port),
            "--database",
            f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}",
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=torouter_env(),
        cwd=tmp_path,
    )
    try:
        output = ""
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "Dashboard:" not in output and time.monotonic() < deadline:
            output += proc.stdout.readline()
        key = re.search(r"demo-openai\s+key: (sk-tr-\S+)", output)
        assert key, output
        while time.monotonic() < deadline:
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "demo"}]},
                    headers={"authorization": f"Bearer {key.group(1)}"},
                )
                break
            except httpx.ConnectError:
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].endswith("demo")
        token = re.search(r"admin token: (\S+)\)", output)
        assert token, output
        register_secret(token.group(1))
        keys = httpx.get(
            f"http://127.0.0.1:{port}/admin/api/keys", headers={"authorization": f"Bearer {token.group(1)}"}
        )
        assert keys.status_code == 200 and len(keys.json()["data"]) == 3  # the dashboard can sign in
        assert httpx.get(f"http://127.0.0.1:{port}/playground").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    with pytest.raises(httpx.ConnectError):  # the emulator stopped with the demo
        httpx.get(f"http://127.0.0.1:{emulator_port}/_emulator/health")


def test_environment_overrides_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "torouter.yaml"
    path.write_text("database_url: sqlite+aiosqlite:///./from-file.db\nport: 9000\nadmin_token: from-file\n")
    monkeypatch.setenv("TOROUTER_CONFIG", str(path))
    monkeypatch.setenv("TOROUTER_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    monkeypatch.setenv("TOROUTER_PORT", "9100")
    monkeypatch.setenv("TOROUTER_ADMIN_TOKEN", "from-env")
    settings = load_settings()
    assert (settings.database_url, settings.port, settings.admin_token) == (
        "postgresql+asyncpg://u@h/db",
        9100,
        "from-env",
    )
    monkeypatch.setenv("TOROUTER_PORT", "not-a-port")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    assert "TOROUTER_PORT" in str(exc.value)
