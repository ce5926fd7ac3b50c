"""Bad input on every surface, generated: the right 4xx in the caller's error shape, never a 500 or a hang.

Each property posts generated bodies to the real gateway of the session `world` (its upstream is the
vendor emulator) and checks what a client would see: a status below 500, an error body in the
surface's own protocol shape with a message, an answer within a few seconds, no traceback in the
gateway's log, and a gateway that still answers /healthz.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import World, gateway_config, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from torouter.surfaces.asgi import MAX_DEPTH

ANSWER_WITHIN = 5.0  # seconds: bad input is refused at once, and the emulator answers good input at once
UPSTREAM_COOLDOWN = 10.0  # seconds after an emulator crash during which a 5xx is the upstream's doing
FUZZ = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# ---------------------------------------------------------------- the surfaces

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

CHAT = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                {
                    "type": "file",
                    "file": {"file_data": f"data:application/pdf;base64,{PNG}", "filename": "a.pdf"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "Let me look."}],
            "reasoning_details": [{"type": "reasoning.text", "text": "look it up", "signature": "sig"}],
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}],
    "tool_choice": "auto",
    "max_tokens": 32,
    "temperature": 0.5,
    "stop": ["END"],
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": SCHEMA}},
    "reasoning": {"effort": "low", "max_tokens": 2048},
    "top_p": 1,
    "top_k": 40,
    "n": 1,
    "seed": 7,
    "user": "u-1",
    "parallel_tool_calls": False,
    "metadata": {"k": "v"},
}
RESPONSES = {
    "model": "gpt-4o-mini",
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Weather in Paris?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            ],
        },
        {
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "look it up"}],
            "encrypted_content": "sig",
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Sunny."}]},
        {
            "role": "user",
            "content": [{"type": "input_file", "file_data": f"data:application/pdf;base64,{PNG}"}],
        },
    ],
    "tools": [{"type": "function", "name": "get_weather", "parameters": SCHEMA}, {"type": "web_search"}],
    "tool_choice": "auto",
    "max_output_tokens": 64,
    "reasoning": {"effort": "low", "summary": "auto"},
    "text": {"format": {"type": "json_schema", "name": "w", "schema": SCHEMA}, "verbosity": "low"},
    "temperature": 0.5,
    "top_p": 1,
    "parallel_tool_calls": False,
    "store": False,
    "user": "u-1",
    "metadata": {"k": "v"},
}
MESSAGES = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 2048,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "look it up", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "sunny"}],
                    "is_error": False,
                },
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                    "title": "Notes",
                },
            ],
        },
    ],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": SCHEMA}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "u-1"},
    "temperature": 0.5,
    "top_p": 1,
    "top_k": 40,
    "stop_sequences": ["END"],
    "output_config": {"effort": "low"},
}
COUNT_TOKENS = {k: v for k, v in MESSAGES.items() if k != "max_tokens"}
GEMINI = {
    "contents": [
        {
            "role": "user",
            "parts": [{"text": "Weather in Paris?"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}],
        },
        {
            "role": "model",
            "parts": [
                {"text": "look it up", "thought": True},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "c2ln",
                },
            ],
        },
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}],
        },
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                }
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
    "generationConfig": {
        "maxOutputTokens": 64,
        "temperature": 0.5,
        "topP": 1,
        "topK": 40,
        "candidateCount": 1,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
}
EMBED_CONTENT = {
    "content": {"parts": [{"text": "hello"}]},
    "taskType": "RETRIEVAL_QUERY",
    "outputDimensionality": 8,
}
BATCH_EMBED = {
    "requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "b"}]}},
    ]
}


@dataclass(frozen=True)
class Surface:
    path: str
    group: str
    shape: str  # whose error shape the caller expects: openai, anthropic or gemini
    valid: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.path} on {self.group}"

    @property
    def passthrough(self) -> bool:
        """The group's platform speaks the surface's protocol: the body goes upstream as sent."""
        return self.group in NATIVE_GROUPS[self.shape]


NATIVE_GROUPS = {"openai": ("openai", "failover"), "anthropic": ("anthropic",), "gemini": ("gemini",)}


def _gemini(action: str, group: str, body: dict[str, Any], model: str = "gemini-2.5-flash") -> Surface:
    return Surface(f"/v1beta/models/{model}:{action}", group, "gemini", body)


SURFACES = [
    *(
        Surface("/v1/chat/completions", g, "openai", CHAT)
        for g in ("openai", "gpt-on-anthropic", "gpt-on-gemini", "failover")
    ),
    *(
        Surface("/v1/responses", g, "openai", RESPONSES)
        for g in ("openai", "gpt-on-anthropic", "gpt-on-gemini", "compat")
    ),
    Surface(
        "/v1/embeddings",
        "openai",
        "openai",
        {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 8},
    ),
    Surface(
        "/v1/embeddings",
        "gemini",
        "openai",
        {"model": "gemini-embedding-001", "input": ["a", "b"], "dimensions": 8},
    ),
    Surface(
        "/v1/images/generations",
        "openai",
        "openai",
        {"model": "dall-e-3", "prompt": "a cat", "n": 1, "size": "1024x1024"},
    ),
    *(
        Surface("/v1/messages", g, "anthropic", MESSAGES)
        for g in ("anthropic", "claude-on-openai", "claude-on-gemini")
    ),
    *(
        Surface("/v1/messages/count_tokens", g, "anthropic", COUNT_TOKENS)
        for g in ("anthropic", "claude-on-openai")
    ),
    *(_gemini("generateContent", g, GEMINI) for g in ("gemini", "gemini-on-openai", "gemini-on-anthropic")),
    *(
        _gemini("streamGenerateContent?alt=sse", g, GEMINI)
        for g in ("gemini", "gemini-on-openai", "gemini-on-anthropic")
    ),
    _gemini("streamGenerateContent", "gemini-on-anthropic", GEMINI),
    *(_gemini("countTokens", g, {"contents": GEMINI["contents"]}) for g in ("gemini", "gemini-on-openai")),
    *(
        _gemini("embedContent", g, EMBED_CONTENT, "gemini-embedding-001")
        for g in ("gemini", "gemini-on-openai")
    ),
    *(
        _gemini("batchEmbedContents", g, BATCH_EMBED, "gemini-embedding-001")
        for g in ("gemini", "gemini-on-openai")
    ),
]


def key_headers(shape: str, key: str) -> dict[str, str]:
    if shape == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if shape == "gemini":
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- what every answer must be


def assert_error_shape(shape: str, r: httpx.Response) -> None:
    """The caller's protocol error shape, with a message."""
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    data = r.json()
    if shape == "openai":
        err = data["error"]
        assert set(err) >= {"message", "type", "param", "code"}, data
        assert isinstance(err["type"], str) and err["type"]
    elif shape == "anthropic":
        assert data["type"] == "error", data
        err = data["error"]
        assert isinstance(err["type"], str) and err["type"]
    else:
        err = data["error"]
        assert err["code"] == r.status_code and isinstance(err["status"], str) and err["status"], data
    assert isinstance(err["message"], str) and err["message"].strip(), data


class UpstreamCrashes(logging.Handler):
    """Notes when the emulator (uvicorn in this process) logs an error: an upstream that answered 500.

    After that the gateway cools the account down for a few seconds, so calls that would have gone
    to it may get a 5xx of their own (503, or 502 from the dead account of the failover group).
    """

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.last = -UPSTREAM_COOLDOWN

    def emit(self, record: logging.LogRecord) -> None:
        self.last = time.monotonic()

    def failed_since(self, moment: float) -> bool:
        """Whether the emulator crashed lately; it logs just after its 500 is sent, so wait a little."""
        deadline = time.monotonic() + 1.0
        while self.last <= moment - UPSTREAM_COOLDOWN and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.last > moment - UPSTREAM_COOLDOWN


MAX_ANSWER_BYTES = 4 * 1024 * 1024


class Gateway:
    """One shared HTTP client, and the checks each answer gets."""

    def __init__(self, world: World, upstream: UpstreamCrashes) -> None:
        self.world = world
        self.upstream = upstream
        self.http = httpx.Client(base_url=world.gateway.url, timeout=ANSWER_WITHIN * 2)
        self.log_seen = world.gateway.log_path.stat().st_size

    def post(self, surface: Surface, content: bytes, extra: dict[str, Any] | None = None) -> httpx.Response:
        headers = {
            "content-type": "application/json",
            **key_headers(surface.shape, self.world.keys[surface.group]),
        }
        return self.check(
            surface.shape, "POST", surface.path, content=content, headers={**headers, **(extra or {})}
        )

    def check(self, shape: str, method: str, path: str, **kw: Any) -> httpx.Response:
        started = time.monotonic()
        with self.http.stream(method, path, **kw) as streamed:
            body = bytearray()
            for chunk in streamed.iter_bytes():
                body += chunk
                # A runaway answer must fail the test, not fill the test process's memory.
                assert len(body) <= MAX_ANSWER_BYTES, f"{path}: the answer passed {MAX_ANSWER_BYTES} bytes"
                assert time.monotonic() - started < ANSWER_WITHIN, f"{path}: the answer was still coming"
        r = httpx.Response(
            streamed.status_code, headers=streamed.headers, content=bytes(body), request=streamed.request
        )
        elapsed = time.monotonic() - started
        assert elapsed < ANSWER_WITHIN, f"{path} took {elapsed:.1f}s"
        if r.status_code >= 500:
            assert self.upstream.failed_since(started), f"{method} {path}: {r.status_code} {r.text[:500]}"
        if r.status_code >= 400:
            assert_error_shape(shape, r)
        self.assert_no_traceback()
        return r

    def assert_no_traceback(self) -> None:
        """Nothing in the gateway's log since the last look: a traceback is a bug even behind a 4xx."""
        with self.world.gateway.log_path.open("rb") as log:
            log.seek(self.log_seen)
            new = log.read()
        self.log_seen += len(new)
        assert b"Traceback" not in new, new[-3000:].decode(errors="replace")

    def assert_healthy(self) -> None:
        assert self.http.get("/healthz").json() == {"status": "ok"}
        self.assert_no_traceback()


@pytest.fixture(scope="module")
def settled(world: World) -> None:
    """An account an earlier test made fail cools down, and the failover group then meets only its
    dead account (502): start once the live one is back."""
    deadline = time.monotonic() + 15
    headers = key_headers("openai", world.keys["failover"])
    while time.monotonic() < deadline:
        r = httpx.post(world.gateway.url + "/v1/chat/completions", json=CHAT, headers=headers, timeout=10)
        if r.status_code == 200:
            return
        time.sleep(0.5)


@pytest.fixture
def gw(world: World, settled: None) -> Iterator[Gateway]:
    crashes = UpstreamCrashes()
    logging.getLogger("uvicorn.error").addHandler(crashes)
    gateway = Gateway(world, crashes)
    try:
        yield gateway
        gateway.assert_healthy()
    finally:
        logging.getLogger("uvicorn.error").removeHandler(crashes)
        gateway.http.close()


# ---------------------------------------------------------------- strategies

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
surfaces = st.sampled_from(SURFACES)


def encode(value: Any, ascii_only: bool = False) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON document where a value sits."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        yield (*prefix, k)
        yield from paths_of(v, (*prefix, k))


def copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


def replaced(body: dict[str, Any], path: tuple[Any, ...], new: Any) -> dict[str, Any]:
    out = copy(body)
    parent = out
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = new
    return out


def dropped(body: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    out = copy(body)
    parent = out
    for k in path[:-1]:
        parent = parent[k]
    del parent[path[-1]]
    return out


@st.composite
def surface_and_place(draw: st.DrawFn) -> tuple[Surface, tuple[Any, ...]]:
    surface = draw(surfaces)
    return surface, draw(st.sampled_from(list(paths_of(surface.valid))))


@st.composite
def surface_and_places(draw: st.DrawFn) -> tuple[Surface, list[tuple[Any, ...]]]:
    surface = draw(surfaces)
    places = st.sampled_from(list(paths_of(surface.valid)))
    return surface, draw(st.lists(places, min_size=1, max_size=3, unique=True))


def nested(depth: int, leaf: Any = 1) -> bytes:
    """`depth` levels of arrays and objects, built as text (the JSON encoder would refuse the depth)."""
    opens, closes = [], []
    for i in range(depth):
        if i % 3 == 2:
            opens.append('{"k":')
            closes.append("}")
        else:
            opens.append("[")
            closes.append("]")
    return ("".join(opens) + json.dumps(leaf) + "".join(reversed(closes))).encode()


# ---------------------------------------------------------------- the properties


@FUZZ
@given(surface=surfaces, body=st.binary(max_size=300))
def test_arbitrary_bytes_get_a_clean_4xx(gw: Gateway, surface: Surface, body: bytes) -> None:
    r = gw.post(surface, body)
    assert 400 <= r.status_code < 500


@FUZZ
@given(surface=surfaces, value=JSON_VALUES, ascii_only=st.booleans())
def test_arbitrary_json_gets_a_clean_answer(
    gw: Gateway, surface: Surface, value: Any, ascii_only: bool
) -> None:
    gw.post(surface, encode(value, ascii_only))


@FUZZ
@given(where=surface_and_place(), new=JSON_VALUES, capture=st.booleans())
def test_a_field_of_the_wrong_type_gets_a_clean_answer(
    gw: Gateway, where: tuple[Surface, tuple[Any, ...]], new: Any, capture: bool
) -> None:
    surface, path = where
    extra = {"x-torouter-capture": "1"} if capture else {}
    r = gw.post(surface, encode(replaced(surface.valid, path, new)), extra)
    if capture:  # what the Playground shows of the call: kept once the call got that far, else 404
        request_id = r.headers.get("request-id") or r.headers["x-request-id"]
        shown = gw.check(
            "openai",
            "GET",
            f"/torouter/captures/{request_id}",
            headers=key_headers("openai", gw.world.keys[surface.group]),
        )
        assert shown.status_code in (200, 404)


@FUZZ
@given(where=surface_and_places())
def test_dropped_fields_get_a_clean_answer(gw: Gateway, where: tuple[Surface, list[tuple[Any, ...]]]) -> None:
    surface, places = where
    body = surface.valid
    for path in sorted(places, reverse=True):  # later list items first, so earlier indexes stay put
        try:
            body = dropped(body, path)
        except (KeyError, IndexError):  # its parent went first
            continue
    gw.post(surface, encode(body))


@FUZZ
@given(
    where=surface_and_place(),
    text=st.text(max_size=40),
    extra=st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=3),
)
def test_random_unicode_and_unknown_fields_get_a_clean_answer(
    gw: Gateway, where: tuple[Surface, tuple[Any, ...]], text: str, extra: dict[str, Any]
) -> None:
    surface, path = where
    body = replaced(surface.valid, path, text)
    body.update({k: v for k, v in extra.items() if k not in body})
    gw.post(surface, encode(body))


INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\x80"]


@FUZZ
@given(where=surface_and_place(), bad=st.sampled_from([*INVALID_UTF8, b"\\ud800", b"\\udfff x"]))
def test_invalid_utf8_in_a_string_is_a_400(
    gw: Gateway, where: tuple[Surface, tuple[Any, ...]], bad: bytes
) -> None:
    surface, path = where
    body = encode(replaced(surface.valid, path, "@@BAD@@")).replace(b"@@BAD@@", bad)
    r = gw.post(surface, body)
    assert r.status_code == 400


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(where=surface_and_place(), depth=st.integers(min_value=1, max_value=1100))
def test_deep_nesting_gets_a_clean_answer(
    gw: Gateway, where: tuple[Surface, tuple[Any, ...]], depth: int
) -> None:
    surface, path = where
    body = encode(replaced(surface.valid, path, "@@DEEP@@")).replace(b'"@@DEEP@@"', nested(depth))
    gw.post(surface, body)


@pytest.mark.parametrize("depth", [100, MAX_DEPTH - 1, MAX_DEPTH, 254, 255, 1024, 1025, 100_000])
@pytest.mark.parametrize("surface", SURFACES, ids=str)
def test_deep_nesting_at_the_limits(gw: Gateway, surface: Surface, depth: int) -> None:
    """orjson parses 1024 levels and encodes 254; the gateway takes MAX_DEPTH, in the body's own level."""
    assert gw.post(surface, nested(depth)).status_code == 400  # not an object, deep or not
    body = encode(replaced(surface.valid, ("zz_unknown",), "@@DEEP@@")).replace(b'"@@DEEP@@"', nested(depth))
    r = gw.post(surface, body)
    assert r.status_code == (200 if depth + 1 <= MAX_DEPTH else 400), r.text
    if r.status_code == 400:
        assert "nested" in r.text or "depth" in r.text


@pytest.mark.parametrize("surface", SURFACES, ids=str)
def test_unknown_top_level_fields_pass_through_and_are_dropped_by_translation(
    gw: Gateway, surface: Surface
) -> None:
    unknown = {"zz_unknown": {"nested": [1, "two", None]}, "zz_flag": True}
    r = gw.post(surface, encode({**surface.valid, **unknown}))
    assert r.status_code == 200, r.text
    sent = gw.world.emulator.requests()
    if surface.passthrough:
        assert sent[-1]["body"] == {**surface.valid, **unknown}
    elif sent:  # count_tokens and countTokens on other platforms are estimated, not sent
        assert not set(unknown) & set(sent[-1]["body"])


def by_name(path: str, group: str) -> Surface:
    return next(s for s in SURFACES if s.path == path and s.group == group)


GEMINI_ON_OPENAI = "/v1beta/models/gemini-2.5-flash:generateContent", "gemini-on-openai"
# Inputs that once got a 500 with a traceback, and what they get now.
ONCE_CRASHED = [
    (("/v1beta/models/gemini-2.5-flash:countTokens", "gemini-on-openai"), (), [], 400),
    (("/v1/chat/completions", "gpt-on-anthropic"), ("messages", 1, "content"), 5, 400),
    (("/v1/chat/completions", "gpt-on-gemini"), ("messages", 1, "content", 0, "text"), ["hi"], 400),
    (("/v1/chat/completions", "gpt-on-anthropic"), ("messages", 2, "tool_calls"), "call_1", 400),
    (("/v1/chat/completions", "gpt-on-gemini"), ("tools", 0, "function"), "get_weather", 400),
    (("/v1/chat/completions", "gpt-on-anthropic"), ("reasoning",), {"effort": ["high"]}, 200),
    (("/v1/responses", "gpt-on-anthropic"), ("tools", 1, "type"), ["web_search"], 400),
    (("/v1/responses", "gpt-on-gemini"), ("input", 1, "summary", 0, "text"), 5, 200),
    (("/v1/responses", "compat"), ("input", 2, "call_id"), {"id": 1}, 200),
    (("/v1/responses", "gpt-on-anthropic"), ("input", 0, "content"), 7, 400),
    (("/v1/messages", "claude-on-gemini"), ("thinking", "budget_tokens"), "x", 400),
    (
        ("/v1/messages/count_tokens", "claude-on-openai"),
        ("messages", 2, "content", 1, "source"),
        {"type": "base64", "media_type": "application/pdf", "data": "\u00e9t\u00e9"},
        200,
    ),
    (
        ("/v1/chat/completions", "gpt-on-anthropic"),
        ("messages", 1, "content", 2, "file", "file_data"),
        5,
        400,
    ),
    (("/v1/messages", "claude-on-openai"), ("messages", 1, "content", 1, "id"), [1], 200),
    (("/v1/messages", "claude-on-gemini"), ("output_config",), {"effort": {"level": 1}}, 200),
    ((GEMINI_ON_OPENAI[0], "gemini-on-anthropic"), ("generationConfig", "maxOutputTokens"), [1], 400),
    (GEMINI_ON_OPENAI, ("contents", 0, "parts", 1, "inlineData", "mimeType"), 5, 400),
    (GEMINI_ON_OPENAI, ("contents", 1, "parts", 0, "thoughtSignature"), 5, 200),
    (GEMINI_ON_OPENAI, ("tools", 0, "functionDeclarations"), 3.5, 200),
    (
        ("/v1beta/models/gemini-embedding-001:embedContent", "gemini-on-openai"),
        ("content", "parts", 0, "text"),
        5,
        200,
    ),
    (
        ("/v1beta/models/gemini-embedding-001:embedContent", "gemini-on-openai"),
        ("outputDimensionality",),
        "8",
        400,
    ),
    (("/v1/embeddings", "gemini"), ("dimensions",), [8], 400),
]


@pytest.mark.parametrize(("where", "path", "value", "status"), ONCE_CRASHED, ids=str)
def test_inputs_that_once_crashed_the_gateway(
    gw: Gateway, where: tuple[str, str], path: tuple[Any, ...], value: Any, status: int
) -> None:
    surface = by_name(*where)
    body = replaced(surface.valid, path, value) if path else value
    r = gw.post(surface, encode(body))
    assert r.status_code == status, r.text


def test_dropped_built_in_tools_are_named_in_a_header_that_stays_valid(gw: Gateway) -> None:
    surface = by_name("/v1/responses", "compat")
    body = {**surface.valid, "tools": [*surface.valid["tools"], {"type": "file search\n\u00e9"}]}
    r = gw.post(surface, encode(body))
    assert r.status_code == 200, r.text
    assert r.headers["x-torouter-dropped-tools"] == "web_search,file_search__"


# ---------------------------------------------------------------- the GET surfaces

query_text = st.text(max_size=12) | st.sampled_from(["-1", "0", "1e3", "99999999999999999999", "%FF", ""])


@FUZZ
@given(
    path=st.sampled_from(["/v1/models", "/v1beta/models", "/v1/models/", "/v1beta/models/"]),
    tail=st.text(max_size=15),
    params=st.dictionaries(
        st.sampled_from(["limit", "before_id", "after_id", "pageSize", "pageToken", "alt"]),
        query_text,
        max_size=3,
    ),
    shape=st.sampled_from(["openai", "anthropic", "gemini"]),
)
def test_model_listings_take_any_query(
    gw: Gateway, path: str, tail: str, params: dict[str, str], shape: str
) -> None:
    group = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}[shape]
    if path.startswith("/v1beta"):
        shape = "gemini"  # the Gemini surface answers in Google's shape whatever the headers
    if path.endswith("/"):
        path += quote(tail, safe="/:")
    gw.check(shape, "GET", path, params=params, headers=key_headers(shape, gw.world.keys[group]))


@FUZZ
@given(wanted=st.text(max_size=30))
def test_capture_lookup_takes_any_id(gw: Gateway, wanted: str) -> None:
    gw.check(
        "openai",
        "GET",
        "/torouter/captures/" + quote(wanted, safe="/"),
        headers=key_headers("openai", gw.world.keys["openai"]),
    )


# ---------------------------------------------------------------- headers


BAD_HEADER_VALUES = [b"\xff\xfe", b"Bearer \xff\xfe\xfd", b"\xc3\x28", b"caf\xe9", b"\x80abc"]


@pytest.mark.parametrize("value", BAD_HEADER_VALUES)
@pytest.mark.parametrize("surface", SURFACES, ids=str)
def test_invalid_utf8_in_header_values_gets_a_clean_answer(
    gw: Gateway, surface: Surface, value: bytes
) -> None:
    body = encode(surface.valid)
    key = gw.world.keys[surface.group]
    # the key itself: refused as a bad key
    for name in ("authorization", "x-api-key", "x-goog-api-key"):
        r = gw.check(surface.shape, "POST", surface.path, content=body, headers={name: value})
        assert r.status_code == 401
    # every other header the gateway reads
    for name in (
        "anthropic-version",
        "anthropic-beta",
        "x-torouter-capture",
        "x-claude-code-session-id",
        "x-session-affinity",
        "content-type",
        "user-agent",
    ):
        headers = {**key_headers(surface.shape, key), name: value}
        gw.check(surface.shape, "POST", surface.path, content=body, headers=headers)


# ---------------------------------------------------------------- huge bodies

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def small(
    emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayServer, dict[str, str]]]:
    """A gateway whose max_body_bytes is small, so that going over it is cheap."""
    workdir = tmp_path_factory.mktemp("small-bodies")
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}", max_body_bytes=LIMIT)
    server = GatewayServer(workdir, config)
    keys = seed_keys(server.config_path, sorted({s.group for s in SURFACES}))
    with server:
        yield server, keys


def padded(surface: Surface, size: int) -> bytes:
    return encode({**surface.valid, "padding": "x" * size})


@pytest.mark.parametrize("surface", SURFACES, ids=str)
def test_a_body_over_max_body_bytes_is_413(
    small: tuple[GatewayServer, dict[str, str]], surface: Surface
) -> None:
    server, keys = small
    headers = key_headers(surface.shape, keys[surface.group])
    with httpx.Client(base_url=server.url, timeout=10) as http:
        r = http.post(surface.path, content=padded(surface, LIMIT), headers=headers)
        assert r.status_code == 413, r.text
        assert_error_shape(surface.shape, r)

        def chunks() -> Iterator[bytes]:  # no content-length: the gateway must count what it reads
            body = padded(surface, LIMIT)
            for i in range(0, len(body), 4096):
                yield body[i : i + 4096]

        r = http.post(surface.path, content=chunks(), headers=headers)
        assert "content-length" not in r.request.headers
        assert r.status_code == 413, r.text
        assert_error_shape(surface.shape, r)
        just_under = encode({**surface.valid, "padding": ""})
        just_under = encode({**surface.valid, "padding": "x" * (LIMIT - len(just_under))})
        assert len(just_under) == LIMIT
        assert http.post(surface.path, content=just_under, headers=headers).status_code != 413
    assert "Traceback" not in server.log()


def raw_request(url: str, head: str, body_parts: list[bytes]) -> bytes:
    """Send a request head and part of a body, never finishing it, and read the answer's head."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=ANSWER_WITHIN) as sock:
        sock.sendall(head.encode("latin-1"))
        for part in body_parts:
            sock.sendall(part)
        answer = b""
        while b"\r\n\r\n" not in answer:  # a timeout here: the gateway waits for the rest of the body
            got = sock.recv(65536)
            if not got:
                break
            answer += got
        return answer


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
@pytest.mark.parametrize("surface", SURFACES[::3], ids=str)
def test_the_gateway_stops_reading_a_huge_body_at_the_limit(
    small: tuple[GatewayServer, dict[str, str]], surface: Surface, framing: str
) -> None:
    """The client declares (or streams) far more than the limit and never finishes: the 413 comes as
    soon as the limit is passed. (The server then discards what still comes, so the client can read
    it; hanging up with unread data would reset the connection under the answer.)"""
    server, keys = small
    auth = "".join(f"{k}: {v}\r\n" for k, v in key_headers(surface.shape, keys[surface.group]).items())
    piece = b"x" * 8192
    if framing == "chunked":
        size = "transfer-encoding: chunked\r\n"
        parts = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (LIMIT // len(piece) + 2)
    else:
        size = f"content-length: {10 * 1024**3}\r\n"  # 10 GiB declared
        parts = [piece] * (LIMIT // len(piece) + 2)
    head = f"POST {surface.path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{auth}{size}\r\n"
    started = time.monotonic()
    answer = raw_request(server.url, head, parts)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert time.monotonic() - started < ANSWER_WITHIN
