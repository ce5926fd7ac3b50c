"""Failed-authentication throttling per client address, and CORS: off by default, opt-in per origin."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import gateway_config, make_keys, register_secret
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from tests.services import need

ADMIN_TOKEN = "access-control-admin-token-7d1e"
register_secret(ADMIN_TOKEN)
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CLAUDE = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
WINDOW = 3.0
LIMIT = 5


def start(
    emulator: EmulatorServer, workdir: Path, **overrides: object
) -> tuple[GatewayServer, dict[str, str]]:
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}", **overrides)
    gw = GatewayServer(workdir, config)
    keys = make_keys(gw.config_path, {g: (g, {}) for g in ("openai", "anthropic", "gemini")})
    return gw, keys  # not started: callers use `with gw:`


def address() -> str:
    """A client address of its own per test: the gateway trusts X-Forwarded-For from loopback."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture(scope="module")
def throttled(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    gw, keys = start(
        emulator,
        tmp_path_factory.mktemp("throttle"),
        auth_failure_limit=LIMIT,
        auth_failure_window=WINDOW,
        admin_token=ADMIN_TOKEN,
    )
    with gw:
        yield gw, keys


def openai_chat(gw: GatewayServer, key: str, ip: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "x-forwarded-for": ip}
    return httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers=headers)


def test_an_address_that_keeps_guessing_keys_is_refused_until_its_window_ends(throttled: tuple) -> None:
    gw, keys = throttled
    ip, other = address(), address()
    started = time.monotonic()
    for i in range(LIMIT):
        r = openai_chat(gw, f"sk-tr-guess-{i}", ip)
        assert r.status_code == 401, r.text
    # Now even a valid key from that address is refused, so a guesser learns nothing more.
    r = openai_chat(gw, keys["openai"], ip)
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "too_many_auth_failures"
    assert 1 <= int(r.headers["retry-after"]) <= WINDOW
    assert "sk-tr-guess" not in r.text
    # In each protocol's own shape.
    r = httpx.post(
        gw.url + "/v1/messages",
        json=CLAUDE,
        headers={"x-api-key": keys["anthropic"], "anthropic-version": "2023-06-01", "x-forwarded-for": ip},
    )
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error", r.text
    r = httpx.post(
        gw.url + "/v1beta/models/gemini-2.5-flash:generateContent",
        json=GEMINI,
        headers={"x-goog-api-key": keys["gemini"], "x-forwarded-for": ip},
    )
    assert r.status_code == 429 and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED", r.text
    # Another address is not affected.
    assert openai_chat(gw, keys["openai"], other).status_code == 200
    # The block ends with the window.
    time.sleep(max(0.0, started + WINDOW + 0.2 - time.monotonic()))
    assert openai_chat(gw, keys["openai"], ip).status_code == 200


def test_missing_keys_and_a_few_typos_are_not_throttled(throttled: tuple) -> None:
    gw, keys = throttled
    ip = address()
    for _ in range(LIMIT * 2):  # no key at all is not a guess
        r = httpx.post(gw.url + "/v1/chat/completions", json=CHAT, headers={"x-forwarded-for": ip})
        assert r.status_code == 401
    for i in range(LIMIT - 1):
        assert openai_chat(gw, f"sk-tr-typo-{i}", ip).status_code == 401
    assert openai_chat(gw, keys["openai"], ip).status_code == 200


def test_wrong_admin_tokens_are_throttled_too(throttled: tuple) -> None:
    gw, _ = throttled
    ip = address()
    url = gw.url + "/admin/api/keys"
    for i in range(LIMIT):
        r = httpx.get(url, headers={"authorization": f"Bearer wrong-{i}", "x-forwarded-for": ip})
        assert r.status_code == 401
    r = httpx.get(url, headers={"authorization": f"Bearer {ADMIN_TOKEN}", "x-forwarded-for": ip})
    assert r.status_code == 429 and "retry-after" in r.headers, r.text
    r = httpx.get(url, headers={"authorization": f"Bearer {ADMIN_TOKEN}", "x-forwarded-for": address()})
    assert r.status_code == 200, r.text


def test_forwarded_for_counts_only_from_a_trusted_proxy(emulator: EmulatorServer, tmp_path: Path) -> None:
    """Behind forwarded_allow_ips that does not name this test's loopback peer, X-Forwarded-For
    is the caller's own claim: a guesser that varies it is still one address."""
    gw, keys = start(
        emulator, tmp_path, auth_failure_limit=LIMIT, auth_failure_window=30, forwarded_allow_ips="192.0.2.7"
    )
    with gw:
        for i in range(LIMIT):
            assert openai_chat(gw, f"sk-tr-guess-{i}", address()).status_code == 401
        r = openai_chat(gw, keys["openai"], address())
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_auth_failures", r.text


@pytest.mark.redis
def test_replicas_sharing_redis_share_the_count(emulator: EmulatorServer, tmp_path: Path) -> None:
    need("Redis", "127.0.0.1", 6379)
    shared = {"redis_url": "redis://127.0.0.1:6379/11", "auth_failure_limit": 4, "auth_failure_window": 30}
    gw_a, keys = start(emulator, tmp_path / "a", **shared)
    gw_b = GatewayServer(tmp_path / "b", yaml.safe_load(gw_a.config_path.read_text()))  # same store
    with gw_a, gw_b:
        ip = address()
        for gw in (gw_a, gw_a, gw_b, gw_b):  # four failures, two on each replica
            assert openai_chat(gw, "sk-tr-spray", ip).status_code == 401
        # B saw the fourth: it blocks at once. A did not: its next failure brings it the shared count.
        assert openai_chat(gw_b, keys["openai"], ip).status_code == 429
        deadline = time.monotonic() + 3
        while openai_chat(gw_a, keys["openai"], ip).status_code != 429:
            assert time.monotonic() < deadline, "replica A never learned of the shared count"
            openai_chat(gw_a, "sk-tr-spray", ip)
            time.sleep(0.05)


def test_cors_is_off_by_default(throttled: tuple) -> None:
    gw, keys = throttled
    origin = "https://evil.example"
    r = httpx.options(
        gw.url + "/v1/chat/completions",
        headers={"origin": origin, "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code == 405
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {keys['openai']}", "origin": origin},
    )
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.fixture(scope="module")
def with_cors(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    gw, keys = start(
        emulator,
        tmp_path_factory.mktemp("cors"),
        cors={"origins": ["https://app.example"], "max_age": 120},
        admin_token=ADMIN_TOKEN,
    )
    with gw:
        yield gw, keys


def preflight(gw: GatewayServer, path: str, origin: str, headers: str) -> httpx.Response:
    return httpx.options(
        gw.url + path,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": headers,
        },
    )


def test_cors_lets_a_listed_origin_call_every_api_surface(with_cors: tuple) -> None:
    gw, keys = with_cors
    origin = "https://app.example"
    for path, asked in [
        ("/v1/chat/completions", "authorization,content-type,x-stainless-os"),
        ("/v1/messages", "x-api-key,anthropic-version,anthropic-dangerous-direct-browser-access"),
        ("/v1beta/models/gemini-2.5-flash:streamGenerateContent", "x-goog-api-key,content-type"),
    ]:
        r = preflight(gw, path, origin, asked)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["access-control-allow-origin"] == origin
        assert r.headers["access-control-allow-headers"].lower() == asked
        assert "POST" in r.headers["access-control-allow-methods"]
        assert r.headers["access-control-max-age"] == "120"
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json=CHAT,
        headers={"authorization": f"Bearer {keys['openai']}", "origin": origin},
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == origin
    assert "x-request-id" in r.headers["access-control-expose-headers"]


def test_cors_refuses_other_origins_and_never_opens_the_admin_pages(with_cors: tuple) -> None:
    gw, _ = with_cors
    r = preflight(gw, "/v1/chat/completions", "https://evil.example", "authorization")
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    for path in ("/admin/api/keys", "/dashboard", "/playground"):
        r = preflight(gw, path, "https://app.example", "authorization")
        assert "access-control-allow-origin" not in r.headers, path
    r = httpx.get(
        gw.url + "/admin/api/keys",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}", "origin": "https://app.example"},
    )
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize(
    ("cors", "message"),
    [
        (["https://a.example"], "cors: must be a mapping"),
        ({"origins": ["app.example"]}, "cors.origins: 'app.example' is not an origin"),
        ({"origins": ["https://a.example/path"]}, "is not an origin"),
        ({"origin_regex": "https://(.*"}, "cors.origin_regex: is not a valid regular expression"),
        ({"origins": ["*"], "allow": True}, "cors.allow: is not a field here"),
    ],
)
def test_a_bad_cors_setting_names_the_field(cors: object, message: str) -> None:
    from torouter.config import ConfigError, parse_settings

    with pytest.raises(ConfigError) as exc:
        parse_settings({"cors": cors}, "torouter.yaml")
    assert message in str(exc.value)


def test_throttle_settings_parse() -> None:
    from torouter.config import parse_settings

    s = parse_settings({"auth_failure_limit": 0, "auth_failure_window": "5m"}, "x.yaml")
    assert (s.auth_failure_limit, s.auth_failure_window, s.cors.enabled) == (0, 300.0, False)
    s = parse_settings({"cors": {"origins": ["*"]}}, "x.yaml")
    assert s.cors.enabled and s.cors.max_age == 600
