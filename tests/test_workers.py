"""`torouter serve --workers N`: N processes on one port that behave as one gateway.

Every call here opens a fresh connection, so the kernel hands calls to both workers; the checks
are the ones that would break if a worker kept to itself what the others need.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import gateway_config, make_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from tests.services import need
from torouter.server import cpu_cores

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello workers"}]}
WORKERS = 2


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    kids: list[int] = []
    for task in tasks.iterdir():
        text = (task / "children").read_text().split()
        kids += [int(k) for k in text]
    return kids


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def metrics_dir(pid: int) -> Path:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [e.split(b"=", 1)[1] for e in env if e.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    assert found, "the supervisor handed this worker no metrics directory"
    return Path(found[0].decode())


def workers_of(gw: GatewayServer) -> list[int]:
    assert gw.proc is not None
    deadline = time.monotonic() + 10
    while True:
        # uvicorn's supervisor may hold a resource-tracker child too: workers are the ones that serve.
        kids = [k for k in children(gw.proc.pid) if b"resource_tracker" not in cmdline(k)]
        if len(kids) >= gw.workers or time.monotonic() > deadline:  # type: ignore[operator]
            return kids
        time.sleep(0.1)


def fresh(method: str, url: str, **kwargs: object) -> httpx.Response:
    """One call on its own connection, so that either worker may accept it."""
    with httpx.Client(timeout=10) as client:
        return client.request(method, url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pair(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    workdir = tmp_path_factory.mktemp("workers")
    db = workdir / "torouter.db"
    gw = GatewayServer(workdir, gateway_config(emulator, f"sqlite+aiosqlite:///{db}"), workers=WORKERS)
    keys = make_keys(gw.config_path, {g: (g, {}) for g in ("openai", "gpt-on-anthropic")})
    with gw:
        yield gw, keys, db


def usage_ids(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT request_id FROM usage_records")}


def metric_writers(pid: int) -> set[int]:
    """The worker pids that have written a metrics file."""
    return {int(m.group(1)) for f in metrics_dir(pid).iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))}


def test_workers_share_the_port_and_every_call_is_accounted(pair: tuple) -> None:
    gw, keys, db = pair
    pids = workers_of(gw)
    assert len(pids) == WORKERS, pids
    ids = []
    for _ in range(40):
        r = fresh("POST", gw.url + "/v1/chat/completions", json=CHAT, headers=auth(keys["openai"]))
        assert r.status_code == 200, r.text
        ids.append(r.headers["x-request-id"])
    assert len(set(ids)) == len(ids), "two workers handed out the same request id"
    # Both workers served calls: each writes its own metrics file (counted within a flush interval).
    deadline = time.monotonic() + 5
    while not set(pids) <= (served := metric_writers(pids[0])):
        assert time.monotonic() < deadline, (pids, served)
        time.sleep(0.1)
    while not set(ids) <= usage_ids(db):
        assert time.monotonic() < deadline, "usage rows of some worker were never written"
        time.sleep(0.1)


def test_metrics_add_up_across_workers(pair: tuple) -> None:
    gw, keys, _ = pair

    def total() -> float:
        text = fresh("GET", gw.url + "/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("torouter_requests_total{")
            and 'surface="openai"' in line
            and 'status="200"' in line
        )

    # Calls of earlier tests may still wait in a worker's queue (each counts within a second):
    # start from a total that held for longer than that.
    before = total()
    while True:
        time.sleep(1.2)
        later = total()
        if later == before:
            break
        before = later
    for _ in range(12):
        assert fresh(
            "POST", gw.url + "/v1/chat/completions", json=CHAT, headers=auth(keys["openai"])
        ).is_success
    # Each worker counts its calls within a flush interval; then whichever worker answers the
    # scrape reports the calls of both.
    deadline = time.monotonic() + 5
    while (seen := total()) != before + 12:
        assert seen < before + 12 and time.monotonic() < deadline, (before, seen)
        time.sleep(0.1)
    for _ in range(6):
        assert total() == before + 12


def test_a_capture_is_found_whichever_worker_answers(pair: tuple) -> None:
    gw, keys, _ = pair
    key = keys["gpt-on-anthropic"]
    r = fresh(
        "POST", gw.url + "/v1/chat/completions", json=CHAT, headers={**auth(key), "x-torouter-capture": "1"}
    )
    assert r.status_code == 200
    for _ in range(10):
        found = fresh("GET", f"{gw.url}/torouter/captures/{r.headers['x-request-id']}", headers=auth(key))
        assert found.status_code == 200, found.text
        assert found.json()["upstream"]["path"] == "/v1/messages"


def test_previous_response_id_works_across_workers(pair: tuple, emulator: EmulatorServer) -> None:
    gw, keys, _ = pair
    key = keys["gpt-on-anthropic"]
    previous = None
    for turn in ("My name is Ada.", "What is my name?", "Again?", "Once more?"):
        body = {"model": "gpt-4o", "input": turn, **({"previous_response_id": previous} if previous else {})}
        r = fresh("POST", gw.url + "/v1/responses", json=body, headers=auth(key))
        assert r.status_code == 200, r.text
        previous = r.json()["id"]
    sent = json.dumps(emulator.requests()[-1]["body"])
    assert all(t in sent for t in ("My name is Ada.", "What is my name?", "Again?", "Once more?"))


def test_a_revoked_key_stops_on_every_worker(pair: tuple) -> None:
    gw, _, _ = pair
    key = gw.create_key("openai")
    deadline = time.monotonic() + 5
    while fresh("GET", gw.url + "/v1/models", headers=auth(key)).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    gw.cli("keys", "revoke", key)
    time.sleep(2.5)  # key_refresh_interval is 1 s: every worker has reloaded by now
    codes = {fresh("GET", gw.url + "/v1/models", headers=auth(key)).status_code for _ in range(12)}
    assert codes == {401}


def test_sigterm_stops_every_worker_and_flushes_their_usage(emulator: EmulatorServer, tmp_path: Path) -> None:
    db = tmp_path / "torouter.db"
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{db}", usage_flush_interval=60)
    gw = GatewayServer(tmp_path, config, workers=WORKERS)
    key = make_keys(gw.config_path, {"k": ("openai", {})})["k"]
    gw.start()
    pids = workers_of(gw)
    ids = [
        fresh("POST", gw.url + "/v1/chat/completions", json=CHAT, headers=auth(key)).headers["x-request-id"]
        for _ in range(10)
    ]
    assert gw.stop(signal.SIGTERM) == 0
    assert not [p for p in pids if Path(f"/proc/{p}").exists()], "a worker outlived the supervisor"
    assert set(ids) <= usage_ids(db), "the flush interval is 60 s: only the shutdown flush wrote them"


def test_serve_runs_one_worker_per_core_by_default(emulator: EmulatorServer, tmp_path: Path) -> None:
    gw = GatewayServer(
        tmp_path, gateway_config(emulator, f"sqlite+aiosqlite:///{tmp_path / 'torouter.db'}"), workers=None
    )
    with gw:
        gw.workers = cpu_cores()
        assert len(workers_of(gw)) == cpu_cores()
        assert fresh("GET", gw.url + "/healthz").status_code == 200


@pytest.mark.redis
def test_limits_hold_across_workers_with_redis(emulator: EmulatorServer, tmp_path: Path) -> None:
    need("Redis", "127.0.0.1", 6379)
    import redis

    url = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(url).flushdb()
    config = gateway_config(emulator, f"sqlite+aiosqlite:///{tmp_path / 'torouter.db'}", redis_url=url)
    gw = GatewayServer(tmp_path, config, workers=WORKERS)
    key = make_keys(gw.config_path, {"k": ("openai", {"rpm": 5})})["k"]
    with gw:
        codes = [
            fresh("POST", gw.url + "/v1/chat/completions", json=CHAT, headers=auth(key)).status_code
            for _ in range(12)
        ]
    assert codes.count(200) == 5 and codes.count(429) == 7, codes


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_worker_count_resolution() -> None:
    from torouter.config import parse_settings
    from torouter.server import worker_count

    assert worker_count(parse_settings({}, "x")) == cpu_cores()
    assert worker_count(parse_settings({"workers": 3}, "x")) == 3
    assert worker_count(parse_settings({"workers": 3}, "x"), 1) == 1
    assert worker_count(parse_settings({"workers": 0}, "x")) == cpu_cores()
    # The cores this process may run on, not the machine's: pinned to one core, one worker.
    pinned = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
    pinned += "from torouter.server import cpu_cores; print(cpu_cores())"
    done = subprocess.run([sys.executable, "-c", pinned], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "1"
