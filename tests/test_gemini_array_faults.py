"""Gemini's JSON-array stream (no ?alt=sse) when the upstream fails: the client always gets valid
JSON, a failure is an error element that closes the array, and no broken element is relayed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer

BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
WORDS = "w0 w1 w2 w3 w4 w5 w6 w7"


@pytest.fixture(scope="module")
def gw(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    work: Path = tmp_path_factory.mktemp("gemini-array")
    timeouts = {"first_byte": 1.5, "idle": 0.8}
    config = {
        "database_url": f"sqlite+aiosqlite:///{work / 'torouter.db'}",
        "upstreams": [
            {"name": "o", "platform": "openai", "base_url": emulator.openai_base_url, "api_key": "sk-o", "timeouts": timeouts},
            {"name": "g", "platform": "gemini", "base_url": emulator.url, "api_key": "sk-g", "timeouts": timeouts},
        ],
        "groups": [
            {"name": "on-openai", "platform": "openai", "upstreams": ["o"], "models": {"gemini-*": "gpt-4o-mini"}},
            {"name": "on-gemini", "platform": "gemini", "upstreams": ["g"]},
        ],
    }  # fmt: skip
    server = GatewayServer(work, config)
    keys = seed_keys(server.config_path, ["on-openai", "on-gemini"])
    with server:
        yield server, keys


def stream(gw: tuple, group: str) -> list:
    server, keys = gw
    r = httpx.post(
        server.url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        json=BODY,
        headers={"x-goog-api-key": keys[group]},
        timeout=30,
    )
    assert r.status_code == 200
    elements = orjson.loads(r.content)  # the whole body is one valid JSON array
    assert isinstance(elements, list) and elements
    return elements


@pytest.mark.parametrize("group", ["on-openai", "on-gemini"])
def test_a_stall_before_any_text_is_one_valid_error_array(
    gw: tuple, emulator: EmulatorServer, group: str
) -> None:
    emulator.script({"text": "w0 w1 w2 w3", "chunk_delay": 1.2})
    elements = stream(gw, group)
    assert elements[-1]["error"]["status"] == "DEADLINE_EXCEEDED"


@pytest.mark.parametrize(
    ("group", "at"),
    [("on-gemini", 0), ("on-gemini", 1), ("on-gemini", 3), ("on-openai", 1), ("on-openai", 3)],
)
def test_a_malformed_element_is_never_relayed(
    gw: tuple, emulator: EmulatorServer, group: str, at: int
) -> None:
    emulator.script({"text": WORDS, "malformed_at": at, "chunk_delay": 0.02})
    elements = stream(gw, group)
    assert elements[-1]["error"]["status"] == "INTERNAL"
    assert "malformed" in elements[-1]["error"]["message"]
    assert all("candidates" in e for e in elements[:-1])


def test_a_reset_mid_array_ends_with_an_error_element(gw: tuple, emulator: EmulatorServer) -> None:
    emulator.script({"text": WORDS, "drop_after": 3, "chunk_delay": 0.02})
    elements = stream(gw, "on-gemini")
    assert "candidates" in elements[0]
    assert elements[-1]["error"]["status"] == "INTERNAL"
