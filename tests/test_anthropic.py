"""The Anthropic surface end to end: the official `anthropic` SDK, the real gateway, the emulator upstream."""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest

from tests.conftest import UPSTREAM_SECRET, World

MODEL = "claude-opus-4-7"


def client(world: World, key: str | None = None, **kw: object) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=key or world.keys["anthropic"], base_url=world.gateway.url, max_retries=0, **kw
    )


def upstream_messages(world: World) -> list[dict]:
    return [r for r in world.emulator.requests() if r["path"].startswith("/v1/messages")]


def test_messages_create_passes_through_with_the_model_rewritten_only(world: World) -> None:
    raw = client(world).messages.with_raw_response.create(
        model="opus",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello Claude"}],
        system="Be brief.",
    )
    msg = raw.parse()
    assert msg.content[0].text == "Hello from the emulator. You said: Hello Claude"
    assert msg.stop_reason == "end_turn" and msg.usage.input_tokens > 0
    sent = upstream_messages(world)[-1]
    assert sent["headers"]["x-api-key"] == UPSTREAM_SECRET
    assert sent["headers"]["anthropic-version"] == raw.http_request.headers["anthropic-version"]
    assert sent["body"] == {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hello Claude"}],
        "system": "Be brief.",
    }


def test_upstream_request_id_comes_back(world: World) -> None:
    raw = client(world).messages.with_raw_response.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "id"}]
    )
    assert raw.headers["request-id"].startswith("req_")
    assert raw.request_id == raw.headers["request-id"]


def test_stream_relays_every_event_in_order_and_final_message_parses(world: World) -> None:
    with client(world).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "Hello from the emulator. You said: stream it"
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_delta") >= 3 or "text" in kinds
    assert final.usage.output_tokens > 0


def test_raw_stream_bytes_match_what_the_upstream_sent(world: World) -> None:
    world.emulator.script({"replay": "anthropic/examples/sdk-sse/tool_use_response.txt"})
    from tests.emulator_harness import find_specs_dir

    recorded = (find_specs_dir() / "anthropic/examples/sdk-sse/tool_use_response.txt").read_bytes()
    with httpx.stream(
        "POST",
        world.gateway.url + "/v1/messages",
        json={
            "model": MODEL,
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
        headers={"x-api-key": world.keys["anthropic"], "anthropic-version": "2023-06-01"},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        got = b"".join(r.iter_bytes())
    assert got == recorded


def test_stream_usage_is_recorded_with_cache_buckets(world: World) -> None:
    world.emulator.script(
        {
            "usage": {
                "input_tokens": 1000,
                "cached_tokens": 600,
                "cache_creation_tokens": 300,
                "output_tokens": 42,
            }
        }
    )
    raw = client(world).messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "cache"}], stream=True
    )
    request_id = raw.headers["request-id"]
    list(raw.parse())
    row = next(r for r in world.usage_rows([request_id]) if r["request_id"] == request_id)
    assert (row["input_tokens"], row["cached_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
        1000,
        600,
        300,
        42,
    )
    assert row["stream"] == 1 and row["surface"] == "anthropic" and row["ttft_ms"] is not None


def test_tool_use_round_trip(world: World) -> None:
    world.emulator.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]})
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    msg = client(world).messages.create(
        model=MODEL, max_tokens=64, tools=tools, messages=[{"role": "user", "content": "weather in Oslo?"}]
    )
    block = next(b for b in msg.content if b.type == "tool_use")
    assert msg.stop_reason == "tool_use" and block.name == "get_weather" and block.input == {"city": "Oslo"}
    follow = client(world).messages.create(
        model=MODEL,
        max_tokens=64,
        tools=tools,
        messages=[
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": block.id,
                        "content": "12°C",
                        "cache_control": {"type": "ephemeral"},
                    }
                ],
            },
        ],
    )
    assert follow.content[0].type == "text"
    sent = upstream_messages(world)[-1]["body"]["messages"][2]["content"][0]
    assert sent == {
        "type": "tool_result",
        "tool_use_id": block.id,
        "content": "12°C",
        "cache_control": {"type": "ephemeral"},
    }


def test_streamed_tool_use_input_reassembles(world: World) -> None:
    world.emulator.script(
        {"tool_calls": [{"name": "lookup", "arguments": {"query": "a somewhat longer query"}}]}
    )
    tools = [
        {"name": "lookup", "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}
    ]
    with client(world).messages.stream(
        model=MODEL, max_tokens=64, tools=tools, messages=[{"role": "user", "content": "go"}]
    ) as s:
        final = s.get_final_message()
    assert final.content[-1].input == {"query": "a somewhat longer query"}


def test_count_tokens_is_forwarded(world: World) -> None:
    result = client(world).messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "count these tokens please"}]
    )
    assert result.input_tokens > 0
    assert upstream_messages(world)[-1]["path"] == "/v1/messages/count_tokens"


def test_models_list_paginates_in_anthropic_shape(world: World) -> None:
    c = client(world)
    everything = [m.id for m in c.models.list()]
    assert everything == ["claude-haiku-4-5", "claude-opus-4-7", "claude-sonnet-4-5", "opus"]
    page = c.models.list(limit=2)
    assert [m.id for m in page.data] == everything[:2] and page.has_more and page.last_id == everything[1]
    nxt = c.models.list(limit=2, after_id=page.last_id)
    assert [m.id for m in nxt.data] == everything[2:] and not nxt.has_more
    before = c.models.list(limit=10, before_id=everything[2])
    assert [m.id for m in before.data] == everything[:2]
    one = c.models.retrieve("claude-opus-4-7")
    assert one.id == "claude-opus-4-7" and one.type == "model"
    with pytest.raises(anthropic.NotFoundError):
        c.models.retrieve("claude-nope")


def test_models_without_anthropic_version_answer_in_openai_shape(world: World) -> None:
    r = httpx.get(world.gateway.url + "/v1/models", headers={"x-api-key": world.keys["anthropic"]})
    assert r.json()["object"] == "list" and r.json()["data"][0]["object"] == "model"


def test_beta_client_headers_and_query_reach_the_upstream(world: World) -> None:
    betas = [
        "prompt-caching-2024-07-31",
        "extended-cache-ttl-2025-04-11",
        "interleaved-thinking-2025-05-14",
        "context-management-2025-06-27",
    ]
    msg = client(world).beta.messages.create(
        model=MODEL,
        max_tokens=64,
        betas=betas,
        system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        messages=[{"role": "user", "content": "beta"}],
    )
    assert msg.content[0].text.endswith("beta")
    sent = upstream_messages(world)[-1]
    assert [b.strip() for b in sent["headers"]["anthropic-beta"].split(",")] == betas
    assert sent["body"]["system"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}


def test_query_string_and_repeated_beta_headers_pass_through(world: World) -> None:
    r = httpx.post(
        world.gateway.url + "/v1/messages?beta=true",
        json={"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": "q"}]},
        headers=[
            ("x-api-key", world.keys["anthropic"]),
            ("anthropic-version", "2023-06-01"),
            ("anthropic-beta", "oauth-2025-04-20,fine-grained-tool-streaming-2025-05-14"),
            ("anthropic-beta", "interleaved-thinking-2025-05-14"),
        ],
    )
    assert r.status_code == 200, r.text
    sent = upstream_messages(world)[-1]
    assert sent["path"] == "/v1/messages" and "beta=true" in str(sent["query"])
    assert sent["headers"]["anthropic-version"] == "2023-06-01"
    assert sent["headers"]["anthropic-beta"].split(",") == [
        "oauth-2025-04-20",
        "fine-grained-tool-streaming-2025-05-14",
        "interleaved-thinking-2025-05-14",
    ]


def test_bearer_auth_is_accepted_too(world: World) -> None:
    c = anthropic.Anthropic(auth_token=world.keys["anthropic"], base_url=world.gateway.url, max_retries=0)
    assert c.messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "b"}]).content


def test_async_client_create_and_stream(world: World) -> None:
    async def main() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            api_key=world.keys["anthropic"], base_url=world.gateway.url, max_retries=0
        ) as c:
            msg = await c.messages.create(
                model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "async"}]
            )
            async with c.messages.stream(
                model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "async s"}]
            ) as s:
                final = await s.get_final_message()
            return msg.content[0].text, final.content[0].text

    whole, streamed = asyncio.run(main())
    assert whole.endswith("async") and streamed.endswith("async s")


ERRORS = [
    (400, anthropic.BadRequestError, "invalid_request_error"),
    (401, anthropic.InternalServerError, "api_error"),  # the upstream refused our credential: a gateway fault
    (403, anthropic.PermissionDeniedError, "permission_error"),
    (404, anthropic.NotFoundError, "not_found_error"),
    (429, anthropic.RateLimitError, "rate_limit_error"),
    (500, anthropic.InternalServerError, "api_error"),
    (529, anthropic.InternalServerError, "overloaded_error"),
]


@pytest.mark.parametrize(("status", "exc_type", "error_type"), ERRORS)
def test_upstream_errors_keep_anthropic_shape_and_status(
    world: World, status: int, exc_type: type, error_type: str
) -> None:
    world.emulator.script({"status": status, "error": {"message": f"upstream says no ({UPSTREAM_SECRET})"}})
    with pytest.raises(exc_type) as exc:
        client(world).messages.create(model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}])
    if status in (401, 403):
        world.reenable("emu-anthropic")  # the refusal disabled the group's only account
    err = exc.value
    expected_status = 502 if status == 401 else status
    assert err.status_code == expected_status
    assert err.body["type"] == "error" and err.body["error"]["type"] == error_type
    assert err.body["request_id"] and err.request_id == err.body["request_id"]
    assert UPSTREAM_SECRET not in str(err.body)


def test_gateway_errors_are_in_anthropic_shape(world: World) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        client(world, key="sk-tr-wrong-key-0000000000000000").messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert auth.value.body["error"]["type"] == "authentication_error" and auth.value.body["request_id"]
    with pytest.raises(anthropic.NotFoundError) as missing:
        client(world).messages.create(
            model="gpt-4o", max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"
    r = httpx.post(
        world.gateway.url + "/v1/messages",
        content=b'{"model": "claude-opus-4-7", "messages": []}',
        headers={"x-api-key": world.keys["anthropic"], "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 400 and r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert world.emulator.requests() == []


def test_mid_stream_failure_becomes_an_error_event(world: World) -> None:
    world.emulator.script({"text": "one two three four five six seven", "drop_after": 3})
    with (
        pytest.raises(anthropic.APIStatusError) as exc,
        client(world).messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        for _ in s:
            pass
    assert "mid-stream" in str(exc.value)
