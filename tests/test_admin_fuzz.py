"""The admin API against requests Schemathesis generates from its own OpenAPI document.

Every operation gets valid and invalid data (bodies, query and path parameters): no answer is a
server error, every answer the document describes matches its schema, and no operation answers
anything but 401 without the admin token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from tests.conftest import gateway_config, register_secret
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from torouter.admin import METHODS, create_admin_app
from torouter.config import Settings
from torouter.gateway import Gateway

TOKEN = "admin-token-fuzz-5e2a91c4"
register_secret(TOKEN)
AUTH = {"authorization": f"Bearer {TOKEN}"}
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def admin_gateway(
    emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayServer]:
    workdir = tmp_path_factory.mktemp("admin-fuzz")
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{workdir / 'torouter.db'}", admin_token=TOKEN)
    with GatewayServer(workdir, config) as gw:
        yield gw
        assert "Traceback" not in gw.log(), gw.log()[-4000:]


def admin_document() -> dict[str, Any]:
    """The OpenAPI document as the gateway builds it. Schemathesis needs it when tests are collected,
    before any gateway runs (its fixture-based loader breaks on pytest 9); the served one is compared
    with it below."""
    gateway = Gateway(Settings(database_url="sqlite+aiosqlite://", admin_token=TOKEN))
    return create_admin_app(gateway).app.openapi()


schema = schemathesis.openapi.from_dict(admin_document())
# The token is ours to send: generated Authorization headers would only ever meet the 401.
schema.config.generation.update(with_security_parameters=False)


def test_the_served_document_is_the_one_fuzzed(admin_gateway: GatewayServer) -> None:
    served = httpx.get(admin_gateway.url + "/admin/api/openapi.json", headers=AUTH)
    assert served.status_code == 200
    assert served.json() == admin_document()


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_no_server_error_and_documented_answers(
    case: schemathesis.Case, admin_gateway: GatewayServer
) -> None:
    response = case.call(base_url=admin_gateway.url, headers=AUTH, timeout=10)
    case.validate_response(response, checks=CHECKS)
    if case.method.upper() not in METHODS:  # TRACE and the like never reach the admin API
        return
    # The same request without the token is refused before anything is read.
    anonymous = case.call(base_url=admin_gateway.url, headers={"authorization": ""}, timeout=10)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json() == {"detail": "Give the admin token: Authorization: Bearer <admin_token>."}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/usage?since=nan", None),
        ("GET", "/usage/timeseries?since=0&until=inf", None),
        ("GET", "/usage/summary?since=-inf", None),
        ("GET", "/keys/99999999999999999999", None),
        ("POST", "/keys", b'{"group": "openai", "expires_at": NaN}'),
        ("POST", "/keys", b'{"group": "openai", "rpm": 9223372036854775808}'),
        (
            "POST",
            "/upstreams",
            b'{"name": "u", "platform": "openai", "api_key": "k", "priority": -9999999999}',
        ),
    ],
)
def test_numbers_the_store_cannot_hold_are_422(
    admin_gateway: GatewayServer, method: str, path: str, body: bytes | None
) -> None:
    """Python's JSON reader takes NaN and Infinity, and ids and limits are 32-bit columns."""
    headers = {**AUTH, "content-type": "application/json"}
    r = httpx.request(method, admin_gateway.url + "/admin/api" + path, content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][0] in ("query", "path", "body")


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"group": "openai", "name": "\xff"}', b"\xff\xfe"])
def test_unreadable_bodies_are_client_errors(admin_gateway: GatewayServer, body: bytes) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    r = httpx.post(admin_gateway.url + "/admin/api/keys", content=body, headers=headers)
    assert r.status_code in (400, 422), r.text
    assert r.json()["detail"]


def test_a_usage_filter_by_a_huge_key_id_finds_nothing(admin_gateway: GatewayServer) -> None:
    for key in ("99999999999999999999", "²"):
        r = httpx.get(admin_gateway.url + "/admin/api/usage", params={"key": key}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert r.json()["data"] == []
