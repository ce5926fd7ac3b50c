"""Cross-protocol calls end to end: each official SDK against a group whose platform speaks the other protocol."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from tests.conftest import World

WEATHER_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
WEATHER_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def anthropic_client(world: World, group: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=world.keys[group], base_url=world.gateway.url, max_retries=0)


def openai_client(world: World, group: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=world.keys[group], base_url=world.gateway.openai_base_url, max_retries=0)


def upstream(world: World, suffix: str) -> dict:
    reqs = [r for r in world.emulator.requests() if r["path"].endswith(suffix)]
    assert reqs, f"no upstream call to {suffix}"
    return reqs[-1]


# ---------------------------------------------------------------- Anthropic SDK -> OpenAI platform


def test_anthropic_sdk_on_openai_group_gets_an_anthropic_message(world: World) -> None:
    msg = anthropic_client(world, "claude-on-openai").messages.create(
        model="claude-opus-4-7",
        max_tokens=200,
        system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "Hello there"}],
        stop_sequences=["END"],
        extra_body={"temperature": 0.5},  # this SDK version no longer takes temperature as an argument
    )
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert (
        msg.content[0].type == "text"
        and msg.content[0].text == "Hello from the emulator. You said: Hello there"
    )
    assert msg.stop_reason == "end_turn" and msg.model == "claude-opus-4-7"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    sent = upstream(world, "/chat/completions")["body"]
    assert sent["model"] == "gpt-4o"
    assert sent["messages"][0] == {
        "role": "system",
        "content": "Be terse.",
    }  # cache_control removed for openai
    assert sent["messages"][1]["role"] == "user"
    assert sent["max_completion_tokens"] == 200 and sent["temperature"] == 0.5 and sent["stop"] == ["END"]


def test_anthropic_sdk_streams_from_openai_group(world: World) -> None:
    with anthropic_client(world, "claude-on-openai").messages.stream(
        model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "stream across"}]
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "Hello from the emulator. You said: stream across"
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.usage.output_tokens > 0 and final.stop_reason == "end_turn"
    sent = upstream(world, "/chat/completions")["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_round_trips_through_openai_tool_calls(world: World, stream: bool) -> None:
    world.emulator.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Lima"}, "id": "call_abc123"}]}
    )
    c = anthropic_client(world, "claude-on-openai")
    kwargs = {
        "model": "claude-opus-4-7",
        "max_tokens": 100,
        "tools": [WEATHER_ANTHROPIC],
        "tool_choice": {"type": "any"},
    }
    messages = [{"role": "user", "content": "Weather in Lima?"}]
    if stream:
        with c.messages.stream(messages=messages, **kwargs) as s:
            msg = s.get_final_message()
    else:
        msg = c.messages.create(messages=messages, **kwargs)
    tool = next(b for b in msg.content if b.type == "tool_use")
    assert msg.stop_reason == "tool_use" and tool.name == "get_weather" and tool.input == {"city": "Lima"}
    assert tool.id == "call_abc123"  # ids are kept across the hop
    sent = upstream(world, "/chat/completions")["body"]
    assert sent["tools"] == [WEATHER_OPENAI] and sent["tool_choice"] == "required"

    follow = c.messages.create(
        messages=[
            *messages,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in msg.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "18°C, cloudy"}],
            },
        ],
        model="claude-opus-4-7",
        max_tokens=100,
        tools=[WEATHER_ANTHROPIC],
    )
    assert follow.content[0].type == "text"
    sent = upstream(world, "/chat/completions")["body"]["messages"]
    assistant = next(m for m in sent if m["role"] == "assistant")
    assert assistant["tool_calls"][0]["id"] == "call_abc123"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Lima"}
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_abc123", "content": "18°C, cloudy"}


def test_anthropic_error_result_keeps_its_meaning_on_openai(world: World) -> None:
    anthropic_client(world, "claude-on-openai").messages.create(
        model="claude-opus-4-7",
        max_tokens=50,
        tools=[WEATHER_ANTHROPIC],
        messages=[
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "X"}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01",
                        "content": "no such city",
                        "is_error": True,
                    }
                ],
            },
        ],
    )
    tool_msg = upstream(world, "/chat/completions")["body"]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == "toolu_01"
    assert "error" in tool_msg["content"].lower() and "no such city" in tool_msg["content"]


def test_count_tokens_on_openai_group_is_counted_locally(world: World) -> None:
    c = anthropic_client(world, "claude-on-openai")
    short = c.messages.count_tokens(
        model="claude-opus-4-7", messages=[{"role": "user", "content": "Hi"}]
    ).input_tokens
    longer = c.messages.count_tokens(
        model="claude-opus-4-7",
        messages=[
            {"role": "user", "content": "Please summarise the history of the Roman Empire in detail. " * 20}
        ],
        tools=[WEATHER_ANTHROPIC],
    ).input_tokens
    assert 0 < short < 20 < longer
    assert not [r for r in world.emulator.requests() if "count_tokens" in r["path"]]


def test_beta_headers_never_fail_a_translated_call(world: World) -> None:
    msg = anthropic_client(world, "claude-on-openai").beta.messages.create(
        model="claude-opus-4-7",
        max_tokens=50,
        betas=[
            "context-management-2025-06-27",
            "interleaved-thinking-2025-05-14",
            "some-future-beta-2027-01-01",
        ],
        messages=[{"role": "user", "content": "betas"}],
    )
    assert msg.content[0].text.endswith("betas")
    sent = upstream(world, "/chat/completions")
    assert "anthropic-beta" not in sent["headers"]


def test_openrouter_gets_reasoning_and_keeps_cache_control(world: World) -> None:
    anthropic_client(world, "claude-on-openrouter").messages.create(
        model="claude-opus-4-7",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        system=[{"type": "text", "text": "cached system", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "think"}],
    )
    sent = upstream(world, "/chat/completions")["body"]
    assert sent["model"] == "anthropic/claude-sonnet-4.5"
    assert sent["reasoning"] == {"max_tokens": 2048}
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"][0]["cache_control"] == {"type": "ephemeral"}


# ---------------------------------------------------------------- OpenAI SDK -> Anthropic platform


def test_openai_sdk_on_anthropic_group_gets_a_chat_completion(world: World) -> None:
    resp = openai_client(world, "gpt-on-anthropic").chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi Claude"}],
        max_tokens=77,
        temperature=0.3,
        user="u-42",
    )
    assert resp.object == "chat.completion" and resp.model == "gpt-4o"
    assert resp.choices[0].message.content == "Hello from the emulator. You said: Hi Claude"
    assert resp.choices[0].finish_reason == "stop"
    assert (
        resp.usage.prompt_tokens > 0
        and resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    )
    sent = upstream(world, "/v1/messages")
    assert sent["headers"]["anthropic-version"]
    body = sent["body"]
    assert body["model"] == "claude-sonnet-4-5" and body["max_tokens"] == 77
    assert body["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi Claude"}]}] or body[
        "messages"
    ] == [{"role": "user", "content": "Hi Claude"}]
    assert body["metadata"] == {"user_id": "u-42"}


def test_openai_sdk_streams_from_anthropic_group(world: World) -> None:
    chunks = list(
        openai_client(world, "gpt-on-anthropic").chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "stream back"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the emulator. You said: stream back"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_calls_round_trip_through_anthropic_tool_use(world: World, stream: bool) -> None:
    world.emulator.script(
        {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Kyiv"}, "id": "toolu_01XYZ"}]}
    )
    c = openai_client(world, "gpt-on-anthropic")
    messages: list[dict] = [{"role": "user", "content": "Weather in Kyiv?"}]
    if stream:
        name, args, call_id, finish = None, "", None, None
        for chunk in c.chat.completions.create(
            model="gpt-4o", messages=messages, tools=[WEATHER_OPENAI], stream=True
        ):
            for choice in chunk.choices:
                for tc in choice.delta.tool_calls or []:
                    name, call_id = tc.function.name or name, tc.id or call_id
                    args += tc.function.arguments or ""
                finish = choice.finish_reason or finish
    else:
        resp = c.chat.completions.create(
            model="gpt-4o", messages=messages, tools=[WEATHER_OPENAI], tool_choice="auto"
        )
        tc = resp.choices[0].message.tool_calls[0]
        name, args, call_id, finish = (
            tc.function.name,
            tc.function.arguments,
            tc.id,
            resp.choices[0].finish_reason,
        )
    assert (name, json.loads(args), call_id, finish) == (
        "get_weather",
        {"city": "Kyiv"},
        "toolu_01XYZ",
        "tool_calls",
    )
    sent = upstream(world, "/v1/messages")["body"]
    assert sent["tools"] == [WEATHER_ANTHROPIC]

    c.chat.completions.create(
        model="gpt-4o",
        tools=[WEATHER_OPENAI],
        messages=[
            *messages,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}
                ],
            },
            {"role": "tool", "tool_call_id": call_id, "content": "-3°C"},
        ],
    )
    sent = upstream(world, "/v1/messages")["body"]["messages"]
    assert sent[1]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_01XYZ",
        "name": "get_weather",
        "input": {"city": "Kyiv"},
    }
    result = sent[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_01XYZ"
    assert "-3°C" in json.dumps(result["content"], ensure_ascii=False)


def test_openai_reasoning_effort_becomes_anthropic_thinking_and_comes_back(world: World) -> None:
    world.emulator.script({"thinking": "Let me think about it.", "text": "42"})
    resp = openai_client(world, "gpt-on-anthropic").chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "meaning?"}],
        reasoning_effort="high",
        max_tokens=3000,
    )
    sent = upstream(world, "/v1/messages")["body"]
    assert sent["thinking"]["type"] in ("enabled", "adaptive")
    assert resp.choices[0].message.content == "42"
    extra = resp.choices[0].message.model_extra or {}
    assert extra.get("reasoning_content") == "Let me think about it."


def test_upstream_errors_are_rendered_in_the_client_protocol(world: World) -> None:
    world.emulator.script({"status": 529, "error": {"message": "Overloaded"}})
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(world, "gpt-on-anthropic").chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "x"}]
        )
    assert exc.value.status_code == 503 and exc.value.body["type"] == "server_error"  # OpenAI's "overloaded"
    world.emulator.script({"status": 429, "error": {"message": "slow down"}, "headers": {"retry-after": "3"}})
    with pytest.raises(anthropic.RateLimitError) as exc2:
        anthropic_client(world, "claude-on-openai").messages.create(
            model="claude-opus-4-7", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert exc2.value.body["error"]["type"] == "rate_limit_error"
    assert exc2.value.response.headers["retry-after"] == "3"


def test_mid_stream_drop_on_a_translated_stream_is_an_error_event(world: World) -> None:
    world.emulator.script({"text": "a b c d e f g h i", "drop_after": 3})
    with (
        pytest.raises(anthropic.APIStatusError),
        anthropic_client(world, "claude-on-openai").messages.stream(
            model="claude-opus-4-7", max_tokens=50, messages=[{"role": "user", "content": "x"}]
        ) as s,
    ):
        for _ in s:
            pass


def test_translated_usage_is_recorded(world: World) -> None:
    raw = anthropic_client(world, "claude-on-openai").messages.with_raw_response.create(
        model="claude-opus-4-7", max_tokens=50, messages=[{"role": "user", "content": "usage"}]
    )
    msg = raw.parse()
    rid = raw.headers["request-id"]
    row = next(r for r in world.usage_rows([rid]) if r["request_id"] == rid)
    assert (
        row["model"] == "claude-opus-4-7"
        and row["upstream_model"] == "gpt-4o"
        and row["platform"] == "openai"
    )
    assert row["surface"] == "anthropic" and row["output_tokens"] == msg.usage.output_tokens


def test_images_and_documents_convert_or_fail_clearly(world: World) -> None:
    pdf = "JVBERi0xLjQKJcOkw7zDtsOfCjEgMCBvYmoKPDwvVHlwZS9DYXRhbG9nPj4KZW5kb2JqCg=="
    anthropic_client(world, "claude-on-openai").messages.create(
        model="claude-opus-4-7",
        max_tokens=50,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                        "title": "spec.pdf",
                    },
                    {"type": "text", "text": "Describe these."},
                ],
            }
        ],
    )
    parts = upstream(world, "/chat/completions")["body"]["messages"][-1]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert (
        parts[2]["type"] == "file" and parts[2]["file"]["file_data"] == f"data:application/pdf;base64,{pdf}"
    )
    with pytest.raises(anthropic.BadRequestError) as exc:
        anthropic_client(world, "claude-on-openai").messages.create(
            model="claude-opus-4-7",
            max_tokens=50,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
                    ],
                }
            ],
        )
    assert "openai" in exc.value.message and exc.value.body["error"]["type"] == "invalid_request_error"
