"""Codex CLI through ToRouter as a custom model provider (wire_api = "responses")."""

from __future__ import annotations

from pathlib import Path

from tests.agents import run_agent
from tests.conftest import World


def codex_home(tmp_path: Path, base_url: str) -> Path:
    """What a user writes once in ~/.codex/config.toml to point Codex at ToRouter."""
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        'model = "gpt-5.1-codex"\n'
        'model_provider = "torouter"\n\n'
        "[model_providers.torouter]\n"
        'name = "ToRouter"\n'
        f'base_url = "{base_url}"\n'
        'env_key = "TOROUTER_API_KEY"\n'
        'wire_api = "responses"\n'
    )
    return home


def run_codex(world: World, tmp_path: Path, group: str, prompt: str) -> str:
    home = codex_home(tmp_path, world.gateway.openai_base_url)
    env = {"TOROUTER_API_KEY": world.keys[group], "CODEX_HOME": str(home / ".codex")}
    proc = run_agent("codex", ["exec", "--skip-git-repo-check", prompt], env, home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip()


def test_codex_prints_the_answer_of_an_openai_group(world: World, tmp_path: Path) -> None:
    world.emulator.script({"match": {"path": "/responses"}, "text": "PONG from an openai group", "times": 3})
    assert run_codex(world, tmp_path, "openai", "Reply with PONG") == "PONG from an openai group"
    sent = [r for r in world.emulator.requests() if r["path"] == "/v1/responses"]
    assert sent and sent[0]["body"]["store"] is False and sent[0]["body"]["model"] == "gpt-5.1-codex"


def test_codex_runs_a_tool_called_by_an_anthropic_group(world: World, tmp_path: Path) -> None:
    world.emulator.script(
        {
            "match": {"path": "/v1/messages"},
            "tool_calls": [
                {"name": "exec_command", "arguments": {"cmd": "echo codex-ran-7"}, "id": "toolu_01CodexTool"}
            ],
        },
        {"match": {"path": "/v1/messages"}, "text": "The command printed codex-ran-7.", "times": 3},
    )
    assert (
        run_codex(world, tmp_path, "gpt-on-anthropic", "Run the echo command")
        == "The command printed codex-ran-7."
    )
    calls = [r for r in world.emulator.requests() if r["path"] == "/v1/messages"]
    assert len(calls) >= 2
    first = calls[0]["body"]
    assert any(t.get("name") == "exec_command" for t in first["tools"])
    assert {"type": "web_search_20250305", "name": "web_search"} in first[
        "tools"
    ]  # Codex's built-in web_search, mapped
    result = calls[1]["body"]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01CodexTool"
    assert "codex-ran-7" in str(result["content"])
