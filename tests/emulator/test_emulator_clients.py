"""Requests captured from real agents (specs/clients): turn 1 gets a tool call, turn 2 ends the loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator_harness import TEST_KEY as KEY
from emulator_harness import EmulatorServer

AUTH = {
    "authorization": f"Bearer {KEY}",
    "x-api-key": KEY,
    "x-goog-api-key": KEY,
    "anthropic-version": "2023-06-01",
}


def sse_payloads(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def first_tool_name(client: str, body: dict[str, Any]) -> str:
    if client == "gemini-cli":
        tool = body["tools"][0]
        return tool["functionDeclarations"][0]["name"]
    tool = next(t for t in body["tools"] if "name" in t)
    return tool["name"]


def tool_calls(client: str, events: list[dict[str, Any]]) -> list[str]:
    """Names of the tools the emulator called in a stream of `client`'s protocol."""
    if client == "claude-code":
        return [e["content_block"]["name"] for e in events if e.get("type") == "content_block_start" and e["content_block"]["type"] == "tool_use"]  # fmt: skip
    if client == "codex":
        return [e["item"]["name"] for e in events if e.get("type") == "response.output_item.done" and e["item"]["type"] == "function_call"]  # fmt: skip
    return [p["functionCall"]["name"] for e in events for p in e["candidates"][0]["content"]["parts"] if "functionCall" in p]  # fmt: skip


@pytest.mark.parametrize("client", ["claude-code", "codex", "gemini-cli"])
def test_captured_agent_turns_get_a_tool_call_then_text(
    client: str, emulator: EmulatorServer, specs_dir: Path
) -> None:
    calls = []
    for turn in ("turn-1", "turn-2"):
        capture = json.loads((specs_dir / "clients" / client / f"{turn}.json").read_text())
        response = httpx.post(emulator.url + capture["path"], json=capture["body"], headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        calls.append(tool_calls(client, sse_payloads(response.text)))
    turn_one = json.loads((specs_dir / "clients" / client / "turn-1.json").read_text())["body"]
    assert calls == [[first_tool_name(client, turn_one)], []]
