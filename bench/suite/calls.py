"""One real call, as wrk sends it, and a check of what came back: a 200 with a body of the client's
protocol (a chat completion, a message, or their SSE streams) and the upstream's text in it.

A gateway that answers 200 with an error body, or a stream with no text, would be fast and wrong;
every target is checked this way before and after it is measured.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from harness import TargetError

from suite.scenarios import OPENAI, Scenario
from suite.targets import Endpoint

PROMPT = "Summarise CIDR notation in one sentence."
EXPECTED_TEXT = "CIDR notation writes an IP prefix"  # what the static upstream answers


def request_body(scenario: Scenario, model: str) -> bytes:
    """The body the shared wrk script sends for this scenario."""
    body: dict[str, object] = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 64,
    }
    if scenario.stream:
        body["stream"] = True
        if scenario.client == OPENAI:
            body["stream_options"] = {"include_usage": True}
    return json.dumps(body, separators=(",", ":")).encode()


def request_headers(scenario: Scenario, endpoint: Endpoint) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if scenario.client == OPENAI:
        headers["authorization"] = f"Bearer {endpoint.key}"
    else:
        headers["x-api-key"] = endpoint.key
        headers["anthropic-version"] = "2023-06-01"
    return headers | dict(endpoint.headers)


def call_once(scenario: Scenario, endpoint: Endpoint, timeout: float = 30) -> str:
    """Send one call and check its answer; return a short description, raise TargetError if wrong."""
    req = urllib.request.Request(
        endpoint.url,
        data=request_body(scenario, endpoint.model),
        headers=request_headers(scenario, endpoint),
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError as exc:
        raise TargetError(f"no answer from {endpoint.url}: {exc}") from exc
    text = body.decode(errors="replace")
    if status != 200:
        raise TargetError(f"HTTP {status}: {' '.join(text.split())[:200]}")
    try:
        answer = stream_text(scenario, text) if scenario.stream else whole_text(scenario, text)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise TargetError(
            f"200 but not a {scenario.client} answer ({exc}): {' '.join(text.split())[:200]}"
        ) from exc
    if not answer.startswith(EXPECTED_TEXT):
        raise TargetError(f"200 but the text is not the upstream's: {answer[:80]!r}")
    return f"200, {len(body)} bytes, text {answer[:30]!r}…"


def whole_text(scenario: Scenario, text: str) -> str:
    data = json.loads(text)
    if scenario.client == OPENAI:
        if data.get("object") != "chat.completion":
            raise ValueError(f"object is {data.get('object')!r}")
        return data["choices"][0]["message"]["content"]
    if data.get("type") != "message":
        raise ValueError(f"type is {data.get('type')!r}")
    return "".join(block["text"] for block in data["content"] if block["type"] == "text")


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event name, data) pairs of an SSE body."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if data:
            events.append((name, "\n".join(data)))
    return events


def stream_text(scenario: Scenario, text: str) -> str:
    events = sse_events(text)
    if not events:
        raise ValueError("no SSE events")
    parts = []
    if scenario.client == OPENAI:
        if events[-1][1] != "[DONE]":
            raise ValueError("the stream does not end with [DONE]")
        for _name, data in events[:-1]:
            chunk = json.loads(data)
            if chunk.get("object") != "chat.completion.chunk":
                raise ValueError(f"chunk object is {chunk.get('object')!r}")
            for choice in chunk.get("choices") or []:
                parts.append(choice.get("delta", {}).get("content") or "")
        return "".join(parts)
    kinds = [json.loads(data)["type"] for _name, data in events]
    if kinds[0] != "message_start" or kinds[-1] != "message_stop":
        raise ValueError(f"events run {kinds[0]} … {kinds[-1]}, not message_start … message_stop")
    for _name, data in events:
        event = json.loads(data)
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            parts.append(event["delta"]["text"])
    return "".join(parts)
