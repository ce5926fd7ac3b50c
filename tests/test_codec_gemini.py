"""Gemini codec: recorded requests, responses and streams through the hub and back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.genai import types

from tests.emulator_harness import find_specs_dir
from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols import gemini, gemini_codec, gemini_request, gemini_stream
from torouter.protocols.sse import EventSplitter, event_data

SPECS = find_specs_dir()
FIREBASE = SPECS / "gemini/examples/firebase-mock-responses"
LINGUA = SPECS / "gemini/examples/lingua-captures"
CLI = SPECS / "clients/gemini-cli"

CLI_BODIES = {p.name: json.loads(p.read_text())["body"] for p in sorted(CLI.glob("turn-*.json"))}
LINGUA_REQUESTS = sorted(LINGUA.glob("*/google/*request.json"))
UNARY = [p for p in sorted(FIREBASE.glob("*.json")) if "error" not in json.loads(p.read_text())]
LINGUA_RESPONSES = sorted(LINGUA.glob("*/google/*response.json"))
STREAMS = sorted(FIREBASE.glob("streaming-*.txt"))
LINGUA_STREAMS = sorted(LINGUA.glob("*/google/*response-streaming.json"))


def _id(p: Path) -> str:
    return "/".join(p.parts[-3:])


def decode_stream(data: bytes, sse: bool = True, bytewise: bool = False) -> list[hub.Event]:
    d = gemini_stream.StreamDecoder(sse=sse)
    events: list[hub.Event] = []
    for k in range(len(data)) if bytewise else [None]:
        events += d.feed(data[k : k + 1] if k is not None else data)
    return events + d.finish()


def sse_objects(data: bytes) -> list[bytes]:
    splitter = EventSplitter()
    events = [*splitter.feed(data), splitter.flush()]
    return [d for e in events if e.strip() and (d := event_data(e)) is not None]


def as_array(objects: list[bytes]) -> bytes:
    return b"[" + b",\r\n".join(objects) + b"]"


def summary(events: list[hub.Event]) -> dict[str, Any]:
    """What a client would see: block kinds with their text, stop reason and final usage."""
    blocks: dict[int, list[Any]] = {}
    out: dict[str, Any] = {"stop": None, "usage": None, "ended": None}
    for e in events:
        if isinstance(e, hub.BlockStart):
            blocks[e.index] = [type(e.block).__name__, ""]
            if isinstance(e.block, hub.ToolUse):
                blocks[e.index] += [e.block.id, e.block.name, e.block.signature]
        elif isinstance(e, hub.BlockDelta) and e.kind != "signature":
            blocks[e.index][1] += e.value
        elif isinstance(e, hub.MessageDelta):
            out["stop"], out["usage"] = e.stop_reason, e.usage
        elif isinstance(e, hub.MessageStop | hub.StreamError):
            out["ended"] = type(e).__name__
    out["blocks"] = [blocks[k] for k in sorted(blocks)]
    return out


# ---------------------------------------------------------------- requests


@pytest.mark.parametrize("name", list(CLI_BODIES))
def test_gemini_cli_request_survives_a_same_protocol_hop(name: str) -> None:
    body = CLI_BODIES[name]
    req = gemini_request.decode_request(body, "gemini-2.5-flash")
    assert gemini_request.encode_request(req) == body
    assert req.system and len(req.tools) == 8 and req.reasoning is not None
    assert req.reasoning.budget_tokens == 8192 and (req.temperature, req.top_p, req.top_k) == (1, 0.95, 64)


@pytest.mark.parametrize("path", LINGUA_REQUESTS, ids=_id)
def test_lingua_google_request_survives_a_same_protocol_hop(path: Path) -> None:
    body = json.loads(path.read_text())
    assert gemini_request.encode_request(gemini_request.decode_request(body, "gemini-2.5-flash")) == body


def test_gemini_cli_tool_result_matches_its_client_made_call_id() -> None:
    req = gemini_request.decode_request(CLI_BODIES["turn-2.json"], "gemini-2.5-flash")
    call = req.messages[1].content[0]
    result = req.messages[2].content[0]
    assert isinstance(call, hub.ToolUse) and isinstance(result, hub.ToolResult)
    assert call.id == result.tool_use_id == "update_topic_1795710966993_0"
    assert call.signature == "skip_thought_signature_validator"
    assert result.is_error and result.name == "update_topic"
    assert hub.text_of(result.content) == "params must have required property 'strategic_intent'"
    assert req.tools[0].input_schema["type"] == "object"  # parametersJsonSchema, as sent


def test_snake_case_bodies_decode_like_camel_case_and_come_back_as_sent() -> None:
    snake = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "generation_config": {"max_output_tokens": 20, "thinking_config": {"thinking_budget": 0}},
    }
    req = gemini_request.decode_request(snake, "gemini-2.5-flash")
    assert req.max_tokens == 20 and req.system[0].text == "be brief"
    assert req.reasoning is not None and not req.reasoning.enabled
    assert gemini_request.encode_request(req) == snake


def test_calls_without_ids_get_stable_minted_ids_matched_by_name_in_order() -> None:
    body = json.loads((LINGUA / "parallelToolCallsRequest/google/request.json").read_text())
    a = gemini_request.decode_request(body, "gemini-2.5-flash")
    b = gemini_request.decode_request(body, "gemini-2.5-flash")
    calls = [x for x in a.messages[1].content if isinstance(x, hub.ToolUse)]
    results = [x for x in a.messages[2].content if isinstance(x, hub.ToolResult)]
    assert [c.id for c in calls] == [r.tool_use_id for r in results]
    assert len({c.id for c in calls}) == 2 and all(c.id.startswith("call_") for c in calls)
    assert calls == [x for x in b.messages[1].content if isinstance(x, hub.ToolUse)]
    assert hub.text_of(results[0].content) == '{"result":"65°F and sunny."}'


def _foreign_request(model: str) -> hub.Request:
    """A conversation as another protocol's decoder leaves it (no Gemini extras)."""
    return hub.Request(
        model=model,
        system=[hub.Text("sys")],
        messages=[
            hub.Message("user", [hub.Text("weather?"), hub.Image("image/png", "iVBOR")]),
            hub.Message(
                "assistant",
                [
                    hub.Thinking("hmm", "anthropic-signature"),
                    hub.Text("checking"),
                    hub.ToolUse("toolu_01", "get_weather", {"city": "Paris"}),
                ],
            ),
            hub.Message("user", [hub.ToolResult("toolu_01", [hub.Text("sunny")])]),
            hub.Message("user", [hub.ToolResult("toolu_02", [hub.Text("boom")], is_error=True, name="x")]),
        ],
        tools=[
            hub.Tool(
                "get_weather",
                "w",
                {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False},
            )
        ],
        tool_choice=hub.ToolChoice("tool", "get_weather"),
        max_tokens=100,
        stop=["END"],
        n=2,
        reasoning=hub.Reasoning(effort="medium"),
        response_format=hub.ResponseFormat("json_schema", {"type": "object"}),
        user="u1",
    )


def test_foreign_history_encodes_to_a_valid_gemini_request() -> None:
    body = gemini_request.encode_request(_foreign_request("gemini-2.5-flash"))
    assert "model" not in body and "user" not in json.dumps(body).replace('"user"', "")
    assert body["systemInstruction"] == {"parts": [{"text": "sys"}]}
    user, model, results = body["contents"]
    assert user == {
        "role": "user",
        "parts": [{"text": "weather?"}, {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}],
    }
    # Anthropic's thinking signature means nothing to Gemini: dropped; foreign ids are not sent.
    assert model == {
        "role": "model",
        "parts": [{"text": "checking"}, {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert results["role"] == "user"  # consecutive user turns merged
    assert results["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}},
        {"functionResponse": {"name": "x", "response": {"error": "boom"}}},
    ]
    fd = body["tools"][0]["functionDeclarations"][0]
    assert fd["parameters"] == {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}
    assert body["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert body["generationConfig"] == {
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192},
    }
    assert types.Content.model_validate(model).parts[1].function_call.name == "get_weather"


def test_gemini_3_gets_the_signature_placeholder_and_a_thinking_level() -> None:
    body = gemini_request.encode_request(_foreign_request("gemini-3-pro-preview"))
    call = body["contents"][1]["parts"][1]
    assert call["thoughtSignature"] == "skip_thought_signature_validator"
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingLevel": "high"}


def test_unsupported_inline_media_is_a_400() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "audio/wav", "data": "AA"}}]}]
    }
    with pytest.raises(GatewayError) as e:
        gemini_request.decode_request(body, "m")
    assert e.value.kind == "invalid_request" and "audio/wav" in e.value.message


@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"contents": {}},
        {"contents": [1]},
        {"contents": [{"role": "bot", "parts": []}]},
        {"contents": [{"parts": "x"}]},
        {"contents": [], "tools": {}},
    ],
)
def test_check_request_refuses_malformed_bodies(body: Any) -> None:
    with pytest.raises(GatewayError) as e:
        gemini.check_request(body)
    assert e.value.kind == "invalid_request"


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize("path", UNARY + LINGUA_RESPONSES, ids=_id)
def test_response_round_trips_through_the_hub(path: Path) -> None:
    body = json.loads(path.read_text())
    resp = gemini_codec.decode_response(body)
    out = gemini_codec.encode_response(resp, resp.model)
    types.GenerateContentResponse.model_validate(out)
    assert gemini_codec.decode_response(out) == resp
    if body.get("usageMetadata") and "toolUsePromptTokenCount" not in body["usageMetadata"]:
        um = body["usageMetadata"]
        assert {k: um[k] for k in out["usageMetadata"] if k in um} == {
            k: v for k, v in out["usageMetadata"].items() if k in um or v
        }


def test_response_details_decode() -> None:
    fc = gemini_codec.decode_response(
        json.loads(
            (FIREBASE / "vertexai-unary-success-function-call-different-parallel-calls.json").read_text()
        )
    )
    assert [b.name for b in fc.content] == ["sum", "multiply", "subtract"] and fc.stop_reason == "tool_use"
    assert len({b.id for b in fc.content}) == 3
    safety = gemini_codec.decode_response(
        json.loads((FIREBASE / "unary-failure-finish-reason-safety.json").read_text())
    )
    assert safety.stop_reason == "refusal"
    blocked = gemini_codec.decode_response(
        json.loads((FIREBASE / "unary-failure-only-prompt-feedback.json").read_text())
    )
    assert blocked.stop_reason == "refusal" and "blocked" in hub.text_of(blocked.content)
    think = gemini_codec.decode_response(
        json.loads((FIREBASE / "unary-success-thinking-reply-thought-summary.json").read_text())
    )
    assert isinstance(think.content[0], hub.Thinking) and hub.text_of(think.content) == "Mountain View"
    assert think.usage == hub.Usage(input_tokens=14, output_tokens=26, reasoning_tokens=24)
    g3 = gemini_codec.decode_response(
        json.loads((LINGUA / "toolCallRequest/google/response.json").read_text())
    )
    assert g3.content[0].id != "" and g3.content[0].signature  # Gemini 3: own id and signature


def test_text_signature_rides_on_a_signature_only_thinking_block() -> None:
    body = json.loads((LINGUA / "parallelToolCallsRequest/google/followup-response.json").read_text())
    resp = gemini_codec.decode_response(body)
    sig = body["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert resp.content[0] == hub.Thinking("", hub.gemini_signature(sig)) and isinstance(
        resp.content[1], hub.Text
    )
    assert (
        gemini_codec.encode_response(resp, "m")["candidates"][0]["content"]["parts"]
        == body["candidates"][0]["content"]["parts"]
    )


def test_usage_normal_form() -> None:
    um = {
        "promptTokenCount": 100,
        "cachedContentTokenCount": 60,
        "candidatesTokenCount": 10,
        "thoughtsTokenCount": 5,
        "toolUsePromptTokenCount": 7,
    }
    assert gemini.usage_from(um) == hub.Usage(
        input_tokens=107, output_tokens=15, cached_tokens=60, reasoning_tokens=5
    )
    assert gemini.usage_body(hub.Usage(100, 15, 60, reasoning_tokens=5)) == {
        "promptTokenCount": 100, "candidatesTokenCount": 10, "totalTokenCount": 115,
        "thoughtsTokenCount": 5, "cachedContentTokenCount": 60,
    }  # fmt: skip


# ---------------------------------------------------------------- streams

EXPECTED = {
    "streaming-success-basic-reply-short.txt": (["Text"], "end_turn", hub.Usage(7, 10)),
    "streaming-failure-recitation-no-content.txt": (["Text"], "refusal", hub.Usage(9, 261)),
    "streaming-failure-prompt-blocked-safety.txt": (["Text"], "refusal", hub.Usage()),
    "streaming-success-empty-parts.txt": (["Text", "Image"], "end_turn", hub.Usage(16, 1307)),
    "streaming-success-thinking-reply-thought-summary.txt": (
        ["Thinking", "Text"],
        "end_turn",
        hub.Usage(10, 588, reasoning_tokens=540),
    ),
    "streaming-success-thinking-function-call-thought-summary-signature.txt": (
        ["Thinking", "ToolUse"],
        "tool_use",
        hub.Usage(38, 174, reasoning_tokens=168),
    ),
}


@pytest.mark.parametrize("path", STREAMS, ids=_id)
def test_firebase_stream_decodes_the_same_whole_byte_by_byte_and_as_an_array(path: Path) -> None:
    data = path.read_bytes()
    whole = decode_stream(data)
    assert decode_stream(data, bytewise=True) == whole
    array = as_array(sse_objects(data))
    assert decode_stream(array, sse=False) == whole
    assert decode_stream(array, sse=False, bytewise=True) == whole
    s = summary(whole)
    kinds, stop, usage = EXPECTED[path.name]
    assert [b[0] for b in s["blocks"]] == kinds
    assert (s["stop"], s["usage"], s["ended"]) == (stop, usage, "MessageStop")


def test_stream_golden_texts_and_ids() -> None:
    s = summary(decode_stream((FIREBASE / "streaming-failure-recitation-no-content.txt").read_bytes()))
    assert s["blocks"] == [["Text", "text1text2text3text4text5text6text7text8"]]
    s = summary(decode_stream((FIREBASE / "streaming-failure-prompt-blocked-safety.txt").read_bytes()))
    assert s["blocks"] == [["Text", "The prompt was blocked (reason: SAFETY)."]]
    path = FIREBASE / "streaming-success-thinking-function-call-thought-summary-signature.txt"
    s = summary(decode_stream(path.read_bytes()))
    thinking, call = s["blocks"]
    assert thinking[1].startswith("**Calculating the Days**")
    assert call[1] == "{}" and call[3] == "now" and call[4].startswith("CiIBVKhc")
    unary = gemini_codec.decode_response(
        json.loads(
            (FIREBASE / "unary-success-thinking-function-call-thought-summary-signature.json").read_text()
        )
    )
    assert call[2] == gemini_codec.mint_id("48SHaPHpHKbG-8YPtZCawAk", 0, "now")  # stable, like unary ids
    assert unary.content[-1].id.startswith("call_")


def test_cached_and_thought_tokens_reach_the_message_delta() -> None:
    chunk = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "hi"}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": 50,
            "cachedContentTokenCount": 40,
            "candidatesTokenCount": 2,
            "thoughtsTokenCount": 3,
        },
    }
    s = summary(decode_stream(b"data: " + orjson.dumps(chunk) + b"\r\n\r\n"))
    assert s["usage"] == hub.Usage(50, 5, 40, reasoning_tokens=3)


def test_stream_errors_and_early_ends() -> None:
    err = gemini.stream_error_chunk(GatewayError("rate_limit", "slow down"), sse=True)
    events = decode_stream(b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\r\n\r\n' + err)
    assert events[-1] == hub.StreamError("rate_limit", "slow down")
    events = decode_stream(b'data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}]}\r\n\r\n')
    assert isinstance(events[-1], hub.StreamError) and "early" in events[-1].message
    assert isinstance(decode_stream(b"data: {nope\r\n\r\n")[-1], hub.StreamError)
    array = b'[{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}' + gemini.stream_error_chunk(
        GatewayError("overloaded", "busy"), sse=False
    )
    assert orjson.loads(array)[1]["error"]["status"] == "UNAVAILABLE"
    assert decode_stream(array, sse=False)[-1] == hub.StreamError("unavailable", "busy")


def test_fields_of_other_types_read_as_absent_and_the_stream_goes_on() -> None:
    chunks = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}}]},
        {"candidates": [{"content": {"role": "model", "parts": 5}}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "b"}]}, "finishReason": ["STOP"]}]},
    ]
    events = decode_stream(b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks))
    assert not [e for e in events if isinstance(e, hub.StreamError)], events
    assert "".join(e.value for e in events if isinstance(e, hub.BlockDelta)) == "ab"
    assert isinstance(events[-1], hub.MessageStop)
    assert [e.stop_reason for e in events if isinstance(e, hub.MessageDelta)] == ["end_turn"]


def _reencode(events: list[hub.Event], model: str, sse: bool) -> bytes:
    enc = gemini_stream.StreamEncoder(model, sse=sse)
    return b"".join(enc.encode(e) for e in events)


def _all_streams() -> list[tuple[str, bytes]]:
    out = [(p.name, p.read_bytes()) for p in STREAMS]
    for p in LINGUA_STREAMS:  # lingua keeps the chunks as a JSON list: frame them as SSE
        chunks = json.loads(p.read_text())
        out.append((_id(p), b"".join(b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in chunks)))
    return out


@pytest.mark.parametrize(("name", "data"), _all_streams(), ids=[n for n, _ in _all_streams()])
def test_encoder_output_re_decodes_to_the_same_events(name: str, data: bytes) -> None:
    events = decode_stream(data)
    start = events[0]
    assert isinstance(start, hub.MessageStart)
    sse = _reencode(events, start.model, sse=True)
    for frame in sse_objects(sse):
        types.GenerateContentResponse.model_validate(orjson.loads(frame))
    assert decode_stream(sse) == events
    array = _reencode(events, start.model, sse=False)
    assert array.startswith(b"[") and array.endswith(b"]") and isinstance(orjson.loads(array), list)
    assert decode_stream(array, sse=False, bytewise=True) == events


def test_encoder_buffers_tool_json_and_reports_errors_in_array_mode() -> None:
    enc = gemini_stream.StreamEncoder("m", sse=False)
    out = b"".join(
        enc.encode(e)
        for e in [
            hub.MessageStart("resp-1", "x", hub.Usage(5)),
            hub.BlockStart(0, hub.ToolUse("toolu_9", "f", {})),
            hub.BlockDelta(0, "json", '{"a":'),
            hub.BlockDelta(0, "json", "1}"),
            hub.BlockStop(0),
            hub.StreamError("timeout", "late"),
        ]
    )
    first, error = orjson.loads(out)
    assert first["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"name": "f", "args": {"a": 1}, "id": "toolu_9"}}
    ]
    assert first["usageMetadata"]["promptTokenCount"] == 5 and first["responseId"] == "resp-1"
    assert error["error"]["code"] == 504 and error["error"]["status"] == "DEADLINE_EXCEEDED"
    assert (
        gemini_stream.StreamEncoder("m", sse=False)
        .encode(hub.StreamError("api_error", "x"))
        .startswith(b"[{")
    )


# ---------------------------------------------------------------- wire basics


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("invalid_request", 400, "INVALID_ARGUMENT"),
        ("authentication", 401, "UNAUTHENTICATED"),
        ("permission", 403, "PERMISSION_DENIED"),
        ("not_found", 404, "NOT_FOUND"),
        ("request_too_large", 413, "INVALID_ARGUMENT"),
        ("rate_limit", 429, "RESOURCE_EXHAUSTED"),
        ("insufficient_quota", 429, "RESOURCE_EXHAUSTED"),
        ("api_error", 500, "INTERNAL"),
        ("bad_gateway", 502, "UNAVAILABLE"),
        ("unavailable", 503, "UNAVAILABLE"),
        ("timeout", 504, "DEADLINE_EXCEEDED"),
        ("overloaded", 503, "UNAVAILABLE"),
    ],
)
def test_error_body_speaks_google_rpc(kind: str, code: int, status: str) -> None:
    err = GatewayError(kind, "why")
    body = orjson.loads(gemini.error_body(err, "req-1"))
    assert gemini.status_of(err) == code
    assert (
        body["error"]["code"] == code
        and body["error"]["status"] == status
        and body["error"]["message"] == "why"
    )
    assert body["error"]["details"][0]["metadata"] == {"request_id": "req-1"}


def test_bad_key_error_from_google_reads_as_authentication() -> None:
    body = json.loads((FIREBASE / "unary-failure-api-key.json").read_text())
    assert gemini.error_kind(body["error"]) == "authentication"
    assert (
        gemini.error_kind(json.loads((FIREBASE / "unary-failure-unknown-model.json").read_text())["error"])
        == "not_found"
    )


@pytest.mark.parametrize("path", STREAMS, ids=_id)
def test_taps_relay_bytes_untouched_and_keep_the_last_usage(path: Path) -> None:
    data = path.read_bytes()
    expected = gemini_stream.StreamDecoder()
    expected.feed(data)
    expected.finish()
    array = as_array(sse_objects(data))
    for tap, stream in ((gemini.SSETap(), data), (gemini.ArrayTap(), array)):
        relayed = b"".join(tap.feed(stream[k : k + 7]) for k in range(0, len(stream), 7)) + tap.flush()
        assert relayed == stream
        assert tap.usage == expected.usage and tap.done and tap.error is None


def test_taps_see_errors_and_braces_inside_strings() -> None:
    tricky = b'[{"candidates":[{"content":{"parts":[{"text":"}]{\\"usageMetadata\\": {"}]}}],"usageMetadata":{"promptTokenCount":3}}'
    err = gemini.stream_error_chunk(GatewayError("api_error", "boom"), sse=False)
    tap = gemini.ArrayTap()
    for k in range(len(tricky + err)):
        tap.feed((tricky + err)[k : k + 1])
    assert tap.usage == hub.Usage(3) and tap.error is not None and tap.done
    sse = gemini.SSETap()
    sse.feed(gemini.stream_error_chunk(GatewayError("rate_limit", "x"), sse=True))
    assert sse.error is not None and orjson.loads(sse.error)["error"]["code"] == 429


def test_gemini_signatures_never_reach_another_vendor() -> None:
    """Gemini 3 signs thoughts and plain text parts; Anthropic and OpenRouter could not verify them."""
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "hmm", "thought": True, "thoughtSignature": "SIG1"},
                    {"text": "answer", "thoughtSignature": "SIG2"},
                ],
            },
            {"role": "user", "parts": [{"text": "more"}]},
        ]
    }
    from torouter.protocols import anthropic_codec, openai_chat_request

    to_anthropic = anthropic_codec.encode_request(gemini_request.decode_request(body, "m"))
    assert "SIG" not in json.dumps(to_anthropic) and "thinking" not in json.dumps(to_anthropic["messages"])
    for platform in ("openrouter", "openai_compatible"):
        chat = openai_chat_request.encode_request(gemini_request.decode_request(body, "m"), platform)
        assert "SIG" not in json.dumps(chat)
    assert (
        gemini_request.encode_request(gemini_request.decode_request(body, "m")) == body
    )  # Gemini gets them back
