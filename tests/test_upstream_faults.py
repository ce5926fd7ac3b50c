"""Upstream faults, seen through the official SDKs: each one reaches the client as a clean error
in the client's own protocol, the call moves to the next account while nothing has reached the
client yet, and no credential or upstream address ever shows in what the client sees."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import orjson
import pytest
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from tests.conftest import World, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer, free_port
from torouter.upstreams.client import UpstreamClient


@dataclass(frozen=True)
class Route:
    client: str  # the client's protocol: openai, anthropic or gemini
    platform: str  # the upstream's
    model: str  # what the client asks for
    models: dict[str, str] | None = None  # the group's mapping, for translated routes


ROUTES = {
    "oa": Route("openai", "openai", "gpt-4o-mini"),
    "an": Route("anthropic", "anthropic", "claude-sonnet-4-5"),
    "ge": Route("gemini", "gemini", "gemini-2.5-flash"),
    "oa-an": Route("openai", "anthropic", "gpt-4o-mini", {"gpt-*": "claude-sonnet-4-5"}),
    "an-ge": Route("anthropic", "gemini", "claude-sonnet-4-5", {"claude-*": "gemini-2.5-flash"}),
    "ge-oa": Route("gemini", "openai", "gemini-2.5-flash", {"gemini-*": "gpt-4o-mini"}),
}
MODES = ("json", "stream")
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)
GREETING = "Hello from the emulator. You said: fault"
WELCOME = "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head><body>It works</body></html>"

# Faults that happen before the first byte reaches the client: (scripted step, status, code) of
# what the client gets when no other account is left. "refused" is an account on a dead port.
BEFORE_FIRST_BYTE: dict[str, tuple[dict[str, Any] | None, int, str | None]] = {
    "refused": (None, 502, "upstream_unreachable"),
    "reset": ({"drop_before_headers": True}, 502, "upstream_unreachable"),
    "cut-after-headers": ({"drop_after": 0}, 502, "upstream_disconnected"),
    "html-502": ({"raw": {"status": 502, "body": NGINX_502, "content_type": "text/html"}}, 502, None),
    "html-200": (
        {"raw": {"status": 200, "body": WELCOME, "content_type": "text/html"}},
        502,
        "upstream_malformed",
    ),
    "plain-text": (
        {"raw": {"status": 200, "body": "OK", "content_type": "text/plain"}},
        502,
        "upstream_malformed",
    ),
    "not-sse": (
        {"raw": {"status": 200, "body": "this is no event stream\n", "content_type": "text/event-stream"}},
        502,
        "upstream_malformed",
    ),
    "truncated": ({"malformed_at": 0}, 502, "upstream_malformed"),
    "no-first-byte": ({"delay": 1.5}, 504, "upstream_timeout"),
    "slow-drip": ({"drip": 16, "chunk_delay": 0.4}, 504, "upstream_timeout"),
    "brotli": ({"content_encoding": "br"}, 502, "upstream_malformed"),
}
# Faults after the stream has started: (step, what the client's error says, usage error)
WORDS = " ".join(f"w{i}" for i in range(12))
# (Events come 50 ms apart: had the fault come with the first event, the call would fail over.)
MID_STREAM = {
    "dropped": ({"text": WORDS, "drop_after": 4, "chunk_delay": 0.05}, "mid-stream", "upstream_disconnected"),
    "malformed": ({"text": WORDS, "malformed_at": 4, "chunk_delay": 0.05}, "malformed", "upstream_malformed"),
    "idle": ({"text": WORDS, "chunk_delay": 1.5}, "stopped answering", "upstream_timeout"),
}
FAST = {"first_byte": 0.6, "idle": 0.4}  # accounts that meet the faults before the first byte
MID = {"first_byte": 2, "idle": 0.6}  # and after it
PATIENT = {"first_byte": 5, "idle": 5}  # fallback accounts


def credential(group: str, role: str) -> str:
    return f"sk-{group}-{role}-SECRET-7f3e9a1b2c4d"


def base_url(emulator: EmulatorServer, platform: str, dead: bool = False) -> str:
    root = f"http://127.0.0.1:{free_port()}" if dead else emulator.url
    return root + "/v1" if platform == "openai" else root


def group_entry(name: str, route: Route, accounts: list[str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "platform": route.platform, "upstreams": accounts}
    if route.models:
        entry["models"] = route.models
    return entry


@pytest.fixture(scope="module")
def faults(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Per route: a pair group (first choice A, fallback B) for each fault and mode, so no cooldown
    leaks between tests; a solo group (one account, and one on a dead port) for final errors; and
    a pair group for mid-stream faults, which do not touch an account's health."""
    workdir = tmp_path_factory.mktemp("faults")
    upstreams: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []

    def account(group: str, role: str, route: Route, timeouts: dict[str, float], **extra: Any) -> str:
        dead = extra.pop("dead", False)
        upstreams.append(
            {
                "name": f"{group}-{role}",
                "platform": route.platform,
                "base_url": base_url(emulator, route.platform, dead),
                "api_key": credential(group, role),
                "timeouts": timeouts,
                **extra,
            }
        )
        return f"{group}-{role}"

    for rname, route in ROUTES.items():
        for fault in BEFORE_FIRST_BYTE:
            for mode in MODES:
                g = f"{rname}-{fault}-{mode}"
                a = account(g, "a", route, FAST, priority=10, dead=fault == "refused")
                groups.append(group_entry(g, route, [a, account(g, "b", route, PATIENT)]))
        groups.append(group_entry(f"{rname}-solo", route, [account(f"{rname}-solo", "a", route, FAST)]))
        # One account each, for tests that read the group's last usage row: no other test's row
        # can land there late.
        for own in ("odd", "counts", "bare"):
            groups.append(group_entry(f"{rname}-{own}", route, [account(f"{rname}-{own}", "a", route, FAST)]))
        dead = account(f"{rname}-dead", "a", route, FAST, dead=True)
        groups.append(group_entry(f"{rname}-dead", route, [dead]))
        mid = [
            account(f"{rname}-mid", "a", route, MID, priority=10),
            account(f"{rname}-mid", "b", route, PATIENT),
        ]
        groups.append(group_entry(f"{rname}-mid", route, mid))
    config = {
        "database_url": f"sqlite+aiosqlite:///{workdir / 'faults.db'}",
        "usage_flush_interval": 0.05,
        "upstreams": upstreams,
        "groups": groups,
    }
    gw = GatewayServer(workdir, config)
    keys = seed_keys(gw.config_path, [g["name"] for g in groups])
    with gw:
        yield World(gw, emulator, keys, workdir / "faults.db")


@pytest.fixture(autouse=True)
def _fresh(emulator: EmulatorServer) -> None:
    emulator.reset()


# ---------------------------------------------------------------- calling through each SDK

_clients: dict[tuple[str, str], Any] = {}


def sdk(world: World, kind: str, group: str) -> Any:
    """One client per group, kept alive (google-genai closes its HTTP client when collected)."""
    key = (kind, group)
    if key not in _clients:
        api_key, gw = world.keys[group], world.gateway
        if kind == "openai":
            _clients[key] = openai.OpenAI(api_key=api_key, base_url=gw.openai_base_url, max_retries=0)
        elif kind == "anthropic":
            _clients[key] = anthropic.Anthropic(api_key=api_key, base_url=gw.url, max_retries=0)
        else:
            options = genai_types.HttpOptions(
                base_url=gw.url, api_version="v1beta", retry_options=genai_types.HttpRetryOptions(attempts=1)
            )
            _clients[key] = genai.Client(api_key=api_key, http_options=options)
    return _clients[key]


def ask(world: World, group: str, route: Route, stream: bool, got: list[str] | None = None) -> str:
    """The answer's text; streamed text also goes to `got` as it comes, to see what came before an error."""
    got = [] if got is None else got
    c, content = sdk(world, route.client, group), f"fault {time.monotonic_ns()}"
    if route.client == "openai":
        messages = [{"role": "user", "content": content}]
        if not stream:
            return c.chat.completions.create(model=route.model, messages=messages).choices[0].message.content
        for chunk in c.chat.completions.create(model=route.model, messages=messages, stream=True):
            got.extend(ch.delta.content or "" for ch in chunk.choices)
    elif route.client == "anthropic":
        messages = [{"role": "user", "content": content}]
        if not stream:
            message = c.messages.create(model=route.model, max_tokens=64, messages=messages)
            return "".join(b.text for b in message.content if b.type == "text")
        with c.messages.stream(model=route.model, max_tokens=64, messages=messages) as s:
            for text in s.text_stream:
                got.append(text)
    else:
        if not stream:
            return c.models.generate_content(model=route.model, contents=content).text or ""
        for chunk in c.models.generate_content_stream(model=route.model, contents=content):
            got.append(chunk.text or "")
    return "".join(got)


@dataclass
class Seen:
    """What the client's SDK raised, read the way a user would."""

    status: int
    code: str | None
    message: str
    everything: str  # every text the client could see, for the secret scan


def seen(exc: BaseException, route: Route) -> Seen:
    if isinstance(exc, openai.APIStatusError):
        body = exc.response.json()
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        return Seen(
            exc.status_code, body["error"]["code"], body["error"]["message"], f"{exc} {exc.response.text}"
        )
    if isinstance(exc, openai.APIError):  # an error event in a stream
        return Seen(200, exc.code, exc.message, f"{exc} {exc.body}")
    if isinstance(exc, anthropic.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        assert body.get("type") == "error" and set(body["error"]) == {"type", "message"}, body
        return Seen(exc.status_code, body["error"]["type"], body["error"]["message"], f"{exc} {exc.body}")
    assert isinstance(exc, genai_errors.APIError), f"{route.client} client raised {exc!r}"
    reason = next((d.get("reason") for d in (exc.details or {}).get("error", {}).get("details", [])), None)
    return Seen(exc.code, reason.lower() if reason else None, exc.message or "", f"{exc} {exc.details}")


def leaks(world: World, text: str) -> list[str]:
    """The secrets and addresses of the upstreams found in `text`."""
    emu = world.emulator.port
    found = [s for s in ("SECRET", f"127.0.0.1:{emu}", f"'127.0.0.1', {emu}") if s in text]
    return found + re.findall(r"127\.0\.0\.1\D{0,4}\d+", text)


def accounts_hit(world: World) -> list[str]:
    """The role (a or b) of the account behind each upstream request, read from its credential."""
    out = []
    for r in world.emulator.requests():
        h = r["headers"]
        sent = h.get("authorization", "") + h.get("x-api-key", "") + h.get("x-goog-api-key", "")
        m = re.search(r"-(a|b)-SECRET", sent)
        if m:
            out.append(m.group(1))
    return out


def last_id(world: World) -> int:
    with sqlite3.connect(world.db_path) as db:
        return db.execute("SELECT coalesce(max(id), 0) FROM usage_records").fetchone()[0]


def row_after(world: World, group: str, after: int) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(world.db_path) as db:
            db.row_factory = sqlite3.Row
            found = db.execute(
                "SELECT * FROM usage_records WHERE group_name = ? AND id > ? ORDER BY id", (group, after)
            ).fetchall()
        if found:
            return dict(found[-1])
        assert time.monotonic() < deadline, f"no usage row for {group}"
        time.sleep(0.03)


def script_for(world: World, group: str, step: dict[str, Any] | None, role: str = "a") -> None:
    if step is not None:
        world.emulator.script({**step, "match": {"credential": credential(group, role)}})


def expected_hits(fault: str) -> list[str]:
    if fault == "refused":
        return ["b"]
    if fault == "brotli" and HAS_BROTLI:
        return ["a"]  # with a brotli package aiohttp decodes br: no fault at all
    return ["a", "b"]


# ---------------------------------------------------------------- before the first byte


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(BEFORE_FIRST_BYTE))
@pytest.mark.parametrize("rname", list(ROUTES))
def test_a_fault_before_the_first_byte_moves_the_call_to_the_next_account(
    faults: World, rname: str, fault: str, mode: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-{fault}-{mode}"
    script_for(faults, group, BEFORE_FIRST_BYTE[fault][0])
    text = ask(faults, group, route, stream=mode == "stream")
    assert text.startswith(GREETING) and not leaks(faults, text)
    hits = expected_hits(fault)
    assert accounts_hit(faults) == hits
    row = row_after(faults, group, 0)
    assert (row["status_code"], row["error"], row["attempts"]) == (200, None, 2 if hits != ["a"] else 1)
    assert row["account_name"] == f"{group}-{hits[-1]}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(BEFORE_FIRST_BYTE))
@pytest.mark.parametrize("rname", list(ROUTES))
def test_a_fault_with_no_account_left_is_an_error_in_the_clients_protocol(
    faults: World, rname: str, fault: str, mode: str
) -> None:
    if fault == "brotli" and HAS_BROTLI:
        pytest.skip("aiohttp decodes br when a brotli package is installed")
    route = ROUTES[rname]
    group = f"{rname}-dead" if fault == "refused" else f"{rname}-solo"
    step, status, code = BEFORE_FIRST_BYTE[fault]
    script_for(faults, group, step)
    before = last_id(faults)
    started = time.monotonic()
    with pytest.raises(Exception) as exc:
        ask(faults, group, route, stream=mode == "stream")
    got = seen(exc.value, route)
    if route.client == "gemini":
        code = code or "bad_gateway"  # Google's error details always give a reason: the kind, without a code
    elif route.client == "anthropic":
        code = "timeout_error" if status == 504 else "api_error"  # Anthropic errors have a type, no code
    assert got.status == status and got.code == code, (got, exc.value)
    assert not leaks(faults, got.everything), got.everything
    assert time.monotonic() - started < 1.3  # a timeout is the account's first_byte, not longer
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"], row["attempts"]) == (status, BEFORE_FIRST_BYTE[fault][2], 1)


# ---------------------------------------------------------------- after the first byte


@pytest.mark.parametrize("fault", list(MID_STREAM))
@pytest.mark.parametrize("rname", list(ROUTES))
def test_a_fault_mid_stream_ends_it_with_the_protocols_error_event(
    faults: World, rname: str, fault: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-mid"
    step, says, error = MID_STREAM[fault]
    script_for(faults, group, step)
    before = last_id(faults)
    got: list[str] = []
    with pytest.raises(Exception) as exc:
        ask(faults, group, route, stream=True, got=got)
    assert accounts_hit(faults) == ["a"], (
        got,
        faults.emulator.requests(),
    )  # the stream had started: no failover
    error_seen = seen(exc.value, route)
    assert says in error_seen.message, error_seen
    assert not leaks(faults, error_seen.everything)
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"], row["attempts"]) == (502, error, 1)


def stream_body(platform: str, text: str, error: str | None = None) -> str:
    """A whole stream of each platform: `text`, then a normal end, or the upstream's own error event."""
    if platform == "openai":
        delta = {"role": "assistant", "content": text}
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
        events = [{**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}]
        if error is not None:
            events.append({"error": {"message": error, "type": "server_error", "param": None, "code": None}})
        else:
            events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ("" if error else "data: [DONE]\n\n")
    if platform == "anthropic":
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5"}
        message |= {"content": [], "stop_reason": None, "stop_sequence": None}
        events = [
            {
                "type": "message_start",
                "message": {**message, "usage": {"input_tokens": 3, "output_tokens": 1}},
            },
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        ]
        if error is not None:
            events.append({"type": "error", "error": {"type": "api_error", "message": error}})
        else:
            events.append({"type": "content_block_stop", "index": 0})
            delta = {"stop_reason": "end_turn", "stop_sequence": None}
            events.append({"type": "message_delta", "delta": delta, "usage": {"output_tokens": 5}})
            events.append({"type": "message_stop"})
        return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8}
    last: dict[str, Any]
    if error is not None:
        last = {"error": {"code": 500, "message": error, "status": "INTERNAL"}}
        events = [{"candidates": [candidate]}, last]
    else:
        events = [{"candidates": [{**candidate, "finishReason": "STOP"}], "usageMetadata": usage}]
    return "".join(f"data: {json.dumps(e)}\r\n\r\n" for e in events)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rname", list(ROUTES))
def test_an_upstream_error_naming_the_credential_and_address_reaches_the_client_scrubbed(
    faults: World, rname: str, mode: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-solo"
    port = faults.emulator.port
    message = (
        f"boom: {credential(group, 'a')} at 127.0.0.1:{port} [Connect call failed ('127.0.0.1', {port})]"
    )
    if mode == "stream":
        body = stream_body(route.platform, "w0", error=message)
        step: dict[str, Any] = {"raw": {"status": 200, "body": body, "content_type": "text/event-stream"}}
    else:
        step = {"status": 500, "error": {"message": message}}
    script_for(faults, group, step)
    with pytest.raises(Exception) as exc:
        ask(faults, group, route, stream=mode == "stream")
    got = seen(exc.value, route)
    assert "boom" in got.message and "[redacted]" in got.message, got
    assert not leaks(faults, got.everything), got.everything


# Events of the right JSON with the wrong types, that a decoder cannot read: a block index that
# is a list, a thought signature that is a number.
POISON: dict[str, dict[str, Any]] = {
    "anthropic": {"type": "content_block_start", "index": [1], "content_block": {"type": "text", "text": ""}},
    "gemini": {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "!", "thoughtSignature": 5}]}}]
    },
}
# Events whose odd fields a decoder reads as absent: the stream goes on.
ODD_BUT_READABLE: dict[str, dict[str, Any]] = {
    "openai": {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"tool_calls": 5, "content": "!"}, "finish_reason": None}],
    },
}


def poisoned_stream(platform: str, event: dict[str, Any]) -> str:
    """A normal stream with `event` right after the event that carries its first text, "w0"."""
    body = stream_body(platform, "w0")
    if platform == "gemini":  # its one event holds the text and the end: a text-only chunk first
        text = {"candidates": [{"content": {"role": "model", "parts": [{"text": "w0"}]}, "index": 0}]}
        return f"data: {json.dumps(text)}\r\n\r\ndata: {json.dumps(event)}\r\n\r\n" + body
    named = f"event: {event['type']}\n" if platform == "anthropic" else ""
    cut = body.index("\n\n", body.index('"w0"')) + 2
    return body[:cut] + f"{named}data: {json.dumps(event)}\n\n" + body[cut:]


@pytest.mark.parametrize("delivery", ["whole", "dripped"])
@pytest.mark.parametrize("rname", ["oa-an", "an-ge"])
def test_an_event_the_translation_cannot_read_ends_the_stream_with_the_protocols_error_event(
    faults: World, rname: str, delivery: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-odd"
    body = poisoned_stream(route.platform, POISON[route.platform])
    step: dict[str, Any] = {"raw": {"status": 200, "body": body, "content_type": "text/event-stream"}}
    if delivery == "dripped":
        step |= {"drip": 40, "chunk_delay": 0.01}
    script_for(faults, group, step)
    before, logged = last_id(faults), len(faults.gateway.log())
    text: list[str] = []
    with pytest.raises(Exception) as exc:
        ask(faults, group, route, stream=True, got=text)
    got = seen(exc.value, route)
    assert "malformed" in got.message, got
    # What came before the event reaches the client, even when both came in one read.
    assert "".join(text).startswith("w0"), text
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"], row["attempts"]) == (502, "upstream_malformed", 1)
    # The log names the exception and where it was raised, and quotes nothing of the event.
    log = faults.gateway.log()[logged:]
    assert re.search(r"could not decode an upstream event: \w+Error at \w+\.py:\d+", log), log


def test_an_event_with_fields_of_odd_types_is_read_as_far_as_it_can_be(faults: World) -> None:
    # `tool_calls` that is a number, beside text: OpenAI-compatible servers send such things.
    route, group = ROUTES["ge-oa"], "ge-oa-odd"
    body = poisoned_stream(route.platform, ODD_BUT_READABLE[route.platform])
    script_for(faults, group, {"raw": {"status": 200, "body": body, "content_type": "text/event-stream"}})
    before = last_id(faults)
    assert ask(faults, group, route, stream=True) == "w0!"
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"]) == (200, None), row


def with_unreadable_usage(platform: str, mode: str) -> str:
    """A correct OpenAI or Anthropic answer whose usage counts are not numbers."""
    if mode == "json":
        doc = json.loads(octet_body(platform))
        if platform == "openai":
            doc["usage"] = {"prompt_tokens": [3], "completion_tokens": "five", "total_tokens": 8}
        else:
            doc["usage"] = {"input_tokens": [3], "output_tokens": "five"}
        return json.dumps(doc)
    body = stream_body(platform, GREETING)
    if platform == "openai":
        chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
        usage = {"prompt_tokens": [3], "completion_tokens": "five", "total_tokens": 8}
        chunk |= {"choices": [], "usage": usage}
        return body.replace("data: [DONE]", f"data: {json.dumps(chunk)}\n\ndata: [DONE]")
    return body.replace('"output_tokens": 5', '"output_tokens": "five"')


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rname", ["oa", "an"])  # google-genai refuses such counts itself
def test_usage_counts_that_are_not_numbers_leave_the_answer_whole_and_an_estimate(
    faults: World, rname: str, mode: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-counts"
    body = with_unreadable_usage(route.platform, mode)
    assert body.count('"five"') == 1
    content_type = "application/json" if mode == "json" else "text/event-stream"
    script_for(faults, group, {"raw": {"status": 200, "body": body, "content_type": content_type}})
    before = last_id(faults)
    assert ask(faults, group, route, stream=mode == "stream") == GREETING
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"], row["estimated"]) == (200, None, 1), row
    assert row["output_tokens"] > 0


def without_usage(platform: str) -> str:
    doc = json.loads(octet_body(platform))
    doc.pop("usage", None)
    doc.pop("usageMetadata", None)
    return json.dumps(doc)


@pytest.mark.parametrize("rname", ["oa-an", "an-ge", "ge-oa"])
def test_a_translated_answer_that_reports_no_usage_is_recorded_with_an_estimate(
    faults: World, rname: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-bare"
    body = without_usage(route.platform)
    script_for(faults, group, {"raw": {"status": 200, "body": body, "content_type": "application/json"}})
    before = last_id(faults)
    assert ask(faults, group, route, stream=False) == GREETING
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"], row["estimated"]) == (200, None, 1), row
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0


def test_a_translated_answer_the_gateway_cannot_write_is_a_502_in_the_clients_protocol(faults: World) -> None:
    # An Anthropic answer whose id is a list: the decoder takes it, the OpenAI encoder cannot.
    route, group = ROUTES["oa-an"], "oa-an-odd"
    doc = json.loads(octet_body("anthropic")) | {"id": [1]}
    script_for(
        faults, group, {"raw": {"status": 200, "body": json.dumps(doc), "content_type": "application/json"}}
    )
    before = last_id(faults)
    with pytest.raises(Exception) as exc:
        ask(faults, group, route, stream=False)
    got = seen(exc.value, route)
    assert (got.status, got.code) == (502, "upstream_malformed"), got
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"]) == (502, "upstream_malformed"), row


# ---------------------------------------------------------------- what must stay transparent


def octet_body(platform: str) -> str:
    """A correct answer of each platform, as a proxy might mislabel it."""
    if platform == "openai":
        message = {"role": "assistant", "content": GREETING}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        usage = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
        return json.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [choice],
                "usage": usage,
            }
        )
    if platform == "anthropic":
        return json.dumps(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5",
                "content": [{"type": "text", "text": GREETING}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 3, "output_tokens": 5},
            }
        )
    part = {"text": GREETING}
    candidate = {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
    usage = {"promptTokenCount": 3, "candidatesTokenCount": 5, "totalTokenCount": 8}
    return json.dumps({"candidates": [candidate], "usageMetadata": usage})


TRANSPARENT: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "gzip": lambda platform, mode: {"content_encoding": "gzip"},
    "deflate": lambda platform, mode: {"content_encoding": "deflate"},
    "gzip-dripped": lambda platform, mode: {"content_encoding": "gzip", "drip": 64, "chunk_delay": 0.005},
    "dripped-within-idle": lambda platform, mode: {"drip": 48, "chunk_delay": 0.01},
    "json-as-octet-stream": lambda platform, mode: (
        {"raw": {"status": 200, "body": octet_body(platform), "content_type": "application/octet-stream"}}
        if mode == "json"
        else {"raw": {"status": 200, "body": stream_body(platform, GREETING), "content_type": "text/plain"}}
    ),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", list(TRANSPARENT))
@pytest.mark.parametrize("rname", list(ROUTES))
def test_compressed_dripped_or_mislabelled_answers_still_reach_the_client(
    faults: World, rname: str, variant: str, mode: str
) -> None:
    route, group = ROUTES[rname], f"{rname}-solo"
    script_for(faults, group, TRANSPARENT[variant](route.platform, mode))
    before = last_id(faults)
    text = ask(faults, group, route, stream=mode == "stream")
    assert text.startswith(GREETING) and not leaks(faults, text)
    row = row_after(faults, group, before)
    assert (row["status_code"], row["error"]) == (200, None)


def test_upstream_requests_accept_only_encodings_the_gateway_can_decode(faults: World) -> None:
    ask(faults, "oa-solo", ROUTES["oa"], stream=False)
    sent = faults.emulator.requests()[-1]["headers"].get("accept-encoding", "")
    offered = {e.split(";")[0].strip() for e in sent.split(",") if e.strip()}
    decodable = (
        {"gzip", "deflate", "identity"}
        | ({"br"} if HAS_BROTLI else set())
        | ({"zstd"} if HAS_ZSTD else set())
    )
    assert offered and offered <= decodable, sent


def test_a_decompressed_body_is_relayed_without_its_content_encoding(faults: World) -> None:
    import httpx

    for stream in (False, True):
        script_for(faults, "oa-solo", {"content_encoding": "gzip"})
        r = httpx.post(
            faults.gateway.openai_base_url + "/chat/completions",
            json={"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": "z"}]},
            headers={"authorization": f"Bearer {faults.keys['oa-solo']}", "accept-encoding": "identity"},
        )
        assert r.status_code == 200 and "content-encoding" not in r.headers
        assert "Hello" in r.text and ("[DONE]" in r.text) == stream


def test_a_cookie_an_upstream_sets_never_rides_on_a_later_call(emulator: EmulatorServer) -> None:
    # One pooled session serves every caller: a jar would hand one caller's cookie to the next.
    # By name, not by address: aiohttp's jar keeps no cookie that an IP address sets.
    url = f"http://localhost:{emulator.port}/v1/chat/completions"
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    emulator.script({"headers": {"set-cookie": "__cf_bm=from-upstream; Path=/; HttpOnly"}})

    async def two_calls() -> None:
        client = UpstreamClient()
        try:
            for _ in range(2):
                async with client.session.post(url, data=body, headers={"authorization": "Bearer sk-x"}) as r:
                    assert r.status == 200, await r.text()
        finally:
            await client.close()

    asyncio.run(two_calls())
    first, second = emulator.requests()[-2:]
    assert "cookie" not in first["headers"] and "cookie" not in second["headers"], second["headers"]
