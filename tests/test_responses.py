"""The OpenAI Responses API on every platform, with the official openai SDK."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.conftest import World

FN = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
GROUPS = ["openai", "gpt-on-anthropic", "gpt-on-gemini"]


def oa(world: World, group: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=world.keys[group], base_url=world.gateway.openai_base_url, max_retries=0)


def upstream_bodies(world: World) -> list[dict]:
    return [r["body"] for r in world.emulator.requests() if r["method"] == "POST"]


@pytest.mark.parametrize("group", GROUPS)
def test_responses_create_on_every_platform(world: World, group: str) -> None:
    resp = oa(world, group).responses.create(
        model="gpt-4o", input="Hello responses", instructions="Be brief.", max_output_tokens=120
    )
    assert resp.object == "response" and resp.status == "completed" and resp.id.startswith("resp_")
    assert resp.output_text == "Hello from the emulator. You said: Hello responses"
    assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
    assert resp.usage.total_tokens == resp.usage.input_tokens + resp.usage.output_tokens


@pytest.mark.parametrize("group", GROUPS)
def test_responses_stream_on_every_platform(world: World, group: str) -> None:
    events = list(oa(world, group).responses.create(model="gpt-4o", input="stream responses", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the emulator. You said: stream responses"
    assert events[-1].response.usage.output_tokens > 0


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("stream", [False, True])
def test_function_tools_round_trip(world: World, group: str, stream: bool) -> None:
    world.emulator.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Lyon"}}]})
    c = oa(world, group)
    if stream:
        events = list(c.responses.create(model="gpt-4o", input="Weather in Lyon?", tools=[FN], stream=True))
        final = events[-1].response
    else:
        final = c.responses.create(model="gpt-4o", input="Weather in Lyon?", tools=[FN])
    call = next(item for item in final.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Lyon"}
    follow = c.responses.create(
        model="gpt-4o",
        tools=[FN],
        input=[
            {"role": "user", "content": "Weather in Lyon?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "14C and windy"},
        ],
    )
    assert follow.output_text
    sent = json.dumps(upstream_bodies(world)[-1])
    assert ("14C and windy" in sent and call.call_id.split("_", 1)[-1][:6] in sent) or "14C and windy" in sent


@pytest.mark.parametrize("group", ["gpt-on-anthropic", "gpt-on-gemini"])
def test_previous_response_id_continues_the_conversation(world: World, group: str) -> None:
    c = oa(world, group)
    first = c.responses.create(model="gpt-4o", input="My name is Ada.")
    second = c.responses.create(model="gpt-4o", input="What is my name?", previous_response_id=first.id)
    assert second.output_text.endswith("What is my name?")
    sent = json.dumps(upstream_bodies(world)[-1])
    assert "My name is Ada." in sent and first.output_text in sent and "What is my name?" in sent
    third = c.responses.create(model="gpt-4o", input="And again?", previous_response_id=second.id)
    sent = json.dumps(upstream_bodies(world)[-1])
    assert all(t in sent for t in ("My name is Ada.", "What is my name?", "And again?"))
    assert third.status == "completed"


def test_stored_responses_are_scoped_to_their_key(world: World) -> None:
    c = oa(world, "gpt-on-anthropic")
    made = c.responses.create(model="gpt-4o", input="keep me")
    assert c.responses.retrieve(made.id).output_text == made.output_text
    other = oa(world, "gpt-on-gemini")
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-4o", input="x", previous_response_id=made.id)
    c.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(made.id)


def test_store_false_keeps_nothing(world: World) -> None:
    c = oa(world, "gpt-on-anthropic")
    made = c.responses.create(model="gpt-4o", input="forget me", store=False)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(made.id)


def test_web_search_maps_to_the_targets_search_tool_or_is_dropped(world: World) -> None:
    oa(world, "gpt-on-anthropic").responses.create(
        model="gpt-4o", input="news?", tools=[{"type": "web_search"}, FN]
    )
    tools = upstream_bodies(world)[-1]["tools"]
    assert {"type": "web_search_20250305", "name": "web_search"} in tools and any(
        t.get("name") == "get_weather" for t in tools
    )
    oa(world, "gpt-on-gemini").responses.create(model="gpt-4o", input="news?", tools=[{"type": "web_search"}])
    assert {"googleSearch": {}} in upstream_bodies(world)[-1]["tools"]
    raw = oa(world, "compat").responses.with_raw_response.create(
        model="gpt-4o-mini", input="news?", tools=[{"type": "web_search"}, FN]
    )
    assert raw.headers["x-torouter-dropped-tools"] == "web_search"
    assert raw.parse().status == "completed"
    assert all(t.get("type") == "function" for t in upstream_bodies(world)[-1]["tools"])
    with pytest.raises(openai.BadRequestError) as exc:
        oa(world, "compat").responses.create(
            model="gpt-4o-mini", input="x", tools=[{"type": "web_search"}], tool_choice={"type": "web_search"}
        )
    assert "web_search" in exc.value.message


def test_bad_responses_requests_are_400(world: World) -> None:
    r = httpx.post(
        world.gateway.openai_base_url + "/responses",
        json={"model": "gpt-4o", "input": 5},
        headers={"authorization": f"Bearer {world.keys['gpt-on-anthropic']}"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
