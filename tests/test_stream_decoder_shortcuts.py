"""The stream decoders' shortcuts for plain text give exactly the events their general reading gives."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson

from torouter.protocols import anthropic_stream, openai_chat_stream


class GeneralOpenAIDecoder(openai_chat_stream.StreamDecoder):
    """Every chunk read by the general path, as before the shortcut."""

    _payload = openai_chat_stream.StreamDecoder._read_payload


def _chunk(rng: random.Random) -> Any:
    """One chat-completion chunk, mostly plain text, with every kind of exception to it."""
    roll = rng.random()
    text = rng.choice(["Hi", " there", "", "\n", "error", '"usage":'])
    choice: dict[str, Any] = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    chunk: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m"}
    if roll < 0.45:
        pass  # plain text
    elif roll < 0.5:
        choice["delta"] = {"role": "assistant", "content": text}
    elif roll < 0.55:
        choice["delta"] = {"content": None}
    elif roll < 0.6:
        choice["delta"] = {"reasoning_content": "hm"}
    elif roll < 0.63:
        choice["delta"] = {"refusal": "no"}
    elif roll < 0.7:
        index = rng.choice([0, 0, 1])
        fragment: dict[str, Any] = {"index": index, "function": {"arguments": '{"a":'}}
        if rng.random() < 0.5:
            fragment |= {"id": f"call_{rng.randint(0, 2)}", "type": "function"}
            fragment["function"]["name"] = "f"
        choice["delta"] = {"tool_calls": [fragment]}
    elif roll < 0.74:
        choice["finish_reason"] = rng.choice(["stop", "length", "tool_calls"])
    elif roll < 0.77:
        choice["index"] = 1
    elif roll < 0.8:
        chunk["choices"] = rng.choice([[choice, dict(choice, index=1)], [choice, choice]])
        return chunk
    elif roll < 0.84:
        chunk["usage"] = {"prompt_tokens": 3, "completion_tokens": rng.randint(1, 9), "total_tokens": 9}
        if rng.random() < 0.5:
            chunk["choices"] = []
            return chunk
    elif roll < 0.86:
        chunk["usage"] = None
    elif roll < 0.88:
        choice["delta"] = "text"
    elif roll < 0.9:
        choice["delta"] = {"content": 5}
    elif roll < 0.92:
        return {"error": {"message": "overloaded", "type": "server_error"}}
    elif roll < 0.93:
        return [1, 2]
    elif roll < 0.95:
        chunk["choices"] = "x"
        return chunk
    elif roll < 0.97:
        chunk["choices"] = [["not", "a", "choice"]]
        return chunk
    else:
        choice["delta"] = {"content": text, "reasoning_content": "and"}
    chunk["choices"] = [choice]
    return chunk


# A tool call first: it streams live, and text after it is held until the finish.
LIVE_CALL = {
    "id": "chatcmpl-1",
    "choices": [
        {
            "index": 0,
            "delta": {
                "tool_calls": [{"index": 0, "id": "call_0", "function": {"name": "f", "arguments": ""}}]
            },
            "finish_reason": None,
        }
    ],
}


def _openai_stream(rng: random.Random) -> bytes:
    chunks = [_chunk(rng) for _ in range(rng.randint(1, 30))]
    if rng.random() < 0.3:
        chunks.insert(0, LIVE_CALL)
    events = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    if rng.random() < 0.8:
        events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def _cut(data: bytes, rng: random.Random) -> list[bytes]:
    points = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 4))))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


def assert_decoded_alike(
    stream: Callable[[random.Random], bytes],
    fast_decoder: Callable[[], Any],
    general_decoder: Callable[[], Any],
    seed: int,
    streams: int = 4000,
) -> list[Any]:
    """Random streams, cut at random points: both decoders give the same events and usage.
    The fast decoders, for what a caller wants to know of them."""
    rng = random.Random(seed)
    used = []
    for _ in range(streams):
        pieces = _cut(stream(rng), rng)
        fast, general = fast_decoder(), general_decoder()
        got = [e for p in pieces for e in fast.feed(p)] + fast.finish()
        want = [e for p in pieces for e in general.feed(p)] + general.finish()
        assert got == want, pieces
        assert fast.usage == general.usage
        used.append(fast)
    return used


def test_openai_text_shortcut_decodes_as_the_general_reading_does() -> None:
    assert_decoded_alike(_openai_stream, openai_chat_stream.StreamDecoder, GeneralOpenAIDecoder, 11)


class GeneralAnthropicDecoder(anthropic_stream.StreamDecoder):
    """Every event parsed and sent through the handler table, with the `_done` check after each."""

    def _event(self, raw: bytes, out: list[Any]) -> None:
        known, anthropic_stream._KNOWN = anthropic_stream._KNOWN, {}
        try:
            super()._event(raw, out)
        finally:
            anthropic_stream._KNOWN = known

    def feed(self, chunk: bytes) -> list[Any]:
        out: list[Any] = []
        if self._done:
            return out
        block = self._splitter.take(chunk)
        for event in anthropic_stream.split_events(block):
            self._event(event, out)
            if self._done:
                break
        return out


def _anthropic_event(rng: random.Random, index: int) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.6:
        kind = rng.choice(
            ["text_delta", "text_delta", "input_json_delta", "thinking_delta", "citations_delta"]
        )
        field = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}
        delta = {"type": kind, field.get(kind, "citation"): rng.choice(["a", "", "b c"])}
        return {"type": "content_block_delta", "index": rng.choice([index, index, index + 1]), "delta": delta}
    if roll < 0.7:
        block = rng.choice(
            [{"type": "text", "text": ""}, {"type": "server_tool_use", "id": "s", "name": "web"}]
        )
        return {"type": "content_block_start", "index": index + 1, "content_block": block}
    if roll < 0.78:
        return {"type": "content_block_stop", "index": rng.choice([index, index + 1])}
    if roll < 0.82:
        return {"type": "ping"}
    if roll < 0.85:
        return {"type": "content_block_delta", "index": index, "delta": "oops"}
    if roll < 0.87:
        return {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}}
    if roll < 0.88:
        return {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    return {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": "z"}}


def _anthropic_stream(rng: random.Random) -> bytes:
    start = {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": 2}}}
    events = [
        start,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    events += [_anthropic_event(rng, 0) for _ in range(rng.randint(0, 30))]
    if rng.random() < 0.8:
        events += [{"type": "message_stop"}]
    # Anthropic writes JSON without spaces; some relays add them. Both are known events' forms.
    spaced = rng.random() < 0.3
    data = [orjson.dumps(e) for e in events]
    if spaced:
        data = [d.replace(b'":', b'": ').replace(b',"', b', "') for d in data]
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + d + b"\n\n" for e, d in zip(events, data, strict=True)
    )


def test_anthropic_delta_shortcut_decodes_as_the_handler_table_does() -> None:
    assert_decoded_alike(_anthropic_stream, anthropic_stream.StreamDecoder, GeneralAnthropicDecoder, 12)


def test_anthropic_pings_and_stops_are_read_by_their_bytes(monkeypatch: Any) -> None:
    parsed: list[bytes] = []
    event_data = anthropic_stream.event_data
    monkeypatch.setattr(anthropic_stream, "event_data", lambda raw: parsed.append(raw) or event_data(raw))
    stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"m"}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
        b'event: ping\ndata: {"type": "ping"}\n\n'  # as Anthropic writes it, with a space
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    events = anthropic_stream.StreamDecoder().feed(stream)
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "MessageStart",
        "BlockStart",
        "Ping",
        "BlockDelta",
        "BlockStop",
        "MessageDelta",
        "MessageStop",
    ]
    assert [raw.split(b"\n")[0] for raw in parsed] == [
        b"event: message_start",
        b"event: content_block_start",
        b"event: content_block_delta",
        b"event: message_delta",
    ]
