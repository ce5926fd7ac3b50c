"""The Gemini surface end to end: the official google-genai SDK, the real gateway, the emulator upstream."""

from __future__ import annotations

import httpx
import pytest
from google import genai
from google.genai import errors, types

from tests.conftest import UPSTREAM_SECRET, World

MODEL = "gemini-2.5-flash"


_clients: dict[tuple[str, str, str], genai.Client] = {}


def client(world: World, group: str = "gemini", version: str = "v1beta") -> genai.Client:
    """Kept alive here: this SDK closes its HTTP client when the Client object is collected."""
    key = (world.gateway.url, group, version)
    if key not in _clients:
        _clients[key] = make_client(world, group, version)
    return _clients[key]


def make_client(world: World, group: str, version: str) -> genai.Client:
    return genai.Client(
        api_key=world.keys[group],
        http_options=types.HttpOptions(
            base_url=world.gateway.url, api_version=version, retry_options=types.HttpRetryOptions(attempts=1)
        ),
    )


def upstream(world: World, contains: str) -> dict:
    reqs = [r for r in world.emulator.requests() if contains in r["path"]]
    assert reqs, f"no upstream call to {contains}"
    return reqs[-1]


WEATHER = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city",
            parameters=types.Schema(
                type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]
            ),
        )
    ]
)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
def test_generate_content_passes_through_to_a_gemini_group(world: World, version: str) -> None:
    resp = client(world, version=version).models.generate_content(model=MODEL, contents="Hello Gemini")
    assert resp.text == "Hello from the emulator. You said: Hello Gemini"
    assert resp.usage_metadata.prompt_token_count > 0
    sent = upstream(world, ":generateContent")
    assert sent["path"] == f"/{version}/models/{MODEL}:generateContent"
    assert sent["headers"]["x-goog-api-key"] == UPSTREAM_SECRET


def test_generate_content_stream_relays_sse(world: World) -> None:
    chunks = list(client(world).models.generate_content_stream(model=MODEL, contents="stream it"))
    assert "".join(c.text or "" for c in chunks) == "Hello from the emulator. You said: stream it"
    assert len(chunks) >= 3 and chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert "alt=sse" in str(upstream(world, ":streamGenerateContent")["query"])


def test_stream_without_alt_sse_is_a_json_array(world: World) -> None:
    with httpx.stream(
        "POST",
        f"{world.gateway.url}/v1beta/models/{MODEL}:streamGenerateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "array"}]}]},
        headers={"x-goog-api-key": world.keys["gemini"]},
    ) as r:
        body = b"".join(r.iter_bytes())
    assert r.status_code == 200 and body.lstrip().startswith(b"[") and body.rstrip().endswith(b"]")
    import json

    items = json.loads(body)
    assert "".join(p.get("text", "") for i in items for p in i["candidates"][0]["content"]["parts"]).endswith(
        "array"
    )


def test_function_calling_round_trip(world: World) -> None:
    world.emulator.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]})
    c = client(world)
    cfg = types.GenerateContentConfig(tools=[WEATHER])
    resp = c.models.generate_content(model=MODEL, contents="Weather in Rome?", config=cfg)
    call = resp.function_calls[0]
    assert call.name == "get_weather" and call.args == {"city": "Rome"}
    follow = c.models.generate_content(
        model=MODEL,
        config=cfg,
        contents=[
            types.Content(role="user", parts=[types.Part(text="Weather in Rome?")]),
            resp.candidates[0].content,
            types.Content(
                role="user",
                parts=[types.Part.from_function_response(name="get_weather", response={"output": "21C"})],
            ),
        ],
    )
    assert follow.text
    sent = upstream(world, ":generateContent")["body"]["contents"]
    assert sent[-1]["parts"][0]["functionResponse"]["response"] == {"output": "21C"}


def test_count_tokens_is_forwarded(world: World) -> None:
    result = client(world).models.count_tokens(model=MODEL, contents="count these tokens")
    assert result.total_tokens > 0
    assert upstream(world, ":countTokens")


def test_embed_content_is_forwarded(world: World) -> None:
    result = client(world).models.embed_content(
        model="gemini-embedding-001", contents=["first text", "second text"]
    )
    assert len(result.embeddings) == 2 and all(len(e.values) > 0 for e in result.embeddings)


def test_models_list_pages_in_googles_shape(world: World) -> None:
    c = client(world)
    names = [m.name for m in c.models.list(config={"page_size": 2})]
    assert names == ["models/gemini-2.5-flash", "models/gemini-2.5-pro", "models/gemini-embedding-001"]
    one = c.models.get(model="gemini-2.5-pro")
    assert one.name == "models/gemini-2.5-pro"


def test_errors_are_in_googles_shape(world: World) -> None:
    bad = genai.Client(
        api_key="wrong-key", http_options=types.HttpOptions(base_url=world.gateway.url, api_version="v1beta")
    )
    with pytest.raises(errors.ClientError) as exc:
        bad.models.generate_content(model=MODEL, contents="x")
    assert exc.value.code == 401 and exc.value.status == "UNAUTHENTICATED"
    world.emulator.script({"status": 429, "error": {"message": f"quota for {UPSTREAM_SECRET}"}})
    with pytest.raises(errors.ClientError) as exc2:
        client(world).models.generate_content(model=MODEL, contents="x")
    assert exc2.value.code == 429 and exc2.value.status == "RESOURCE_EXHAUSTED"
    assert UPSTREAM_SECRET not in str(exc2.value)
    with pytest.raises(errors.ClientError) as exc3:
        client(world).models.generate_content(model="gpt-4o", contents="x")
    assert exc3.value.code == 404 and exc3.value.status == "NOT_FOUND"


# ---------------------------------------------------------------- translated: the Gemini surface on other platforms


@pytest.mark.parametrize("group", ["gemini-on-openai", "gemini-on-anthropic"])
def test_generate_content_on_other_platforms(world: World, group: str) -> None:
    resp = client(world, group).models.generate_content(
        model=MODEL,
        contents="Across platforms",
        config=types.GenerateContentConfig(
            system_instruction="Be brief.", max_output_tokens=99, temperature=0.4
        ),
    )
    assert resp.text == "Hello from the emulator. You said: Across platforms"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.usage_metadata.total_token_count > 0


@pytest.mark.parametrize("group", ["gemini-on-openai", "gemini-on-anthropic"])
def test_generate_content_stream_on_other_platforms(world: World, group: str) -> None:
    chunks = list(
        client(world, group).models.generate_content_stream(model=MODEL, contents="streaming across")
    )
    assert "".join(c.text or "" for c in chunks) == "Hello from the emulator. You said: streaming across"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("group", ["gemini-on-openai", "gemini-on-anthropic"])
def test_function_calls_on_other_platforms(world: World, group: str) -> None:
    world.emulator.script({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]})
    resp = client(world, group).models.generate_content(
        model=MODEL, contents="Weather in Oslo?", config=types.GenerateContentConfig(tools=[WEATHER])
    )
    assert resp.function_calls[0].name == "get_weather" and resp.function_calls[0].args == {"city": "Oslo"}


# ---------------------------------------------------------------- other surfaces on a gemini group


def test_openai_sdk_on_a_gemini_group(world: World) -> None:
    import openai

    c = openai.OpenAI(
        api_key=world.keys["gpt-on-gemini"], base_url=world.gateway.openai_base_url, max_retries=0
    )
    resp = c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "to gemini"}])
    assert resp.choices[0].message.content == "Hello from the emulator. You said: to gemini"
    stream = c.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "stream to gemini"}], stream=True
    )
    assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices).endswith(
        "stream to gemini"
    )
    assert (
        upstream(world, ":streamGenerateContent")["path"]
        == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    )


def test_anthropic_sdk_on_a_gemini_group(world: World) -> None:
    import anthropic

    c = anthropic.Anthropic(api_key=world.keys["claude-on-gemini"], base_url=world.gateway.url, max_retries=0)
    msg = c.messages.create(
        model="claude-opus-4-7", max_tokens=50, messages=[{"role": "user", "content": "claude to gemini"}]
    )
    assert msg.content[0].text.endswith("claude to gemini")
    with c.messages.stream(
        model="claude-opus-4-7", max_tokens=50, messages=[{"role": "user", "content": "s"}]
    ) as s:
        assert s.get_final_message().content[0].text.endswith("s")
