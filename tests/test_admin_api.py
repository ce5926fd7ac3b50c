"""The admin REST API under /admin/api, against a real gateway: what a script or the dashboard sees."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import UPSTREAM_SECRET, gateway_config, register_secret
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from tests.services import temporary_postgres_database
from tests.test_limits import flush_test_redis

TOKEN = "admin-token-7c1e9b2f"
REDIS_TEST_URL = "redis://127.0.0.1:6379/11"
NEW_SECRET = "sk-brand-new-SECRET-0a9b8c7d6e5f4a3b"
SECRETS = (UPSTREAM_SECRET, NEW_SECRET, "sk-other-SECRET-1234567890abcdef")
register_secret(TOKEN, *SECRETS)


def refuse_secrets(response: httpx.Response) -> None:
    """Every admin answer is searched for every upstream credential the tests ever set."""
    response.read()
    for secret in SECRETS:
        assert secret not in response.text, f"{response.request.url} answered a credential"


def admin_client(gateway: GatewayServer, token: str | None = TOKEN) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=gateway.url + "/admin/api",
        headers=headers,
        timeout=30,
        event_hooks={"response": [refuse_secrets]},
    )


@dataclass
class Admin:
    gateway: GatewayServer
    emulator: EmulatorServer
    api: httpx.Client
    db_path: Path

    def chat(self, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
        return httpx.post(
            self.gateway.url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )

    def new_key(self, **body: Any) -> dict[str, Any]:
        response = self.api.post("/keys", json={"group": "openai", **body})
        assert response.status_code == 201, response.text
        return response.json()

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db_path) as db:
            return list(db.execute(query, args))

    def wait_for_usage(self, count: int, **filters: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while True:
            page = self.api.get("/usage", params=filters).json()
            if page["total"] >= count or time.monotonic() > deadline:
                return page
            time.sleep(0.1)


@pytest.fixture(scope="module")
def admin(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    workdir = tmp_path_factory.mktemp("admin")
    db_path = workdir / "torouter.db"
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{db_path}", admin_token=TOKEN)
    with GatewayServer(workdir, config) as gw, admin_client(gw) as api:
        yield Admin(gw, emulator, api, db_path)


def until(check: Any, timeout: float = 2.0) -> float:
    """Seconds until `check()` is true; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "not within the time allowed"
        time.sleep(0.05)
    return time.monotonic() - started


# ---------------------------------------------------------------- auth and the document


def test_admin_calls_need_the_admin_token(admin: Admin) -> None:
    client_key = admin.new_key(name="not-an-admin")["key"]
    for token in (None, "wrong-token", client_key, TOKEN + "x"):
        with admin_client(admin.gateway, token) as anonymous:
            response = anonymous.get("/keys")
            assert response.status_code == 401, token
            assert "admin_token" in response.json()["detail"]
            assert anonymous.get("/openapi.json").status_code == 401
    assert admin.api.get("/keys").status_code == 200


def test_admin_api_is_off_without_an_admin_token(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{tmp_path / 'torouter.db'}")
    with GatewayServer(tmp_path, config) as gw, admin_client(gw, "anything") as api:
        response = api.get("/keys")
        assert response.status_code == 403
        detail = response.json()["detail"]
        assert "admin_token" in detail and "TOROUTER_ADMIN_TOKEN" in detail


def test_openapi_document_lists_every_path_and_no_docs_page_is_served(admin: Admin) -> None:
    response = admin.api.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/admin/api/keys",
        "/admin/api/keys/{key_id}",
        "/admin/api/keys/{key_id}/revoke",
        "/admin/api/groups",
        "/admin/api/groups/{name}",
        "/admin/api/upstreams",
        "/admin/api/upstreams/{name}",
        "/admin/api/upstreams/{name}/enable",
        "/admin/api/upstreams/{name}/disable",
        "/admin/api/upstreams/{name}/test",
        "/admin/api/prices",
        "/admin/api/prices/{model}",
        "/admin/api/usage",
        "/admin/api/usage/summary",
        "/admin/api/usage/timeseries",
    ):
        assert path in paths, path
    assert set(paths["/admin/api/keys/{key_id}"]) == {"get", "patch"}
    upstream_fields = doc["components"]["schemas"]["Upstream"]["properties"]
    assert "has_api_key" in upstream_fields and "api_key" not in upstream_fields
    for page in ("/docs", "/redoc"):
        assert admin.api.get(page).status_code == 404
        assert httpx.get(admin.gateway.url + page).status_code == 404


def test_invalid_body_gets_422_listing_each_bad_field(admin: Admin) -> None:
    response = admin.api.post(
        "/keys", json={"group": "openai", "rpm": -1, "budget_period": "yearly", "colour": "red"}
    )
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {tuple(e["loc"]) for e in errors} == {
        ("body", "rpm"),
        ("body", "budget_period"),
        ("body", "colour"),
    }
    assert all(e["msg"] and e["type"] for e in errors)

    response = admin.api.post(
        "/upstreams",
        json={"platform": "acme", "base_url": "ftp://x", "weight": -2, "api_key": NEW_SECRET},
    )
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "name"),
        ("body", "platform"),
        ("body", "base_url"),
        ("body", "weight"),
    }
    # A store check answers in the same shape: a period needs a budget; a group must exist.
    response = admin.api.post("/keys", json={"group": "openai", "budget_period": "daily"})
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "budget_period"]]
    response = admin.api.post("/keys", json={"group": "no-such-group"})
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "group"]]


# ---------------------------------------------------------------- keys


def test_created_key_works_at_once_and_its_value_is_shown_only_once(admin: Admin) -> None:
    created = admin.new_key(name="alice", models=["gpt-4o-mini"], expires_in="30d")
    key = created["key"]
    assert key.startswith("sk-tr-") and key.startswith(created["prefix"])
    assert created["group"] == "openai" and created["status"] == "active"
    assert created["expires_at"] == pytest.approx(time.time() + 30 * 86400, abs=60)
    assert until(lambda: admin.chat(key).status_code == 200) < 2

    one = admin.api.get(f"/keys/{created['id']}")
    assert one.status_code == 200 and "key" not in one.json() and key not in one.text
    listed = admin.api.get("/keys")
    assert key not in listed.text
    assert created["id"] in [k["id"] for k in listed.json()["data"]]
    assert admin.api.get("/keys/999999").status_code == 404


def test_changed_limits_apply_to_the_next_call(admin: Admin) -> None:
    created = admin.new_key(name="limited")
    key = created["key"]
    response = admin.api.patch(
        f"/keys/{created['id']}", json={"rpm": 7, "budget_usd": 5, "budget_period": "daily"}
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["rpm"], changed["budget_usd"], changed["budget_period"]) == (7, 5, "daily")
    assert changed["updated_at"] > created["updated_at"]
    assert changed["period_start"] == pytest.approx(time.time() // 86400 * 86400)
    assert admin.chat(key).headers["x-ratelimit-limit-requests"] == "7"

    cleared = admin.api.patch(f"/keys/{created['id']}", json={"rpm": 0, "budget_usd": None}).json()
    assert (cleared["rpm"], cleared["budget_usd"], cleared["budget_period"]) == (0, None, None)
    assert "x-ratelimit-limit-requests" not in admin.chat(key).headers


def test_revoked_key_is_refused_within_two_seconds(admin: Admin) -> None:
    created = admin.new_key(name="leaving")
    assert admin.chat(created["key"]).status_code == 200
    revoked = admin.api.post(f"/keys/{created['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert until(lambda: admin.chat(created["key"]).status_code == 401) < 2


# ---------------------------------------------------------------- groups and upstreams


def test_groups_are_created_changed_and_deleted(admin: Admin) -> None:
    body = {"name": "team-a", "platform": "openai", "upstreams": ["emu-openai"], "rpm": 5}
    response = admin.api.post("/groups", json=body)
    assert response.status_code == 201, response.text
    group = response.json()
    assert group["source"] == "admin" and group["key_count"] == 0 and group["spent_usd"] == 0
    assert admin.api.post("/groups", json=body).status_code == 409

    wrong = admin.api.post("/groups", json={**body, "name": "team-b", "upstreams": ["emu-openai", "nope"]})
    assert wrong.status_code == 422
    assert [e["loc"] for e in wrong.json()["detail"]] == [["body", "upstreams", 1]]
    mixed = admin.api.post("/groups", json={**body, "name": "team-b", "upstreams": ["emu-anthropic"]})
    assert mixed.status_code == 422 and "platform" in mixed.text

    changed = admin.api.patch("/groups/team-a", json={"models": {"fast": "gpt-4o-mini"}, "rpm": 0})
    assert changed.status_code == 200
    assert changed.json()["models"] == {"fast": "gpt-4o-mini"} and changed.json()["rpm"] == 0
    assert admin.api.patch("/groups/team-a", json={"platform": "anthropic"}).status_code == 422
    assert admin.api.patch("/groups/nope", json={"rpm": 1}).status_code == 404

    key = admin.new_key(group="team-a", name="in-team-a")
    assert admin.chat(key["key"], model="fast").status_code == 200
    assert admin.api.get("/groups/team-a").json()["key_count"] == 1
    assert admin.api.delete("/groups/team-a").status_code == 409
    assert admin.api.patch(f"/keys/{key['id']}", json={"group": "openai"}).json()["group"] == "openai"
    assert admin.api.delete("/groups/team-a").status_code == 204
    assert admin.api.get("/groups/team-a").status_code == 404
    assert "team-a" not in [g["name"] for g in admin.api.get("/groups").json()["data"]]


def test_upstreams_are_managed_without_ever_answering_their_credential(admin: Admin) -> None:
    body = {
        "name": "emu-extra",
        "platform": "openai",
        "base_url": admin.emulator.openai_base_url,
        "api_key": NEW_SECRET,
        "weight": 3,
        "timeouts": {"connect": 5},
    }
    response = admin.api.post("/upstreams", json=body)
    assert response.status_code == 201, response.text
    upstream = response.json()
    assert upstream["has_api_key"] is True and "api_key" not in upstream and "credential" not in upstream
    assert upstream["timeouts"] == {"connect": 5, "first_byte": 300, "idle": 300}
    assert upstream["health"] == "healthy" and upstream["source"] == "admin"
    assert admin.api.post("/upstreams", json=body).status_code == 409

    group = {"name": "extra", "platform": "openai", "upstreams": ["emu-extra"]}
    assert admin.api.post("/groups", json=group).status_code == 201
    key = admin.new_key(group="extra")["key"]
    assert admin.chat(key).status_code == 200
    assert admin.emulator.requests()[-1]["headers"]["authorization"] == f"Bearer {NEW_SECRET}"

    changed = admin.api.patch("/upstreams/emu-extra", json={"api_key": SECRETS[2], "priority": 4})
    assert changed.status_code == 200 and changed.json()["priority"] == 4
    assert admin.chat(key).status_code == 200
    assert admin.emulator.requests()[-1]["headers"]["authorization"] == f"Bearer {SECRETS[2]}"

    disabled = admin.api.post("/upstreams/emu-extra/disable").json()
    assert disabled["health"] == "disabled" and disabled["status"] == "disabled"
    assert admin.chat(key).status_code != 200
    assert admin.api.post("/upstreams/emu-extra/enable").json()["health"] == "healthy"
    assert admin.chat(key).status_code == 200

    assert admin.api.patch("/upstreams/emu-extra", json={"platform": "anthropic"}).status_code == 409
    assert admin.api.delete("/upstreams/emu-extra").status_code == 409
    detail = admin.api.get("/upstreams/emu-extra").json()
    assert detail["recent_errors"] == [] and detail["weight"] == 3
    listed = admin.api.get("/upstreams").json()["data"]
    assert {"emu-openai", "emu-extra"} <= {u["name"] for u in listed}
    assert all(u["has_api_key"] for u in listed)


def test_recent_errors_show_failed_calls_and_failed_attempts(admin: Admin) -> None:
    key = admin.new_key(group="failover")["key"]  # dead-openai (refused) first, then emu-openai
    assert admin.chat(key).status_code == 200
    admin.emulator.script({"match": {"path": "chat/completions"}, "status": 400, "error": {"message": "no"}})
    assert admin.chat(admin.new_key()["key"]).status_code == 400
    admin.wait_for_usage(1, account="emu-openai", status="400")

    def errors(name: str) -> list[dict[str, Any]]:
        return admin.api.get(f"/upstreams/{name}").json()["recent_errors"]

    until(lambda: bool(errors("dead-openai")), timeout=5)
    dead = errors("dead-openai")[0]
    assert dead["status"] == 0 and dead["error"] and dead["model"] == "gpt-4o-mini" and dead["request_id"]
    emu = errors("emu-openai")[0]
    assert emu["status"] == 400 and emu["created_at"] > time.time() - 60


def test_upstream_test_lists_models_or_fails_cleanly(admin: Admin) -> None:
    for name in ("emu-openai", "emu-anthropic", "emu-gemini"):
        result = admin.api.post(f"/upstreams/{name}/test").json()
        assert result["ok"] is True and result["status"] == 200, (name, result)
        assert result["models"] and result["error"] is None and result["latency_ms"] > 0

    dead = admin.api.post("/upstreams/dead-openai/test")
    assert dead.status_code == 200
    result = dead.json()
    assert result["ok"] is False and result["status"] == 0 and result["models"] == []
    assert result["error"] and "127.0.0.1" not in result["error"]
    assert admin.api.post("/upstreams/nope/test").status_code == 404


# ---------------------------------------------------------------- prices


def test_prices_are_set_and_reset(admin: Admin) -> None:
    missing = admin.api.put("/prices/acme-1", json={"input": 1.5})
    assert missing.status_code == 422
    assert [e["loc"] for e in missing.json()["detail"]] == [["body", "output"]]
    price = admin.api.put("/prices/acme/acme-1", json={"input": 1.5, "output": 6}).json()
    assert price["model"] == "acme/acme-1" and price["source"] == "custom"
    assert (price["input"], price["output"], price["cache_read"]) == (1.5, 6, 1.5)
    assert [p["model"] for p in admin.api.get("/prices", params={"model": "ACME/"}).json()["data"]] == [
        "acme/acme-1"
    ]

    shipped = admin.api.get("/prices", params={"model": "gpt-4o-mini"}).json()["data"]
    original = next(p for p in shipped if p["model"] == "gpt-4o-mini")
    assert original["source"] == "default"
    edited = admin.api.put("/prices/gpt-4o-mini", json={"output": 99}).json()
    assert (edited["output"], edited["input"], edited["source"]) == (99, original["input"], "custom")
    reset = admin.api.delete("/prices/gpt-4o-mini")
    assert reset.status_code == 200 and reset.json()["output"] == original["output"]
    assert reset.json()["source"] == "default"

    assert admin.api.delete("/prices/acme/acme-1").status_code == 204
    assert admin.api.delete("/prices/acme/acme-1").status_code == 404
    assert admin.api.put("/prices/x", json={"input": -1, "output": 1}).status_code == 422


# ---------------------------------------------------------------- usage


@pytest.fixture(scope="module")
def traffic(admin: Admin) -> dict[str, Any]:
    """Seven calls from two fresh keys on two models, one of them an error; the records flushed."""
    since = time.time() - 0.001
    a, b = admin.new_key(name="usage-a"), admin.new_key(name="usage-b")
    for model in ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o", "gpt-4o"):
        assert admin.chat(a["key"], model).status_code == 200
    for model in ("gpt-4o-mini", "gpt-4o"):
        assert admin.chat(b["key"], model).status_code == 200
    admin.emulator.script({"match": {"path": "chat/completions"}, "status": 400, "error": {"message": "no"}})
    assert admin.chat(b["key"], "gpt-4o").status_code == 400
    assert admin.wait_for_usage(7, since=since)["total"] == 7
    return {"since": since, "a": a, "b": b}


def test_usage_log_filters_and_pages(admin: Admin, traffic: dict[str, Any]) -> None:
    since, a, b = traffic["since"], traffic["a"], traffic["b"]
    page = admin.api.get("/usage", params={"since": since}).json()
    assert page["total"] == 7 and len(page["data"]) == 7
    times = [r["created_at"] for r in page["data"]]
    assert times == sorted(times, reverse=True)
    record = page["data"][0]
    for field in (
        "request_id",
        "key_name",
        "group_name",
        "account_name",
        "cost_usd",
        "ttft_ms",
        "attempt_log",
    ):
        assert field in record

    by_name = admin.api.get("/usage", params={"since": since, "key": "usage-a"}).json()
    by_id = admin.api.get("/usage", params={"since": since, "key": str(a["id"])}).json()
    assert by_name["total"] == by_id["total"] == 4
    assert (
        admin.api.get("/usage", params={"since": since, "key": b["id"], "model": "gpt-4o"}).json()["total"]
        == 2
    )
    errors = admin.api.get("/usage", params={"since": since, "status": "error"}).json()
    assert errors["total"] == 1 and errors["data"][0]["status_code"] == 400
    assert admin.api.get("/usage", params={"since": since, "status": 200}).json()["total"] == 6
    assert admin.api.get("/usage", params={"since": since, "group": "nope"}).json()["total"] == 0
    newest = page["data"][0]["created_at"]
    assert admin.api.get("/usage", params={"since": since, "until": newest}).json()["total"] == 6

    first = admin.api.get("/usage", params={"since": since, "limit": 3}).json()
    second = admin.api.get("/usage", params={"since": since, "limit": 3, "offset": 3}).json()
    assert first["total"] == second["total"] == 7 and len(first["data"]) == len(second["data"]) == 3
    assert [r["id"] for r in first["data"] + second["data"]] == [r["id"] for r in page["data"][:6]]
    for bad in ({"limit": 501}, {"limit": 0}, {"offset": -1}, {"status": "bad"}):
        response = admin.api.get("/usage", params=bad)
        assert response.status_code == 422 and response.json()["detail"][0]["loc"][0] == "query"


def test_usage_summary_totals_are_the_databases_sums(admin: Admin, traffic: dict[str, Any]) -> None:
    since = traffic["since"]
    summary = admin.api.get("/usage/summary", params={"by": "model", "since": since}).json()
    calls, errors, tokens_in, tokens_out, cost = admin.sql(
        "SELECT COUNT(*), SUM(status_code >= 400), SUM(input_tokens), SUM(output_tokens), SUM(cost_usd)"
        " FROM usage_records WHERE created_at >= ?",
        since,
    )[0]
    total = summary["total"]
    assert (total["calls"], total["errors"], total["input_tokens"], total["output_tokens"]) == (
        calls,
        errors,
        tokens_in,
        tokens_out,
    )
    assert total["cost_usd"] == pytest.approx(cost) and cost > 0
    assert summary["by"] == ["model"]
    rows = {r["model"]: r for r in summary["data"]}
    assert set(rows) == {"gpt-4o-mini", "gpt-4o"} and rows["gpt-4o"]["calls"] == 4
    assert sum(r["calls"] for r in rows.values()) == calls

    by_key = admin.api.get("/usage/summary", params={"by": "key", "since": since}).json()["data"]
    assert {r["key"]: r["calls"] for r in by_key} == {"usage-a": 4, "usage-b": 3}
    assert admin.api.get("/usage/summary", params={"by": "colour"}).status_code == 422


def test_usage_timeseries_buckets_add_up_to_the_totals(admin: Admin, traffic: dict[str, Any]) -> None:
    now = time.time()
    series = admin.api.get("/usage/timeseries", params={"since": now - 600, "bucket": 60}).json()
    assert series["bucket"] == 60 and 10 <= len(series["series"]) <= 11
    assert all(p["t"] % 60 == 0 for p in series["series"])
    totals = series["totals"]
    assert totals["calls"] >= 7
    for field in ("calls", "errors", "input_tokens", "output_tokens"):
        assert sum(p[field] for p in series["series"]) == totals[field]
    assert sum(p["cost_usd"] for p in series["series"]) == pytest.approx(totals["cost_usd"])
    assert totals["error_rate"] == pytest.approx(totals["errors"] / totals["calls"])
    assert totals["p50_ms"] <= totals["p95_ms"]
    for p in series["series"]:
        assert (p["p50_ms"] is None) == (p["calls"] == 0)
        assert p["calls"] == 0 or p["p50_ms"] <= p["p95_ms"]

    latencies = sorted(
        ms for (ms,) in admin.sql("SELECT latency_ms FROM usage_records WHERE created_at >= ?", now - 600)
    )
    assert latencies[0] <= totals["p50_ms"] <= totals["p95_ms"] <= latencies[-1]

    mine = admin.api.get(
        "/usage/timeseries", params={"since": traffic["since"], "bucket": 3600, "key": "usage-b"}
    ).json()
    assert mine["totals"]["calls"] == 3 and mine["totals"]["errors"] == 1
    assert admin.api.get("/usage/timeseries", params={"since": 0, "bucket": 1}).status_code == 422


# ---------------------------------------------------------------- PostgreSQL, two replicas


def test_admin_api_on_postgresql_reaches_the_other_replica_at_once(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    flush_test_redis(REDIS_TEST_URL)  # no session pins or counters left from an earlier run
    with temporary_postgres_database() as url:
        config = gateway_config(
            emulator, url, admin_token=TOKEN, redis_url=REDIS_TEST_URL, key_refresh_interval=30
        )
        with (
            GatewayServer(tmp_path / "a", config) as first,
            GatewayServer(tmp_path / "b", config) as second,
            admin_client(first) as api,
        ):
            world = Admin(first, emulator, api, tmp_path / "unused.db")
            key = world.new_key(name="pg-key", budget_usd=1, budget_period="monthly")
            other = Admin(second, emulator, api, tmp_path / "unused.db")
            assert until(lambda: other.chat(key["key"]).status_code == 200) < 2
            for model in ("gpt-4o-mini", "gpt-4o", "gpt-4o"):
                assert world.chat(key["key"], model).status_code == 200
            assert world.wait_for_usage(4)["total"] == 4

            keys = api.get("/keys").json()["data"]
            assert keys[0]["name"] == "pg-key" and keys[0]["spent_usd"] > 0
            group = api.get("/groups/openai").json()
            assert group["key_count"] == 1 and group["spent_usd"] == pytest.approx(keys[0]["spent_usd"])
            assert {u["name"] for u in api.get("/upstreams").json()["data"]} >= {"emu-openai", "dead-openai"}
            assert (
                api.get("/usage", params={"key": "pg-key", "model": "gpt-4o", "limit": 1}).json()["total"]
                == 2
            )
            summary = api.get("/usage/summary", params={"by": "model"}).json()
            assert summary["total"]["calls"] == 4 and len(summary["data"]) == 2
            series = api.get("/usage/timeseries", params={"since": time.time() - 300, "bucket": 60}).json()
            assert sum(p["calls"] for p in series["series"]) == series["totals"]["calls"] == 4
            assert series["totals"]["p50_ms"] <= series["totals"]["p95_ms"]
            assert all(p["p50_ms"] <= p["p95_ms"] for p in series["series"] if p["calls"])
            assert api.post("/upstreams/emu-openai/test").json()["ok"] is True
            failover = world.new_key(group="failover")["key"]  # dead-openai first, then emu-openai
            assert world.chat(failover).status_code == 200
            until(lambda: bool(api.get("/upstreams/dead-openai").json()["recent_errors"]), timeout=5)

            group_body = {"name": "pg-team", "platform": "openai", "upstreams": ["emu-openai"]}
            assert api.post("/groups", json=group_body).status_code == 201
            moved = api.patch(f"/keys/{key['id']}", json={"group": "pg-team"}).json()
            assert moved["group"] == "pg-team"
            assert api.delete("/groups/openai").status_code == 204
            revoked = api.post(f"/keys/{key['id']}/revoke").json()
            assert revoked["status"] == "revoked"
            assert until(lambda: other.chat(key["key"]).status_code == 401) < 2


def test_usage_timeseries_refuses_times_that_would_overflow(admin: Admin) -> None:
    # found by schemathesis: floor(since / bucket) * bucket went to infinity and answered "t": null
    for params in ({"since": -1.79e308, "bucket": 8e307}, {"until": 1e300}, {"bucket": 1e300}):
        r = admin.api.get("/usage/timeseries", params=params)
        assert r.status_code == 422, (params, r.text)
