"""What an operator's Prometheus and load balancer see: /metrics after real SDK calls, and /readyz."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anthropic
import httpx
import openai
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import UPSTREAM_SECRET, World, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer, free_port
from torouter.app import App
from torouter.config import Settings
from torouter.gateway import Gateway
from torouter.metrics import readiness

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
TOKEN_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cached": "cached_tokens",
    "cache_write": "cache_write_tokens",
    "reasoning": "reasoning_tokens",
}


def scrape(gateway: GatewayServer) -> Samples:
    r = httpx.get(gateway.url + "/metrics")  # no key: it is for the operator's scraper
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def rows_for(world: World, request_ids: list[str]) -> list[dict[str, Any]]:
    """The calls' usage rows; once they are in the store, their metrics are counted too."""
    return [r for r in world.usage_rows(request_ids) if r["request_id"] in request_ids]


def account_states(samples: Samples) -> dict[str, str]:
    """account -> the state whose gauge is 1, checking that each account has exactly one."""
    found: dict[str, list[str]] = {}
    for (name, labels), v in samples.items():
        if name == "torouter_upstream_account_state" and v == 1:
            lab = dict(labels)
            found.setdefault(lab["account"], []).append(lab["state"])
    assert all(len(states) == 1 for states in found.values()), found
    return {account: states[0] for account, states in found.items()}


def test_sdk_calls_raise_the_request_latency_and_token_metrics_by_exactly_what_they_did(
    world: World,
) -> None:
    before = scrape(world.gateway)
    oa = openai.OpenAI(api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0)
    whole = oa.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "metrics one"}]
    )
    streamed = oa.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "metrics two"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices)
    ac = anthropic.Anthropic(api_key=world.keys["anthropic"], base_url=world.gateway.url, max_retries=0)
    message = ac.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "metrics three"}]
    )
    assert message.parse().usage.output_tokens > 0
    ids = [whole.headers["x-request-id"], streamed.headers["x-request-id"], message.headers["request-id"]]
    rows = rows_for(world, ids)
    after = scrape(world.gateway)

    oa_labels = {"surface": "openai", "platform": "openai", "model": "gpt-4o-mini"}
    an_labels = {"surface": "anthropic", "platform": "anthropic", "model": "claude-sonnet-4-5"}
    assert delta(before, after, "torouter_requests_total", **oa_labels, status="200") == 2
    assert delta(before, after, "torouter_requests_total", **an_labels, status="200") == 1
    assert delta(before, after, "torouter_request_duration_seconds_count", **oa_labels) == 2
    assert delta(before, after, "torouter_request_duration_seconds_count", **an_labels) == 1
    assert delta(before, after, "torouter_request_duration_seconds_sum", **oa_labels) > 0
    assert delta(before, after, "torouter_request_duration_seconds_bucket", **oa_labels, le="+Inf") == 2
    assert delta(before, after, "torouter_time_to_first_token_seconds_count", **oa_labels) == 1  # the stream
    assert delta(before, after, "torouter_time_to_first_token_seconds_count", **an_labels) == 0
    for labels in (oa_labels, an_labels):
        mine = [r for r in rows if r["surface"] == labels["surface"]]
        assert mine and all(r["model"] == labels["model"] for r in mine)
        for kind, field in TOKEN_TYPES.items():
            expected = sum(r[field] for r in mine)
            assert delta(before, after, "torouter_tokens_total", **labels, type=kind) == expected, kind
        assert sum(r["input_tokens"] for r in mine) > 0 and sum(r["output_tokens"] for r in mine) > 0
        cost = sum(r["cost_usd"] for r in mine)
        assert cost > 0
        assert delta(
            before, after, "torouter_cost_usd_total", platform=labels["platform"], model=labels["model"]
        ) == pytest.approx(cost)

    states = account_states(after)
    assert states["emu-openai"] in ("active", "cooldown") and states["emu-anthropic"] == "active"
    anthropic_account = {"account": "emu-anthropic", "platform": "anthropic"}
    assert {
        state: after[
            ("torouter_upstream_account_state", frozenset({**anthropic_account, "state": state}.items()))
        ]
        for state in ("active", "cooldown", "disabled")
    } == {"active": 1, "cooldown": 0, "disabled": 0}
    assert ("torouter_usage_writer_queue_depth", frozenset()) in after


def test_an_upstream_500_counts_as_a_failed_call_and_an_upstream_error(world: World) -> None:
    before = scrape(world.gateway)
    world.emulator.script({"status": 500, "error": {"message": "upstream fell over"}})
    oa = openai.OpenAI(api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0)
    with pytest.raises(openai.InternalServerError) as caught:
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "fail"}])
    rows_for(world, [caught.value.response.headers["x-request-id"]])
    after = scrape(world.gateway)
    labels = {"surface": "openai", "platform": "openai", "model": "gpt-4o-mini"}
    assert delta(before, after, "torouter_requests_total", **labels, status="500") == 1
    assert delta(before, after, "torouter_requests_total", **labels, status="200") == 0
    assert delta(before, after, "torouter_upstream_errors_total", account="emu-openai", status="500") == 1


def test_a_client_error_the_upstream_reports_is_not_an_upstream_error(world: World) -> None:
    before = scrape(world.gateway)
    world.emulator.script({"status": 400, "error": {"message": "messages: too short"}})
    oa = openai.OpenAI(api_key=world.keys["openai"], base_url=world.gateway.openai_base_url, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "bad"}])
    rows_for(world, [caught.value.response.headers["x-request-id"]])
    after = scrape(world.gateway)
    labels = {"surface": "openai", "platform": "openai", "model": "gpt-4o-mini"}
    assert delta(before, after, "torouter_requests_total", **labels, status="400") == 1
    upstream = [k for k in after if k[0] == "torouter_upstream_errors_total"]
    assert all(after[k] == before.get(k, 0.0) for k in upstream)


def test_metrics_need_no_key_and_show_no_credential(world: World) -> None:
    r = httpx.get(world.gateway.url + "/metrics")
    assert r.status_code == 200
    assert UPSTREAM_SECRET not in r.text and world.keys["openai"] not in r.text
    assert "torouter_upstream_account_state" in r.text and "emu-openai" in r.text


def test_readyz_reports_the_store_ready_and_redis_not_configured(world: World) -> None:
    r = httpx.get(world.gateway.url + "/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "store": "ok", "redis": "not configured"}


@pytest.fixture(scope="module")
def pool(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A gateway of its own, so account states are this module's alone: pairs of a first choice and a fallback."""
    workdir = tmp_path_factory.mktemp("metrics")
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here
    upstreams: list[dict[str, Any]] = []
    groups: list[dict[str, Any]] = []
    for name in ("cool", "lock"):
        for suffix, priority in (("a", 10), ("b", 0)):
            upstreams.append(
                {
                    "name": f"{name}-{suffix}",
                    "platform": "openai",
                    "base_url": emulator.openai_base_url,
                    "api_key": f"key-{name}-{suffix}",
                    "priority": priority,
                }
            )
        groups.append({"name": name, "platform": "openai", "upstreams": [f"{name}-a", f"{name}-b"]})
    upstreams.append({"name": "gone", "platform": "openai", "base_url": dead, "api_key": "key-gone"})
    groups.append({"name": "gone", "platform": "openai", "upstreams": ["gone"]})
    config = {
        "database_url": f"sqlite+aiosqlite:///{workdir / 'metrics.db'}",
        "usage_flush_interval": 0.2,
        "upstreams": upstreams,
        "groups": groups,
    }
    gw = GatewayServer(workdir, config)
    keys = seed_keys(gw.config_path, [g["name"] for g in groups])
    with gw:
        yield World(gw, emulator, keys, workdir / "metrics.db")


def chat(world: World, group: str) -> str:
    """One call; returns the request id its usage row keeps."""
    c = openai.OpenAI(api_key=world.keys[group], base_url=world.gateway.openai_base_url, max_retries=0)
    try:
        raw = c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"pool {group}"}]
        )
    except openai.APIStatusError as exc:
        return exc.response.headers["x-request-id"]
    return raw.headers["x-request-id"]


def test_failover_counts_the_failed_attempt_and_shows_the_account_cooling(pool: World) -> None:
    before = scrape(pool.gateway)
    pool.emulator.script(
        {"match": {"credential": "key-cool-a"}, "status": 503, "headers": {"retry-after": "60"}}
    )
    rid = chat(pool, "cool")
    (row,) = rows_for(pool, [rid])
    assert row["status_code"] == 200 and row["account_name"] == "cool-b" and row["attempts"] == 2
    after = scrape(pool.gateway)
    labels = {"surface": "openai", "platform": "openai", "model": "gpt-4o-mini"}
    assert delta(before, after, "torouter_requests_total", **labels, status="200") == 1
    assert delta(before, after, "torouter_upstream_errors_total", account="cool-a", status="503") == 1
    assert delta(before, after, "torouter_upstream_errors_total", account="cool-b", status="200") == 0
    states = account_states(after)
    assert states["cool-a"] == "cooldown" and states["cool-b"] == "active"


def test_an_account_the_upstream_refuses_shows_disabled(pool: World) -> None:
    before = scrape(pool.gateway)
    pool.emulator.script({"match": {"credential": "key-lock-a"}, "status": 401})
    rid = chat(pool, "lock")
    (row,) = rows_for(pool, [rid])
    assert row["status_code"] == 200 and row["account_name"] == "lock-b"
    after = scrape(pool.gateway)
    assert delta(before, after, "torouter_upstream_errors_total", account="lock-a", status="401") == 1
    assert account_states(after)["lock-a"] == "disabled"


def test_an_account_that_never_answers_is_an_upstream_error_with_status_0(pool: World) -> None:
    before = scrape(pool.gateway)
    rid = chat(pool, "gone")
    (row,) = rows_for(pool, [rid])
    assert row["status_code"] == 502 and row["error"] == "upstream_unreachable"
    after = scrape(pool.gateway)
    labels = {"surface": "openai", "platform": "openai", "model": "gpt-4o-mini"}
    assert delta(before, after, "torouter_requests_total", **labels, status="502") == 1
    assert row["account_name"] == "gone"  # the row names the account that never answered
    assert delta(before, after, "torouter_upstream_errors_total", account="gone", status="0") == 1


def test_readyz_answers_503_when_the_store_does_not_answer() -> None:
    # PostgreSQL on a port where nothing listens: refused at once, with no server to stop.
    url = f"postgresql://torouter:secret@127.0.0.1:{free_port()}/torouter"
    gateway = Gateway(Settings(database_url=url))

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=App(gateway))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                return await client.get("/readyz")
        finally:
            await gateway.engine.dispose()

    r = asyncio.run(main())
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "not ready" and body["redis"] == "not configured"
    assert body["store"].startswith("error: ") and "secret" not in r.text


@pytest.fixture
def redis_server() -> Iterator[str]:
    """A Redis of this test's own, so that it can be stopped under a running gateway."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_readyz_turns_503_when_redis_goes_away(
    redis_server: str, emulator: EmulatorServer, tmp_path: Path
) -> None:
    config = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'ready.db'}",
        "redis_url": redis_server,
        "upstreams": [
            {"name": "emu", "platform": "openai", "base_url": emulator.openai_base_url, "api_key": "k"}
        ],
        "groups": [{"name": "g", "platform": "openai", "upstreams": ["emu"]}],
    }
    with GatewayServer(tmp_path, config) as gw:
        r = httpx.get(gw.url + "/readyz")
        assert r.status_code == 200
        assert r.json() == {"status": "ready", "store": "ok", "redis": "ok"}
        redis.Redis.from_url(redis_server).shutdown(nosave=True)
        r = httpx.get(gw.url + "/readyz", timeout=10)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "not ready" and body["store"] == "ok"
        assert body["redis"].startswith("error: ")
        assert httpx.get(gw.url + "/healthz").status_code == 200  # alive, only not ready


class Redis:
    def __init__(self, delay: float = 0.0, fails: bool = False) -> None:
        self.delay, self.fails = delay, fails

    async def ping(self) -> bool:
        await asyncio.sleep(self.delay)
        if self.fails:
            raise ConnectionError("redis is down")
        return True


@pytest.mark.parametrize(
    ("redis", "ready", "status"),
    [
        (Redis(), True, "ok"),
        (Redis(fails=True), False, "error: ConnectionError"),
        (Redis(delay=5), False, "error: TimeoutError"),
    ],
)
def test_readiness_checks_redis_when_the_gateway_has_one(
    tmp_path: Any, redis: Redis, ready: bool, status: str
) -> None:
    gateway = Gateway(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/torouter.db"))

    async def main() -> tuple[bool, dict[str, str]]:
        try:
            return await readiness(SimpleNamespace(engine=gateway.engine, redis=redis), timeout=0.3)  # type: ignore[arg-type]
        finally:
            await gateway.engine.dispose()

    assert asyncio.run(main()) == (
        ready,
        {"status": "ready" if ready else "not ready", "store": "ok", "redis": status},
    )


def test_observing_a_batch_counts_as_observing_each_value() -> None:
    import random

    from prometheus_client import CollectorRegistry, Histogram

    from torouter.metrics import BUCKETS, observe_all

    rng = random.Random(7)
    values = [
        *BUCKETS,
        0.0,
        -1.0,
        1e9,
        *(b + 1e-9 for b in BUCKETS),
        *(rng.uniform(0, 400) for _ in range(500)),
    ]
    rng.shuffle(values)
    samples = []
    for batched in (False, True):
        registry = CollectorRegistry()
        child = Histogram("d", "d", ["m"], buckets=BUCKETS, registry=registry).labels("x")
        if batched:
            observe_all(child, values[:300])
            observe_all(child, values[300:])
        else:
            for v in values:
                child.observe(v)
        samples.append({(s.name, s.labels.get("le")): s.value for f in registry.collect() for s in f.samples})
    one_by_one, in_batches = samples
    assert one_by_one.keys() == in_batches.keys()
    for name, value in one_by_one.items():
        if name[0] == "d_created":  # when each histogram was made
            continue
        assert in_batches[name] == (pytest.approx(value) if name[0] == "d_sum" else value), name
    assert one_by_one[("d_count", None)] == len(values)

    seen: list[float] = []
    observe_all(SimpleNamespace(observe=seen.append), [0.5, 2.0])  # a client without those counters
    assert seen == [0.5, 2.0]


def _metric_samples(m: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    families = (m.requests, m.duration, m.ttft, m.tokens, m.cost, m.upstream_errors)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families
        for metric in family.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    }


def test_a_drained_batch_counts_as_counting_each_call_alone() -> None:
    """The drain reads a batch column by column; each call counted on its own must give the same."""
    import random

    from torouter.accounting.usage import Usage, usage_row
    from torouter.metrics import Metrics, upstream_failures

    rng = random.Random(11)
    failed_over = [
        {"account": "a1", "status": 503, "error": None},
        {"account": "a2", "status": 200, "error": None},
    ]

    def row() -> dict[str, Any]:
        stream = rng.random() < 0.5
        status = rng.choice((200, 200, 200, 400, 429, 500, 502))
        usage = Usage(*(rng.choice((0, rng.randint(1, 5000))) for _ in range(6))) if status < 400 else None
        return usage_row(
            request_id="r",
            created_at=0.0,
            key_id=1,
            key_name="k",
            group_name="g",
            account_name=rng.choice(("a1", "a2", "")),
            surface=rng.choice(("openai", "anthropic")),
            platform=rng.choice(("openai", "anthropic")),
            endpoint="/v1/x",
            model=rng.choice(("m1", "m2")),
            upstream_model="m",
            stream=stream,
            status_code=status,
            usage=usage,
            latency_ms=rng.choice((rng.uniform(0, 400_000), 5.0, 1000.0)),
            ttft_ms=rng.choice((None, rng.uniform(0, 5000))),  # counted for streams only
            attempts=1,
            error=rng.choice((None, "upstream_timeout", "upstream_auth_failed")) if status >= 400 else None,
            attempt_log=failed_over if rng.random() < 0.1 else None,
            cost_usd=rng.choice((0.0, rng.uniform(0, 2))),
        )

    gw = SimpleNamespace()
    batched, alone = Metrics(gw), Metrics(gw)  # type: ignore[arg-type]
    for size in (1, 7, 20, 300):  # a single series, and several
        rows = [row() for _ in range(size)]
        if size in (7, 20):
            for r in rows:
                r.update(surface="openai", platform="openai", model="m1")
        if size == 20:  # all served, some after failing over
            for i, r in enumerate(rows):
                r.update(status_code=200, error=None, attempt_log=failed_over if i % 3 else None)
        for r in rows:
            batched.observe_call(r)
            labels = (r["surface"], r["platform"], r["model"])
            alone.requests.labels(*labels, str(r["status_code"])).inc()
            alone.duration.labels(*labels).observe(r["latency_ms"] / 1000)
            if r["stream"] and r["ttft_ms"] is not None:
                alone.ttft.labels(*labels).observe(r["ttft_ms"] / 1000)
            for kind, name in TOKEN_TYPES.items():
                if r[name]:
                    alone.tokens.labels(*labels, kind).inc(r[name])
            if r["cost_usd"] > 0:
                alone.cost.labels(r["platform"], r["model"]).inc(r["cost_usd"])
            for failure in upstream_failures(r):
                alone.upstream_errors.labels(*failure).inc()
        batched.drain()
    got, want = _metric_samples(batched), _metric_samples(alone)
    assert got.keys() == want.keys()
    for name, value in want.items():
        assert got[name] == pytest.approx(value), name
    assert any(name[0] == "torouter_upstream_errors_total" for name in want)
    assert any(name[0] == "torouter_time_to_first_token_seconds_count" and v for name, v in want.items())
