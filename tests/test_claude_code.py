"""Claude Code through ToRouter to an anthropic-platform group, with the emulator as the upstream."""

from __future__ import annotations

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
