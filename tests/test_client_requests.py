"""Real client requests (specs/clients/) convert to the other protocols and back without loss."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import World
from tests.emulator_harness import find_specs_dir
from tests.test_roundtrip_properties import semantic_anthropic
from torouter.protocols import (
    anthropic_codec,
    anthropic_messages,
    gemini,
    gemini_request,
    openai_chat,
    openai_chat_request,
    responses,
    responses_request,
)

CLAUDE_CODE = sorted((find_specs_dir() / "clients" / "claude-code").glob("turn-*.json"))


def claude_body(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())["body"]


@pytest.mark.parametrize("platform", ["openai", "openrouter", "openai_compatible"])
@pytest.mark.parametrize("path", CLAUDE_CODE, ids=lambda p: p.stem)
def test_claude_code_request_becomes_a_valid_chat_request(path: Path, platform: str) -> None:
    body = claude_body(path)
    anthropic_messages.check_request(body)
    request = anthropic_codec.decode_request(body)
    request.model = "gpt-5.1"  # as a group mapping claude-* to a reasoning model would
    chat = openai_chat_request.encode_request(request, platform)
    openai_chat.check_request(chat)  # what the OpenAI surface itself would accept
    text = json.dumps(chat)
    # Anthropic-only fields are dropped, never forwarded.
    for field in ("context_management", "output_config", "thinking", "metadata", "anthropic_version"):
        assert field not in chat
    # adaptive thinking + output_config.effort map to the target's reasoning setting.
    if platform == "openrouter":
        assert chat["reasoning"] == {"effort": "xhigh"}
    else:
        assert chat["reasoning_effort"] in ("xhigh", "high")
    # cache_control is removed where the target would reject it.
    assert ("cache_control" in text) == (platform == "openrouter")
    assert len(chat["tools"]) == len(body["tools"])
    assert all(t["type"] == "function" and t["function"]["parameters"] for t in chat["tools"])
    assert chat["stream"] is True and chat["stream_options"] == {"include_usage": True}
    assert chat["messages"][0]["role"] == "system"


def test_reasoning_effort_is_not_sent_to_openai_models_that_do_not_reason() -> None:
    request = anthropic_codec.decode_request(claude_body(CLAUDE_CODE[0]))
    request.model = "gpt-4o"
    assert "reasoning_effort" not in openai_chat_request.encode_request(request, "openai")
    assert "reasoning_effort" in openai_chat_request.encode_request(request, "openai_compatible")


@pytest.mark.parametrize("path", CLAUDE_CODE, ids=lambda p: p.stem)
def test_claude_code_request_comes_back_from_openai_without_loss(path: Path) -> None:
    body = claude_body(path)
    chat = orjson.loads(
        orjson.dumps(openai_chat_request.encode_request(anthropic_codec.decode_request(body), "openai"))
    )
    back = anthropic_codec.encode_request(openai_chat_request.decode_request(chat))
    original = semantic_anthropic(body, keep_thinking=False)
    returned = semantic_anthropic(back, keep_thinking=False)
    for key in ("system", "turns", "model", "max_tokens", "tools", "stream"):
        assert returned[key] == original[key], key


def test_claude_code_error_result_keeps_its_meaning() -> None:
    body = claude_body(CLAUDE_CODE[-1])
    errors = [
        b
        for m in body["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b.get("is_error")
    ]
    assert errors, "turn-2 holds an is_error tool result"
    chat = openai_chat_request.encode_request(anthropic_codec.decode_request(body), "openai")
    tool_msgs = [m for m in chat["messages"] if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[0]["tool_call_id"] == errors[0]["tool_use_id"]
    assert tool_msgs[0]["content"].startswith(openai_chat_request.TOOL_ERROR_MARKER)
    back = anthropic_codec.encode_request(openai_chat_request.decode_request(chat))
    result = next(
        b
        for m in back["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    )
    assert result["is_error"] is True and result["tool_use_id"] == errors[0]["tool_use_id"]


GEMINI_CLI = sorted((find_specs_dir() / "clients" / "gemini-cli").glob("turn-*.json"))


def gemini_cli(path: Path) -> tuple[dict[str, Any], str]:
    capture = json.loads(path.read_text())
    model = capture["path"].split("/models/")[1].split(":")[0]
    return capture["body"], model


@pytest.mark.parametrize("path", GEMINI_CLI, ids=lambda p: p.stem)
def test_gemini_cli_request_converts_to_chat_and_messages(path: Path) -> None:
    body, model = gemini_cli(path)
    request = gemini_request.decode_request(body, model)
    chat = openai_chat_request.encode_request(request, "openai")
    openai_chat.check_request(chat)
    messages = anthropic_codec.encode_request(gemini_request.decode_request(body, model))
    anthropic_messages.check_request(messages)
    assert (
        len(chat["tools"])
        == len(messages["tools"])
        == sum(len(t.get("functionDeclarations", [])) for t in body["tools"])
    )
    assert all(t["function"]["parameters"]["type"] == "object" for t in chat["tools"])
    # Every tool result answers the call before it, under the same id, on both targets.
    calls = {c["id"] for m in chat["messages"] for c in m.get("tool_calls") or []}
    assert {m["tool_call_id"] for m in chat["messages"] if m["role"] == "tool"} <= calls
    uses = [
        b
        for m in messages["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_use"
    ]
    results = [
        b
        for m in messages["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
        if b["type"] == "tool_result"
    ]
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses][: len(results)]
    if "turn-2" in path.name:
        assert results, "turn-2 carries the function response"
        # Gemini's own signatures never go to another vendor.
        assert "skip_thought_signature_validator" not in json.dumps(chat) + json.dumps(messages)


def test_agent_tool_schemas_reach_a_gemini_group_and_are_accepted(world: World) -> None:
    """Claude Code's 24 tool schemas (with $schema, additionalProperties...) are rewritten so Gemini takes them."""
    body = claude_body(CLAUDE_CODE[0])
    body["stream"] = False
    r = httpx.post(
        world.gateway.url + "/v1/messages",
        json=body,
        headers={"x-api-key": world.keys["claude-on-gemini"], "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    sent = [x for x in world.emulator.requests() if ":generateContent" in x["path"]][-1]
    assert sent["status"] == 200
    assert len(sent["body"]["tools"][0]["functionDeclarations"]) == len(body["tools"])


CODEX = sorted((find_specs_dir() / "clients" / "codex").glob("turn-*.json"))


@pytest.mark.parametrize("path", CODEX, ids=lambda p: p.stem)
def test_codex_request_converts_to_valid_messages_and_gemini(path: Path) -> None:
    body = json.loads(path.read_text())["body"]
    responses.check_request(body)
    messages = anthropic_codec.encode_request(responses_request.decode_request(body))
    anthropic_messages.check_request(messages)
    contents = gemini_request.encode_request(responses_request.decode_request(body))
    gemini.check_request(contents)
    flat = [t["name"] for t in messages["tools"]]
    # the namespace tool's nested tools are flattened into names both vendors accept
    assert any("multi_agent_v1" in n for n in flat) and all(
        re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", n) for n in flat
    )
    declared = [d["name"] for t in contents["tools"] for d in t.get("functionDeclarations", [])]
    assert declared == flat
    # OpenAI-only request fields are never forwarded elsewhere
    for field in ("store", "include", "prompt_cache_key", "client_metadata", "instructions", "input"):
        assert field not in messages and field not in contents
    assert messages["system"] and contents["systemInstruction"]
    if "turn-2" in path.name:
        uses = [
            b
            for m in messages["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_use"
        ]
        results = [
            b
            for m in messages["messages"]
            if isinstance(m["content"], list)
            for b in m["content"]
            if b["type"] == "tool_result"
        ]
        assert uses and results and results[0]["tool_use_id"] == uses[0]["id"]
