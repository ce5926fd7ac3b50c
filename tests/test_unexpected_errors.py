"""A bug in the gateway still gets the caller an error in its own protocol, never a bare traceback page.

The bug is planted in the real server: a `sitecustomize` on the server's PYTHONPATH makes each
surface's request check raise for a marked request, as an unforeseen fault would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.conftest import gateway_config, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer, torouter_env

MARK = "plant-a-bug"
PLANT = f"""
import torouter.protocols.anthropic_messages as anthropic_messages
import torouter.protocols.gemini as gemini
import torouter.protocols.openai_chat as openai_chat


def planted(check):
    def check_request(body, *args, **kwargs):
        if {MARK!r} in repr(body):
            raise RuntimeError("a planted bug")
        return check(body, *args, **kwargs)

    return check_request


for module in (anthropic_messages, gemini, openai_chat):
    module.check_request = planted(module.check_request)
"""


@pytest.fixture(scope="module")
def buggy(
    emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayServer, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("buggy")
    plant = workdir / "plant"
    plant.mkdir()
    (plant / "sitecustomize.py").write_text(PLANT)
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}")
    env = {"PYTHONPATH": str(plant) + os.pathsep + torouter_env()["PYTHONPATH"]}
    gw = GatewayServer(workdir, config, env=env)
    keys = seed_keys(gw.config_path, ["openai", "anthropic", "gemini"])
    with gw:
        yield gw, keys


def test_openai_sdk_gets_an_openai_500(buggy: tuple[GatewayServer, dict[str, str]]) -> None:
    gw, keys = buggy
    client = openai.OpenAI(base_url=gw.openai_base_url, api_key=keys["openai"], max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": MARK}])
    assert caught.value.status_code == 500
    error = caught.value.body
    assert isinstance(error, dict) and error["type"] == "server_error" and error["code"] == "internal_error"
    assert "planted" not in str(error)  # the cause is for the log, not the caller
    assert "a planted bug" in gw.log() and "Traceback" in gw.log()


def test_anthropic_sdk_gets_an_anthropic_500(buggy: tuple[GatewayServer, dict[str, str]]) -> None:
    gw, keys = buggy
    client = anthropic.Anthropic(base_url=gw.url, api_key=keys["anthropic"], max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": MARK}]
        )
    assert caught.value.status_code == 500
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "api_error"


def test_gemini_sdk_gets_a_gemini_500(buggy: tuple[GatewayServer, dict[str, str]]) -> None:
    gw, keys = buggy
    client = genai.Client(
        api_key=keys["gemini"],
        http_options=types.HttpOptions(base_url=gw.url, retry_options=types.HttpRetryOptions(attempts=1)),
    )
    with pytest.raises(genai_errors.ServerError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents=MARK)
    assert caught.value.code == 500 and caught.value.status == "INTERNAL"


def test_the_server_keeps_serving_after_a_bug(buggy: tuple[GatewayServer, dict[str, str]]) -> None:
    gw, keys = buggy
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": MARK}]}
    headers = {"authorization": f"Bearer {keys['openai']}"}
    for _ in range(20):
        answer = httpx.post(gw.openai_base_url + "/chat/completions", json=body, headers=headers, timeout=5)
        assert answer.status_code == 500 and answer.headers["content-type"].startswith("application/json")
    ok = httpx.post(
        gw.openai_base_url + "/chat/completions",
        json={**body, "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
        timeout=5,
    )
    assert ok.status_code == 200
