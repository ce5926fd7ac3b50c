"""Gemini CLI through ToRouter, to a gemini group and to an openai group, with the emulator upstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.agents import run_agent
from tests.conftest import World

# What a user writes once in ~/.gemini/settings.json: API-key auth, no telemetry, no updates.
SETTINGS = {
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"disableAutoUpdate": True},
    "telemetry": {"enabled": False},
}


@pytest.mark.parametrize(
    ("group", "path"), [("gemini", ":streamGenerateContent"), ("gemini-on-openai", "/chat/completions")]
)
def test_gemini_cli_prints_the_upstream_answer(world: World, tmp_path: Path, group: str, path: str) -> None:
    answer = f"PONG from the {group} group"
    # The CLI first routes the prompt with a JSON-mode call (answered from its schema), then streams the answer.
    world.emulator.script({"match": {"path": path, "stream": True}, "text": answer, "times": 3})
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    env = {"GOOGLE_GEMINI_BASE_URL": world.gateway.url, "GEMINI_API_KEY": world.keys[group]}
    proc = run_agent("gemini", ["-p", "Reply with PONG"], env, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == answer
    calls = [r for r in world.emulator.requests() if path in r["path"]]
    assert any(r["status"] == 200 for r in calls)
    assert all(
        r["headers"].get("x-goog-api-key") != world.keys[group] and world.keys[group] not in str(r["headers"])
        for r in calls
    )
