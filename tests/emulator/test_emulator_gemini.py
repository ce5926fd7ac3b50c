"""The emulator answers the official `google-genai` SDK as the Gemini API does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from emulator_harness import TEST_KEY as KEY
from emulator_harness import EmulatorServer

GREETING = "Hello from the emulator. You said: "
MODEL = "gemini-2.5-flash"


@pytest.fixture
def client(emulator: EmulatorServer) -> genai.Client:
    # v1beta is what the gateway speaks upstream; this SDK version defaults to v1 (tested below).
    options = types.HttpOptions(base_url=emulator.url, api_version="v1beta")
    return genai.Client(api_key=KEY, http_options=options)


def unknown_fields(discovery: dict[str, Any], schema_name: str, value: Any, path: str = "") -> list[str]:
    """Paths of keys in `value` that the discovery document's schema does not define."""
    schema = discovery["schemas"][schema_name]
    found: list[str] = []
    for key, item in value.items():
        prop = schema.get("properties", {}).get(key)
        if prop is None:
            found.append(f"{path}.{key}")
            continue
        ref = prop.get("$ref") or prop.get("items", {}).get("$ref")
        for element in item if isinstance(item, list) else [item]:
            if ref and isinstance(element, dict):
                found.extend(unknown_fields(discovery, ref, element, f"{path}.{key}"))
    return found


def test_answers_use_only_fields_the_discovery_document_defines(
    emulator: EmulatorServer, specs_dir: Path
) -> None:
    discovery = json.loads((specs_dir / "gemini" / "discovery-v1beta.json").read_text())
    headers = {"x-goog-api-key": KEY}
    tool = {"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}, "required": ["a"]}}]}  # fmt: skip
    thinking = {"thinkingConfig": {"includeThoughts": True}}
    body = {"contents": [{"parts": [{"text": "CALL_TOOL"}]}], "tools": [tool], "generationConfig": thinking}
    generated = httpx.post(
        f"{emulator.url}/v1beta/models/{MODEL}:generateContent", json=body, headers=headers
    )
    assert unknown_fields(discovery, "GenerateContentResponse", generated.json()) == []
    parts = generated.json()["candidates"][0]["content"]["parts"]
    assert [sorted(p) for p in parts] == [["text", "thought"], ["functionCall", "thoughtSignature"]]
    counted = httpx.post(f"{emulator.url}/v1beta/models/{MODEL}:countTokens", json=body, headers=headers)
    assert unknown_fields(discovery, "CountTokensResponse", counted.json()) == []
    listed = httpx.get(f"{emulator.url}/v1beta/models", headers=headers)
    assert unknown_fields(discovery, "ListModelsResponse", listed.json()) == []
    embedded = httpx.post(
        f"{emulator.url}/v1beta/models/gemini-embedding-001:embedContent",
        json={"content": {"parts": [{"text": "e"}]}},
        headers=headers,
    )
    assert unknown_fields(discovery, "EmbedContentResponse", embedded.json()) == []


def test_generate_content_text_and_usage(client: genai.Client, emulator: EmulatorServer) -> None:
    response = client.models.generate_content(
        model=MODEL,
        contents="what is new",
        config=types.GenerateContentConfig(system_instruction="be kind"),
    )
    assert response.text == GREETING + "what is new"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage.prompt_token_count == len("be kind what is new") // 4
    assert usage.candidates_token_count == len(GREETING + "what is new") // 4
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert usage.thoughts_token_count is None
    recorded = emulator.requests()[-1]
    assert recorded["path"] == f"/v1beta/models/{MODEL}:generateContent"
    assert recorded["headers"]["x-goog-api-key"] == KEY


def test_sdk_default_v1_paths_are_served_too(emulator: EmulatorServer) -> None:
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=emulator.url))
    assert client.models.generate_content(model=MODEL, contents="v1").text == GREETING + "v1"
    assert next(m.name for m in client.models.list()) == "models/gemini-2.5-pro"
    assert [r["path"] for r in emulator.requests()] == [f"/v1/models/{MODEL}:generateContent", "/v1/models"]


def test_stream_chunks_carry_cumulative_usage_and_final_finish_reason(client: genai.Client) -> None:
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="stream this please"))
    assert len(chunks) >= 3
    assert "".join(c.text for c in chunks) == GREETING + "stream this please"
    reasons = [c.candidates[0].finish_reason for c in chunks]
    assert reasons[:-1] == [None] * (len(chunks) - 1)
    assert reasons[-1] == types.FinishReason.STOP
    counts = [c.usage_metadata.candidates_token_count or 0 for c in chunks]
    assert counts == sorted(counts) and counts[-1] == len(GREETING + "stream this please") // 4
    assert all(c.usage_metadata.prompt_token_count == 4 for c in chunks)


def test_sse_wire_uses_crlf_frames(emulator: EmulatorServer) -> None:
    response = httpx.post(
        f"{emulator.url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse&key={KEY}",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = response.content.split(b"\r\n\r\n")
    assert frames[-1] == b"" and all(f.startswith(b"data: {") for f in frames[:-1])
    assert b"[DONE]" not in response.content


def test_stream_without_alt_sse_is_an_incremental_json_array(emulator: EmulatorServer) -> None:
    with httpx.stream(
        "POST",
        f"{emulator.url}/v1beta/models/{MODEL}:streamGenerateContent",
        json={"contents": [{"parts": [{"text": "array please"}]}]},
        headers={"x-goog-api-key": KEY},
    ) as response:
        pieces = list(response.iter_raw())
    body = b"".join(pieces)
    assert body.startswith(b"[{") and body.endswith(b"}]")
    assert b"\n,\r\n{" in body
    items = json.loads(body)
    assert len(items) >= 3
    assert (
        "".join(i["candidates"][0]["content"]["parts"][0]["text"] for i in items) == GREETING + "array please"
    )
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"


def test_function_call_from_call_tool_trigger(client: genai.Client) -> None:
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="find_flight",
                description="Find a flight",
                parameters=types.Schema(
                    type=types.Type.OBJECT,
                    properties={
                        "origin": types.Schema(type=types.Type.STRING),
                        "stops": types.Schema(type=types.Type.INTEGER),
                    },
                    required=["origin", "stops"],
                ),
            )
        ]
    )
    config = types.GenerateContentConfig(tools=[tool], automatic_function_calling={"disable": True})
    response = client.models.generate_content(model=MODEL, contents="CALL_TOOL book it", config=config)
    call = response.function_calls[0]
    assert call.name == "find_flight"
    assert call.args == {"origin": "x", "stops": 1}
    assert call.id is None  # Gemini 2.x sends no id
    assert response.candidates[0].finish_reason == types.FinishReason.STOP


def test_function_call_with_parameters_json_schema_in_stream(client: genai.Client) -> None:
    declaration = {
        "name": "read_file",
        "parametersJsonSchema": {
            "type": "object",
            "properties": {"path": {"type": "string"}},
            "required": ["path"],
            "additionalProperties": False,
        },
    }
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])])
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="CALL_TOOL", config=config))
    calls = [fc for c in chunks for fc in c.function_calls or []]
    assert [(fc.name, fc.args) for fc in calls] == [("read_file", {"path": "x"})]


def test_include_thoughts_gives_thought_part_then_signed_part(client: genai.Client) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    response = client.models.generate_content(model=MODEL, contents="ponder", config=config)
    parts = response.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text
    assert parts[1].thought is None and parts[1].thought_signature
    assert parts[1].text == GREETING + "ponder"
    usage = response.usage_metadata
    assert usage.thoughts_token_count > 0
    assert usage.total_token_count == (
        usage.prompt_token_count + usage.candidates_token_count + usage.thoughts_token_count
    )


def test_count_tokens_in_both_body_forms(client: genai.Client, emulator: EmulatorServer) -> None:
    counted = client.models.count_tokens(model=MODEL, contents="a" * 40)
    assert counted.total_tokens == 10
    wrapped = httpx.post(
        f"{emulator.url}/v1beta/models/{MODEL}:countTokens",
        json={
            "generateContentRequest": {
                "model": f"models/{MODEL}",
                "contents": [{"parts": [{"text": "b" * 80}]}],
            }
        },
        headers={"x-goog-api-key": KEY},
    )
    assert wrapped.json()["totalTokens"] == 20


def test_embed_content_honours_output_dimensionality(client: genai.Client, emulator: EmulatorServer) -> None:
    result = client.models.embed_content(
        model="gemini-embedding-001",
        contents=["one", "two"],
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert len(result.embeddings) == 2
    assert all(len(e.values) == 16 for e in result.embeddings)
    assert result.embeddings[0].values != result.embeddings[1].values
    assert emulator.requests()[-1]["path"] == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    again = client.models.embed_content(
        model="gemini-embedding-001",
        contents="one",
        config=types.EmbedContentConfig(output_dimensionality=16),
    )
    assert again.embeddings[0].values == result.embeddings[0].values  # deterministic per text
    assert (
        len(client.models.embed_content(model="text-embedding-004", contents="one").embeddings[0].values) == 8
    )


def test_models_list_pages_and_get(client: genai.Client) -> None:
    pager = client.models.list(config={"page_size": 2})
    assert len(pager.page) == 2
    names = [m.name for m in pager]
    assert len(names) == 6 and names[0] == "models/gemini-2.5-pro"
    model = client.models.get(model="gemini-2.5-flash")
    assert model.display_name == "Gemini 2.5 Flash" and model.input_token_limit == 1048576


def test_unsupported_schema_keyword_is_rejected_like_gemini(emulator: EmulatorServer) -> None:
    tool = {
        "functionDeclarations": [
            {
                "name": "pick",
                "parameters": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "exclusiveMinimum": 0}},
                    "additionalProperties": False,
                },
            }
        ]
    }
    response = httpx.post(
        f"{emulator.url}/v1beta/models/{MODEL}:generateContent",
        json={"contents": [{"parts": [{"text": "x"}]}], "tools": [tool]},
        headers={"x-goog-api-key": KEY},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].split("\n") == [
        "Invalid JSON payload received. Unknown name \"exclusiveMinimum\" at 'tools[0].function_declarations[0].parameters.properties[0].value': Cannot find field.",
        "Invalid JSON payload received. Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters': Cannot find field.",
    ]
    violations = error["details"][0]["fieldViolations"]
    assert violations[0]["field"] == "tools[0].function_declarations[0].parameters.properties[0].value"


def test_supported_parameters_schema_is_accepted(client: genai.Client) -> None:
    declaration = {"name": "f", "parameters": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}}}}
    ok = client.models.generate_content(
        model=MODEL,
        contents="x",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])]),
    )
    assert ok.text.startswith(GREETING)


def test_missing_key_is_api_key_invalid(emulator: EmulatorServer) -> None:
    response = httpx.post(f"{emulator.url}/v1beta/models/{MODEL}:generateContent", json={"contents": []})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["details"][0]["reason"] == "API_KEY_INVALID"


def test_unknown_model_and_missing_contents(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="llama-3", contents="x")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"


def test_missing_contents_is_invalid_argument(emulator: EmulatorServer) -> None:
    response = httpx.post(
        f"{emulator.url}/v1beta/models/{MODEL}:generateContent",
        json={"contents": []},
        headers={"x-goog-api-key": KEY},
    )
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "* GenerateContentRequest.contents: contents is not specified\n"
    )


@pytest.mark.parametrize(
    ("status", "exception", "status_name"),
    [
        (400, errors.ClientError, "INVALID_ARGUMENT"),
        (403, errors.ClientError, "PERMISSION_DENIED"),
        (429, errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, errors.ServerError, "INTERNAL"),
        (503, errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_scripted_status_raises_matching_sdk_error(
    client: genai.Client, emulator: EmulatorServer, status: int, exception: type[Exception], status_name: str
) -> None:
    emulator.script({"status": status, "error": {"message": "scripted"}})
    with pytest.raises(exception) as caught:
        client.models.generate_content(model=MODEL, contents="x")
    assert caught.value.code == status
    assert caught.value.status == status_name
    assert caught.value.message == "scripted"
