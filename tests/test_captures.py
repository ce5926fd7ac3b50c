"""What went upstream: the Playground's view of a call before and after translation."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai

from tests.conftest import UPSTREAM_SECRET, World

CAPTURE = {"x-torouter-capture": "1"}


def fetch(world: World, key: str, request_id: str) -> httpx.Response:
    deadline = time.monotonic() + 3
    while True:
        r = httpx.get(
            f"{world.gateway.url}/torouter/captures/{request_id}", headers={"authorization": f"Bearer {key}"}
        )
        if r.status_code != 404 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def test_a_translated_call_shows_both_sides_with_secrets_masked(world: World) -> None:
    key = world.keys["claude-on-openai"]
    client = anthropic.Anthropic(base_url=world.gateway.url, api_key=key, default_headers=CAPTURE)
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "hello there"}],
    )
    r = fetch(world, key, raw.headers["request-id"])
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    assert data["client"]["path"] == "/v1/messages"
    assert data["client"]["body"]["system"] == "Be brief."
    sent = data["client"]["headers"]
    assert sent.get("x-api-key", sent.get("authorization")) == "[masked]"
    upstream = data["upstream"]
    assert upstream["path"] == "/v1/chat/completions"
    assert upstream["body"]["model"] == "gpt-4o"
    assert upstream["body"]["messages"][0] == {"role": "system", "content": "Be brief."}
    assert upstream["headers"]["authorization"] == "[masked]"
    assert data["account"] == "emu-openai" and data["status_code"] == 200
    assert data["usage"]["input_tokens"] > 0 and data["cost_usd"] > 0
    assert UPSTREAM_SECRET not in r.text and key not in r.text
    assert "127.0.0.1" not in str(upstream)  # the upstream's host is not shown either


def test_a_streamed_call_is_captured_with_its_usage_and_timings(world: World) -> None:
    key = world.keys["openai"]
    client = openai.OpenAI(base_url=world.gateway.openai_base_url, api_key=key, default_headers=CAPTURE)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream it"}], stream=True
    )
    list(raw.parse())
    data = fetch(world, key, raw.headers["x-request-id"]).json()
    assert data["upstream"]["body"]["stream_options"] == {"include_usage": True}
    assert data["client"]["body"].get("stream_options") is None
    assert data["ttft_ms"] is not None and data["ttft_ms"] <= data["latency_ms"]
    assert data["usage"]["output_tokens"] > 0


def test_only_the_key_that_made_the_call_sees_it_and_only_when_asked(world: World) -> None:
    key = world.keys["openai"]
    client = openai.OpenAI(base_url=world.gateway.openai_base_url, api_key=key)
    asked = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], extra_headers=CAPTURE
    )
    other = fetch(world, world.keys["compat"], asked.headers["x-request-id"])
    assert other.status_code == 404 and other.json()["error"]["code"] == "capture_not_found"
    not_asked = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert fetch(world, key, not_asked.headers["x-request-id"]).status_code == 404
    assert httpx.get(f"{world.gateway.url}/torouter/captures/x").status_code == 401
