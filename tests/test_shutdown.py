"""SIGTERM loses nothing: new calls are refused, calls in flight finish, and every answered call is recorded.

uvicorn ends a process stopped by SIGTERM by raising SIGTERM again once its shutdown is complete,
so a clean stop exits with -SIGTERM, with "Application shutdown complete" in the log.
"""

from __future__ import annotations

import signal
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import gateway_config, seed_keys
from tests.emulator_harness import EmulatorServer
from tests.gateway_harness import GatewayServer
from torouter.config import ConfigError, load_settings

CLEAN_STOP = -signal.SIGTERM


def start_gateway(
    emulator: EmulatorServer, tmp_path: Path, **settings: Any
) -> tuple[GatewayServer, dict[str, str]]:
    """A gateway of its own (each test stops it), whose usage rows only the shutdown flush writes."""
    db = f"sqlite+aiosqlite:///{tmp_path / 'usage.db'}"
    gw = GatewayServer(tmp_path, gateway_config(emulator, db, usage_flush_interval=3600, **settings))
    keys = seed_keys(gw.config_path, ["openai", "gpt-on-anthropic"])
    return gw.start(), keys


def usage_rows(tmp_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(tmp_path / "usage.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM usage_records ORDER BY id")]


def chat(key: str, text: str, *, stream: bool) -> dict[str, Any]:
    return {
        "url": "/v1/chat/completions",
        "headers": {"authorization": f"Bearer {key}"},
        "json": {"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": text}]},
    }


def sigterm(gw: GatewayServer) -> None:
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGTERM)


def wait_exit(gw: GatewayServer, timeout: float) -> int:
    assert gw.proc is not None
    return gw.proc.wait(timeout=timeout)


@dataclass
class Outcomes:
    """What the clients saw, call by call."""

    completed: list[str] = field(default_factory=list)  # request ids of calls answered in full
    refused: int = 0  # failed before any answer: connection refused, reset or closed unread
    cut: list[str] = field(default_factory=list)  # an answer that began and did not end
    other: list[str] = field(default_factory=list)  # any other status or body
    lock: threading.Lock = field(default_factory=threading.Lock)


def test_sigterm_under_load_records_exactly_the_calls_clients_saw_complete(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    # Streams take a few tenths of a second, so some are always in flight when SIGTERM comes.
    emulator.script({"match": {"stream": True}, "chunk_delay": 0.03, "times": 1000})
    gw, keys = start_gateway(emulator, tmp_path)
    seen = Outcomes()
    two_hundred_done = threading.Event()

    def one_call(client: httpx.Client, i: int) -> None:
        key = keys["openai"] if i % 3 else keys["gpt-on-anthropic"]  # pass-through and translated
        stream = i % 2 == 0
        began = False
        try:
            with client.stream("POST", **chat(key, f"call {i}", stream=stream)) as r:
                began = True
                rid = r.headers.get("x-request-id", "")
                if stream:
                    lines = [line for line in r.iter_lines() if line]
                    ok = r.status_code == 200 and lines[-1:] == ["data: [DONE]"]
                else:
                    body = r.read()
                    ok = r.status_code == 200 and bool(httpx.Response(200, content=body).json()["choices"])
        except httpx.TransportError:
            with seen.lock:
                if began:
                    seen.cut.append(f"call {i}")
                else:
                    seen.refused += 1
            return
        with seen.lock:
            if ok:
                seen.completed.append(rid)
                if len(seen.completed) == 200:
                    two_hundred_done.set()
            else:
                seen.other.append(f"call {i}: {r.status_code}")

    def terminate() -> None:
        two_hundred_done.wait(30)
        sigterm(gw)

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        with (
            httpx.Client(base_url=gw.url, timeout=10) as client,
            ThreadPoolExecutor(max_workers=16) as pool,
        ):
            list(pool.map(lambda i: one_call(client, i), range(500)))
        killer.join()
        code = wait_exit(gw, 30)
    finally:
        gw.stop(signal.SIGKILL)
    assert code == CLEAN_STOP, gw.log()[-3000:]
    assert "Application shutdown complete" in gw.log()
    # SIGTERM really came mid-run: some calls finished after it, and later ones were refused.
    assert 200 < len(seen.completed) < 500 and seen.refused > 0
    assert seen.cut == [] and seen.other == []  # no call was answered by halves
    recorded = [r["request_id"] for r in usage_rows(tmp_path) if r["status_code"] == 200]
    assert len(recorded) == len(seen.completed)
    assert set(seen.completed) - set(recorded) == set()


def test_a_stream_in_flight_at_sigterm_finishes_and_is_recorded_while_new_connections_are_refused(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    gw, keys = start_gateway(emulator, tmp_path)
    # A keep-alive connection that has made one call and sits idle when SIGTERM comes.
    idle = socket.create_connection(("127.0.0.1", gw.port))
    idle.sendall(raw_chat(keys["openai"], "before the signal"))
    first = read_response(idle)
    assert first.startswith(b"HTTP/1.1 200") and b"connection: close" not in first.lower()

    words = [f"w{i}" for i in range(10)]
    emulator.script({"text": " ".join(words), "chunk_delay": 0.2})
    try:
        with httpx.stream("POST", gw.url + "/v1/chat/completions", **stream_args(keys["openai"])) as r:
            lines = r.iter_lines()
            received = [next(lines)]
            sigterm(gw)
            assert refused_within(gw.port, 2.0), "a new connection was still accepted after SIGTERM"
            # The idle connection was closed: a call sent on it is not read, and gets no answer at all.
            assert answer_on(idle, raw_chat(keys["openai"], "after the signal")) == b""
            received += list(lines)
            rid = r.headers["x-request-id"]
        code = wait_exit(gw, 15)
    finally:
        idle.close()
        gw.stop(signal.SIGKILL)
    assert r.status_code == 200
    data = [line for line in received if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    content = "".join(
        c["delta"].get("content") or ""
        for line in data[:-1]
        for c in httpx.Response(200, content=line[6:]).json()["choices"]
    )
    assert content == " ".join(words)
    assert code == CLEAN_STOP, gw.log()[-3000:]
    rows = usage_rows(tmp_path)
    assert [(row["request_id"], row["status_code"]) for row in rows if row["request_id"] == rid] == [
        (rid, 200)
    ]
    assert len(rows) == 2  # the call made before the signal, and the stream; none for the unread call


@pytest.mark.parametrize("group", ["openai", "gpt-on-anthropic"])
def test_a_stream_longer_than_the_grace_is_cut_and_still_recorded(
    emulator: EmulatorServer, tmp_path: Path, group: str
) -> None:
    gw, keys = start_gateway(emulator, tmp_path, shutdown_grace=1)
    emulator.script({"text": " ".join(f"w{i}" for i in range(40)), "chunk_delay": 0.2})  # 8 s
    try:
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("POST", gw.url + "/v1/chat/completions", **stream_args(keys[group])) as r,
        ):
            rid = r.headers["x-request-id"]
            lines = r.iter_lines()
            next(lines)
            sigterm(gw)
            signalled = time.monotonic()
            for line in lines:
                assert line != "data: [DONE]"
        code = wait_exit(gw, 10)
        took = time.monotonic() - signalled
    finally:
        gw.stop(signal.SIGKILL)
    assert took < 1 + 3, f"exited {took:.1f}s after SIGTERM with a 1s grace"
    assert code == CLEAN_STOP, gw.log()[-3000:]
    assert "timeout graceful shutdown exceeded" in gw.log()
    rows = usage_rows(tmp_path)
    assert [(row["request_id"], row["status_code"], row["error"]) for row in rows] == [
        (rid, 502, "shutdown_grace_exceeded")
    ]


def test_shutdown_grace_comes_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "torouter.yaml"
    path.write_text("shutdown_grace: 5\n")
    monkeypatch.delenv("TOROUTER_CONFIG", raising=False)
    monkeypatch.delenv("TOROUTER_SHUTDOWN_GRACE", raising=False)
    assert load_settings(path).shutdown_grace == 5.0
    assert load_settings().shutdown_grace == 30.0
    monkeypatch.setenv("TOROUTER_SHUTDOWN_GRACE", "2.5")
    assert load_settings(path).shutdown_grace == 2.5
    for bad in ("soon", "-1"):
        monkeypatch.setenv("TOROUTER_SHUTDOWN_GRACE", bad)
        with pytest.raises(ConfigError, match="shutdown_grace"):
            load_settings(path)


def stream_args(key: str) -> dict[str, Any]:
    args = chat(key, "long", stream=True)
    del args["url"]
    return {**args, "timeout": 15}


def refused_within(port: int, timeout: float) -> bool:
    """uvicorn checks for the signal every 0.1 s; after that, connecting must fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.05)
    return False


def raw_chat(key: str, text: str) -> bytes:
    body = httpx.Request("POST", "http://x", json=chat(key, text, stream=False)["json"]).read()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def answer_on(sock: socket.socket, request: bytes) -> bytes:
    """What a connection sends back to `request`: b"" when it was closed without reading it."""
    sock.settimeout(2)
    try:
        sock.sendall(request)
        return sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""


def read_response(sock: socket.socket) -> bytes:
    """One whole response with a content-length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body
