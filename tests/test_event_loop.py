"""The event loop's listening sockets: a busy worker accepts a burst of connections in batches.

Real sockets on loopback throughout: the kernel holds connections in a listening socket's queue
until the loop accepts them, so a test can line them up first and then watch them taken.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Iterator

import pytest

from torouter import event_loop
from torouter.event_loop import Loop, new_event_loop, queued


class Counting(asyncio.Protocol):
    """Counts connections made, and answers each byte with the same byte."""

    made: list[float]

    def __init__(self, made: list[float]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(time.perf_counter())
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)  # type: ignore[attr-defined]


@pytest.fixture
def loop() -> Iterator[Loop]:
    loop = new_event_loop()
    yield loop
    loop.close()


def _listener(backlog: int = 512) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


def _line_up(port: int, n: int) -> list[socket.socket]:
    """n client connections, complete on the kernel's side, waiting to be accepted."""
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    time.sleep(0.05)
    return clients


def _close(clients: list[socket.socket]) -> None:
    for c in clients:
        c.close()


def test_a_busy_loop_accepts_a_burst_within_a_few_turns(loop: Loop) -> None:
    """Every turn of this loop runs 5 ms, like a loaded worker's. 200 connections arrive at once.
    One accepted per turn, the last would wait 200 turns (over a second); in batches, a few."""
    made: list[float] = []
    sock = _listener()
    server = loop.run_until_complete(loop.create_server(lambda: Counting(made), sock=sock, backlog=512))

    def busy() -> None:
        time.sleep(0.005)
        loop.call_soon(busy)

    loop.call_soon(busy)
    clients = _line_up(sock.getsockname()[1], 200)
    start = time.perf_counter()

    async def all_made() -> None:
        while len(made) < 200 and time.perf_counter() - start < 5:
            await asyncio.sleep(0)

    loop.run_until_complete(all_made())
    waited = time.perf_counter() - start
    server.close()
    _close(clients)
    assert len(made) == 200
    assert waited < 0.4, f"200 waiting connections took {waited:.2f} s to accept"


def test_a_lone_worker_takes_all_that_wait_and_one_of_several_its_share(loop: Loop) -> None:
    sock = _listener()
    server = loop.run_until_complete(loop.create_server(lambda: Counting([]), sock=sock, backlog=512))
    port = sock.getsockname()[1]
    accept = server._accept  # type: ignore[attr-defined]  # one readiness of the socket

    def taken(waiting: int, acceptors: int) -> int:
        loop.acceptors = acceptors
        clients = _line_up(port, waiting)
        try:
            before = queued(sock)
            accept(sock)
            return before - queued(sock)
        finally:
            while queued(sock):
                accept(sock)
            _close(clients)

    assert taken(5, 1) == 5
    assert taken(100, 1) == event_loop.ACCEPT_BATCH
    # Several workers on the socket: one each time it is readable, so idle workers share a
    # burst as they wake; past a backlog, this worker's share of it.
    assert taken(5, 2) == 1
    assert taken(event_loop.BACKLOG, 2) == event_loop.BACKLOG // 2
    assert taken(60, 3) == 20
    server.close()


def test_queued_counts_a_listening_sockets_waiting_connections() -> None:
    sock = _listener()
    clients = _line_up(sock.getsockname()[1], 7)
    try:
        assert queued(sock) == 7
        sock.accept()[0].close()
        assert queued(sock) == 6
    finally:
        _close(clients)
        sock.close()
    assert queued(socket.socket(socket.AF_UNIX)) == 0  # not TCP: unknown, so none


def test_a_server_on_a_host_and_port_answers_and_stops_listening_when_closed(loop: Loop) -> None:
    server = loop.run_until_complete(
        loop.create_server(lambda: Counting([]), host="127.0.0.1", port=0, backlog=16)
    )
    assert server.is_serving() and server.get_loop() is loop
    (sock,) = server.sockets
    port = sock.getsockname()[1]

    async def echo() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        data = await reader.readexactly(4)
        writer.close()
        return data

    assert loop.run_until_complete(echo()) == b"ping"
    server.close()
    loop.run_until_complete(server.wait_closed())
    assert not server.is_serving() and server.sockets == ()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_binding_a_taken_port_fails_and_leaves_nothing_open(loop: Loop) -> None:
    taken = _listener()
    with pytest.raises(OSError) as caught:
        loop.run_until_complete(
            loop.create_server(
                lambda: Counting([]), host="127.0.0.1", port=taken.getsockname()[1], reuse_address=False
            )
        )
    assert caught.value.errno == errno.EADDRINUSE
    taken.close()


class _Flaky(socket.socket):
    """A listening socket whose accept fails as told, then works."""

    def __init__(self, fileno: int, failures: list[int]) -> None:
        super().__init__(fileno=fileno)
        self.failures = failures

    def accept(self) -> tuple[socket.socket, object]:
        if self.failures:
            raise OSError(self.failures.pop(0), "planted")
        return super().accept()


def test_out_of_descriptors_pauses_accepting_then_resumes(
    loop: Loop, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(event_loop, "RETRY_AFTER", 0.2)
    made: list[float] = []
    sock = _Flaky(_listener().detach(), [errno.EMFILE])
    server = loop.run_until_complete(loop.create_server(lambda: Counting(made), sock=sock))
    clients = _line_up(sock.getsockname()[1], 1)
    start = time.perf_counter()
    loop.run_until_complete(asyncio.sleep(0.1))
    assert made == []  # paused: the loop does not spin on the readable socket meanwhile
    loop.run_until_complete(asyncio.sleep(0.3))
    assert len(made) == 1 and made[0] - start >= 0.2
    assert "cannot accept connections" in caplog.text
    server.close()
    _close(clients)


def test_a_connection_gone_before_it_is_accepted_is_skipped(loop: Loop) -> None:
    made: list[float] = []
    sock = _Flaky(_listener().detach(), [errno.ECONNABORTED])
    server = loop.run_until_complete(loop.create_server(lambda: Counting(made), sock=sock))
    clients = _line_up(sock.getsockname()[1], 2)
    loop.run_until_complete(asyncio.sleep(0.1))
    assert len(made) == 2
    server.close()
    _close(clients)


def test_unix_sockets_are_left_to_uvloop(loop: Loop, tmp_path: object) -> None:
    path = f"{tmp_path}/s"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    server = loop.run_until_complete(loop.create_server(lambda: Counting([]), sock=unix))
    assert not isinstance(server, event_loop.Server)
    server.close()


@pytest.mark.parametrize("workers", [1, 3])
def test_serve_runs_each_worker_on_this_loop_knowing_how_many_share_the_port(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torouter import server
    from torouter.config import parse_settings

    seen: dict[str, object] = {}
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: seen.update(options))
    monkeypatch.setattr(server, "_prepare_store", lambda settings: None)
    monkeypatch.setattr(server, "_hand_over", lambda settings, metrics_dir: None)
    monkeypatch.setattr(server, "create_app", lambda settings: object())
    server.run(parse_settings({}, "<test>"), workers=workers)
    made = seen["loop"]()  # type: ignore[operator]  # uvicorn calls it in each worker
    try:
        assert isinstance(made, Loop) and made.acceptors == workers
    finally:
        made.close()


def test_a_protocol_that_fails_to_start_closes_its_connection_and_the_next_is_served(
    loop: Loop, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[float] = []
    calls: list[int] = []

    def factory() -> Counting:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("planted")
        return Counting(made)

    sock = _listener()
    server = loop.run_until_complete(loop.create_server(factory, sock=sock))
    first = socket.create_connection(sock.getsockname())
    loop.run_until_complete(asyncio.sleep(0.1))
    first.settimeout(1)
    assert first.recv(1) == b""  # closed by the server, not left hanging
    second = socket.create_connection(sock.getsockname())
    loop.run_until_complete(asyncio.sleep(0.1))
    assert len(made) == 1
    assert "an accepted connection failed to start" in caplog.text
    server.close()
    _close([first, second])


def test_a_setup_that_waits_more_than_once_is_driven_to_its_end(loop: Loop) -> None:
    """uvloop's setup waits once; one that waited more (a later uvloop) still runs to the end."""
    done: list[str] = []

    async def setup() -> None:
        first, second = loop.create_future(), loop.create_future()
        loop.call_soon(first.set_result, None)
        await first
        await asyncio.sleep(0)  # a bare yield
        loop.call_soon(second.set_result, None)
        await second
        done.append("set up")

    assert event_loop._drive(loop, setup())
    loop.run_until_complete(asyncio.sleep(0.05))
    assert done == ["set up"]


def test_serve_forever_serves_until_cancelled_then_stops_listening(loop: Loop) -> None:
    made: list[float] = []
    server = loop.run_until_complete(loop.create_server(lambda: Counting(made), host="127.0.0.1", port=0))
    port = server.sockets[0].getsockname()[1]
    serving = loop.create_task(server.serve_forever())
    client = socket.create_connection(("127.0.0.1", port))
    loop.run_until_complete(asyncio.sleep(0.1))
    assert len(made) == 1 and server.is_serving()
    serving.cancel()
    loop.run_until_complete(asyncio.gather(serving, return_exceptions=True))
    assert not server.is_serving()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    client.close()
