"""Bad input and upstream failures on the OpenAI surface: the right status, OpenAI's error shape, no secrets."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import UPSTREAM_SECRET, World


def post(world: World, content: bytes, group: str = "openai") -> httpx.Response:
    return httpx.post(
        world.gateway.openai_base_url + "/chat/completions",
        content=content,
        headers={"authorization": f"Bearer {world.keys[group]}", "content-type": "application/json"},
    )


def assert_openai_error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert isinstance(err["message"], str) and err["message"]
    return err


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"model": "gpt-4o-mini", "messages": [', b"\xff\xfe"])
def test_malformed_json_is_400(world: World, body: bytes) -> None:
    err = assert_openai_error(post(world, body), 400)
    assert err["type"] == "invalid_request_error"
    assert world.emulator.requests() == []


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "gpt-4o-mini", "messages": "hello"}', "messages"),
        (b'{"model": "gpt-4o-mini"}', "messages"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}',
            "stream",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "temperature",
        ),
        (
            b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1.5}',
            "max_tokens",
        ),
        (b'{"model": "gpt-4o-mini", "messages": [5]}', "messages[0]"),
        (b"[1, 2]", None),
    ],
)
def test_wrong_field_types_are_400_naming_the_field(world: World, body: bytes, param: str | None) -> None:
    err = assert_openai_error(post(world, body), 400)
    assert err["param"] == param
    assert world.emulator.requests() == []


def test_sdk_sees_bad_request_error(world: World) -> None:
    c = openai.OpenAI(api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as exc:
        c.chat.completions.create(model="gpt-4o-mini", messages="not a list")  # type: ignore[arg-type]
    assert exc.value.param == "messages"


def test_upstream_429_is_a_rate_limit_error_with_retry_after(world: World) -> None:
    world.emulator.script(
        {
            "status": 429,
            "error": {"message": f"Rate limit reached for key {UPSTREAM_SECRET}"},
            "headers": {"retry-after": "7"},
        }
    )
    r = post(world, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}')
    err = assert_openai_error(r, 429)
    assert r.headers["retry-after"] == "7"
    assert UPSTREAM_SECRET not in r.text
    assert err["type"] == "rate_limit_exceeded" or err["code"] == "rate_limit_exceeded"


def test_upstream_500_is_a_server_error_without_secrets_or_hosts(world: World) -> None:
    world.emulator.script(
        {
            "status": 500,
            "error": {"message": f"internal failure at {world.emulator.url} using {UPSTREAM_SECRET}"},
        }
    )
    c = openai.OpenAI(api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0)
    with pytest.raises(openai.InternalServerError) as exc:
        c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 500
    text = str(exc.value.body)
    assert UPSTREAM_SECRET not in text
    assert world.emulator.url.split("//")[1] not in text


def test_upstream_auth_failure_is_502_and_never_shows_the_credential(world: World) -> None:
    world.emulator.script(
        {
            "status": 401,
            "error": {
                "message": f"Incorrect API key provided: {UPSTREAM_SECRET[:8]}...{UPSTREAM_SECRET[-4:]}"
            },
        }
    )
    r = post(world, b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}')
    world.reenable("emu-openai")  # the refusal disabled the group's only account
    err = assert_openai_error(r, 502)
    assert err["code"] == "upstream_auth_failed"
    assert UPSTREAM_SECRET[-4:] not in r.text


def test_upstream_drop_mid_stream_becomes_an_error_event(world: World) -> None:
    world.emulator.script({"text": "a b c d e f g h", "drop_after": 3})
    c = openai.OpenAI(api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0)
    got: list[str] = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            got.extend(ch.delta.content or "" for ch in chunk.choices)
    assert got, "the chunks before the drop should have arrived"
    assert "mid-stream" in str(exc.value)


def test_unknown_path_is_404_in_openai_shape(world: World) -> None:
    r = httpx.get(
        world.gateway.url + "/v1/nothing-here", headers={"authorization": f"Bearer {world.keys['openai']}"}
    )
    assert_openai_error(r, 404)


def test_body_over_the_limit_is_413(world: World) -> None:
    big = (
        b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
        + b"x" * (33 * 1024 * 1024)
        + b'"}]}'
    )
    r = post(world, big)
    assert_openai_error(r, 413)
