"""Every way a key can be sent, and every way it can be refused, on the OpenAI surface."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.conftest import World, wait_until_key_works

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "auth"}]}


def chat(world: World, headers: dict[str, str], params: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        world.gateway.openai_base_url + "/chat/completions", json=BODY, headers=headers, params=params
    )


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"authorization": "Bearer {key}"}, None),
        ({"x-api-key": "{key}"}, None),
        ({"x-goog-api-key": "{key}"}, None),
        ({}, {"key": "{key}"}),
    ],
    ids=["bearer", "x-api-key", "x-goog-api-key", "query-key"],
)
def test_key_is_accepted_from_every_location(world: World, headers: dict, params: dict | None) -> None:
    key = world.keys["openai"]
    fill = lambda d: {k: v.format(key=key) for k, v in d.items()}  # noqa: E731
    r = chat(world, fill(headers), fill(params) if params else None)
    assert r.status_code == 200, r.text
    sent = world.emulator.requests()[-1]
    assert key not in str(sent["headers"]) and key not in str(sent["query"]), "the client key leaked upstream"


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/v1beta/models/gemini-2.5-flash:generateContent?key={key}&alt=json", "gemini"),
        ("/v1/messages?beta=true&key={key}", "anthropic"),
    ],
)
def test_query_key_never_travels_upstream_on_pass_through(world: World, path: str, group: str) -> None:
    key = world.keys[group]
    body = (
        {"contents": [{"role": "user", "parts": [{"text": "q"}]}]}
        if group == "gemini"
        else {"model": "claude-opus-4-7", "max_tokens": 5, "messages": [{"role": "user", "content": "q"}]}
    )
    r = httpx.post(
        world.gateway.url + path.format(key=key), json=body, headers={"anthropic-version": "2023-06-01"}
    )
    assert r.status_code == 200, r.text
    sent = world.emulator.requests()[-1]
    assert key not in str(sent["query"]) and key not in str(sent["headers"])


def test_missing_key_is_401_in_openai_shape(world: World) -> None:
    r = chat(world, {})
    assert r.status_code == 401
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert "didn't provide an API key" in err["message"]


def test_unknown_key_is_401_and_masked(world: World) -> None:
    bad = "sk-tr-thisKeyDoesNotExist0123456789abcdef"
    with pytest.raises(openai.AuthenticationError) as exc:
        openai.OpenAI(api_key=bad, base_url=world.gateway.openai_base_url, max_retries=0).models.list()
    assert exc.value.status_code == 401 and exc.value.code == "invalid_api_key"
    assert bad not in str(exc.value.body)
    assert world.emulator.requests() == []


def test_revoked_key_stops_working_within_two_seconds(world: World) -> None:
    key = world.gateway.create_key("openai", "--name", "to-revoke")
    wait_until_key_works(world.gateway.url, key)
    assert chat(world, {"authorization": f"Bearer {key}"}).status_code == 200
    world.gateway.cli("keys", "revoke", "to-revoke")
    revoked_at = time.monotonic()
    while chat(world, {"authorization": f"Bearer {key}"}).status_code == 200:
        assert time.monotonic() - revoked_at < 2.0, "the revoked key still works after 2 seconds"
        time.sleep(0.05)
    r = chat(world, {"authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]


def test_expired_key_is_refused(world: World) -> None:
    key = world.gateway.create_key("openai", "--expires-in", "3s")
    wait_until_key_works(world.gateway.url, key)
    deadline = time.monotonic() + 6
    while chat(world, {"authorization": f"Bearer {key}"}).status_code == 200:
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.1)
    r = chat(world, {"authorization": f"Bearer {key}"})
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def test_key_model_allow_list_limits_what_it_can_call(world: World) -> None:
    key = world.gateway.create_key("openai", "--models", "gpt-4o-mini")
    wait_until_key_works(world.gateway.url, key)
    c = openai.OpenAI(api_key=key, base_url=world.gateway.openai_base_url, max_retries=0)
    assert c.chat.completions.create(**BODY).choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError) as exc:
        c.chat.completions.create(model="gpt-4.1-mini", messages=BODY["messages"])
    assert exc.value.code == "model_not_allowed" and "gpt-4o-mini" in exc.value.message


def test_the_key_param_is_removed_however_it_is_escaped() -> None:
    from torouter.auth import without_key_param

    assert without_key_param("alt=sse&key=K") == "alt=sse"
    assert without_key_param("%6Bey=K&alt=sse&k%65y=K2&key+=x") == "alt=sse&key+=x"
    assert without_key_param("monkey=1&keys=2") == "monkey=1&keys=2"


def _first_key(scope: dict) -> str | None:
    """The rule, spelled out: the first Authorization value if it is a Bearer token, else the
    first non-empty of x-api-key's and x-goog-api-key's first values."""
    firsts = {name: [v for n, v in scope["headers"] if n == name][:1] for name in KEY_HEADERS}
    bearer = [token.strip() for scheme, _, token in (v.partition(b" ") for v in firsts[b"authorization"])]
    if bearer and firsts[b"authorization"][0].partition(b" ")[0].lower() == b"bearer" and bearer[0]:
        return bearer[0].decode("latin-1")
    given = [v[0] for name, v in firsts.items() if name != b"authorization" and v and v[0]]
    return given[0].strip().decode("latin-1") if given else None


KEY_HEADERS = (b"authorization", b"x-api-key", b"x-goog-api-key")


def test_the_key_is_the_first_value_of_the_first_header_that_carries_one() -> None:
    import random

    from torouter.auth import extract_key

    rng = random.Random(9)
    pool = [
        (b"authorization", b"Bearer sk-a"),
        (b"authorization", b"Bearer sk-b"),
        (b"authorization", b"Basic xyz"),
        (b"authorization", b"Bearer "),
        (b"x-api-key", b"sk-c"),
        (b"x-api-key", b""),
        (b"x-goog-api-key", b" sk-d "),
        (b"host", b"h"),
        (b"accept", b"*/*"),
        (b"accept", b"text/plain"),
    ]
    for _ in range(5000):
        scope = {"headers": rng.sample(pool, rng.randint(0, 6)), "query_string": b""}
        assert extract_key(scope) == _first_key(scope), scope["headers"]
