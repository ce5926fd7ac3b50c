"""Scripted steps: errors, timing, faults, replay, and the request log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import types

from emulator_harness import TEST_KEY as KEY
from emulator_harness import EmulatorServer

OPENAI_AUTH = {"authorization": f"Bearer {KEY}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three four five"}]}
CLAUDE = "claude-sonnet-4-5-20250929"


@pytest.fixture
def oai(emulator: EmulatorServer) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=emulator.openai_base_url, max_retries=0)


@pytest.fixture
def claude(emulator: EmulatorServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=emulator.url, max_retries=0)


def stream_claude(claude: anthropic.Anthropic) -> anthropic.types.Message:
    with claude.messages.stream(
        model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "x"}]
    ) as s:
        return s.get_final_message()


def test_steps_match_by_model_and_path_and_count_times(oai: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(
        {"match": {"model": "gpt-4o-mini"}, "text": "for mini"},
        {"match": {"path": "/v1/chat"}, "text": "twice", "times": 2},
    )

    def ask(model: str) -> str:
        return (
            oai.chat.completions.create(model=model, messages=[{"role": "user", "content": "q"}])
            .choices[0]
            .message.content
        )

    assert ask("gpt-4o") == "twice"
    assert ask("gpt-4o-mini") == "for mini"
    assert ask("gpt-4o") == "twice"
    assert ask("gpt-4o") == "Hello from the emulator. You said: q"


def test_scripted_tool_calls_usage_and_stop_reason_per_vendor(
    oai: openai.OpenAI, claude: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    call = {"name": "lookup", "arguments": {"q": "cats", "n": 2}, "id": "call_fixedid"}
    emulator.script(
        {"tool_calls": [call], "usage": {"input_tokens": 100, "output_tokens": 7, "cached_tokens": 40}}
    )
    choice = oai.chat.completions.create(**CHAT)
    assert choice.choices[0].message.tool_calls[0].id == "call_fixedid"
    assert json.loads(choice.choices[0].message.tool_calls[0].function.arguments) == {"q": "cats", "n": 2}
    assert choice.usage.prompt_tokens == 100 and choice.usage.prompt_tokens_details.cached_tokens == 40
    emulator.script({"stop_reason": "max_tokens", "text": "cut", "usage": {"input_tokens": 100, "cached_tokens": 40, "cache_creation_tokens": 10}})  # fmt: skip
    message = claude.messages.create(model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert message.stop_reason == "max_tokens" and message.content[0].text == "cut"
    # Anthropic's input_tokens exclude both cache buckets.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (50, 40)
    assert message.usage.cache_creation_input_tokens == 10
    assert message.usage.cache_creation.ephemeral_5m_input_tokens == 10
    emulator.script({"stop_reason": "max_tokens"})
    gemini = genai.Client(
        api_key=KEY, http_options=types.HttpOptions(base_url=emulator.url, api_version="v1beta")
    )
    response = gemini.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    emulator.script({"thinking": "hmm", "text": "done"})
    thought = claude.messages.create(model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert [(b.type, getattr(b, "thinking", None)) for b in thought.content] == [
        ("thinking", "hmm"),
        ("text", None),
    ]


def test_delay_holds_back_the_headers(emulator: EmulatorServer) -> None:
    emulator.script({"delay": 0.4})
    started = time.monotonic()
    response = httpx.post(emulator.openai_base_url + "/chat/completions", json=CHAT, headers=OPENAI_AUTH)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.4


def test_chunk_delay_spaces_frames_and_each_is_flushed(oai: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.script({"chunk_delay": 0.15})
    arrivals: list[float] = []
    started = time.monotonic()
    for _chunk in oai.chat.completions.create(**CHAT, stream=True):
        arrivals.append(time.monotonic() - started)
    assert len(arrivals) >= 8
    # The first chunk arrives long before the last is even written: nothing is buffered.
    assert arrivals[0] < 0.5 * arrivals[-1]
    assert arrivals[-1] - arrivals[0] >= 0.15 * (len(arrivals) - 2)


def test_error_status_with_retry_after_header(claude: anthropic.Anthropic, emulator: EmulatorServer) -> None:
    emulator.script({"status": 529, "headers": {"retry-after": "3"}, "error": {"message": "busy"}})
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(model=CLAUDE, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 529
    assert caught.value.body["error"] == {"type": "overloaded_error", "message": "busy"}
    assert caught.value.response.headers["retry-after"] == "3"


def test_drop_after_cuts_the_stream_mid_body(oai: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.script({"drop_after": 3})
    received = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for chunk in oai.chat.completions.create(**CHAT, stream=True):
            received.append(chunk)
    assert len(received) == 3
    record = emulator.requests()[-1]
    assert record["dropped"] is True and record["disconnected"] is False


def test_drop_after_breaks_the_anthropic_stream(
    claude: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    emulator.script({"drop_after": 4})
    # This SDK runs on the httpx2 fork, so match the error by what it says.
    with pytest.raises(Exception, match="incomplete chunked read"):
        stream_claude(claude)


def test_drop_before_headers_gives_a_connection_error(oai: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.script({"drop_before_headers": True})
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(**CHAT)
    assert oai.chat.completions.create(**CHAT).choices[0].message.content.startswith("Hello")


def test_malformed_event_makes_the_sdk_fail(
    oai: openai.OpenAI, claude: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    emulator.script({"malformed_at": 2}, {"malformed_at": 3})
    with pytest.raises(ValueError):
        for _chunk in oai.chat.completions.create(**CHAT, stream=True):
            pass
    with pytest.raises(ValueError):
        stream_claude(claude)
    emulator.script({"malformed_at": 1})
    text = httpx.post(
        emulator.openai_base_url + "/chat/completions", json={**CHAT, "stream": True}, headers=OPENAI_AUTH
    ).text
    assert text.split("\n\n")[1] == 'data: {"truncated": '


def test_raw_body_such_as_an_html_error_page(oai: openai.OpenAI, emulator: EmulatorServer) -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    emulator.script({"raw": {"status": 502, "content_type": "text/html", "body": page}})
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(**CHAT)
    assert caught.value.status_code == 502
    assert caught.value.response.text == page


@pytest.mark.parametrize(
    ("relative", "path", "content_type"),
    [
        ("openai/examples/sdk-sse/chat_tool_call_stream.sse", "/v1/chat/completions", "text/event-stream"),
        ("anthropic/examples/sdk-sse/tool_use_response.txt", "/v1/messages", "text/event-stream"),
        (
            "gemini/examples/firebase-mock-responses/streaming-success-basic-reply-short.txt",
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
            "text/event-stream",
        ),
        (
            "gemini/examples/firebase-mock-responses/unary-success-basic-reply-short.json",
            "/v1beta/models/gemini-2.0-flash:generateContent",
            "application/json",
        ),
    ],
)
def test_replay_is_byte_for_byte(
    emulator: EmulatorServer, specs_dir: Path, relative: str, path: str, content_type: str
) -> None:
    emulator.script({"replay": relative})
    headers = {**OPENAI_AUTH, "x-api-key": KEY, "x-goog-api-key": KEY}
    response = httpx.post(
        emulator.url + path, json={"model": "gpt-4o", "messages": [], "contents": []}, headers=headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert response.content == (specs_dir / relative).read_bytes()


def test_replayed_anthropic_stream_parses_in_the_sdk(
    claude: anthropic.Anthropic, emulator: EmulatorServer
) -> None:
    emulator.script({"replay": "anthropic/examples/sdk-sse/tool_use_response.txt", "chunk_delay": 0.01})
    with claude.messages.stream(
        model=CLAUDE, max_tokens=50, messages=[{"role": "user", "content": "x"}]
    ) as s:
        final = s.get_final_message()
    assert final.content[1].name == "get_weather"
    assert final.content[1].input == {"location": "Paris"}


def test_replayed_lingua_capture_is_framed_as_sse(oai: openai.OpenAI, emulator: EmulatorServer) -> None:
    emulator.script(
        {"replay": "openai/examples/lingua-captures/toolCallRequest/responses/response-streaming.json"}
    )
    events = list(oai.responses.create(model="gpt-5-nano", input="x", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output[1].name == "get_weather"
    emulator.script(
        {"replay": "openai/examples/lingua-captures/simpleRequest/chat-completions/response-streaming.json"}
    )
    chunks = list(oai.chat.completions.create(**CHAT, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Paris."


def test_replay_with_chunk_delay_sends_event_by_event(emulator: EmulatorServer) -> None:
    emulator.script({"replay": "anthropic/examples/sdk-sse/basic_response.txt", "chunk_delay": 0.1})
    arrivals = []
    started = time.monotonic()
    with httpx.stream("POST", emulator.url + "/v1/messages", json={}, headers={"x-api-key": KEY}) as response:
        for _line in response.iter_lines():
            if _line.startswith("event:"):
                arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 9
    assert arrivals[-1] - arrivals[0] >= 0.7


def test_replay_of_a_missing_file_is_a_clear_400(emulator: EmulatorServer) -> None:
    emulator.script({"replay": "openai/examples/nope.sse"})
    response = httpx.post(emulator.openai_base_url + "/chat/completions", json=CHAT, headers=OPENAI_AUTH)
    assert response.status_code == 400
    assert "replay file not found" in response.json()["error"]["message"]


def test_request_log_records_everything_including_failures(emulator: EmulatorServer) -> None:
    httpx.post(emulator.openai_base_url + "/chat/completions?x=1", json=CHAT, headers=OPENAI_AUTH)
    httpx.post(emulator.openai_base_url + "/chat/completions", content=b"not json", headers=OPENAI_AUTH)
    httpx.get(emulator.url + "/v1beta/models?pageSize=1")
    first, second, third = emulator.requests()
    assert (first["method"], first["path"], first["query"]) == ("POST", "/v1/chat/completions", "x=1")
    assert first["body"] == CHAT and first["headers"]["authorization"] == f"Bearer {KEY}"
    assert first["status"] == 200 and first["disconnected"] is False
    assert second["body"] == "not json" and second["status"] == 400
    assert (third["method"], third["status"], third["body"]) == ("GET", 400, None)


def test_client_going_away_is_recorded(emulator: EmulatorServer) -> None:
    emulator.script({"delay": 2})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            emulator.openai_base_url + "/chat/completions", json=CHAT, headers=OPENAI_AUTH, timeout=0.3
        )
    emulator.script({"chunk_delay": 0.2})
    with httpx.stream(
        "POST",
        emulator.openai_base_url + "/chat/completions",
        json={**CHAT, "stream": True},
        headers=OPENAI_AUTH,
    ) as response:
        next(response.iter_lines())
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        records = emulator.requests()
        if all(r["disconnected"] for r in records):
            break
        time.sleep(0.05)
    assert [r["disconnected"] for r in records] == [True, True]
    assert all(r["disconnected_at"] >= r["received_at"] for r in records)


def test_bad_step_is_refused_and_reset_clears(emulator: EmulatorServer) -> None:
    bad = httpx.post(emulator.url + "/_emulator/script", json={"steps": [{"colour": "red"}]})
    assert bad.status_code == 400 and "colour" in bad.json()["error"]
    emulator.script({"status": 500})
    assert httpx.get(emulator.url + "/_emulator/health").json() == {"ok": True, "pending_steps": 1}
    emulator.reset()
    assert httpx.get(emulator.url + "/_emulator/health").json()["pending_steps"] == 0
    assert emulator.requests() == []


def test_module_runs_as_a_command(specs_dir: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "torouter.emulator", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen([*command, "--specs-dir", str(specs_dir)], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_emulator/health").status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=OPENAI_AUTH).json()
        assert models["object"] == "list"
    finally:
        process.terminate()
        process.wait(timeout=10)
