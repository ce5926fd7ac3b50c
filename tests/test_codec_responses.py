"""The OpenAI Responses codec: requests, responses and streams to and from the hub, on recorded traffic."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseInputParam, ResponseStreamEvent, ToolParam
from pydantic import TypeAdapter

from tests.emulator_harness import find_specs_dir
from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols import responses
from torouter.protocols.responses_codec import decode_response, encode_response
from torouter.protocols.responses_request import (
    PROTOCOL,
    decode_request,
    encode_request,
    flat_tool_names,
)
from torouter.protocols.responses_stream import StreamDecoder, StreamEncoder

SPECS = find_specs_dir()
CAPTURES = SPECS / "openai/examples/lingua-captures"
REQUESTS = sorted(CAPTURES.glob("*/responses/*request.json"))
RESPONSES = sorted(CAPTURES.glob("*/responses/*response.json"))
STREAMS = sorted(CAPTURES.glob("*/responses/*response-streaming.json"))
CODEX = [SPECS / "clients/codex/turn-1.json", SPECS / "clients/codex/turn-2.json"]
TARGET_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
EVENT = TypeAdapter(ResponseStreamEvent)


def load(path: Path) -> Any:
    data = json.loads(path.read_text())
    return data["body"] if path in CODEX else data


def label(p: Path) -> str:
    return f"{p.parts[-3]}/{p.name}"


# ---------------------------------------------------------------- requests


@pytest.mark.parametrize("path", REQUESTS + CODEX, ids=label)
def test_a_recorded_request_survives_a_same_protocol_hop(path: Path) -> None:
    body = load(path)
    assert encode_request(decode_request(responses.check_request(body))) == body


def test_codex_namespace_tools_are_flattened_to_names_every_target_accepts() -> None:
    req = decode_request(load(CODEX[0]))
    names = [t.name for t in req.tools]
    assert all(TARGET_NAME.match(n) for n in names)
    assert "multi_agent_v1__spawn_agent" in names and "exec_command" in names
    assert flat_tool_names(req)["multi_agent_v1__spawn_agent"] == ("multi_agent_v1", "spawn_agent")
    extras = req.extras[PROTOCOL]
    assert extras["builtin_tools"] == [{"type": "web_search", "external_web_access": False}]
    assert extras["store"] is False and extras["include"] == ["reasoning.encrypted_content"]
    assert req.stream and req.reasoning == hub.Reasoning(summary="auto")
    assert len(req.system) == 3 and req.messages[0].role == "user"  # developer items are the system


def test_codex_tool_loop_keeps_reasoning_signature_and_call_ids() -> None:
    body = load(CODEX[1])
    at = next(i for i, item in enumerate(body["input"]) if item.get("type") == "function_call")
    reasoning = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "Run the tool."}],
        "encrypted_content": "gAAAA-opaque",
    }
    body["input"].insert(at, reasoning)
    req = decode_request(body)
    assistant = req.messages[-2]
    assert assistant.role == "assistant"
    assert assistant.content[0] == hub.Thinking("Run the tool.", signature="gAAAA-opaque")
    use, result = assistant.content[1], req.messages[-1].content[0]
    assert isinstance(use, hub.ToolUse) and isinstance(result, hub.ToolResult)
    assert use.id == result.tool_use_id == "call_mock1" and result.name == "exec_command"
    assert encode_request(req) == body  # the reasoning item keeps its id on a same-protocol hop


def test_a_changed_item_is_written_afresh_and_the_others_kept() -> None:
    body = load(REQUESTS[0])  # parallelToolCallsRequest followup
    req = decode_request(body)
    first = req.messages[0].content[0]
    assert isinstance(first, hub.Text)
    first.text = "Weather in Paris?"
    out = encode_request(req)
    assert out["input"][0] == {
        "role": "user",
        "content": [{"type": "input_text", "text": "Weather in Paris?"}],
    }
    assert out["input"][1:] == body["input"][1:]


def test_a_long_namespace_is_shortened_and_restored_in_the_answer() -> None:
    ns, inner = "a" * 50, "b" * 40
    fn = {"type": "function", "name": inner, "parameters": {"type": "object"}, "strict": False}
    body = {
        "model": "gpt-5",
        "input": "hi",
        "tools": [{"type": "namespace", "name": ns, "description": "d", "tools": [fn]}],
    }
    req = decode_request(body)
    flat = req.tools[0].name
    assert TARGET_NAME.match(flat) and flat_tool_names(req)[flat] == (ns, inner)
    answer = hub.Response("msg_1", "m", [hub.ToolUse("call_1", flat, {"x": 1})], "tool_use")
    out = encode_response(answer, "gpt-5", req)
    assert out["output"][0]["name"] == inner and out["output"][0]["namespace"] == ns
    Response.model_validate(out)
    assert encode_request(req) == body


def test_custom_tools_become_functions_taking_an_input_string() -> None:
    body = {
        "model": "gpt-5",
        "input": [
            {"role": "user", "content": "patch it"},
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "*** Begin"},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
        ],
        "tools": [{"type": "custom", "name": "apply_patch", "description": "Patch files."}],
    }
    req = decode_request(body)
    assert req.tools[0].input_schema["properties"] == {"input": {"type": "string"}}
    assert req.messages[1].content[0] == hub.ToolUse("c1", "apply_patch", {"input": "*** Begin"})
    assert encode_request(req) == body
    out = encode_response(
        hub.Response("m", "m", [hub.ToolUse("c2", "apply_patch", {"input": "x"})]), "m", req
    )
    assert out["output"][0]["type"] == "custom_tool_call" and out["output"][0]["input"] == "x"
    Response.model_validate(out)


def test_settings_map_to_the_hub() -> None:
    body = {
        "model": "gpt-5",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"role": "developer", "content": "Now in French."},
            {"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        ],
        "max_output_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "reasoning": {"effort": "low", "summary": "auto"},
        "text": {
            "format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}
        },
        "tool_choice": {"type": "web_search_preview"},
        "safety_identifier": "u1",
        "previous_response_id": "resp_0",
    }
    req = decode_request(body)
    assert req.system == [hub.Text("Be brief.")]
    assert req.messages[1].content[0] == hub.Text("[system] Now in French.")
    assert req.messages[2].content[0] == hub.Image(media_type="image/png", data="AAAA")
    assert (req.max_tokens, req.temperature, req.top_p, req.user) == (100, 0.5, 0.9, "u1")
    assert req.tool_choice is not None and req.tool_choice.disable_parallel
    assert req.reasoning == hub.Reasoning(effort="low", summary="auto")
    assert req.response_format == hub.ResponseFormat("json_schema", {"type": "object"}, "x", True)
    assert req.extras[PROTOCOL]["tool_choice"] == {"type": "web_search_preview"}
    assert encode_request(req) == body


def test_a_request_from_another_protocol_encodes_to_valid_responses_input() -> None:
    req = hub.Request(
        model="gpt-5",
        system=[hub.Text("sys")],
        messages=[
            hub.Message("user", [hub.Text("look"), hub.Image(url="https://x/y.png")]),
            hub.Message(
                "assistant",
                [hub.Thinking("hmm", signature="anthropic-sig"), hub.ToolUse("toolu_1", "get", {"q": 1})],
            ),
            hub.Message("user", [hub.ToolResult("toolu_1", [hub.Text("boom")], is_error=True)]),
        ],
        tools=[hub.Tool("get", "Get it.", {"type": "object", "properties": {}})],
        tool_choice=hub.ToolChoice("any"),
        stop=["END"],
        max_tokens=50,
        reasoning=hub.Reasoning(budget_tokens=4000),
    )
    out = encode_request(req)
    assert out["instructions"] == "sys" and out["tool_choice"] == "required"
    assert out["reasoning"] == {"effort": "medium"} and out["max_output_tokens"] == 50
    assert "stop" not in out and not any(i.get("type") == "reasoning" for i in out["input"])
    assert out["input"][-1] == {
        "type": "function_call_output",
        "call_id": "toolu_1",
        "output": "[tool error] boom",
    }
    TypeAdapter(ResponseInputParam).validate_python(out["input"])
    TypeAdapter(list[ToolParam]).validate_python(out["tools"])
    back = decode_request(out)
    assert back.messages[-1].content[0] == hub.ToolResult("toolu_1", [hub.Text("boom")], True, name="get")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ([], None),
        ({"input": "hi"}, "model"),
        ({"model": 3, "input": "hi"}, "model"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": ["x"]}, "input[0]"),
        ({"model": "m", "input": "hi", "stream": "yes"}, "stream"),
        ({"model": "m", "input": "hi", "max_output_tokens": 1.5}, "max_output_tokens"),
    ],
)
def test_bad_requests_get_a_400_naming_the_field(body: Any, param: str | None) -> None:
    with pytest.raises(GatewayError) as info:
        responses.check_request(body)
    assert info.value.status == 400 and info.value.param == param


def test_file_ids_are_refused_when_translating() -> None:
    body = {
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}],
    }
    with pytest.raises(GatewayError, match="file_id"):
        decode_request(body)


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize("path", RESPONSES, ids=label)
def test_a_recorded_response_round_trips_and_validates(path: Path) -> None:
    body = json.loads(path.read_text())
    resp = decode_response(body)
    assert resp.usage == responses.usage_from(body["usage"])
    assert responses.response_usage(body) == resp.usage
    request = decode_request(load(path.with_name(path.name.replace("response", "request"))))
    for req in (None, request):
        out = encode_response(resp, body["model"], req)
        Response.model_validate(out)
        assert decode_response(out) == resp
    assert out["tools"] == body["tools"] and out["tool_choice"] == body["tool_choice"]


def test_usage_normal_form_keeps_cached_and_reasoning_inside_the_totals() -> None:
    u = responses.usage_from(
        {
            "input_tokens": 100,
            "input_tokens_details": {"cached_tokens": 40},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 20},
            "total_tokens": 130,
        }
    )
    assert u == hub.Usage(input_tokens=100, output_tokens=30, cached_tokens=40, reasoning_tokens=20)


def test_stop_reasons_become_statuses() -> None:
    for stop, status, reason in (
        ("max_tokens", "incomplete", "max_output_tokens"),
        ("refusal", "incomplete", "content_filter"),
        ("tool_use", "completed", None),
    ):
        out = encode_response(hub.Response("m1", "m", [hub.Text("x")], stop), "m")
        Response.model_validate(out)
        assert out["status"] == status and (out["incomplete_details"] or {}).get("reason") == reason
        assert decode_response(out).stop_reason == (stop if stop != "tool_use" else "end_turn")


def test_redacted_thinking_travels_in_encrypted_content() -> None:
    resp = hub.Response("m1", "m", [hub.RedactedThinking("opaque"), hub.Text("hi")])
    out = encode_response(resp, "m")
    Response.model_validate(out)
    assert decode_response(out).content == resp.content
    back = decode_request({"model": "m", "input": [{"role": "user", "content": "q"}, *out["output"]]})
    assert back.messages[1].content[0] == hub.RedactedThinking("opaque")


# ---------------------------------------------------------------- streams: encoder


def _scenario(name: str) -> tuple[list[hub.Event], hub.Response]:
    usage = hub.Usage(input_tokens=12, output_tokens=7, cached_tokens=2, reasoning_tokens=3)
    blocks: list[hub.Block]
    if name == "text":
        blocks = [hub.Text("Hello, world")]
    elif name == "thinking":
        blocks = [hub.Thinking("Let me see.", signature="sig=="), hub.Text("Paris.")]
    else:
        blocks = [
            hub.ToolUse("call_a", "get_weather", {"city": "Paris"}),
            hub.ToolUse("call_b", "get_time", {}),
        ]
    events: list[hub.Event] = [hub.MessageStart("msg_1", "claude", created=1700000000)]
    for i, b in enumerate(blocks):
        if isinstance(b, hub.Text):
            events += [hub.BlockStart(i, hub.Text("")), hub.BlockDelta(i, "text", b.text[:5])]
            events += [hub.BlockDelta(i, "text", b.text[5:])]
        elif isinstance(b, hub.Thinking):
            events += [hub.BlockStart(i, hub.Thinking("")), hub.BlockDelta(i, "thinking", b.thinking)]
            events += [hub.BlockDelta(i, "signature", b.signature or "")]
        elif isinstance(b, hub.ToolUse):
            args = orjson.dumps(b.input).decode()
            events += [hub.BlockStart(i, hub.ToolUse(b.id, b.name)), hub.BlockDelta(i, "json", args[:3])]
            events += [hub.BlockDelta(i, "json", args[3:])]
        events.append(hub.BlockStop(i))
    stop: hub.StopReason = "tool_use" if name == "tools" else "end_turn"
    events += [hub.MessageDelta(stop, usage=usage), hub.MessageStop()]
    return events, hub.Response("msg_1", "claude", blocks, stop, usage=usage, created=1700000000)


def _frames(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in data.decode().split("\n\n"):
        if frame:
            name, payload = frame.split("\n")
            out.append((name.removeprefix("event: "), json.loads(payload.removeprefix("data: "))))
    return out


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "completed_at"}


@pytest.mark.parametrize("name", ["text", "thinking", "tools"])
def test_the_stream_encoder_writes_what_the_sdk_reads(name: str) -> None:
    events, expected = _scenario(name)
    enc = StreamEncoder("gpt-x", None, "resp_test")
    frames = _frames(b"".join(enc.encode(e) for e in events))
    assert [d["sequence_number"] for _, d in frames] == list(range(len(frames)))
    assert all(n == d["type"] for n, d in frames)
    parsed = [EVENT.validate_python(d) for _, d in frames]
    assert frames[0][0] == "response.created" and frames[-1][0] == "response.completed"
    final = frames[-1][1]["response"]
    assert _strip(final) == _strip(encode_response(expected, "gpt-x", None, "resp_test"))
    assert enc.final_response() == final
    # The official SDK's accumulator rebuilds the same answer from the events.
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in parsed:
        state.handle_event(event)
    snapshot = state._completed_response
    assert snapshot is not None and snapshot.output_text == hub.text_of(expected.content)
    calls = [
        (o.call_id, o.name, json.loads(o.arguments)) for o in snapshot.output if o.type == "function_call"
    ]
    assert calls == [(b.id, b.name, b.input) for b in expected.content if isinstance(b, hub.ToolUse)]


def test_the_stream_encoder_ends_an_error_with_response_failed() -> None:
    enc = StreamEncoder("gpt-x")
    out = enc.encode(hub.MessageStart("m", "m"))
    out += enc.encode(hub.BlockStart(0, hub.Text(""))) + enc.encode(hub.BlockDelta(0, "text", "par"))
    out += enc.encode(hub.StreamError("overloaded", "Upstream overloaded."))
    frames = _frames(out)
    for _, d in frames:
        EVENT.validate_python(d)
    assert [n for n, _ in frames][-2:] == ["error", "response.failed"]
    assert frames[-1][1]["response"]["status"] == "failed" and enc.encode(hub.MessageStop()) == b""
    assert enc.final_response() == frames[-1][1]["response"]


def test_max_tokens_ends_the_stream_with_response_incomplete() -> None:
    enc = StreamEncoder("gpt-x")
    out = b"".join(
        enc.encode(e) for e in (hub.MessageStart("m", "m"), hub.MessageDelta("max_tokens"), hub.MessageStop())
    )
    name, data = _frames(out)[-1]
    assert name == "response.incomplete"
    assert data["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    EVENT.validate_python(data)


def test_stream_error_event_is_a_response_error_event() -> None:
    raw = responses.stream_error_event(GatewayError("rate_limit", "Slow down."), 7)
    name, data = _frames(raw)[0]
    assert name == "error" and data["code"] == "rate_limit_exceeded" and data["sequence_number"] == 7
    EVENT.validate_python(data)


# ---------------------------------------------------------------- streams: decoder and tap


def _render(path: Path) -> bytes:
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n"
        for e in json.loads(path.read_text())
    )


def _collect(events: list[hub.Event]) -> hub.Response:
    resp = hub.Response("", "")
    blocks: dict[int, hub.Block] = {}
    args: dict[int, str] = {}
    for e in events:
        assert not isinstance(e, hub.StreamError), e
        if isinstance(e, hub.MessageStart):
            resp.id = e.id
        elif isinstance(e, hub.BlockStart):
            blocks[e.index] = copy.deepcopy(e.block)
            resp.content.append(blocks[e.index])
        elif isinstance(e, hub.BlockDelta):
            b = blocks[e.index]
            if e.kind == "text" and isinstance(b, hub.Text):
                b.text += e.value
            elif e.kind == "thinking" and isinstance(b, hub.Thinking):
                b.thinking += e.value
            elif e.kind == "signature" and isinstance(b, hub.Thinking):
                b.signature = (b.signature or "") + e.value
            elif e.kind == "json":
                args[e.index] = args.get(e.index, "") + e.value
        elif isinstance(e, hub.MessageDelta):
            resp.stop_reason, resp.usage = e.stop_reason, e.usage or hub.Usage()
    for i, raw in args.items():
        b = blocks[i]
        assert isinstance(b, hub.ToolUse)
        b.input = json.loads(raw)
    assert isinstance(events[-1], hub.MessageStop)
    return resp


@pytest.mark.parametrize("path", STREAMS, ids=label)
def test_the_stream_decoder_reads_recorded_streams_however_they_are_cut(path: Path) -> None:
    data = _render(path)
    final = json.loads(path.read_text())[-1]["response"]
    expected = decode_response(final)
    for pieces in ([data], [data[i : i + 1] for i in range(len(data))]):
        dec = StreamDecoder()
        events = [e for p in pieces for e in dec.feed(p)] + dec.finish()
        got = _collect(events)
        assert hub.text_of(got.content) == hub.text_of(expected.content)
        calls = [(b.id, b.name, b.input) for b in got.content if isinstance(b, hub.ToolUse)]
        assert calls == [(b.id, b.name, b.input) for b in expected.content if isinstance(b, hub.ToolUse)]
        assert got.usage == expected.usage and got.stop_reason == expected.stop_reason


def test_the_decoder_reads_back_what_the_encoder_wrote() -> None:
    for name in ("text", "thinking", "tools"):
        events, expected = _scenario(name)
        enc = StreamEncoder("gpt-x")
        dec = StreamDecoder()
        got = _collect(dec.feed(b"".join(enc.encode(e) for e in events)) + dec.finish())
        assert got.content == expected.content and got.usage == expected.usage
        assert got.stop_reason == expected.stop_reason


@pytest.mark.parametrize("path", STREAMS, ids=label)
def test_the_tap_passes_bytes_untouched_and_reads_usage(path: Path) -> None:
    data = _render(path)
    tap = responses.StreamTap()
    out = b"".join(tap.feed(data[i : i + 7]) for i in range(0, len(data), 7)) + tap.flush()
    assert out == data and tap.done and tap.error is None
    assert tap.usage == responses.usage_from(json.loads(path.read_text())[-1]["response"]["usage"])


def test_the_tap_reports_errors() -> None:
    tap = responses.StreamTap()
    tap.feed(responses.stream_error_event(GatewayError("api_error", "boom")))
    assert tap.error is not None and json.loads(tap.error)["message"] == "boom"


def test_a_codex_answer_names_namespaced_calls_as_codex_sent_them() -> None:
    req = decode_request(load(CODEX[1]))
    use = hub.ToolUse("call_9", "multi_agent_v1__spawn_agent", {"message": "go"})
    resp = hub.Response("msg_9", "claude", [hub.Thinking("plan", signature="sig"), use], "tool_use")
    whole = encode_response(resp, "gpt-5", req)
    Response.model_validate(whole)
    assert whole["store"] is False and whole["prompt_cache_key"] == load(CODEX[1])["prompt_cache_key"]
    enc = StreamEncoder("gpt-5", req)
    events: list[hub.Event] = [hub.MessageStart("msg_9", "claude"), hub.BlockStart(0, hub.Thinking(""))]
    events += [hub.BlockDelta(0, "thinking", "plan"), hub.BlockDelta(0, "signature", "sig"), hub.BlockStop(0)]
    events += [
        hub.BlockStart(1, hub.ToolUse("call_9", use.name)),
        hub.BlockDelta(1, "json", '{"message":"go"}'),
    ]
    events += [hub.BlockStop(1), hub.MessageDelta("tool_use"), hub.MessageStop()]
    frames = _frames(b"".join(enc.encode(e) for e in events))
    for _, d in frames:
        EVENT.validate_python(d)
    added = [d["item"] for n, d in frames if n == "response.output_item.added"]
    assert added[1]["name"] == "spawn_agent" and added[1]["namespace"] == "multi_agent_v1"
    output = frames[-1][1]["response"]["output"]
    assert output[0]["encrypted_content"] == "sig" and output[1]["call_id"] == "call_9"
    # Codex sends the items back on its next turn; they decode to the same hub blocks.
    body = load(CODEX[1])
    body["input"] += output
    assert decode_request(body).messages[-1].content == resp.content
