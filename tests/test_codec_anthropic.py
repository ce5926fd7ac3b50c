"""The Anthropic Messages codec: lossless same-protocol hops, translation rules, and streams the SDK reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from tests.emulator_harness import find_specs_dir
from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols.anthropic_codec import (
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from torouter.protocols.anthropic_messages import check_request
from torouter.protocols.anthropic_stream import StreamDecoder, StreamEncoder

SPECS = find_specs_dir()
EXAMPLES = SPECS / "anthropic" / "examples"
CAPTURES = EXAMPLES / "lingua-captures"
SSE = sorted((EXAMPLES / "sdk-sse").glob("*.txt"))
# role "system" inside messages: Anthropic and check_request both reject it, so no codec sees it
REJECTED = {"anthropicMidConversationSystemMessage"}


def _request_bodies() -> list[Any]:
    cases = []
    for path in sorted(CAPTURES.glob("*/*anthropic/*request.json")):
        if path.parts[-3] in REJECTED:
            continue
        body = json.loads(path.read_text())
        if "model" not in body:  # Vertex puts the model in the URL: give it one to pass the checks
            body = {"model": "claude-haiku-4-5", **body}
        cases.append(pytest.param(body, id=f"{path.parts[-3]}/{path.parts[-2]}/{path.name}"))
    for turn in ("turn-1", "turn-2"):
        body = json.loads((SPECS / "clients" / "claude-code" / f"{turn}.json").read_text())["body"]
        cases.append(pytest.param(body, id=f"claude-code/{turn}"))
    return cases


# ---------------------------------------------------------------- requests


@pytest.mark.parametrize("body", _request_bodies())
def test_same_protocol_hop_loses_nothing(body: dict[str, Any]) -> None:
    check_request(body)
    assert encode_request(decode_request(body)) == body


def test_claude_code_turn_maps_into_the_hub() -> None:
    body = json.loads((SPECS / "clients/claude-code/turn-2.json").read_text())["body"]
    req = decode_request(body)
    assert req.model == "claude-opus-4-7" and req.stream and req.max_tokens == 64000
    assert req.reasoning == hub.Reasoning(adaptive=True, effort="xhigh")
    assert req.extras["anthropic"]["context_management"] == body["context_management"]
    assert req.system[1].cache_control == {"type": "ephemeral"}
    assert req.user == body["metadata"]["user_id"]
    use = req.messages[1].content[0]
    assert isinstance(use, hub.ToolUse) and use.input == {"city": "Paris"}
    result = req.messages[2].content[0]
    assert isinstance(result, hub.ToolResult) and result.is_error and result.cache_control
    assert isinstance(result.content[0], hub.Text)
    assert [t.name for t in req.tools][:2] == ["Agent", "Bash"]


def test_every_block_kind_and_anthropic_only_field_survives_a_hop() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "system": "Be brief.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {"type": "document", "source": pdf, "title": "A", "citations": {"enabled": True}},
                    {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "hi"},
                    },
                    {
                        "type": "document",
                        "source": {"type": "content", "content": [{"type": "text", "text": "c"}]},
                    },
                    {"type": "document", "source": {"type": "file", "file_id": "file_1"}},
                    {"type": "text", "text": "Look.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {"q": "x"},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "ok"}, {"type": "search_result", "source": "s"}],
                    }
                ],
            },
        ],
        "tools": [
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
            {"type": "custom", "name": "f", "input_schema": {"type": "object"}, "strict": True},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": False},
        "thinking": {"type": "enabled", "budget_tokens": 1024, "display": "summarized"},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "temperature": 0,
        "stream": False,
        "metadata": {"user_id": "u1"},
        "service_tier": "auto",
        "container": "c_1",
        "cache_control": {"type": "ephemeral"},
    }
    req = decode_request(body)
    assert encode_request(req) == body
    assert req.reasoning == hub.Reasoning(budget_tokens=1024, display="summarized")
    assert req.response_format == hub.ResponseFormat("json_schema", {"type": "object"})
    assert req.extras["anthropic"]["server_tools"] == [body["tools"][0]]
    docs = [b for b in req.messages[0].content if isinstance(b, hub.Document)]
    assert [d.text for d in docs] == [None, None, "hi", "c"]
    assert [type(b).__name__ for b in req.messages[1].content] == ["Thinking", "RedactedThinking", "ToolUse"]


def _foreign(**kw: Any) -> hub.Request:
    return hub.Request(model="claude-sonnet-4-5", messages=[hub.Message("user", [hub.Text("hi")])], **kw)


def test_foreign_request_gets_anthropic_defaults_and_clamps() -> None:
    body = encode_request(_foreign(temperature=1.6, stop=["END"], user="u-7", top_k=5))
    assert body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 4096,
        "temperature": 1.0,
        "top_k": 5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u-7"},
    }


def test_system_is_a_string_unless_blocks_carry_cache_control() -> None:
    assert encode_request(_foreign(system=[hub.Text("S")]))["system"] == "S"
    cached = [hub.Text("A"), hub.Text("B", cache_control={"type": "ephemeral"})]
    assert encode_request(_foreign(system=cached))["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
    ]


def test_turns_are_merged_and_tool_results_open_the_user_turn() -> None:
    req = _foreign()
    req.messages += [
        hub.Message("assistant", [hub.Thinking("no signature"), hub.Text("calling")]),
        hub.Message("assistant", [hub.ToolUse("call_1", "f", raw_arguments='{"a": 1}')]),
        hub.Message("user", [hub.Text("also")]),
        hub.Message("user", [hub.ToolResult("call_1", [hub.Text("42")])]),
        hub.Message("assistant", [hub.ToolUse("call_2", "f", raw_arguments="{broken")]),
    ]
    messages = encode_request(req)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "calling"},  # the unsigned thinking block cannot be replayed
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "42"},
        {"type": "text", "text": "also"},
    ]
    assert messages[3]["content"][0]["input"] == {}  # arguments that are not JSON: {}


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "thinking", "effort", "sent_max"),
    [
        (hub.Reasoning(effort="minimal"), 1000, {"type": "adaptive"}, "low", 1000),
        (hub.Reasoning(effort="medium"), None, {"type": "adaptive"}, "medium", 4096),
        (hub.Reasoning(effort="max"), None, {"type": "adaptive"}, "max", 4096),
        (hub.Reasoning(effort="none"), None, {"type": "disabled"}, None, 4096),
        (hub.Reasoning(enabled=False), None, {"type": "disabled"}, None, 4096),
        (hub.Reasoning(budget_tokens=500), 8000, {"type": "enabled", "budget_tokens": 1024}, None, 8000),
        (hub.Reasoning(budget_tokens=6000), 2000, {"type": "enabled", "budget_tokens": 6000}, None, 7024),
    ],
)
def test_reasoning_becomes_thinking_and_effort(
    reasoning: hub.Reasoning, max_tokens: int | None, thinking: dict, effort: str | None, sent_max: int
) -> None:
    body = encode_request(_foreign(reasoning=reasoning, max_tokens=max_tokens))
    assert body["thinking"] == thinking
    assert body.get("output_config", {}).get("effort") == effort
    assert body["max_tokens"] == sent_max


def test_response_formats_become_output_config() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = encode_request(_foreign(response_format=hub.ResponseFormat("json_schema", schema)))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    body = encode_request(_foreign(response_format=hub.ResponseFormat("json_object")))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}


def test_images_and_documents_from_other_protocols() -> None:
    req = _foreign()
    req.messages[0].content = [
        hub.Image(url="data:image/jpeg;base64,AAAA"),
        hub.Image(url="https://x.test/cat.webp"),
        hub.Document(media_type="text/plain", data="aGVsbG8=", filename="notes.txt"),
        hub.Document(media_type="application/pdf", url="https://x.test/a.pdf"),
    ]
    content = encode_request(req)["messages"][0]["content"]
    assert content == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.webp"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "hello"},
            "title": "notes.txt",
        },
        {"type": "document", "source": {"type": "url", "url": "https://x.test/a.pdf"}},
    ]


def test_unsupported_image_type_is_a_400_naming_the_type() -> None:
    req = _foreign()
    req.messages[0].content.append(hub.Image(media_type="image/bmp", data="Qk0="))
    with pytest.raises(GatewayError) as e:
        encode_request(req)
    assert e.value.status == 400 and e.value.kind == "invalid_request"
    assert "image/bmp" in e.value.message


def test_unsupported_document_type_is_a_400() -> None:
    req = _foreign()
    req.messages[0].content.append(hub.Document(media_type="application/msword", data="AAAA"))
    with pytest.raises(GatewayError, match="application/msword"):
        encode_request(req)


def test_tool_choice_kinds() -> None:
    for choice, expected in [
        (hub.ToolChoice("auto", disable_parallel=True), {"type": "auto", "disable_parallel_tool_use": True}),
        (hub.ToolChoice("any"), {"type": "any"}),
        (hub.ToolChoice("none"), {"type": "none"}),
        (hub.ToolChoice("tool", "f"), {"type": "tool", "name": "f"}),
    ]:
        assert encode_request(_foreign(tool_choice=choice))["tool_choice"] == expected


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize(
    "path", sorted(CAPTURES.glob("*/*anthropic/*response.json")), ids=lambda p: f"{p.parts[-3]}/{p.name}"
)
def test_response_round_trip_keeps_what_the_hub_carries(path: Path) -> None:
    body = json.loads(path.read_text())
    out = encode_response(decode_response(body), body["model"])
    for key in ("id", "type", "role", "model", "stop_reason", "stop_sequence"):
        assert out[key] == body[key]
    # Not carried by the hub: a tool_use block's `caller`, and usage's service_tier and inference_geo.
    strip = {"caller"}
    assert out["content"] == [{k: v for k, v in b.items() if k not in strip} for b in body["content"]]
    usage = {k: v for k, v in body["usage"].items() if k not in ("service_tier", "inference_geo")}
    assert out["usage"] == usage
    assert out["stop_details"] == body.get("stop_details")


def test_response_from_another_protocol() -> None:
    resp = hub.Response(
        id="chatcmpl-abc.1",
        model="gpt-5",
        content=[hub.Thinking("why"), hub.Text(""), hub.Text("Hi"), hub.ToolUse("call_1", "f", {"a": 1})],
        stop_reason="refusal",
        usage=hub.Usage(
            input_tokens=100, output_tokens=30, cached_tokens=60, cache_write_tokens=10, reasoning_tokens=12
        ),
    )
    out = encode_response(resp, "alias")
    assert out["id"] == "msg_chatcmplabc1" and out["model"] == "alias"
    assert [b["type"] for b in out["content"]] == ["thinking", "text", "tool_use"]
    assert out["stop_details"] == {"type": "refusal", "category": None, "explanation": None}
    assert out["usage"] == {
        "input_tokens": 30,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 60,
        "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 30,
        "output_tokens_details": {"thinking_tokens": 12},
    }
    anthropic.types.Message.model_validate(out)


def test_context_window_stop_reads_as_max_tokens() -> None:
    body = {"id": "msg_1", "model": "m", "content": [], "stop_reason": "model_context_window_exceeded"}
    assert decode_response(body).stop_reason == "max_tokens"


# ---------------------------------------------------------------- streams


def _stream_cases() -> list[Any]:
    cases = [pytest.param(p.read_bytes(), id=p.name) for p in SSE]
    for path in sorted(CAPTURES.glob("*/anthropic/*response-streaming.json")):
        events = json.loads(path.read_text())
        raw = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), orjson.dumps(e)) for e in events)
        cases.append(pytest.param(raw, id=f"{path.parts[-3]}/{path.name}"))
    return cases


def _decode(raw: bytes, step: int | None = None) -> tuple[list[hub.Event], StreamDecoder]:
    decoder = StreamDecoder()
    events: list[hub.Event] = []
    for i in range(0, len(raw), step or len(raw)):
        events += decoder.feed(raw[i : i + (step or len(raw))])
    return events + decoder.finish(), decoder


def _sdk_final(raw: bytes) -> anthropic.types.Message:
    """The official SDK's own stream accumulator, reading `raw` as if an API had sent it."""
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    )
    client = anthropic.Anthropic(
        api_key="test", http_client=httpx2.Client(transport=transport), max_retries=0
    )
    with client.messages.stream(model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]) as s:
        return s.get_final_message()


def _summary(events: list[hub.Event]) -> dict[str, Any]:
    """What a client would assemble from hub events: blocks by index, stop reason and usage."""
    blocks: dict[int, dict[str, Any]] = {}
    out: dict[str, Any] = {"blocks": blocks, "stop": None, "usage": None, "errors": []}
    for e in events:
        if isinstance(e, hub.BlockStart):
            assert e.index == len(blocks), "hub indices count from 0 with no gaps"
            blocks[e.index] = {"type": type(e.block).__name__, "value": "", "signature": "", "open": True}
        elif isinstance(e, hub.BlockDelta):
            key = "signature" if e.kind == "signature" else "value"
            blocks[e.index][key] += e.value
        elif isinstance(e, hub.BlockStop):
            blocks[e.index]["open"] = False
        elif isinstance(e, hub.MessageDelta):
            assert all(not b["open"] for b in blocks.values()), "blocks are closed before message_delta"
            out["stop"], out["usage"] = e.stop_reason, e.usage
        elif isinstance(e, hub.StreamError):
            out["errors"].append(e)
    return out


EXPECTED = {
    "basic_response.txt": ("end_turn", [("Text", "Hello there!")], hub.Usage(11, 6)),
    "tool_use_response.txt": (
        "tool_use",
        [("Text", "I'll check the current weather in Paris for you."), ("ToolUse", {"location": "Paris"})],
        hub.Usage(377, 65),
    ),
    "refusal_response.txt": ("refusal", [("Text", "")], hub.Usage(20, 0)),
    "compaction_response.txt": ("end_turn", [("Text", "Hello there!")], hub.Usage(30, 8)),
    "fallback_response.txt": ("end_turn", [("Text", "Hello there!")], hub.Usage(25, 8)),
    "fallback_credit_response.txt": ("end_turn", [("Text", "Hello there!")], hub.Usage(25, 8)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sdk_fixture_streams_decode_to_the_expected_events(name: str) -> None:
    events, decoder = _decode((EXAMPLES / "sdk-sse" / name).read_bytes())
    stop, blocks, usage = EXPECTED[name]
    got = _summary(events)
    assert got["stop"] == stop and got["usage"] == usage == decoder.usage and not got["errors"]
    assert isinstance(events[0], hub.MessageStart) and isinstance(events[-1], hub.MessageStop)
    found = []
    for b in got["blocks"].values():
        found.append((b["type"], orjson.loads(b["value"]) if b["type"] == "ToolUse" else b["value"]))
    assert found == blocks


def test_truncated_tool_json_is_closed_and_reports_max_tokens() -> None:
    events, _ = _decode((EXAMPLES / "sdk-sse" / "incomplete_partial_json_response.txt").read_bytes())
    got = _summary(events)
    assert got["stop"] == "max_tokens" and got["usage"] == hub.Usage(450, 124)
    tool = got["blocks"][1]
    assert tool["type"] == "ToolUse" and not tool["open"]
    assert tool["value"].startswith('{"filename": "taxes.txt"')


def test_thinking_capture_keeps_the_signature_only_block() -> None:
    raw = next(c for c in _stream_cases() if "Adaptive" in c.id).values[0]
    got = _summary(_decode(raw)[0])
    first = got["blocks"][0]
    assert first["type"] == "Thinking" and first["value"] == "" and first["signature"].startswith("CAIS")
    assert got["usage"].reasoning_tokens == 48


@pytest.mark.parametrize("raw", _stream_cases())
def test_decoding_byte_by_byte_gives_the_same_events(raw: bytes) -> None:
    assert _decode(raw, step=1)[0] == _decode(raw)[0]
    assert _decode(raw.replace(b"\n", b"\r\n"), step=7)[0] == _decode(raw)[0]


def _normal(message: anthropic.types.Message) -> dict[str, Any]:
    """The parts of a final message the hub carries (see test docstring for what it drops)."""
    content = []
    for block in message.content:
        b = block.model_dump(exclude_none=True, exclude={"caller", "citations"})
        if b["type"] in ("text", "tool_use", "thinking", "redacted_thinking") and b != {
            "type": "text",
            "text": "",
        }:
            content.append(b)
    u = message.usage
    usage = (
        u.input_tokens,
        u.output_tokens,
        u.cache_read_input_tokens or 0,
        u.cache_creation_input_tokens or 0,
    )
    details = message.stop_details.type if message.stop_details else None
    return {
        "content": content,
        "stop": message.stop_reason,
        "seq": message.stop_sequence,
        "usage": usage,
        "details": details,
    }


@pytest.mark.parametrize("raw", _stream_cases())
def test_reencoded_stream_parses_in_the_sdk_to_the_same_message(raw: bytes) -> None:
    """Upstream bytes -> hub -> our SSE -> the SDK equals upstream bytes -> the SDK, except for what
    the hub does not carry: empty text blocks, server-tool/compaction/fallback blocks, a tool's
    `caller`, the refusal category, and usage's service_tier."""
    events, _ = _decode(raw)
    encoder = StreamEncoder("m")
    ours = b"".join(encoder.encode(e) for e in events)
    adapter = TypeAdapter(RawMessageStreamEvent)
    for frame in ours.split(b"\n\n")[:-1]:
        name, data = frame.split(b"\n")
        payload = orjson.loads(data.removeprefix(b"data: "))
        assert name == b"event: " + payload["type"].encode()
        if payload["type"] != "ping":
            adapter.validate_python(payload)
    assert _normal(_sdk_final(ours)) == _normal(_sdk_final(raw))


# ---------------------------------------------------------------- encoder robustness


def _frames(encoder: StreamEncoder, events: list[hub.Event]) -> list[dict[str, Any]]:
    raw = b"".join(encoder.encode(e) for e in events)
    return [orjson.loads(f.split(b"data: ", 1)[1]) for f in raw.split(b"\n\n") if f]


@pytest.mark.parametrize(
    "between",
    [
        [hub.BlockStop(0)],  # text for a block that has closed
        [hub.BlockStart(1, hub.ToolUse("call_1", "f", {}))],  # for a block another one closed
        [hub.StreamError("api_error", "boom")],  # after the stream ended
        [hub.MessageDelta("end_turn"), hub.MessageStop()],
    ],
)
def test_encoder_writes_no_text_for_a_block_the_client_no_longer_sees_open(between: list[hub.Event]) -> None:
    events: list[hub.Event] = [
        hub.MessageStart("msg_1", "m", hub.Usage()),
        hub.BlockStart(0, hub.Text("")),
        hub.BlockDelta(0, "text", "one"),
        hub.BlockDelta(0, "text", "two"),  # the shortcut's case
        *between,
        hub.BlockDelta(0, "text", "late"),
    ]
    encoder = StreamEncoder("m")
    raw = b"".join(encoder.encode(e) for e in events)
    assert b"two" in raw and b"late" not in raw


def test_encoder_starts_with_message_start_then_ping() -> None:
    frames = _frames(
        StreamEncoder("alias"), [hub.MessageStart("chatcmpl-1", "gpt", hub.Usage(10, 0, cached_tokens=4))]
    )
    assert [f["type"] for f in frames] == ["message_start", "ping"]
    message = frames[0]["message"]
    assert message["model"] == "alias" and message["id"] == "msg_chatcmpl1" and message["content"] == []
    assert message["usage"]["input_tokens"] == 6 and message["usage"]["cache_read_input_tokens"] == 4
    assert message["usage"]["output_tokens"] == 1


def test_empty_text_blocks_are_dropped_and_indices_stay_consecutive() -> None:
    events: list[hub.Event] = [
        hub.MessageStart("x", "gpt"),
        hub.BlockStart(0, hub.Text("")),
        hub.BlockDelta(0, "text", ""),
        hub.BlockStop(0),
        hub.BlockStart(1, hub.ToolUse("call_9", "f")),
        hub.BlockDelta(1, "json", '{"a":'),
        hub.BlockDelta(1, "json", "1}"),
        hub.BlockStop(1),
        hub.BlockStart(2, hub.Text("")),
        hub.BlockStop(2),
        hub.BlockStart(3, hub.Text("")),
        hub.BlockDelta(3, "text", "done"),
        hub.BlockStop(3),
        hub.MessageDelta("tool_use", usage=hub.Usage(10, 5)),
        hub.MessageStop(),
    ]
    frames = _frames(StreamEncoder("m"), events)
    starts = [(f["index"], f["content_block"]["type"]) for f in frames if f["type"] == "content_block_start"]
    assert starts == [(0, "tool_use"), (1, "text")]
    assert frames[2]["content_block"]["id"] == "call_9"
    assert [f["index"] for f in frames if f["type"] == "content_block_stop"] == [0, 1]
    assert frames[-2]["delta"]["stop_reason"] == "tool_use" and frames[-2]["usage"]["output_tokens"] == 5


def test_missing_start_open_block_and_missing_delta_are_repaired() -> None:
    frames = _frames(
        StreamEncoder("m", message_id="msg_fixed"),
        [hub.BlockStart(0, hub.Text("")), hub.BlockDelta(0, "text", "hi"), hub.MessageStop()],
    )
    assert [f["type"] for f in frames] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert frames[0]["message"]["id"] == "msg_fixed"
    assert frames[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None, "stop_details": None}


def test_message_deltas_are_merged_and_close_the_open_block() -> None:
    frames = _frames(
        StreamEncoder("m"),
        [
            hub.MessageStart("x", "m"),
            hub.BlockStart(0, hub.Thinking("")),
            hub.BlockDelta(0, "thinking", "hmm"),
            hub.MessageDelta("max_tokens"),
            hub.MessageDelta(None, usage=hub.Usage(3, 9, reasoning_tokens=4)),
            hub.MessageStop(),
            hub.Ping(),
        ],
    )
    assert [f["type"] for f in frames][-4:] == [
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert frames[-2]["delta"]["stop_reason"] == "max_tokens"
    assert frames[-2]["usage"] == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 9,
        "output_tokens_details": {"thinking_tokens": 4},
    }


def test_stream_error_becomes_an_error_event() -> None:
    encoder = StreamEncoder("m")
    encoder.encode(hub.MessageStart("x", "m"))
    raw = encoder.encode(hub.StreamError("overloaded", "Overloaded"))
    assert (
        raw
        == b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    assert encoder.encode(hub.MessageStop()) == b""


def test_decoder_reports_errors_malformed_events_and_early_ends() -> None:
    error = b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error","message":"slow"}}\n\n'
    events, _ = _decode(error)
    assert events == [hub.StreamError("rate_limit", "slow")]
    start = (EXAMPLES / "sdk-sse" / "basic_response.txt").read_bytes().split(b"\n\n")[0] + b"\n\n"
    events, _ = _decode(start + b"event: content_block_start\ndata: {oops\n\nevent: ping\ndata: {}\n\n")
    assert events[-1] == hub.StreamError("api_error", "The upstream sent a malformed event.")
    assert len(events) == 2
    events, _ = _decode(start)
    assert events[-1] == hub.StreamError("api_error", "The upstream stream ended early.")
    unknown = b'event: future_thing\ndata: {"type":"future_thing"}\n\n'
    assert _decode(start + unknown + b'event: message_stop\ndata: {"type":"message_stop"}')[0][1:] == [
        hub.MessageStop()
    ]


def test_an_event_whose_type_is_not_a_name_is_read_by_its_event_line() -> None:
    # The SSE event line names every Anthropic event too; a "type" of another kind (a list, an
    # object) is read by that name, and an event with no known name is skipped, as Anthropic asks.
    start = (EXAMPLES / "sdk-sse" / "basic_response.txt").read_bytes().split(b"\n\n")[0] + b"\n\n"
    block = b'event: content_block_start\ndata: {"type":[1],"index":0,"content_block":{"type":"text","text":""}}\n\n'
    delta = b'event: content_block_delta\ndata: {"type":{},"index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n'
    odd = b'data: {"type":[2]}\n\n'
    stop = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    events, _ = _decode(start + block + odd + delta + stop)
    text = [hub.BlockStart(0, hub.Text("")), hub.BlockDelta(0, "text", "Hi")]
    assert events[1:] == [*text, hub.BlockStop(0), hub.MessageStop()]  # the stop closes the block


def test_kept_block_details_never_land_on_a_block_the_gateway_replaced() -> None:
    body = json.loads((CAPTURES / "toolCallRequest/anthropic/followup-request.json").read_text())
    req = decode_request(body)
    req.messages[1].content = [hub.Text("rewritten")]  # where the tool_use with a `caller` was
    req.temperature = 0.5
    out = encode_request(req)
    assert out["messages"][1]["content"] == [{"type": "text", "text": "rewritten"}]
    assert out["temperature"] == 0.5


def test_text_delta_frames_match_frames_serialised_whole() -> None:
    """Text deltas are written around a constant prefix; each must equal the frame serialised whole."""
    from torouter.protocols.anthropic_stream import _frame

    texts = [" word", 'a "quote" and \\ backslash', "ünïcödé 🔥", "line\nbreak\t", "x" * 500]
    encoder = StreamEncoder("claude-sonnet-4-5")
    encoder.encode(hub.MessageStart("msg_01", "claude-sonnet-4-5", hub.Usage(3, 0)))
    for index in (0, 1):
        encoder.encode(hub.BlockStart(index, hub.Text("")))
        for n, text in enumerate(texts):
            delta = {"type": "text_delta", "text": text}
            frame = _frame({"type": "content_block_delta", "index": index, "delta": delta})
            sent = encoder.encode(hub.BlockDelta(index, "text", text))
            if n == 0:  # the block's first text announces it (content_block_start) in the same write
                assert sent.startswith(b"event: content_block_start") and sent.endswith(frame)
            else:
                assert sent == frame
        encoder.encode(hub.BlockStop(index))


def frame(kind: str, payload: dict) -> bytes:
    """One Anthropic event, as the API writes it."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


OPENING = [  # a stream's first events, up to its first text
    frame("message_start", {"message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 3}}}),
    frame("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    frame("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
]


def test_a_block_decodes_as_its_events_one_by_one_even_past_an_error() -> None:
    """Nothing after an error event or message_stop is decoded, however the events are grouped."""
    stream = [
        *OPENING,
        frame("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}}),
        frame("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        frame("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": " after"}}),
        frame("message_stop", {}),
    ]
    one_by_one = StreamDecoder()
    expected = [e for event in stream for e in one_by_one.feed(event)]
    assert StreamDecoder().feed(b"".join(stream)) == expected
    assert not any(isinstance(e, hub.BlockDelta) and e.value == " after" for e in expected)


@pytest.mark.parametrize(
    "odd",
    [
        b'event: content_block_delta\ndata: {"index":0,"delta":{"type":"text_delta","text":" typeless"}}\n\n',
        b"event: ping\ndata: [1]\n\n",
        b"data: [DONE]\n\n",
    ],
    ids=["type-from-event-line", "not-an-object", "done"],
)
@pytest.mark.parametrize("at", [1, 3, 4])
def test_a_block_with_an_odd_event_decodes_as_one_by_one(odd: bytes, at: int) -> None:
    """An event the one-pass reading cannot take (no "type", not an object) sends it and the rest of
    its block to the event-by-event reading; what comes out is what feeding them singly gives."""
    stream = [
        *OPENING,
        frame("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": " there"}}),
        frame("content_block_stop", {"index": 0}),
        frame("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}}),
        frame("message_stop", {}),
    ]
    stream.insert(at, odd)
    one_by_one = StreamDecoder()
    expected = [e for event in stream for e in one_by_one.feed(event)] + one_by_one.finish()
    whole = StreamDecoder()
    assert whole.feed(b"".join(stream)) + whole.finish() == expected
    assert isinstance(expected[0], hub.MessageStart) and len(expected) >= 2
