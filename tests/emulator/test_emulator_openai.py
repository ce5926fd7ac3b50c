"""The emulator answers the official `openai` SDK as OpenAI does."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from emulator_harness import TEST_KEY as KEY
from emulator_harness import EmulatorServer

GREETING = "Hello from the emulator. You said: "
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
            },
            "required": ["city", "days", "metric"],
        },
    },
}


@pytest.fixture
def client(emulator: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=emulator.openai_base_url, max_retries=0)


@pytest.fixture(scope="module")
def openai_spec(specs_dir: Path) -> dict[str, Any]:
    # The C loader reads the 3 MB spec in about a second; the pure-Python one takes five.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((specs_dir / "openai" / "openapi.yaml").read_text(), Loader=loader)


def assert_required_fields(spec: dict[str, Any], schema_name: str, value: dict[str, Any]) -> None:
    """Check `value` carries every field the spec marks required (one level, plus allOf parts)."""
    schema = spec["components"]["schemas"][schema_name]
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        target = part
        if "$ref" in part:
            target = spec["components"]["schemas"][part["$ref"].rsplit("/", 1)[-1]]
        required |= set(target.get("required", []))
    assert required, f"{schema_name} has no required list in the spec"
    missing = required - set(value)
    assert not missing, f"{schema_name} misses {sorted(missing)}"


def test_chat_completion_echoes_last_user_text(client: openai.OpenAI, openai_spec: dict[str, Any]) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "ping "}, {"type": "text", "text": "pong"}],
            },
        ],
    )
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o"
    assert completion.choices[0].message.content == GREETING + "ping pong"
    assert completion.choices[0].finish_reason == "stop"
    total_chars = len("be brief") + len("first") + len("ok") + len("ping pong") + 3
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == total_chars // 4
    assert completion.usage.completion_tokens == len(GREETING + "ping pong") // 4
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0
    body = completion.model_dump()
    assert_required_fields(openai_spec, "CreateChatCompletionResponse", body)
    assert_required_fields(openai_spec, "CompletionUsage", body["usage"])


def test_chat_stream_has_role_chunk_word_deltas_and_finish_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "tell me more"}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert len(contents) >= 3
    assert "".join(contents) == GREETING + "tell me more"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)  # no include_usage: no usage chunk
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_include_usage_adds_a_final_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 2
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_chat_tool_call_built_from_required_properties(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "CALL_TOOL please"}], tools=[WEATHER_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and len(call.id) == 29
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "x", "days": 1, "metric": True}


def test_chat_tool_call_stream_splits_arguments(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "CALL_TOOL"}],
            tools=[WEATHER_TOOL],
            stream=True,
        )
    )
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather"
    fragments = [d.function.arguments for d in deltas if d.function and d.function.arguments]
    assert len(fragments) >= 2
    assert json.loads("".join(fragments)) == {"city": "x", "days": 1, "metric": True}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_chat_reasoning_effort_reports_reasoning_tokens(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="o4-mini", messages=[{"role": "user", "content": "think"}], reasoning_effort="high"
    )
    details = completion.usage.completion_tokens_details
    assert details.reasoning_tokens > 0
    assert completion.usage.completion_tokens > details.reasoning_tokens


def test_responses_create_returns_message_and_usage(
    client: openai.OpenAI, openai_spec: dict[str, Any]
) -> None:
    response = client.responses.create(model="gpt-5-nano", input="What is up?", instructions="terse")
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == GREETING + "What is up?"
    assert response.usage.input_tokens == len("terse What is up?") // 4
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert_required_fields(openai_spec, "ResponseUsage", response.model_dump()["usage"])


def test_responses_stream_events_in_order_with_sequence_numbers(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="gpt-5",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "stream it"}]}],
            reasoning={"effort": "low"},
            stream=True,
        )
    )
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) >= 3 and "".join(deltas) == GREETING + "stream it"
    final = events[-1].response
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage.output_tokens_details.reasoning_tokens > 0


def test_responses_stream_helper_accumulates_function_call(client: openai.OpenAI) -> None:
    tool = {"type": "function", "name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}  # fmt: skip
    with client.responses.stream(model="gpt-5", input="CALL_TOOL now", tools=[tool]) as stream:
        final = stream.get_final_response()
    call = final.output[0]
    assert call.type == "function_call"
    assert call.id.startswith("fc_") and call.call_id.startswith("call_")
    assert call.name == "lookup" and json.loads(call.arguments) == {"q": "x"}


def test_embeddings_float_and_base64_agree(client: openai.OpenAI, emulator: EmulatorServer) -> None:
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=["alpha", "beta"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1]
    assert len(floats.data[0].embedding) == 8
    assert floats.data[0].embedding != floats.data[1].embedding
    # The SDK asks for base64 by default and decodes it; the vectors must be the same.
    decoded = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding)
    raw = httpx.post(
        emulator.openai_base_url + "/embeddings",
        json={
            "model": "text-embedding-3-small",
            "input": "alpha",
            "encoding_format": "base64",
            "dimensions": 4,
        },
        headers={"authorization": f"Bearer {KEY}"},
    ).json()
    values = struct.unpack("<4f", base64.b64decode(raw["data"][0]["embedding"]))
    assert len(values) == 4
    assert raw["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


def test_images_generation_returns_b64_json(client: openai.OpenAI) -> None:
    image = client.images.generate(model="gpt-image-1", prompt="a cat", n=2)
    assert len(image.data) == 2
    assert base64.b64decode(image.data[0].b64_json).startswith(b"\x89PNG")
    assert image.data[0].revised_prompt == "a cat"
    url = client.images.generate(model="dall-e-3", prompt="a dog", response_format="url")
    assert url.data[0].url.startswith("https://")


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "gpt-4o" in ids and "text-embedding-3-small" in ids
    model = client.models.retrieve("gpt-4o")
    assert model.object == "model" and model.owned_by == "system"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("llama-3")
    assert caught.value.code == "model_not_found"


def test_unknown_model_is_404_model_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="mistral-large", messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "model_not_found"
    assert caught.value.body["type"] == "invalid_request_error"


def test_vendor_prefixed_and_emu_models_are_accepted(client: openai.OpenAI) -> None:
    for model in ("meta-llama/llama-3-70b", "emu-anything"):
        completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "y"}])
        assert completion.model == model


def test_missing_key_is_401_invalid_api_key(emulator: EmulatorServer) -> None:
    response = httpx.post(
        emulator.openai_base_url + "/chat/completions", json={"model": "gpt-4o", "messages": []}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "invalid_api_key"
    assert response.headers["x-request-id"].startswith("req_")


def test_missing_messages_and_malformed_json_are_400(emulator: EmulatorServer) -> None:
    headers = {"authorization": f"Bearer {KEY}", "content-type": "application/json"}
    url = emulator.openai_base_url + "/chat/completions"
    missing = httpx.post(url, json={"model": "gpt-4o"}, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["error"]["param"] == "messages"
    assert missing.json()["error"]["code"] == "missing_required_parameter"
    no_model = httpx.post(url, json={"messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert no_model.json()["error"]["message"] == "you must provide a model parameter"
    broken = httpx.post(url, content=b'{"model": "gpt-4o",', headers=headers)
    assert broken.status_code == 400
    assert "could not parse the JSON body" in broken.json()["error"]["message"]


@pytest.mark.parametrize(
    ("status", "exception", "code"),
    [
        (400, openai.BadRequestError, None),
        (401, openai.AuthenticationError, "invalid_api_key"),
        (403, openai.PermissionDeniedError, "unsupported_country_region_territory"),
        (404, openai.NotFoundError, "model_not_found"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, None),
        (503, openai.InternalServerError, None),
    ],
)
def test_scripted_status_raises_matching_sdk_error(
    client: openai.OpenAI, emulator: EmulatorServer, status: int, exception: type[Exception], code: str | None
) -> None:
    emulator.script({"status": status, "headers": {"retry-after": "7"}})
    with pytest.raises(exception) as caught:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert caught.value.response.headers["retry-after"] == "7"
