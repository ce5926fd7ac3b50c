"""Claude Code through ToRouter to an anthropic-platform group, with the emulator as the upstream."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agents import run_agent
from tests.conftest import World

CLAUDE_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


def test_claude_code_prints_the_upstream_answer_and_sends_its_betas(world: World, tmp_path: Path) -> None:
    answer = "PONG via ToRouter 7f3a"
    world.emulator.script({"text": answer, "times": 10})
    env = {
        **CLAUDE_ENV,
        "ANTHROPIC_BASE_URL": world.gateway.url,
        "ANTHROPIC_API_KEY": world.keys["anthropic"],
    }
    proc = run_agent("claude", ["-p", "Reply with PONG"], env, tmp_path / "home")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == answer
    calls = [r for r in world.emulator.requests() if r["path"] == "/v1/messages"]
    assert calls, "Claude Code's call never reached the upstream"
    sent = calls[-1]
    assert "beta=true" in str(sent["query"])
    betas = sent["headers"]["anthropic-beta"].split(",")
    assert "claude-code-20250219" in betas and len(betas) >= 3
    assert sent["headers"]["x-api-key"] != world.keys["anthropic"]
    assert sent["body"]["messages"][-1]["role"] == "user"


def test_claude_code_runs_a_tool_through_an_openai_group(world: World, tmp_path: Path) -> None:
    """The upstream (OpenAI protocol) asks for a tool; Claude Code runs it; the result goes back with its id."""
    world.emulator.script(
        {
            "match": {"path": "/chat/completions"},
            "tool_calls": [
                {
                    "id": "call_ccTool01",
                    "name": "Bash",
                    "arguments": {"command": "echo tool-ran-42", "description": "Echo a marker"},
                }
            ],
        },
        {"match": {"path": "/chat/completions"}, "text": "The command printed tool-ran-42.", "times": 5},
    )
    env = {
        **CLAUDE_ENV,
        "ANTHROPIC_BASE_URL": world.gateway.url,
        "ANTHROPIC_API_KEY": world.keys["claude-on-openai"],
    }
    proc = run_agent(
        "claude", ["-p", "Run the echo command", "--allowedTools", "Bash"], env, tmp_path / "home"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "tool-ran-42" in proc.stdout
    calls = [r for r in world.emulator.requests() if r["path"].endswith("/chat/completions")]
    assert len(calls) >= 2
    follow = calls[1]["body"]["messages"]
    assistant = next(m for m in follow if m["role"] == "assistant" and m.get("tool_calls"))
    assert assistant["tool_calls"][0]["id"] == "call_ccTool01"
    result = next(m for m in follow if m["role"] == "tool")
    assert result["tool_call_id"] == "call_ccTool01" and "tool-ran-42" in result["content"]
    # Claude Code's Anthropic-only fields never reach an OpenAI upstream.
    for body in (c["body"] for c in calls):
        assert "context_management" not in body and "thinking" not in body and "output_config" not in body
        assert "cache_control" not in json.dumps(body)
