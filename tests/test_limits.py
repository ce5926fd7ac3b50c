"""Budgets, rate limits, concurrency caps and cost, in-process and in Redis, through the real SDKs."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

from tests.conftest import UPSTREAM_SECRET, gateway_config, make_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from tests.services import need

REDIS_TEST_URL = "redis://127.0.0.1:6379/9"


def flush_test_redis(url: str = REDIS_TEST_URL) -> None:
    """Empty a Redis database of its own, so runs and test files never see each other's counters."""
    need("Redis", "127.0.0.1", 6379)
    import redis

    redis.Redis.from_url(url).flushdb()


KEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "rpm3": ("openai", {"rpm": 3}),
    "rpm3-anthropic": ("anthropic", {"rpm": 3}),
    "rpm1-gemini": ("gemini", {"rpm": 1}),
    "tpm": ("openai", {"tpm": 2000}),
    "conc2": ("openai", {"max_concurrency": 2}),
    "budget": ("openai", {"budget_usd": 0.001, "budget_period": "daily"}),
    "budget-anthropic": ("anthropic", {"budget_usd": 0.001}),
    "budget-gemini": ("gemini", {"budget_usd": 0.0001, "budget_period": "monthly"}),
    "race": ("openai", {"budget_usd": 0.002}),
    "group-a": ("group-rpm", {}),
    "group-b": ("group-rpm", {}),
    "group-budget": ("group-budget", {}),
    "caps": ("capped-accounts", {}),
    "rpm-accounts": ("rpm-accounts", {}),
    "tpm-account": ("tpm-account", {}),
    "plain": ("openai", {}),
    "multiplied": ("multiplied", {}),
    "anthropic-plain": ("anthropic", {}),
}


@dataclass
class Limited:
    gateway: GatewayServer
    emulator: EmulatorServer
    keys: dict[str, str]
    db_path: Path
    backend: str

    def oai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.openai_base_url, api_key=self.keys[key], max_retries=0)

    def rows(self, request_ids: list[str], wait: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + wait
        while True:
            with sqlite3.connect(self.db_path) as db:
                db.row_factory = sqlite3.Row
                marks = ",".join("?" * len(request_ids))
                rows = [
                    dict(r)
                    for r in db.execute(
                        f"SELECT * FROM usage_records WHERE request_id IN ({marks})", request_ids
                    )
                ]
            if len(rows) == len(request_ids) or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


@pytest.fixture(scope="module", params=["memory", "redis"])
def limited(request: pytest.FixtureRequest, emulator: EmulatorServer, tmp_path_factory) -> Iterator[Limited]:
    workdir = tmp_path_factory.mktemp(f"limits-{request.param}")
    db_path = workdir / "torouter.db"
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{db_path}")
    if request.param == "redis":
        flush_test_redis()
        config["redis_url"] = REDIS_TEST_URL
    for name in ("cap-a", "cap-b"):
        config["upstreams"].append(
            {
                "name": name,
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": f"{UPSTREAM_SECRET}-{name}",
                "max_concurrency": 1,
            }
        )
    for name, caps in (("rpm-a", {"rpm": 1}), ("rpm-b", {"rpm": 1}), ("tpm-a", {"tpm": 1000})):
        config["upstreams"].append(
            {
                "name": name,
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": f"{UPSTREAM_SECRET}-{name}",
                **caps,
            }
        )
    config["groups"] += [
        {"name": "rpm-accounts", "platform": "openai", "upstreams": ["rpm-a", "rpm-b"]},
        {"name": "tpm-account", "platform": "openai", "upstreams": ["tpm-a"]},
        {"name": "group-rpm", "platform": "openai", "upstreams": ["emu-openai"], "rpm": 2},
        {
            "name": "group-budget",
            "platform": "openai",
            "upstreams": ["emu-openai"],
            "budget_usd": 0.0005,
            "budget_period": "weekly",
        },
        {"name": "capped-accounts", "platform": "openai", "upstreams": ["cap-a", "cap-b"]},
        {"name": "multiplied", "platform": "openai", "upstreams": ["emu-openai"], "price_multiplier": 1.5},
    ]
    gw = GatewayServer(workdir, config)
    keys = make_keys(gw.config_path, KEYS)
    with gw:
        yield Limited(gw, emulator, keys, db_path, request.param)


def chat(world: Limited, key: str, **extra: Any) -> Any:
    return world.oai(key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], **extra
    )


def test_rpm_is_enforced_with_openai_headers_and_error(limited: Limited) -> None:
    remaining = []
    for _ in range(3):
        raw = chat(limited, "rpm3")
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
        assert raw.headers["x-ratelimit-reset-requests"].endswith("s")
    assert remaining == ["2", "1", "0"]
    upstream_calls = len(limited.emulator.requests())
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "rpm3")
    err = caught.value
    assert err.status_code == 429 and err.code == "rate_limit_exceeded"
    assert "requests per minute" in err.message and "Limit 3" in err.message
    assert 1 <= int(err.response.headers["retry-after"]) <= 60
    assert len(limited.emulator.requests()) == upstream_calls, "a refused call reached the upstream"


def test_rpm_on_the_anthropic_surface_uses_anthropic_headers(limited: Limited) -> None:
    client = anthropic.Anthropic(
        base_url=limited.gateway.url, api_key=limited.keys["rpm3-anthropic"], max_retries=0
    )
    for left in ("2", "1", "0"):
        raw = client.messages.with_raw_response.create(
            model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "3"
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == left
        assert raw.headers["anthropic-ratelimit-requests-reset"].endswith("Z")
        assert "x-ratelimit-limit-requests" not in raw.headers
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 429
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_rpm_on_the_gemini_surface_is_resource_exhausted(limited: Limited) -> None:
    client = genai.Client(api_key=limited.keys["rpm1-gemini"], http_options={"base_url": limited.gateway.url})
    client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"


def test_tpm_counts_the_tokens_calls_used(limited: Limited) -> None:
    limited.emulator.script({"usage": {"input_tokens": 1600, "output_tokens": 400}})
    raw = chat(limited, "tpm")
    assert raw.headers["x-ratelimit-limit-tokens"] == "2000"
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "tpm")
    assert "tokens per minute" in caught.value.message and "Used 2000" in caught.value.message


def test_a_group_limit_is_shared_by_its_keys(limited: Limited) -> None:
    chat(limited, "group-a")
    chat(limited, "group-b")
    for key in ("group-a", "group-b"):
        with pytest.raises(openai.RateLimitError) as caught:
            chat(limited, key)
        assert "on this group" in caught.value.message


def _slow_stream(world: Limited, key: str, results: list[Any], start: threading.Event) -> None:
    start.wait()
    try:
        stream = world.oai(key).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "slow"}], stream=True
        )
        results.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    except openai.RateLimitError as exc:
        results.append(exc)


def wait_for_upstream_calls(world: Limited, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(world.emulator.requests()) < n:
        assert time.monotonic() < deadline, "the calls never reached the upstream"
        time.sleep(0.02)


def test_concurrency_cap_refuses_the_call_over_it_and_frees_slots(limited: Limited) -> None:
    limited.emulator.script({"text": "one two three four", "chunk_delay": 0.3, "times": 2})
    results: list[Any] = []
    start = threading.Event()
    threads = [
        threading.Thread(target=_slow_stream, args=(limited, "conc2", results, start)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    start.set()
    wait_for_upstream_calls(limited, 2)  # both streams are running now
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "conc2")
    assert "concurrent" in caught.value.message
    for t in threads:
        t.join()
    assert results == ["one two three four"] * 2
    chat(limited, "conc2")  # the slots came back


def test_account_caps_spread_calls_then_refuse_when_all_are_full(limited: Limited) -> None:
    limited.emulator.script({"text": "a b c", "chunk_delay": 0.4, "times": 2})
    results: list[Any] = []
    start = threading.Event()
    threads = [
        threading.Thread(target=_slow_stream, args=(limited, "caps", results, start)) for _ in range(2)
    ]
    for t in threads:
        t.start()
    start.set()
    wait_for_upstream_calls(limited, 2)
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "caps")
    assert caught.value.code == "upstream_capacity"
    for t in threads:
        t.join()
    assert results == ["a b c"] * 2
    credentials = {r["headers"]["authorization"].split()[-1] for r in limited.emulator.requests()[-2:]}
    assert credentials == {f"{UPSTREAM_SECRET}-cap-a", f"{UPSTREAM_SECRET}-cap-b"}, "both accounts served one"


def test_account_rpm_caps_move_calls_to_the_next_account_then_refuse(limited: Limited) -> None:
    chat(limited, "rpm-accounts")
    chat(limited, "rpm-accounts")
    served = [r["headers"]["authorization"].split()[-1] for r in limited.emulator.requests()]
    assert sorted(served) == [f"{UPSTREAM_SECRET}-rpm-a", f"{UPSTREAM_SECRET}-rpm-b"]
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "rpm-accounts")
    assert caught.value.code == "upstream_capacity"
    assert len(limited.emulator.requests()) == 2


def test_an_account_tpm_cap_counts_the_tokens_it_served(limited: Limited) -> None:
    limited.emulator.script({"usage": {"input_tokens": 800, "output_tokens": 200}})
    chat(limited, "tpm-account")
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "tpm-account")
    assert caught.value.code == "upstream_capacity"


def test_cost_is_priced_from_each_vendors_usage_buckets(limited: Limited) -> None:
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million; cached tokens are inside prompt tokens.
    limited.emulator.script(
        {"usage": {"input_tokens": 10_000, "cached_tokens": 4_000, "output_tokens": 2_000}}
    )
    oai = chat(limited, "plain")
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 5-minute write, $6 1-hour write, $15 output.
    limited.emulator.script(
        {
            "usage": {
                "input_tokens": 10_000,
                "cached_tokens": 3_000,
                "cache_creation_tokens": 2_000,
                "output_tokens": 1_000,
            }
        }
    )
    client = anthropic.Anthropic(
        base_url=limited.gateway.url, api_key=limited.keys["anthropic-plain"], max_retries=0
    )
    ant = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
    limited.emulator.script({"usage": {"input_tokens": 10_000, "output_tokens": 2_000}})
    mult = chat(limited, "multiplied")
    ids = [oai.headers["x-request-id"], ant.headers["request-id"], mult.headers["x-request-id"]]
    rows = {r["request_id"]: r for r in limited.rows(ids)}
    assert rows[ids[0]]["cost_usd"] == pytest.approx((6_000 * 0.15 + 4_000 * 0.075 + 2_000 * 0.60) / 1e6)
    assert rows[ids[1]]["cost_usd"] == pytest.approx(
        (5_000 * 3 + 3_000 * 0.30 + 2_000 * 3.75 + 1_000 * 15) / 1e6
    )
    assert rows[ids[2]]["cost_usd"] == pytest.approx(1.5 * (10_000 * 0.15 + 2_000 * 0.60) / 1e6)
    assert not any(r["estimated"] for r in rows.values())


def test_a_cut_stream_without_usage_is_estimated_and_flagged(limited: Limited) -> None:
    limited.emulator.script({"text": "alpha beta gamma delta epsilon zeta eta theta", "drop_after": 4})
    raw = httpx.post(
        limited.gateway.openai_base_url + "/chat/completions",
        json={
            "model": "gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "count these words"}],
        },
        headers={"authorization": f"Bearer {limited.keys['plain']}"},
    )
    (row,) = limited.rows([raw.headers["x-request-id"]])
    assert row["estimated"] and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert row["cost_usd"] > 0


@pytest.mark.parametrize(
    ("key", "surface"),
    [("budget", "openai"), ("budget-anthropic", "anthropic"), ("budget-gemini", "gemini")],
)
def test_an_exhausted_budget_is_refused_before_any_upstream_call(
    limited: Limited, key: str, surface: str
) -> None:
    # The first call is admitted (nothing spent yet) and costs more than the whole budget.
    limited.emulator.script({"usage": {"input_tokens": 50_000, "output_tokens": 20_000}})
    if surface == "openai":
        chat(limited, key)
    elif surface == "anthropic":
        client = anthropic.Anthropic(base_url=limited.gateway.url, api_key=limited.keys[key], max_retries=0)
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        )
    else:
        gclient = genai.Client(api_key=limited.keys[key], http_options={"base_url": limited.gateway.url})
        gclient.models.generate_content(model="gemini-2.5-flash", contents="hi")
    before = len(limited.emulator.requests())
    if surface == "openai":
        with pytest.raises(openai.RateLimitError) as caught:
            chat(limited, key)
        assert caught.value.code == "insufficient_quota" and "budget" in caught.value.message
        assert "resets at" in caught.value.message  # a daily budget says when it comes back
    elif surface == "anthropic":
        with pytest.raises(anthropic.RateLimitError) as caught_a:
            client.messages.create(
                model="claude-sonnet-4-5", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
            )
        assert caught_a.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    else:
        with pytest.raises(genai_errors.ClientError) as caught_g:
            gclient.models.generate_content(model="gemini-2.5-flash", contents="hi")
        assert caught_g.value.code == 429 and caught_g.value.status == "RESOURCE_EXHAUSTED"
    assert len(limited.emulator.requests()) == before


def test_a_group_budget_covers_all_its_keys(limited: Limited) -> None:
    limited.emulator.script({"usage": {"input_tokens": 5_000, "output_tokens": 1_000}})
    chat(limited, "group-budget")  # $0.00135 > the group's $0.0005
    with pytest.raises(openai.RateLimitError) as caught:
        chat(limited, "group-budget")
    assert caught.value.code == "insufficient_quota" and "group" in caught.value.message


def test_concurrent_calls_overspend_by_at_most_one_reservation(limited: Limited) -> None:
    # A call reserves its body's size / 4 input tokens plus max_tokens of output. Here each body is
    # ~2,100 bytes (~525 tokens reserved) and really uses 500 in + 250 out: $0.000225 of gpt-4o-mini.
    limited.emulator.script({"usage": {"input_tokens": 500, "output_tokens": 250}, "delay": 0.3, "times": 20})
    prompt = "word " * 420
    outcomes: list[Any] = []
    start = threading.Event()

    def one() -> None:
        start.wait()
        try:
            raw = limited.oai("race").chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": prompt}], max_tokens=250
            )
            outcomes.append(raw.headers["x-request-id"])
        except openai.RateLimitError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join()
    done = [o for o in outcomes if isinstance(o, str)]
    refused = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    assert len(done) + len(refused) == 20 and refused
    assert all(e.code == "insufficient_quota" for e in refused)
    spent = sum(r["cost_usd"] for r in limited.rows(done))
    size = len(b'{"messages":[{"role":"user","content":""}],"model":"gpt-4o-mini","max_tokens":250}') + len(
        prompt
    )
    reservation = (size // 4 * 0.15 + 250 * 0.60) / 1e6
    assert spent <= 0.002 + reservation + 1e-12, (spent, len(done))
    assert spent > 0.002 - 0.000225 - 1e-12, "the budget was not used up"
