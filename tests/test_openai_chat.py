"""The OpenAI surface end to end: the official `openai` SDK, the real gateway, the emulator upstream."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest

from tests.conftest import UPSTREAM_SECRET, World


def client(world: World, group: str = "openai", **kw: object) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=world.keys[group], base_url=world.gateway.openai_base_url, max_retries=0, **kw
    )


def last_upstream_request(world: World) -> dict:
    reqs = [r for r in world.emulator.requests() if r["path"].endswith("/chat/completions")]
    assert reqs, "the emulator received no chat call"
    return reqs[-1]


@pytest.mark.parametrize("group", ["openai", "openrouter", "compat"])
def test_chat_completion_passes_through_each_openai_protocol_platform(world: World, group: str) -> None:
    resp = client(world, group).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "What is CIDR?"}]
    )
    assert resp.choices[0].message.content == "Hello from the emulator. You said: What is CIDR?"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    sent = last_upstream_request(world)
    assert sent["headers"]["authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert sent["body"]["messages"] == [{"role": "user", "content": "What is CIDR?"}]


def test_unchanged_body_is_forwarded_byte_for_byte(world: World) -> None:
    raw = (
        b'{"model":"gpt-4o-mini",  "messages":[{"role":"user","content":"exact bytes"}], "x_vendor_field": 7}'
    )
    r = httpx.post(
        world.gateway.openai_base_url + "/chat/completions",
        content=raw,
        headers={"authorization": f"Bearer {world.keys['openai']}", "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert "server" not in r.headers and r.headers["date"]  # the stack goes unnamed; the date stays
    sent = last_upstream_request(world)
    assert sent["body"]["x_vendor_field"] == 7
    assert sent["headers"]["content-length"] == str(len(raw))


def test_streaming_relays_text_and_finish_reason(world: World) -> None:
    stream = client(world).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream please"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the emulator. You said: stream please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 3


def test_stream_usage_is_recorded_but_hidden_from_clients_that_did_not_ask(world: World) -> None:
    raw = client(world).with_raw_response.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count me"}], stream=True
    )
    request_id = raw.headers["x-request-id"]
    chunks = list(raw.parse())
    assert all(c.choices for c in chunks), "the usage-only chunk leaked to a client that did not ask for it"
    assert all(c.usage is None for c in chunks)
    assert last_upstream_request(world)["body"]["stream_options"] == {"include_usage": True}
    row = next(r for r in world.usage_rows([request_id]) if r["request_id"] == request_id)
    assert row["stream"] and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["status_code"] == 200 and row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]


def test_stream_usage_chunk_reaches_clients_that_asked(world: World) -> None:
    stream = client(world).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "usage please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_stream_chunks_arrive_as_the_upstream_sends_them(world: World) -> None:
    world.emulator.script({"text": "one two three four five six", "chunk_delay": 0.3})
    start = time.monotonic()
    arrivals = []
    for chunk in client(world).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "slowly"}], stream=True
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - start)
    assert len(arrivals) >= 4
    # The emulator waits 300 ms between chunks: a buffering relay would deliver them all at the end.
    assert arrivals[-1] - arrivals[0] >= 0.3 * (len(arrivals) - 2)
    assert arrivals[0] < arrivals[-1] - 0.6


def test_tool_calls_round_trip(world: World) -> None:
    world.emulator.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]})
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    resp = client(world).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], tools=tools
    )
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert (
        call.function.name == "get_weather" and call.function.arguments.replace(" ", "") == '{"city":"Paris"}'
    )
    assert last_upstream_request(world)["body"]["tools"] == tools


def test_streamed_tool_call_arguments_reassemble(world: World) -> None:
    world.emulator.script({"tool_calls": [{"name": "lookup", "arguments": {"query": "a longer query text"}}]})
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    stream = client(world).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "go"}], tools=tools, stream=True
    )
    args, name, finish = "", None, None
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name = tc.function.name or name
                args += tc.function.arguments or ""
            finish = choice.finish_reason or finish
    assert name == "lookup" and finish == "tool_calls"
    assert json.loads(args) == {"query": "a longer query text"}


def test_async_client_streams_and_completes(world: World) -> None:
    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(
            api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0
        ) as c:
            resp = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "async"}]
            )
            stream = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "async stream"}], stream=True
            )
            text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
            return resp.choices[0].message.content or "", text

    whole, streamed = asyncio.run(main())
    assert whole == "Hello from the emulator. You said: async"
    assert streamed == "Hello from the emulator. You said: async stream"


def test_models_lists_what_the_group_serves(world: World) -> None:
    ids = sorted(m.id for m in client(world, "mapped").models.list())
    assert ids == ["fast", "gpt-4.1", "gpt-4o-mini"]


def test_group_mapping_alias_and_account_model_map_rewrite_the_model(world: World) -> None:
    c = client(world, "mapped")
    c.chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert last_upstream_request(world)["body"]["model"] == "gpt-4o-mini"
    c.chat.completions.create(model="claude-opus-4-7", messages=[{"role": "user", "content": "hi"}])
    assert last_upstream_request(world)["body"]["model"] == "gpt-4o-mini"
    c.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": "hi"}])
    assert last_upstream_request(world)["body"]["model"] == "gpt-4.1-2025-04-14"


def test_unknown_model_is_404_in_openai_shape_naming_close_ids(world: World) -> None:
    with pytest.raises(openai.NotFoundError) as exc:
        client(world, "mapped").chat.completions.create(
            model="gpt-4o-mimi", messages=[{"role": "user", "content": "x"}]
        )
    assert exc.value.status_code == 404
    assert exc.value.code == "model_not_found"
    assert "gpt-4o-mini" in exc.value.message
    assert world.emulator.requests() == []


def test_failover_moves_to_the_next_account_when_one_is_unreachable(world: World) -> None:
    raw = client(world, "failover").with_raw_response.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "fail over"}]
    )
    resp = raw.parse()
    request_id = raw.headers["x-request-id"]
    assert resp.choices[0].message.content == "Hello from the emulator. You said: fail over"
    row = next(r for r in world.usage_rows([request_id]) if r["request_id"] == request_id)
    assert row["attempts"] == 2 and row["account_name"] == "emu-openai"
