"""Usage records: one per call, written in batches off the hot path, flushed on shutdown, reported by the CLI."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import openai

from tests.conftest import gateway_config
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer


def test_usage_is_flushed_on_shutdown_and_reported_per_key_and_model(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    db = tmp_path / "usage.db"
    # A flush interval longer than the test: only the shutdown flush can write these rows.
    gw = GatewayServer(
        tmp_path, gateway_config(emulator, f"sqlite+aiosqlite:///{db}", usage_flush_interval=3600)
    )
    alice = gw.create_key("openai", "--name", "alice")
    bob = gw.create_key("mapped", "--name", "bob")
    gw.start()
    try:
        for key, model, n in ((alice, "gpt-4o-mini", 3), (bob, "gpt-4.1", 2)):
            c = openai.OpenAI(api_key=key, base_url=gw.openai_base_url, max_retries=0)
            for i in range(n):
                resp = c.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": f"call {i}"}], stream=i == 0
                )
                if i == 0:
                    list(resp)
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM usage_records").fetchone()[0] == 0
    finally:
        gw.stop(signal.SIGTERM)
    assert "Application shutdown complete" in gw.log()
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT key_name, model, upstream_model, account_name, status_code, input_tokens, output_tokens, stream "
            "FROM usage_records ORDER BY id"
        ).fetchall()
    assert len(rows) == 5
    assert {(r[0], r[1], r[2], r[3]) for r in rows} == {
        ("alice", "gpt-4o-mini", "gpt-4o-mini", "emu-openai"),
        ("bob", "gpt-4.1", "gpt-4.1-2025-04-14", "emu-openai-mapped"),
    }
    assert all(r[4] == 200 and r[5] > 0 and r[6] > 0 for r in rows)
    assert sum(r[7] for r in rows) == 2
    report = gw.cli("usage").stdout
    alice_line = next(line for line in report.splitlines() if "alice" in line)
    assert "gpt-4o-mini" in alice_line and " 3 " in alice_line
    bob_line = next(line for line in report.splitlines() if "bob" in line)
    assert "gpt-4.1" in bob_line and " 2 " in bob_line
