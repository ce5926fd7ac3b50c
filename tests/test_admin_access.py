"""Every admin route, however it is asked, answers 401 without the admin token, and 403 while no token is set."""

from __future__ import annotations

import base64
import importlib
import pkgutil
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

import torouter.admin
from tests.conftest import gateway_config, register_secret
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from torouter.admin import METHODS, PREFIX

TOKEN = "admin-access-token-3b9d27e1c5"
register_secret(TOKEN)
OPENAPI = ("GET", PREFIX + "/openapi.json")
# Well-formed values that name nothing: the right token reaches the handler, which changes nothing.
SAMPLES = {"key_id": "999999", "name": "no-such-name", "model": "acme/no-such-model"}
WRONG = {
    "no header": {},
    "empty header": {"authorization": ""},
    "scheme alone": {"authorization": "Bearer"},
    "wrong token": {"authorization": "Bearer not-the-admin-token"},
    "token and more": {"authorization": f"Bearer {TOKEN}x"},
    "token cut short": {"authorization": f"Bearer {TOKEN[:-1]}"},
    "basic scheme": {"authorization": "Basic " + base64.b64encode(f"admin:{TOKEN}".encode()).decode()},
    "basic with the bare token": {"authorization": f"Basic {TOKEN}"},
    "other scheme": {"authorization": f"Token {TOKEN}"},
    "no scheme": {"authorization": TOKEN},
    "x-api-key": {"x-api-key": TOKEN},
    "x-goog-api-key": {"x-goog-api-key": TOKEN},
}


def declared_routes() -> list[tuple[str, str]]:
    """(method, path) of every route in every module of torouter.admin, as the app mounts them.

    Read from the modules' routers rather than the app, so that a route left out of the OpenAPI
    document, or a module the app forgot to include, still shows up (and fails the comparison below).
    """
    found = []
    for info in pkgutil.iter_modules(torouter.admin.__path__):
        router = getattr(importlib.import_module(f"torouter.admin.{info.name}"), "router", None)
        if not isinstance(router, APIRouter):
            continue
        for route in router.routes:
            assert isinstance(route, APIRoute), route
            path = PREFIX + re.sub(r":\w+\}", "}", route.path)  # {model:path} -> {model}
            found += [(method, path) for method in sorted(route.methods)]
    return sorted(found)


ROUTES = declared_routes()


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "sample"), path)


def call(
    gateway: GatewayServer, method: str, path: str, headers: dict[str, str], **kw: Any
) -> httpx.Response:
    body = {} if method in ("POST", "PUT", "PATCH") else None  # a body, so that no 422 stands in for a 401
    return httpx.request(method, gateway.url + concrete(path), headers=headers, json=body, timeout=30, **kw)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, (response.request.method, response.request.url, response.text)
    assert response.headers.get("www-authenticate") == "Bearer"
    assert response.json() == {"detail": "Give the admin token: Authorization: Bearer <admin_token>."}


@pytest.fixture(scope="module")
def guarded(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("admin-access")
    # The failed-auth throttle would turn this module's hundreds of wrong tokens into 429s.
    config = gateway_config(
        emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}", admin_token=TOKEN, auth_failure_limit=0
    )
    with GatewayServer(workdir, config) as gw:
        yield gw
        assert "Traceback" not in gw.log(), gw.log()[-4000:]


@pytest.fixture(scope="module")
def unguarded(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("admin-off")
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}")
    config.pop("admin_token", None)
    with GatewayServer(workdir, config) as gw:
        yield gw


def test_the_routes_checked_here_are_every_route_the_served_document_lists(guarded: GatewayServer) -> None:
    doc = httpx.get(guarded.url + OPENAPI[1], headers={"authorization": f"Bearer {TOKEN}"}).json()
    documented = sorted((m.upper(), path) for path, ops in doc["paths"].items() for m in ops)
    assert documented == ROUTES
    assert len(ROUTES) >= 20, (
        ROUTES
    )  # keys, groups, upstreams, prices and usage: a short list is a broken walk
    assert {p.split("/")[3] for _, p in ROUTES} == {"keys", "groups", "upstreams", "prices", "usage"}


@pytest.mark.parametrize(("method", "path"), [*ROUTES, OPENAPI], ids=lambda v: v)
def test_every_admin_route_answers_401_to_anything_but_the_admin_token(
    guarded: GatewayServer, method: str, path: str
) -> None:
    for case, headers in WRONG.items():
        response = call(guarded, method, path, headers)
        assert response.status_code == 401, case
        assert_refused(response)
    assert_refused(call(guarded, method, path, {}, params={"key": TOKEN}))  # a query key is for clients
    for scheme in ("Bearer", "bearer"):
        response = call(guarded, method, path, {"authorization": f"{scheme} {TOKEN}"})
        assert response.status_code not in (401, 403) and response.status_code < 500, response.text


def test_methods_and_paths_the_api_lacks_also_answer_401_first(guarded: GatewayServer) -> None:
    """Without the token nothing is learnt about the routes, not even which exist."""
    paths = {path for _, path in ROUTES} | {PREFIX + "/nothing-here", PREFIX + "/"}
    for path in sorted(paths):
        for method in METHODS:
            assert_refused(call(guarded, method, path, {}))
    known = call(guarded, "GET", PREFIX + "/nothing-here", {"authorization": f"Bearer {TOKEN}"})
    assert known.status_code == 404


@pytest.mark.parametrize(("method", "path"), [*ROUTES, OPENAPI], ids=lambda v: v)
def test_with_no_admin_token_configured_every_admin_route_is_403(
    unguarded: GatewayServer, method: str, path: str
) -> None:
    for headers in ({}, {"authorization": f"Bearer {TOKEN}"}, {"authorization": "Basic eDp5"}):
        response = call(unguarded, method, path, headers)
        assert response.status_code == 403, (headers, response.text)
        assert "admin_token" in response.json()["detail"]
