"""Account pools: weights, failover on every fault kind, cooldowns, disabling, and cancellation."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import World, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer, free_port
from torouter.catalog import Account
from torouter.routing.health import Health
from torouter.routing.pool import order_candidates
from torouter.surfaces.passthrough import first_built

FAULTS = {
    "429": {"status": 429, "headers": {"retry-after": "30"}},
    "500": {"status": 500},
    "502": {"status": 502},
    "503": {"status": 503},
    "529": {"status": 529},
    "timeout": {"delay": 3},
    "reset": {"drop_before_headers": True},
}


def account(i: int, weight: int = 1, priority: int = 0) -> Account:
    return Account(i, f"a{i}", "openai", "http://x", "k", weight, priority, "active", (), {}, 0, 1, 1, 1)


def test_weights_converge_to_their_shares_over_1000_calls() -> None:
    pool = [account(1, weight=1), account(2, weight=3), account(3, weight=6)]
    rng = random.Random(7)
    firsts = Counter(order_candidates(pool, rng)[0].id for _ in range(1000))
    assert (
        firsts[1] == pytest.approx(100, abs=35)
        and firsts[2] == pytest.approx(300, abs=50)
        and firsts[3] == pytest.approx(600, abs=50)
    )


def test_higher_priority_tiers_come_first_and_cooling_accounts_are_skipped() -> None:
    high, low = account(1, priority=10), account(2, priority=0)
    assert [a.id for a in order_candidates([low, high])] == [1, 2]
    health = Health(base=60)
    health.failed(high, 500)
    assert [a.id for a in order_candidates([low, high], health=health)] == [2]
    health.failed(low, 429, retry_after=5)
    assert [a.id for a in order_candidates([low, high], health=health)] == [
        2
    ]  # all cooling: the soonest back
    health.failed(low, 401)
    assert order_candidates([low], health=health) == []  # disabled: never tried


def test_an_account_that_keeps_failing_cools_for_the_cap_and_no_longer() -> None:
    # A lone account is tried while it cools (there is nothing else): its failures keep counting,
    # far past the point where 2 ** failures overflows a float.
    lone = account(1)
    health = Health(base=1.0, cap=300.0)
    for _ in range(2000):
        health.failed(lone, 502)
    state = health.state(lone)
    assert state is not None and state.failures == 2000
    assert state.cooldown_until - time.time() == pytest.approx(300.0, abs=5)


@pytest.fixture(scope="module")
def pool_world(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A gateway whose groups each have a first-choice account (A) and a fallback (B), told apart by key."""
    workdir = tmp_path_factory.mktemp("pools")
    upstreams, groups = [], []
    for fault in [*FAULTS, "cooldown", "disable", "refused"]:
        base = f"http://127.0.0.1:{free_port()}/v1" if fault == "refused" else emulator.openai_base_url
        upstreams.append(
            {
                "name": f"{fault}-a",
                "platform": "openai",
                "base_url": base,
                "api_key": f"key-{fault}-a",
                "priority": 10,
                "timeouts": {"first_byte": 1.0},
            }
        )
        upstreams.append(
            {
                "name": f"{fault}-b",
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": f"key-{fault}-b",
            }
        )
        groups.append({"name": fault, "platform": "openai", "upstreams": [f"{fault}-a", f"{fault}-b"]})
    config = {
        "database_url": f"sqlite+aiosqlite:///{workdir / 'pools.db'}",
        "usage_flush_interval": 0.2,
        "upstreams": upstreams,
        "groups": groups,
    }
    gw = GatewayServer(workdir, config)
    keys = seed_keys(gw.config_path, [g["name"] for g in groups])
    with gw:
        yield World(gw, emulator, keys, workdir / "pools.db")


@pytest.fixture(autouse=True)
def _fresh(emulator: EmulatorServer) -> None:
    emulator.reset()


def chat(world: World, group: str) -> tuple[str, str]:
    """(answer text, the request id the usage record keeps)."""
    c = openai.OpenAI(api_key=world.keys[group], base_url=world.gateway.openai_base_url, max_retries=0)
    # A new conversation each time, so session affinity does not pin these calls to one account.
    content = f"pool {time.monotonic_ns()}"
    raw = c.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}]
    )
    return raw.parse().choices[0].message.content or "", raw.headers["x-request-id"]


def accounts_hit(world: World) -> list[str]:
    """Which account each upstream request came from: the accounts' credentials are key-<name>."""
    found = []
    for r in world.emulator.requests():
        credential = r["headers"].get("x-api-key") or r["headers"].get("authorization", "")
        if "key-" in credential:
            found.append(credential.split("key-")[1])
    return found


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failure_before_the_first_byte_moves_to_the_next_account(pool_world: World, fault: str) -> None:
    pool_world.emulator.script(FAULTS[fault])
    text, rid = chat(pool_world, fault)
    assert "pool" in text
    assert accounts_hit(pool_world) == [f"{fault}-a", f"{fault}-b"]
    row = next(r for r in pool_world.usage_rows([rid]) if r["request_id"] == rid)
    assert row["account_name"] == f"{fault}-b" and row["attempts"] == 2 and row["status_code"] == 200
    log = json.loads(row["attempt_log"])  # every attempt is in the one usage record
    assert [a["account"] for a in log] == [f"{fault}-a", f"{fault}-b"] and log[1]["status"] == 200
    assert log[0]["status"] == (int(fault) if fault.isdigit() else 0)


def test_connection_refused_moves_on_too(pool_world: World) -> None:
    assert "pool" in chat(pool_world, "refused")[0]
    assert accounts_hit(pool_world) == ["refused-b"]


def test_cooldown_skips_the_account_then_expires(pool_world: World) -> None:
    pool_world.emulator.script({"status": 429, "headers": {"retry-after": "1"}})
    chat(pool_world, "cooldown")
    chat(pool_world, "cooldown")
    assert accounts_hit(pool_world) == [
        "cooldown-a",
        "cooldown-b",
        "cooldown-b",
    ]  # A is cooling: not even tried
    listed = pool_world.gateway.cli("upstreams", "list").stdout
    assert "cooldown" in next(line for line in listed.splitlines() if "cooldown-a" in line)
    time.sleep(1.2)
    pool_world.emulator.reset()
    chat(pool_world, "cooldown")
    assert accounts_hit(pool_world) == ["cooldown-a"]  # back in service after retry-after


def test_an_upstream_401_disables_the_account_until_an_admin_enables_it(pool_world: World) -> None:
    pool_world.emulator.script({"status": 401, "error": {"message": "Incorrect API key provided"}})
    chat(pool_world, "disable")
    time.sleep(1.3)  # the health writer records it in the store
    listed = pool_world.gateway.cli("upstreams", "list").stdout
    line = next(line for line in listed.splitlines() if "disable-a" in line)
    assert "disabled" in line and "401" in line
    pool_world.emulator.reset()
    chat(pool_world, "disable")
    assert accounts_hit(pool_world) == ["disable-b"]
    pool_world.gateway.cli("upstreams", "enable", "disable-a")
    time.sleep(1.3)
    pool_world.emulator.reset()
    chat(pool_world, "disable")
    assert accounts_hit(pool_world) == ["disable-a"]


def test_client_disconnect_cancels_the_upstream_stream_quickly(world: World) -> None:
    world.emulator.script({"text": " ".join(f"w{i}" for i in range(40)), "chunk_delay": 0.2})
    with httpx.stream(
        "POST",
        world.gateway.openai_base_url + "/chat/completions",
        json={"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "long"}]},
        headers={"authorization": f"Bearer {world.keys['openai']}"},
    ) as r:
        chunks = r.iter_raw()
        next(chunks)
        next(chunks)
        closed_at = time.time()
    deadline = time.monotonic() + 3
    while True:
        rec = world.emulator.requests()[-1]
        if rec.get("disconnected") or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert rec.get("disconnected"), rec
    assert (
        rec["disconnected_at"] - closed_at < 0.1 + 0.2
    )  # within 100 ms, plus at most one chunk gap to notice
    deadline = time.monotonic() + 3
    while not (rows := [r for r in world.usage_rows() if r["error"] == "client_disconnected"]):
        assert time.monotonic() < deadline, "no usage row for the cancelled call"
        time.sleep(0.05)
    assert rows[-1]["status_code"] == 499 and rows[-1]["stream"]  # the part already streamed is recorded


@pytest.mark.parametrize("group", ["openai", "gpt-on-anthropic"])
def test_a_client_that_hangs_up_after_the_last_event_completed_its_call(world: World, group: str) -> None:
    # The upstream holds its end of body for a second after the terminal event, and the OpenAI SDK
    # closes as soon as it has read [DONE]: pass-through, and translated from Anthropic.
    world.emulator.script({"text": "all of it", "tail_delay": 1.0})
    started = time.monotonic()
    raw = openai.OpenAI(
        base_url=world.gateway.openai_base_url, api_key=world.keys[group]
    ).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "all of it"
    assert time.monotonic() - started < 1.0, "the client did not hang up before the upstream's end"
    request_id = raw.headers["x-request-id"]
    row = next(r for r in world.usage_rows([request_id]) if r["request_id"] == request_id)
    assert (row["status_code"], row["error"]) == (200, None)
    assert row["output_tokens"] > 0


def test_retry_limit_caps_the_attempts(tmp_path: Path, emulator: EmulatorServer) -> None:
    ups = [
        {
            "name": f"u{i}",
            "platform": "openai",
            "base_url": emulator.openai_base_url,
            "api_key": f"key-u{i}",
            "priority": 10 - i,
        }
        for i in range(4)
    ]
    config = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'r.db'}",
        "max_attempts": 2,
        "upstreams": ups,
        "groups": [{"name": "g", "platform": "openai", "upstreams": [u["name"] for u in ups]}],
    }
    gw = GatewayServer(tmp_path, config)
    keys = seed_keys(gw.config_path, ["g"])
    with gw:
        emulator.script({"status": 500, "times": 4})
        with pytest.raises(openai.InternalServerError):
            openai.OpenAI(
                api_key=keys["g"], base_url=gw.openai_base_url, max_retries=0
            ).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
    assert len(emulator.requests()) == 2


def test_vendor_prefixes_select_the_vendor(world: World) -> None:
    c = openai.OpenAI(api_key=world.keys["mapped"], base_url=world.gateway.openai_base_url, max_retries=0)
    c.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "p"}])
    assert world.emulator.requests()[-1]["body"]["model"] == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError) as exc:  # another vendor's prefix on an openai group
        c.chat.completions.create(model="anthropic/gpt-4o-mini", messages=[{"role": "user", "content": "p"}])
    assert "gpt-4o-mini" in exc.value.message
    import anthropic

    a = anthropic.Anthropic(api_key=world.keys["anthropic"], base_url=world.gateway.url, max_retries=0)
    a.messages.create(
        model="anthropic/claude-opus-4-7", max_tokens=5, messages=[{"role": "user", "content": "p"}]
    )
    assert world.emulator.requests()[-1]["body"]["model"] == "claude-opus-4-7"
    o = openai.OpenAI(api_key=world.keys["openrouter"], base_url=world.gateway.openai_base_url, max_retries=0)
    o.chat.completions.create(model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "p"}])
    assert world.emulator.requests()[-1]["body"]["model"] == "openai/gpt-4o-mini"  # OpenRouter ids pass whole


@pytest.mark.parametrize(
    "timeouts",
    [{"first_byte": 5, "idle": 0.4}, {"first_byte": 0.3, "idle": 0.5}],
    ids=["idle-shorter-than-first-byte", "idle-longer-than-first-byte"],
)
def test_idle_time_between_chunks_is_limited_per_upstream(
    emulator: EmulatorServer, tmp_path: Path, timeouts: dict[str, float]
) -> None:
    config = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'i.db'}",
        "upstreams": [
            {
                "name": "slow",
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": "k",
                "timeouts": timeouts,
            }
        ],
        "groups": [{"name": "g", "platform": "openai", "upstreams": ["slow"]}],
    }
    gw = GatewayServer(tmp_path, config)
    keys = seed_keys(gw.config_path, ["g"])
    with gw:
        emulator.script({"text": "one two three four", "chunk_delay": 1.0})
        c = openai.OpenAI(api_key=keys["g"], base_url=gw.openai_base_url, max_retries=0)
        started = time.monotonic()
        with pytest.raises(openai.APIError) as exc:
            for _ in c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True
            ):
                pass
        assert timeouts["idle"] <= time.monotonic() - started < 2.0
        assert "stopped answering" in str(exc.value)


def test_an_error_body_that_stalls_is_given_up_on(emulator: EmulatorServer, tmp_path: Path) -> None:
    config = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'e.db'}",
        "upstreams": [
            {
                "name": "stalls",
                "platform": "openai",
                "base_url": emulator.openai_base_url,
                "api_key": "k",
                "timeouts": {"first_byte": 0.3, "idle": 0.5},
            }
        ],
        "groups": [{"name": "g", "platform": "openai", "upstreams": ["stalls"]}],
    }
    gw = GatewayServer(tmp_path, config)
    keys = seed_keys(gw.config_path, ["g"])
    with gw:
        # The error's JSON comes 16 bytes at a time, 2 s apart.
        error = '{"error": {"message": "bad", "type": "invalid_request_error", "code": null}}'
        emulator.script(
            {
                "raw": {"status": 400, "body": error, "content_type": "application/json"},
                "drip": 16,
                "chunk_delay": 2,
            }
        )
        c = openai.OpenAI(api_key=keys["g"], base_url=gw.openai_base_url, max_retries=0)
        started = time.monotonic()
        with pytest.raises(openai.BadRequestError):
            c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
        assert 0.5 <= time.monotonic() - started < 2.0


@pytest.fixture(scope="module")
def affinity_world(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    workdir = tmp_path_factory.mktemp("affinity")
    ups = [
        {
            "name": f"aff-{i}",
            "platform": "anthropic",
            "base_url": emulator.url,
            "api_key": f"key-aff-{i}",
            "timeouts": {"first_byte": 1.0},
        }
        for i in range(3)
    ]
    config = {
        "database_url": f"sqlite+aiosqlite:///{workdir / 'aff.db'}",
        "usage_flush_interval": 0.2,
        "upstreams": ups,
        "groups": [{"name": "aff", "platform": "anthropic", "upstreams": [u["name"] for u in ups]}],
    }
    gw = GatewayServer(workdir, config)
    keys = seed_keys(gw.config_path, ["aff"])
    with gw:
        yield World(gw, emulator, keys, workdir / "aff.db")


def claude(world: World, session: str) -> None:
    claude_on(world, "aff", session)


def test_affinity_holds_across_20_calls_and_moves_when_its_account_fails(affinity_world: World) -> None:
    for _ in range(20):
        claude(affinity_world, "session-one")
    hits = accounts_hit(affinity_world)
    assert len(hits) == 20 and len(set(hits)) == 1, hits
    pinned = hits[0]
    # Other sessions spread over the pool (three accounts, equal weights).
    for i in range(12):
        claude(affinity_world, f"other-{i}")
    assert len(set(accounts_hit(affinity_world)[20:])) > 1
    affinity_world.emulator.reset()
    affinity_world.emulator.script({"status": 529})  # the pinned account fails once: it cools down
    claude(affinity_world, "session-one")
    moved = accounts_hit(affinity_world)
    assert moved[0] == pinned and moved[1] != pinned
    for _ in range(5):
        claude(affinity_world, "session-one")
    assert set(accounts_hit(affinity_world)[2:]) == {moved[1]}  # the session stays on its new account
    time.sleep(0.5)  # let the batch writer flush
    rows = [r for r in affinity_world.usage_rows() if r["session"] == "h:session-one"]
    assert len(rows) >= 26 and rows[-1]["account_name"] == moved[1] and rows[0]["account_name"] == pinned


def test_the_session_comes_from_the_first_source_present() -> None:
    from torouter.routing.affinity import session_of

    meta = {"metadata": {"user_id": '{"device_id":"d","session_id":"s-meta"}'}, "prompt_cache_key": "pck"}
    assert session_of([(b"x-claude-code-session-id", b"cc")], meta) == "h:cc"
    assert session_of([(b"session_id", b"codex")], meta) == "h:codex"
    assert session_of([], meta) == "m:s-meta"
    assert session_of([(b"x-session-affinity", b"mine")], {"prompt_cache_key": "pck"}) == "p:pck"
    assert session_of([(b"x-session-affinity", b"mine")], {}) == "a:mine"
    one = session_of(
        [],
        {"system": "s", "messages": [{"role": "user", "content": "first"}, {"role": "user", "content": "x"}]},
    )
    two = session_of(
        [],
        {"system": "s", "messages": [{"role": "user", "content": "first"}, {"role": "user", "content": "y"}]},
    )
    assert one == two and one.startswith("c:")


def test_session_pins_survive_a_restart(emulator: EmulatorServer, tmp_path: Path) -> None:
    ups = [
        {"name": f"p{i}", "platform": "anthropic", "base_url": emulator.url, "api_key": f"key-p{i}"}
        for i in range(3)
    ]
    config = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'pins.db'}",
        "usage_flush_interval": 0.2,
        "upstreams": ups,
        "groups": [{"name": "g", "platform": "anthropic", "upstreams": [u["name"] for u in ups]}],
    }
    gw = GatewayServer(tmp_path, config)
    keys = seed_keys(gw.config_path, ["g"])
    world = World(gw, emulator, keys, tmp_path / "pins.db")
    with gw:
        for _ in range(3):
            claude_on(world, "g", "kept-session")
    pinned = set(accounts_hit(world))
    assert len(pinned) == 1
    with sqlite3.connect(tmp_path / "pins.db") as db:
        assert (
            db.execute("SELECT count(*) FROM session_pins WHERE session = 'h:kept-session'").fetchone()[0]
            == 1
        )
    emulator.reset()
    with GatewayServer(tmp_path / "again", {**config}) as gw2:  # a new process on the same store
        world2 = World(gw2, emulator, keys, tmp_path / "pins.db")
        for _ in range(10):
            claude_on(world2, "g", "kept-session")
    assert set(accounts_hit(world2)) == pinned


def claude_on(world: World, group: str, session: str) -> None:
    import anthropic

    c = anthropic.Anthropic(
        api_key=world.keys[group],
        base_url=world.gateway.url,
        max_retries=0,
        default_headers={"x-claude-code-session-id": session},
    )
    c.messages.create(model="claude-opus-4-7", max_tokens=5, messages=[{"role": "user", "content": "hi"}])


def test_a_pin_moves_when_its_account_turns_slow(affinity_world: World) -> None:
    claude(affinity_world, "slowpoke")
    pinned = accounts_hit(affinity_world)[-1]
    for i in range(12):  # the other accounts answer quickly meanwhile
        claude(affinity_world, f"quick-{i}")
    affinity_world.emulator.reset()
    affinity_world.emulator.script({"match": {"credential": f"key-{pinned}"}, "delay": 0.8, "times": 10})
    for _ in range(5):
        claude(affinity_world, "slowpoke")
    hits = accounts_hit(affinity_world)
    assert hits[0] == pinned  # slow once is not enough to move
    assert hits[-1] != pinned and hits[-2] == hits[-1]  # it moved, and stays on the new account


def test_the_first_accounts_request_is_built_once_and_the_others_each_for_themselves() -> None:
    built: list[int] = []

    def build(account: Account) -> tuple[str, dict[str, str], bytes]:
        built.append(account.id)
        return f"http://up/{account.id}", {"authorization": f"Bearer {account.credential}{account.id}"}, b"{}"

    first, second = account(1), account(2)
    once = first_built(build, [first, second])
    assert built == [1]  # for the estimate, before any attempt
    assert once(first) == once(first) == ("http://up/1", {"authorization": "Bearer k1"}, b"{}")
    assert built == [1]
    assert once(second)[0] == "http://up/2" and built == [1, 2]
    assert first_built(build, []) is build


def test_a_lone_account_is_tried_only_while_usable() -> None:
    health = Health()
    lone = account(1)
    assert order_candidates([lone], health=health) == [lone]
    health.failed(lone, 503)  # cooling down: still the one to try, as the one that recovers first
    assert order_candidates([lone], health=health) == [lone]
    health.failed(lone, 401)  # refused by the upstream: disabled, nothing to try
    assert order_candidates([lone], health=health) == []
    lone.status = "disabled"
    assert order_candidates([lone]) == []


def test_a_groups_model_answers_are_kept_and_its_refusals_are_not() -> None:
    from torouter.catalog import GroupEntry
    from torouter.errors import GatewayError
    from torouter.routing.models import resolve

    a, b = account(1), account(2)
    a.models, b.models = ("gpt-4o*",), ("o3",)
    group = GroupEntry(1, "g", "openai", {}, {"fast": "gpt-4o-mini"}, 1.0, 0, 0, accounts=[a, b])
    first = resolve(group, "fast")
    assert first == ("gpt-4o-mini", [a]) and resolve(group, "fast") is first
    assert resolve(group, "openai/o3") == ("o3", [b])
    for _ in range(2):  # refused each time, and never kept
        with pytest.raises(GatewayError):
            resolve(group, "nope")
        with pytest.raises(GatewayError):
            resolve(group, "fast", ("o3",))  # a key allowed only o3
    assert resolve(group, "o3", ("o3",)) == ("o3", [b])
    assert set(group.resolved) == {("fast", ()), ("openai/o3", ()), ("o3", ("o3",))}
