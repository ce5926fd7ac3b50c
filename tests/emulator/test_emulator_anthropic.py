"""The emulator answers the official `anthropic` SDK as Anthropic does."""

from __future__ import annotations

import json
from pathlib import Path

import anthropic
import httpx
import pytest

from emulator_harness import TEST_KEY as KEY
from emulator_harness import EmulatorServer

GREETING = "Hello from the emulator. You said: "
MODEL = "claude-sonnet-4-5-20250929"
TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["location"],
    },
}


@pytest.fixture
def client(emulator: EmulatorServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=emulator.url, max_retries=0)


def test_message_create_with_usage_and_request_id(client: anthropic.Anthropic, specs_dir: Path) -> None:
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
    )
    message = raw.parse()
    assert raw.headers["request-id"].startswith("req_")
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == GREETING + "hi there"
    assert message.usage.input_tokens == len("You are terse. hi there") // 4
    assert message.usage.output_tokens == len(GREETING + "hi there") // 4
    assert message.usage.cache_read_input_tokens == 0
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert message.usage.service_tier == "standard"
    # Every field the spec's Message requires is present in the wire body.
    spec = json.loads((specs_dir / "anthropic" / "openapi.json").read_text())
    required = spec["components"]["schemas"]["Message"]["required"]
    assert set(required) <= set(json.loads(raw.http_response.text))


def test_stream_event_order_and_cumulative_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "stream"}]
    ) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
    raw_types = [t for t in events if not t.startswith(("text", "input_json", "thinking", "signature"))]
    assert raw_types[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert raw_types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events.count("content_block_delta") >= 3
    assert final.content[0].text == GREETING + "stream"
    assert final.usage.output_tokens == len(GREETING + "stream") // 4
    assert final.stop_reason == "end_turn"


def test_stream_wire_has_ping_after_first_block_start(emulator: EmulatorServer) -> None:
    body = {"model": MODEL, "max_tokens": 10, "stream": True, "messages": [{"role": "user", "content": "a"}]}
    text = httpx.post(emulator.url + "/v1/messages", json=body, headers={"x-api-key": KEY}).text
    names = [line[7:] for line in text.split("\n") if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]


def test_tool_use_from_call_tool_trigger(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=100, tools=[TOOL], messages=[{"role": "user", "content": "CALL_TOOL weather"}]
    )
    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_") and len(block.id) == len("toolu_") + 24
    assert block.name == "get_weather"
    assert block.input == {"location": "x"}


def test_tool_use_stream_sends_empty_first_json_fragment(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=100, tools=[TOOL], messages=[{"role": "user", "content": "CALL_TOOL"}]
    ) as stream:
        partials = [e.delta.partial_json for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert partials[0] == ""
    assert len(partials) >= 3
    assert json.loads("".join(partials)) == {"location": "x"}
    assert final.content[0].input == {"location": "x"}
    assert final.stop_reason == "tool_use"


def test_thinking_block_comes_first_with_signature(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "deep"}],
    ) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking and final.content[0].signature
    first_signature = kinds.index("signature_delta")
    assert kinds[:first_signature] and set(kinds[:first_signature]) == {"thinking_delta"}
    adaptive = client.messages.create(
        model=MODEL,
        max_tokens=100,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "x"}],
    )
    assert adaptive.content[0].type == "thinking"


def test_thinking_budget_below_minimum_is_rejected(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model=MODEL,
            max_tokens=4096,
            thinking={"type": "enabled", "budget_tokens": 100},
            messages=[{"role": "user", "content": "x"}],
        )
    assert "budget_tokens" in caught.value.message


def test_count_tokens(client: anthropic.Anthropic) -> None:
    counted = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "a" * 40}])
    assert counted.input_tokens == 10


def test_models_list_paginates(client: anthropic.Anthropic) -> None:
    first = client.models.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    assert first.first_id == first.data[0].id
    all_ids = [m.id for m in client.models.list(limit=2)]  # auto-pagination follows after_id
    assert len(all_ids) == 6 and len(set(all_ids)) == 6
    before = client.models.list(before_id=all_ids[3], limit=2)
    assert [m.id for m in before.data] == all_ids[1:3]
    model = client.models.retrieve(MODEL)
    assert model.type == "model" and model.display_name == "Claude Sonnet 4.5"


def test_missing_max_tokens_is_invalid_request(emulator: EmulatorServer) -> None:
    response = httpx.post(
        emulator.url + "/v1/messages",
        json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert body["request_id"] == response.headers["request-id"]


def test_missing_key_is_authentication_error(emulator: EmulatorServer) -> None:
    response = httpx.post(
        emulator.url + "/v1/messages",
        json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 401
    assert response.json()["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }


def test_wrong_key_is_authentication_error_when_a_key_is_expected(specs_dir: Path) -> None:
    with EmulatorServer(specs_dir, expected_key="sk-right") as strict:
        good = anthropic.Anthropic(api_key="sk-right", base_url=strict.url, max_retries=0)
        assert good.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}]).id
        bad = anthropic.Anthropic(api_key="sk-wrong", base_url=strict.url, max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as caught:
            bad.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert caught.value.body["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="gpt-4o", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.APIStatusError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.InternalServerError, "overloaded_error"),
    ],
)
def test_scripted_status_raises_matching_sdk_error(
    client: anthropic.Anthropic,
    emulator: EmulatorServer,
    status: int,
    exception: type[Exception],
    error_type: str,
) -> None:
    emulator.script({"status": status})
    with pytest.raises(exception) as caught:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type
    assert caught.value.body["request_id"].startswith("req_")


def test_beta_query_and_repeated_beta_headers_are_recorded(emulator: EmulatorServer) -> None:
    client = anthropic.Anthropic(api_key=KEY, base_url=emulator.url, max_retries=0)
    message = client.beta.messages.create(
        model=MODEL,
        max_tokens=10,
        betas=["context-management-2025-06-27", "interleaved-thinking-2025-05-14"],
        messages=[{"role": "user", "content": "beta"}],
    )
    assert message.content[0].text == GREETING + "beta"
    recorded = emulator.requests()[-1]
    assert recorded["path"] == "/v1/messages"
    assert (
        recorded["headers"]["anthropic-beta"]
        == "context-management-2025-06-27,interleaved-thinking-2025-05-14"
    )
    # This SDK sends the key as a Bearer token, which Anthropic accepts too.
    assert recorded["headers"]["authorization"] == f"Bearer {KEY}"
    assert "anthropic-version" in recorded["headers"]
    assert recorded["body"]["messages"][0]["content"] == "beta"
    # Claude Code calls /v1/messages?beta=true and may repeat the header.
    httpx.post(
        emulator.url + "/v1/messages?beta=true",
        json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "y"}]},
        headers=[("authorization", f"Bearer {KEY}"), ("anthropic-beta", "a"), ("anthropic-beta", "b")],
    ).raise_for_status()
    recorded = emulator.requests()[-1]
    assert recorded["query"] == "beta=true"
    assert recorded["headers"]["anthropic-beta"] == "a, b"
