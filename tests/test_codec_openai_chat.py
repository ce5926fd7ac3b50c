"""The OpenAI Chat codec: requests, responses and streams to and from the hub, on recorded traffic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.emulator_harness import find_specs_dir
from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols import anthropic_stream
from torouter.protocols.openai_chat_codec import decode_response, encode_response
from torouter.protocols.openai_chat_request import decode_request, encode_request
from torouter.protocols.openai_chat_stream import StreamDecoder, StreamEncoder

SPECS = find_specs_dir() / "openai/examples"
CAPTURES = sorted(SPECS.glob("lingua-captures/*/chat-completions/*request.json"))
RESPONSES = sorted(SPECS.glob("lingua-captures/*/chat-completions/*response.json"))
SSE = SPECS / "sdk-sse"

# ---------------------------------------------------------------- requests


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_a_recorded_request_survives_a_same_protocol_hop(path: Path) -> None:
    body = json.loads(path.read_text())
    assert encode_request(decode_request(body), "openai") == body


def test_a_streamed_request_gains_include_usage_and_nothing_else() -> None:
    # Usage only comes in a final chunk when asked for, so the gateway always asks.
    body = json.loads((SPECS / "lingua-captures/simpleRequest/chat-completions/request.json").read_text())
    body |= {"stream": True, "stream_options": {"include_obfuscation": False}}
    out = encode_request(decode_request(body), "openai")
    assert out == body | {"stream_options": {"include_obfuscation": False, "include_usage": True}}


def test_a_rich_request_survives_a_same_protocol_hop() -> None:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief.", "name": "ops"},
            {"role": "system", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {
                        "type": "file",
                        "file": {"file_data": "data:application/pdf;base64,JVBERi0", "filename": "a.pdf"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"q":1}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "look", "arguments": "{not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "[tool error] timeout"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "ok"}]},
            {"role": "system", "content": "Now answer in French."},
            {"role": "user", "content": "Go on."},
        ],
        "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
        "parallel_tool_calls": False,
        "temperature": 0.2,
        "top_p": 0.9,
        "n": 2,
        "stop": "END",
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "metadata": {"k": "v"},
        "safety_identifier": "u-1",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
        "reasoning_effort": "high",
        "max_completion_tokens": 500,
        "stream": False,
    }
    assert encode_request(decode_request(body), "openai") == body


def test_conversation_maps_to_hub_blocks() -> None:
    req = decode_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "sys"},
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAA"}}],
                },
                {
                    "role": "assistant",
                    "content": "hi",
                    "reasoning_details": [
                        {
                            "type": "reasoning.text",
                            "text": "hmm",
                            "signature": "sig",
                            "format": "anthropic-claude-v1",
                        },
                        {"type": "reasoning.encrypted", "data": "enc"},
                    ],
                    "reasoning": "hmm",  # OpenRouter repeats the text: read once
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "[tool error] boom"},
                {"role": "developer", "content": "later rule"},
            ],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "reasoning": {"max_tokens": 3000, "exclude": True},
            "max_tokens": 100,
        }
    )
    assert req.system == [hub.Text("sys")]
    assert req.messages[0].content == [hub.Image(media_type="image/jpeg", data="AAA")]
    assert req.messages[1].content == [
        hub.Thinking("hmm", signature="sig"),
        hub.RedactedThinking("enc"),
        hub.Text("hi"),
        hub.ToolUse("c1", "f", {}),
    ]
    assert req.messages[2].content == [hub.ToolResult("c1", [hub.Text("boom")], is_error=True)]
    assert req.messages[3] == hub.Message("user", [hub.Text("[system] later rule")])
    assert req.tool_choice == hub.ToolChoice("tool", name="f")
    assert req.reasoning == hub.Reasoning(budget_tokens=3000)
    assert req.max_tokens == 100


@pytest.mark.parametrize(
    ("part", "words"),
    [
        ({"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}, "input_audio"),
        ({"type": "file", "file": {"file_id": "file-123"}}, "file_data"),
    ],
)
def test_content_the_hub_cannot_carry_is_a_clear_400(part: dict[str, Any], words: str) -> None:
    with pytest.raises(GatewayError) as err:
        decode_request({"model": "m", "messages": [{"role": "user", "content": [part]}]})
    assert err.value.status == 400 and words in err.value.message


# ---------------------------------------------------------------- per-platform policy


def _foreign_request() -> hub.Request:
    """What an Anthropic client's request looks like in the hub."""
    cc = {"type": "ephemeral"}
    return hub.Request(
        model="gpt-5",
        system=[hub.Text("one", cache_control=cc), hub.Text("two")],
        messages=[
            hub.Message(
                "user",
                [
                    hub.Text("q", cache_control=cc),
                    hub.Document(media_type="text/plain", text="body", title="T"),
                ],
            ),
            hub.Message(
                "assistant",
                [
                    hub.Thinking("think", signature="sig"),
                    hub.RedactedThinking("enc"),
                    hub.Text("a"),
                    hub.ToolUse("toolu_1", "f", {"x": 1}),
                ],
            ),
            hub.Message(
                "user",
                [
                    hub.ToolResult(
                        "toolu_1",
                        [hub.Text("bad"), hub.Image(media_type="image/png", data="PNG")],
                        is_error=True,
                    ),
                    hub.Text("next"),
                ],
            ),
        ],
        tools=[hub.Tool("f", "does f", {"type": "object"})],
        tool_choice=hub.ToolChoice("any", disable_parallel=True),
        max_tokens=1000,
        top_k=5,
        stop=["a", "b", "c", "d", "e"],
        reasoning=hub.Reasoning(budget_tokens=4000),
        stream=True,
    )


def test_openai_gets_only_fields_it_accepts() -> None:
    body = encode_request(_foreign_request(), "openai")
    assert body["max_completion_tokens"] == 1000 and "max_tokens" not in body
    assert body["reasoning_effort"] == "medium"
    assert "top_k" not in body and "cache_control" not in orjson.dumps(body).decode()
    assert body["stop"] == ["a", "b", "c", "d"]
    assert body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    assert body["stream_options"] == {"include_usage": True}
    system, user, assistant, tool, carried = body["messages"]
    assert system == {"role": "system", "content": "one\n\ntwo"}
    assert user["content"] == [{"type": "text", "text": "q"}, {"type": "text", "text": "T\n\nbody"}]
    assert assistant == {
        "role": "assistant",
        "content": "a",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}
        ],
    }
    # Tool messages come right after the tool calls; their images follow in a user message.
    assert tool == {"role": "tool", "tool_call_id": "toolu_1", "content": "[tool error] bad"}
    assert (
        carried["role"] == "user" and carried["content"][1]["image_url"]["url"] == "data:image/png;base64,PNG"
    )
    assert carried["content"][-1] == {"type": "text", "text": "next"}
    # The marker comes back as is_error.
    back = decode_request(body)
    assert back.messages[2].content[0] == hub.ToolResult("toolu_1", [hub.Text("bad")], is_error=True)


def test_openrouter_keeps_signatures_cache_control_and_top_k() -> None:
    body = encode_request(_foreign_request(), "openrouter")
    assert body["max_tokens"] == 1000 and body["top_k"] == 5 and len(body["stop"]) == 5
    assert body["reasoning"] == {"max_tokens": 4000}
    assert body["messages"][0]["content"][0] == {
        "type": "text",
        "text": "one",
        "cache_control": {"type": "ephemeral"},
    }
    assert body["messages"][1]["content"][0]["cache_control"] == {"type": "ephemeral"}
    details = body["messages"][2]["reasoning_details"]
    assert details[0] | {"index": 0} == {
        "type": "reasoning.text",
        "text": "think",
        "signature": "sig",
        "format": "anthropic-claude-v1",
        "index": 0,
    }
    assert details[1]["type"] == "reasoning.encrypted" and details[1]["data"] == "enc"
    # And they come back as the same hub blocks.
    assert decode_request(body).messages[1].content[:2] == [
        hub.Thinking("think", "sig"),
        hub.RedactedThinking("enc"),
    ]


def test_openai_compatible_gets_max_tokens_and_reasoning_content() -> None:
    body = encode_request(_foreign_request(), "openai_compatible")
    assert body["max_tokens"] == 1000 and body["top_k"] == 5 and body["reasoning_effort"] == "medium"
    assert body["messages"][2]["reasoning_content"] == "think"
    assert "reasoning_details" not in body["messages"][2]
    assert "cache_control" not in orjson.dumps(body).decode()


@pytest.mark.parametrize(
    ("reasoning", "openai", "openrouter"),
    [
        (hub.Reasoning(budget_tokens=1024), "low", {"max_tokens": 1024}),
        (hub.Reasoning(budget_tokens=20000), "high", {"max_tokens": 20000}),
        (hub.Reasoning(adaptive=True), "medium", {"enabled": True}),
        (hub.Reasoning(effort="max"), "max", {"effort": "xhigh"}),
        (hub.Reasoning(enabled=False), None, {"enabled": False}),
        (hub.Reasoning(enabled=False, effort="none"), "none", {"effort": "none"}),
    ],
)
def test_reasoning_settings_per_platform(
    reasoning: hub.Reasoning, openai: str | None, openrouter: dict
) -> None:
    req = hub.Request(model="o3", messages=[hub.Message("user", [hub.Text("q")])], reasoning=reasoning)
    assert encode_request(req, "openai").get("reasoning_effort") == openai
    assert encode_request(req, "openrouter")["reasoning"] == openrouter


def test_a_document_by_url_cannot_go_to_openai() -> None:
    req = hub.Request(model="m", messages=[hub.Message("user", [hub.Document(url="https://x/a.pdf")])])
    with pytest.raises(GatewayError) as err:
        encode_request(req, "openai")
    assert err.value.status == 400 and "openai" in err.value.message


# ---------------------------------------------------------------- responses


@pytest.mark.parametrize("path", RESPONSES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_a_recorded_response_survives_decode_and_encode(path: Path) -> None:
    body = json.loads(path.read_text())
    out = encode_response(decode_response(body), body["model"])
    ChatCompletion.model_validate(out)
    # service_tier, system_fingerprint and the audio/prediction token details have no hub field.
    for key in ("id", "object", "created", "model"):
        assert out[key] == body[key]
    assert out["choices"][0] == body["choices"][0] | {"logprobs": None}
    u, v = out["usage"], body["usage"]
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert u[key] == v[key]
    assert u["prompt_tokens_details"]["cached_tokens"] == v["prompt_tokens_details"]["cached_tokens"]
    assert (
        u["completion_tokens_details"]["reasoning_tokens"]
        == v["completion_tokens_details"]["reasoning_tokens"]
    )


def test_a_response_with_reasoning_and_refusal() -> None:
    resp = decode_response(
        {
            "id": "gen-1",
            "model": "m",
            "created": 1,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "refusal": "No.",
                        "reasoning_content": "why",
                    },
                    "finish_reason": "stop",
                }
            ],
        }
    )
    assert resp.content == [hub.Thinking("why"), hub.Text("No.")] and resp.stop_reason == "refusal"
    out = encode_response(resp, "m")
    msg = out["choices"][0]["message"]
    assert out["id"] == "chatcmpl-gen-1" and out["choices"][0]["finish_reason"] == "content_filter"
    assert msg["reasoning_content"] == "why" and msg["reasoning_details"][0]["text"] == "why"


# ---------------------------------------------------------------- stream decoding


def _decode(raw: bytes, bytewise: bool = False) -> list[hub.Event]:
    d = StreamDecoder()
    events: list[hub.Event] = []
    for i in range(len(raw)) if bytewise else [None]:
        events += d.feed(raw[i : i + 1] if i is not None else raw)
    return events + d.finish()


def _blocks(events: list[hub.Event]) -> list[tuple[hub.Block, str]]:
    """Checks the hub's block rules and returns each block with its concatenated deltas."""
    blocks: list[tuple[hub.Block, str]] = []
    parts: list[str] = []
    open_index: int | None = None
    for e in events:
        if isinstance(e, hub.BlockStart):
            assert open_index is None, "a block started before the previous one stopped"
            assert e.index == len(blocks), "block indices must be consecutive from 0"
            open_index, parts = e.index, []
            blocks.append((e.block, ""))
        elif isinstance(e, hub.BlockDelta):
            assert e.index == open_index
            if e.kind != "signature":
                parts.append(e.value)
        elif isinstance(e, hub.BlockStop):
            assert e.index == open_index
            blocks[-1] = (blocks[-1][0], "".join(parts))
            open_index = None
    assert open_index is None
    for block, text in blocks:
        if isinstance(block, hub.Text):
            assert text, "no empty text block"
        if isinstance(block, hub.ToolUse):
            assert isinstance(json.loads(text), dict)
    return blocks


def _truth(raw: bytes) -> dict[str, Any]:
    """What the upstream said, read straight from its chunks (choice 0)."""
    text, calls, finish, usage = "", {}, None, None
    for line in raw.decode().splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        usage = chunk.get("usage") or usage
        for c in chunk["choices"]:
            if c["index"] != 0:
                continue
            text += (c["delta"].get("content") or "") + (c["delta"].get("refusal") or "")
            for t in c["delta"].get("tool_calls") or []:
                call = calls.setdefault(t["index"], {"id": "", "name": "", "args": ""})
                call["id"] = call["id"] or t.get("id", "")
                call["name"] = call["name"] or t.get("function", {}).get("name", "")
                call["args"] += t.get("function", {}).get("arguments") or ""
            finish = c.get("finish_reason") or finish
    return {"text": text, "calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": usage}


def _seen(events: list[hub.Event]) -> dict[str, Any]:
    blocks = _blocks(events)
    delta = [e for e in events if isinstance(e, hub.MessageDelta)]
    return {
        "text": "".join(t for b, t in blocks if isinstance(b, hub.Text)),
        "calls": [
            {"id": b.id, "name": b.name, "args": json.loads(t)}
            for b, t in blocks
            if isinstance(b, hub.ToolUse)
        ],
        "stop": delta[0].stop_reason if delta else None,
        "usage": delta[0].usage if delta else None,
    }


RECORDED = [
    ("chat_text_stream_with_usage.sse", "end_turn"),
    ("chat_tool_call_stream.sse", "tool_use"),
    ("chat_parallel_tool_calls_stream.sse", "tool_use"),
    ("chat_finish_length_stream.sse", "max_tokens"),
    ("chat_refusal_stream.sse", "refusal"),
    ("chat_logprobs_stream.sse", "end_turn"),
    ("chat_n3_multiple_choices_stream.sse", "end_turn"),
]


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "byte-by-byte"])
@pytest.mark.parametrize(("name", "stop"), RECORDED)
def test_a_recorded_stream_decodes_to_well_formed_events(name: str, stop: str, bytewise: bool) -> None:
    raw = (SSE / name).read_bytes()
    events = _decode(raw, bytewise)
    truth, seen = _truth(raw), _seen(events)
    assert isinstance(events[0], hub.MessageStart) and isinstance(events[-1], hub.MessageStop)
    assert events[0].id == json.loads(raw.split(b"\n")[0][6:])["id"]
    assert seen["text"] == truth["text"]
    assert seen["calls"] == [c | {"args": json.loads(c["args"])} for c in truth["calls"]]
    assert seen["stop"] == stop
    # Usage comes after the finish chunk, and the MessageDelta carries it all the same.
    assert seen["usage"].input_tokens == truth["usage"]["prompt_tokens"]
    assert seen["usage"].output_tokens == truth["usage"]["completion_tokens"]
    assert events == _decode(raw, not bytewise)


def _widened(raw: bytes) -> bytes:
    """The same stream with `"refusal": null` added to every delta that holds only content: the
    decoder's fast path for such deltas must not change what they decode to."""
    out = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: {"):
            chunk = orjson.loads(event[6:])
            for choice in chunk.get("choices") or []:
                if list(choice.get("delta") or {}) == ["content"]:
                    choice["delta"]["refusal"] = None
            event = b"data: " + orjson.dumps(chunk)
        out.append(event)
    return b"\n\n".join(out)


TEXT_RECORDINGS = [n for n, _ in RECORDED if "tool" not in n and "refusal" not in n]  # text deltas


@pytest.mark.parametrize("name", TEXT_RECORDINGS)
def test_text_only_deltas_decode_as_the_general_path_does(name: str) -> None:
    raw = (SSE / name).read_bytes()
    widened = _widened(raw)
    assert widened != raw  # the recording has text-only deltas, so both paths run
    assert _decode(widened) == _decode(raw)
    # And the Anthropic encoder's fast path for text deltas writes what its general path does.
    events = _decode(raw)
    assert _to_anthropic(events, slow=False) == _to_anthropic(events, slow=True)


def test_text_only_delta_edge_cases_decode_and_encode_as_the_general_path_does() -> None:
    text = [{"content": c} for c in ("", None, 5, "a")]
    raw = _sse(
        *(_choice(d) for d in text),
        _call(0, '{"q"', "call_1", "lookup"),
        _choice({"content": "held while the call streams"}),
        _call(0, ":1}"),
        _choice({"content": "after"}, "tool_calls"),
        _choice({"content": "after the finish"}),
    )
    assert _decode(_widened(raw)) == _decode(raw)
    events: list[hub.Event] = [
        hub.MessageStart(id="x", model="m"),
        hub.BlockDelta(0, "text", "before any block"),
        hub.BlockStart(0, hub.Text("")),
        hub.BlockDelta(0, "text", ""),
        hub.BlockDelta(0, "text", "first"),
        hub.BlockDelta(0, "text", ""),
        hub.BlockDelta(0, "text", "second"),
        hub.BlockDelta(7, "text", "unknown block"),
        hub.BlockStart(1, hub.Thinking("")),
        hub.BlockDelta(1, "thinking", "hm"),
        hub.BlockDelta(0, "text", "to a closed block"),
        hub.BlockStart(2, hub.Text("seeded")),
        hub.BlockDelta(2, "text", "more"),
        hub.BlockStart(2, hub.Text("")),
        hub.BlockDelta(2, "text", "the same index again"),
        hub.BlockStop(2),
        hub.MessageStop(),
        hub.BlockDelta(2, "text", "after the stop"),
    ]
    assert _to_anthropic(events, slow=False) == _to_anthropic(events, slow=True)
    cut = [*events[:5], hub.StreamError("api_error", "gone"), hub.BlockDelta(0, "text", "after the error")]
    assert _to_anthropic(cut, slow=False) == _to_anthropic(cut, slow=True)


class _SlowDelta(hub.BlockDelta):
    """A BlockDelta the encoder's exact-type fast path does not take."""

    __slots__ = ()


def _to_anthropic(events: list[hub.Event], slow: bool) -> bytes:
    encoder = anthropic_stream.StreamEncoder("claude-x", "msg_1")
    out = []
    for e in events:
        if slow and isinstance(e, hub.BlockDelta):
            e = _SlowDelta(e.index, e.kind, e.value)
        out.append(encoder.encode(e))
    return b"".join(out)


def _sse(*chunks: Any, done: bool = True) -> bytes:
    head = {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 5, "model": "m"}
    out = b"".join(b"data: " + orjson.dumps(head | c if isinstance(c, dict) else c) + b"\n\n" for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _call(index: int, args: str, id_: str | None = None, name: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id_:
        call |= {"id": id_, "type": "function", "function": {"name": name, "arguments": args}}
    return _choice({"tool_calls": [call]})


USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "byte-by-byte"])
def test_interleaved_parallel_tool_calls_become_sequential_blocks(bytewise: bool) -> None:
    raw = _sse(
        _choice({"role": "assistant", "content": None}),
        _call(0, "", "call_a", "f"),
        _call(1, "", "call_b", "g"),
        _call(0, '{"x":'),
        _call(1, '{"y":'),
        _call(0, " 1}"),
        _call(1, " 2}"),
        _choice({}, "tool_calls"),
        {"choices": [], "usage": USAGE},
    )
    seen = _seen(_decode(raw, bytewise))
    assert seen["calls"] == [
        {"id": "call_a", "name": "f", "args": {"x": 1}},
        {"id": "call_b", "name": "g", "args": {"y": 2}},
    ]
    assert seen["stop"] == "tool_use" and seen["usage"].input_tokens == 10


def test_tool_calls_with_empty_arguments_get_an_empty_object() -> None:
    raw = _sse(_call(0, "", "call_a", "f"), _call(1, "", "call_b", "g"), _choice({}, "tool_calls"))
    assert [c["args"] for c in _seen(_decode(raw))["calls"]] == [{}, {}]


def test_content_and_finish_reason_in_one_chunk_and_usage_in_the_last() -> None:
    raw = _sse(
        _choice({"role": "assistant", "content": ""}), _choice({"content": "Hi"}, "stop") | {"usage": USAGE}
    )
    events = _decode(raw)
    assert _seen(events)["text"] == "Hi"
    assert events[-2] == hub.MessageDelta("end_turn", usage=_decode(raw)[-2].usage)
    assert events[-2].usage is not None and events[-2].usage.output_tokens == 4


def test_a_usage_only_final_chunk_without_done_still_ends_well() -> None:
    raw = _sse(_choice({"content": "Hi"}), _choice({}, "stop"), {"choices": [], "usage": USAGE}, done=False)
    events = _decode(raw)
    assert isinstance(events[-1], hub.MessageStop)
    assert isinstance(events[-2], hub.MessageDelta) and events[-2].usage.input_tokens == 10


def test_reasoning_streams_into_a_thinking_block_before_the_text() -> None:
    raw = _sse(
        _choice({"reasoning": "Let", "reasoning_details": [{"type": "reasoning.text", "text": "Let"}]}),
        _choice({"reasoning_details": [{"type": "reasoning.text", "text": " me", "signature": "sig"}]}),
        _choice({"content": "Answer"}),
        _choice({}, "stop"),
    )
    events = _decode(raw)
    blocks = _blocks(events)
    assert [type(b).__name__ for b, _ in blocks] == ["Thinking", "Text"]
    assert blocks[0][1] == "Let me" and hub.BlockDelta(0, "signature", "sig") in events


def test_text_after_a_live_tool_call_waits_until_the_call_is_done() -> None:
    raw = _sse(
        _call(0, '{"a"', "call_a", "f"),
        _choice({"content": "note"}),
        _call(0, ":1}"),
        _choice({}, "tool_calls"),
    )
    blocks = _blocks(_decode(raw))
    assert [(type(b).__name__, t) for b, t in blocks] == [("ToolUse", '{"a":1}'), ("Text", "note")]


def test_a_stream_that_drops_before_done_ends_with_an_error() -> None:
    events = _decode(_sse(_choice({"content": "Hel"}), done=False)[:-1])
    assert events[-1] == hub.StreamError("api_error", "The upstream stream ended early.")
    _blocks(events)  # the open block was stopped first


def test_errors_and_malformed_events_in_a_stream() -> None:
    events = _decode(
        _sse(_choice({"content": "a"}), {"error": {"message": "slow down", "type": "rate_limit_exceeded"}})
    )
    assert events[-1] == hub.StreamError("rate_limit", "slow down")
    events = _decode(b"data: {not json\n\n")
    assert events == [hub.StreamError("api_error", "The upstream sent a malformed event.")]


def test_fields_of_other_types_read_as_absent_and_the_stream_goes_on() -> None:
    # What OpenAI-compatible servers get wrong: `choices` or `tool_calls` that are no list, a
    # finish_reason that is no string, a call's `function` or `name` that is no object or string.
    odd_call = {"index": 0, "id": 7, "function": "lookup"}
    named = {"index": 1, "id": "call_1", "function": {"name": ["f"], "arguments": "{}"}}
    events = _decode(
        _sse(
            _choice({"content": "a"}),
            {"choices": 5},
            _choice({"tool_calls": 5, "content": "b"}),
            _choice({"tool_calls": [odd_call, named], "content": "c"}),
            _choice({}, finish=["stop"]),  # type: ignore[arg-type]
        )
    )
    assert not [e for e in events if isinstance(e, hub.StreamError)], events
    blocks = _blocks(events)
    assert blocks[0] == (hub.Text(""), "abc")
    assert [b.id for b, _ in blocks[1:]] == ["call_0", "call_1"]  # an id that is no string: minted
    assert events[-2:] == [hub.MessageDelta("end_turn", None, None), hub.MessageStop()]


# ---------------------------------------------------------------- stream encoding


def _encode(events: list[hub.Event], include_usage: bool) -> bytes:
    enc = StreamEncoder("client-model", include_usage)
    return b"".join(enc.encode(e) for e in events)


def _client_view(raw: bytes) -> dict[str, Any]:
    """What the official SDK's types make of a stream: each chunk validated, then accumulated."""
    lines = [line for line in raw.decode().split("\n\n") if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [ChatCompletionChunk.model_validate_json(line[6:]) for line in lines[:-1]]
    assert len({(c.id, c.created, c.model) for c in chunks}) == 1
    text, calls, finish, usage = "", {}, None, None
    for c in chunks:
        usage = c.usage or usage
        for ch in c.choices:
            if ch.index:
                continue
            text += (ch.delta.content or "") + (ch.delta.refusal or "")
            for t in ch.delta.tool_calls or []:
                call = calls.setdefault(t.index, {"id": "", "name": "", "args": ""})
                call["id"] = call["id"] or t.id or ""
                call["name"] = call["name"] or (t.function.name if t.function else "") or ""
                call["args"] += (t.function.arguments if t.function else "") or ""
            finish = ch.finish_reason or finish
    return {"text": text, "calls": [calls[i] for i in sorted(calls)], "finish": finish, "usage": usage}


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize(("name", "stop"), RECORDED)
def test_a_re_encoded_stream_reads_the_same_to_an_sdk_client(
    name: str, stop: str, include_usage: bool
) -> None:
    raw = (SSE / name).read_bytes()
    view, truth = _client_view(_encode(_decode(raw), include_usage)), _truth(raw)
    assert view["text"] == truth["text"]
    assert [c | {"args": json.loads(c["args"])} for c in view["calls"]] == [
        c | {"args": json.loads(c["args"])} for c in truth["calls"]
    ]
    # A refusal is a hub stop reason of its own, which this protocol calls content_filter.
    assert view["finish"] == ("content_filter" if stop == "refusal" else truth["finish"])
    if include_usage:
        assert view["usage"].prompt_tokens == truth["usage"]["prompt_tokens"]
        assert view["usage"].total_tokens == truth["usage"]["total_tokens"]
    else:
        assert view["usage"] is None


def test_the_encoder_sends_thinking_signatures_and_a_late_usage_chunk() -> None:
    usage = hub.Usage(input_tokens=3, output_tokens=2)
    raw = _encode(
        [
            hub.MessageStart("msg_1", "m", usage=usage, created=9),
            hub.BlockStart(0, hub.Thinking("")),
            hub.BlockDelta(0, "thinking", "hmm"),
            hub.BlockDelta(0, "signature", "sig"),
            hub.BlockStop(0),
            hub.BlockStart(1, hub.ToolUse("toolu_1", "f", {})),
            hub.BlockDelta(1, "json", '{"a":1}'),
            hub.BlockStop(1),
            hub.Ping(),
            hub.MessageDelta("tool_use"),  # no usage here: it comes with MessageStop
            hub.MessageStop(),
        ],
        include_usage=True,
    )
    view = _client_view(raw)
    assert (
        view["calls"] == [{"id": "toolu_1", "name": "f", "args": '{"a":1}'}]
        and view["finish"] == "tool_calls"
    )
    assert view["usage"].prompt_tokens == 3
    chunks = [json.loads(line[6:]) for line in raw.decode().split("\n\n")[:-2]]
    assert chunks[0]["id"] == "chatcmpl-msg_1" and chunks[0]["created"] == 9
    assert chunks[1]["choices"][0]["delta"] == {"reasoning_content": "hmm"}
    assert chunks[2]["choices"][0]["delta"]["reasoning_details"][0]["signature"] == "sig"


def test_the_encoder_renders_a_stream_error_in_openai_shape() -> None:
    raw = StreamEncoder("m", False).encode(hub.StreamError("overloaded", "Overloaded"))
    assert orjson.loads(raw[6:]) == {
        "error": {"message": "Overloaded", "type": "server_error", "param": None, "code": None}
    }


def test_calls_that_share_index_zero_but_not_their_id_stay_apart() -> None:
    raw = _sse(
        _call(0, '{"a":1}', "call_a", "f"), _call(0, '{"b":2}', "call_b", "g"), _choice({}, "tool_calls")
    )
    assert _seen(_decode(raw))["calls"] == [
        {"id": "call_a", "name": "f", "args": {"a": 1}},
        {"id": "call_b", "name": "g", "args": {"b": 2}},
    ]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "odd\x00text\x00model"])
def test_text_chunks_serialised_around_the_text_match_whole_chunks(model: str) -> None:
    """The encoder serialises a text chunk's frame once per stream; each chunk must still be the
    chunk serialised whole, and parse as the SDK's type with the text it carries."""
    texts = [
        "",
        " word",
        'a "quote" and \\ backslash',
        "ünïcödé 🔥",
        "\x00text\x00",
        "line\nbreak\t",
        "x" * 500,
    ]
    fast, whole = StreamEncoder(model, True), StreamEncoder(model, True)
    start = hub.MessageStart("msg_01", model, hub.Usage(3, 0))
    assert fast.encode(start) == whole.encode(start)
    for text in texts:
        delta = hub.BlockDelta(0, "text", text)
        chunk = fast.encode(delta)
        assert chunk == whole._chunk({"content": text})
        parsed = ChatCompletionChunk.model_validate_json(chunk.removeprefix(b"data: "))
        assert parsed.choices[0].delta.content == text and parsed.model == model


def test_a_block_decodes_as_its_chunks_one_by_one_even_past_an_error() -> None:
    """Nothing after an error chunk or [DONE] is decoded, however the chunks are grouped."""

    def chunk(delta: dict) -> bytes:
        body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        return b"data: " + orjson.dumps({**body, "choices": [{"index": 0, "delta": delta}]}) + b"\n\n"

    stream = [
        chunk({"role": "assistant", "content": "Hi"}),
        b'data: {"error": {"message": "Overloaded", "type": "server_error"}}\n\n',
        chunk({"content": " after"}),
        b"data: [DONE]\n\n",
    ]
    one_by_one = StreamDecoder()
    expected = [e for event in stream for e in one_by_one.feed(event)]
    assert StreamDecoder().feed(b"".join(stream)) == expected
    assert not any(isinstance(e, hub.BlockDelta) and e.value == " after" for e in expected)
