"""Two replicas on one PostgreSQL and one Redis behave as one gateway: limits, budgets, revocation, usage."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import gateway_config, make_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from tests.services import temporary_postgres_database
from tests.test_limits import flush_test_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis]
REDIS_TEST_URL = "redis://127.0.0.1:6379/10"

KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "rpm": ("openai", {"rpm": 20}),
    "budget": ("openai", {"budget_usd": 0.002}),
    "conc": ("openai", {"max_concurrency": 2}),
    "plain": ("openai", {}),
    "pool": ("pool", {}),
}


class Pair:
    def __init__(
        self, replicas: list[GatewayServer], keys: dict[str, str], database_url: str, emulator: EmulatorServer
    ) -> None:
        self.emulator = emulator
        self.replicas = replicas
        self.keys = keys
        self.database_url = database_url

    def post(self, i: int, key: str, **body: Any) -> httpx.Response:
        payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **body}
        return httpx.post(
            self.replicas[i % 2].openai_base_url + "/chat/completions",
            json=payload,
            headers={"authorization": f"Bearer {self.keys[key]}"},
            timeout=30,
        )

    def query(self, sql: str, *args: Any) -> list[Any]:
        import asyncpg

        dsn = self.database_url.replace("postgresql+asyncpg://", "postgresql://")

        async def run() -> list[Any]:
            conn = await asyncpg.connect(dsn)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def rows_for(self, request_ids: list[str], wait: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + wait
        while True:
            rows = self.query("SELECT * FROM usage_records WHERE request_id = ANY($1::text[])", request_ids)
            if len(rows) >= len(request_ids) or time.monotonic() > deadline:
                return rows
            time.sleep(0.1)


@pytest.fixture(scope="module")
def pair(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    flush_test_redis(REDIS_TEST_URL)
    with temporary_postgres_database() as url:
        # A slow poll: only the Redis announcement can make a revocation land within 2 seconds.
        config = gateway_config(emulator, url, redis_url=REDIS_TEST_URL, key_refresh_interval=30)
        for name in ("pool-a", "pool-b"):
            config["upstreams"].append(
                {
                    "name": name,
                    "platform": "openai",
                    "base_url": emulator.openai_base_url,
                    "api_key": f"sk-{name}",
                }
            )
        config["groups"].append({"name": "pool", "platform": "openai", "upstreams": ["pool-a", "pool-b"]})
        replicas = [GatewayServer(tmp_path_factory.mktemp(f"replica{i}"), config) for i in range(2)]
        keys = make_keys(replicas[0].config_path, KEYS)
        for r in replicas:
            r.start()
        try:
            yield Pair(replicas, keys, url, emulator)
        finally:
            for r in replicas:
                r.stop()


def _burst(pair: Pair, key: str, n: int, **body: Any) -> list[httpx.Response]:
    results: list[httpx.Response] = []
    lock = threading.Lock()
    start = threading.Event()

    def worker(i: int) -> None:
        start.wait()
        resp = pair.post(i, key, **body)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join()
    return results


def test_an_rpm_limit_holds_across_replicas_under_concurrent_load(pair: Pair) -> None:
    results = _burst(pair, "rpm", 50)
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    assert len(ok) == 20 and len(refused) == 30
    assert all(r.json()["error"]["code"] == "rate_limit_exceeded" for r in refused)
    ids = [r.headers["x-request-id"] for r in ok]
    rows = pair.rows_for(ids)
    assert len(rows) == 20 and all(r["status_code"] == 200 for r in rows)
    # Both replicas served some of them, and both refused some.
    ports = {r.url.port for r in ok}
    assert len(ports) == 2


def test_a_budget_holds_across_replicas_and_redis_agrees_with_the_store(pair: Pair) -> None:
    prompt = "word " * 420
    pair.emulator.script({"usage": {"input_tokens": 500, "output_tokens": 250}, "delay": 0.3, "times": 20})
    results = _burst(pair, "budget", 20, messages=[{"role": "user", "content": prompt}], max_tokens=250)
    ok = [r for r in results if r.status_code == 200]
    refused = [r for r in results if r.status_code == 429]
    assert ok and refused and len(ok) + len(refused) == 20
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    rows = pair.rows_for([r.headers["x-request-id"] for r in ok])
    spent = sum(r["cost_usd"] for r in rows)
    size = len(b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":""}],"max_tokens":250}') + len(
        prompt
    )
    assert spent <= 0.002 + (size // 4 * 0.15 + 250 * 0.60) / 1e6 + 1e-12
    import redis

    key_id = pair.query("SELECT id FROM api_keys WHERE name = 'budget'")[0]["id"]
    client = redis.Redis.from_url(REDIS_TEST_URL)
    deadline = time.monotonic() + 3
    while True:
        state = client.hgetall(f"torouter:{{lim}}:key:{key_id}:budget:0")
        stored = pair.query(
            "SELECT coalesce(sum(cost_usd), 0) AS s FROM usage_records WHERE key_id = $1", key_id
        )[0]["s"]
        if float(state[b"spent"]) == pytest.approx(stored, abs=1e-9) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert float(state[b"spent"]) == pytest.approx(stored, abs=1e-9)
    assert abs(float(state[b"reserved"])) < 1e-9, "every reservation was settled"


def test_a_concurrency_cap_counts_calls_on_both_replicas(pair: Pair) -> None:
    pair.emulator.script({"text": "one two three", "chunk_delay": 0.4, "times": 2})
    started = threading.Event()
    done: list[int] = []

    def slow(i: int) -> None:
        with httpx.stream(
            "POST",
            pair.replicas[0].openai_base_url + "/chat/completions",
            json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "slow"}]},
            headers={"authorization": f"Bearer {pair.keys['conc']}"},
        ) as r:
            started.set()
            r.read()
            done.append(r.status_code)

    threads = [threading.Thread(target=slow, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.3)
    refused = pair.post(1, "conc")  # the other replica
    assert refused.status_code == 429 and "concurrent" in refused.json()["error"]["message"]
    for t in threads:
        t.join()
    assert done == [200, 200]
    assert pair.post(1, "conc").status_code == 200


def test_a_key_revoked_through_one_replica_stops_on_both_within_2_seconds(pair: Pair) -> None:
    key = pair.replicas[0].create_key("openai", "--name", "short-lived")
    deadline = time.monotonic() + 2
    while not all(pair_post(pair, i, key).status_code == 200 for i in range(2)):
        assert time.monotonic() < deadline, "a new key was not accepted by both replicas within 2 s"
        time.sleep(0.05)
    pair.replicas[1].cli("keys", "revoke", "short-lived")
    revoked_at = time.monotonic()
    pending = {0, 1}
    while pending:
        for i in list(pending):
            if pair_post(pair, i, key).status_code == 401:
                pending.discard(i)
        assert time.monotonic() - revoked_at < 2, f"replicas {pending} still accept a revoked key"
        time.sleep(0.05)


def pair_post(pair: Pair, i: int, key: str) -> httpx.Response:
    return httpx.post(
        pair.replicas[i].openai_base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_their_usage_lands_in_one_store(pair: Pair) -> None:
    before = pair.query("SELECT count(*) AS n FROM usage_records WHERE key_name = 'plain'")[0]["n"]
    results = _burst(pair, "plain", 40)
    assert all(r.status_code == 200 for r in results), [r.text for r in results if r.status_code != 200]
    ids = [r.headers["x-request-id"] for r in results]
    rows = pair.rows_for(ids)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)
    after = pair.query("SELECT count(*) AS n FROM usage_records WHERE key_name = 'plain'")[0]["n"]
    assert after - before == 40


def test_a_session_pinned_on_one_replica_stays_on_its_account_on_the_other(pair: Pair) -> None:
    served: dict[str, set[str]] = {}
    for session in range(16):
        for i in range(6):  # alternate replicas: the pin made by one must hold on the other
            pair.emulator.reset()
            r = httpx.post(
                pair.replicas[i % 2].openai_base_url + "/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {pair.keys['pool']}", "x-session-affinity": f"s{session}"},
                timeout=30,
            )
            assert r.status_code == 200
            account = pair.emulator.requests()[-1]["headers"]["authorization"].split()[-1]
            served.setdefault(f"s{session}", set()).add(account)
    assert all(len(accounts) == 1 for accounts in served.values()), served
    assert set().union(*served.values()) == {"sk-pool-a", "sk-pool-b"}, "sessions were spread over both"
