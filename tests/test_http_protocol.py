"""The server's transport sends what an answer writes in one step of the loop at once, and holds
nothing past that step."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import Any

import orjson
import uvloop

from tests.conftest import World
from torouter.http_protocol import StepTransport


class Recorder:
    """The socket side: what reached it, in order."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        assert not self.closing, "written after close"
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 8080) if name == "sockname" else default


def step_transport(calls: int = 1) -> tuple[StepTransport, Recorder]:
    socket_side = Recorder()
    loop = asyncio.get_running_loop()
    return StepTransport(socket_side, loop, set(range(calls))), socket_side  # type: ignore[arg-type]


async def next_step() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_writes_of_one_step_go_out_as_one_when_it_ends() -> None:
    async def main() -> None:
        transport, socket_side = step_transport(calls=2)
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"body")
        assert socket_side.sent == []
        await next_step()
        assert socket_side.sent == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        transport.write(b"later")  # the next step's write is not held past it either
        await next_step()
        assert socket_side.sent[1:] == [b"later"]

    uvloop.run(main())


def test_an_answer_alone_on_the_worker_goes_out_when_complete() -> None:
    async def main() -> None:
        transport, socket_side = step_transport(calls=1)
        transport.write(b"head")
        transport.write(b"body")
        transport.answered()
        assert socket_side.sent == [b"headbody"]  # before the step's bookkeeping, not after

        busy, busy_side = step_transport(calls=3)
        busy.write(b"head")
        busy.answered()
        assert busy_side.sent == []  # under load, with the other answers of the step
        await next_step()
        assert busy_side.sent == [b"head"]

    uvloop.run(main())


def test_close_sends_what_is_held_first_and_nothing_after() -> None:
    async def main() -> None:
        transport, socket_side = step_transport(calls=2)
        transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        transport.close()
        assert socket_side.sent == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and socket_side.closing
        assert transport.is_closing()
        transport.write(b"too late")
        await next_step()  # held, then dropped: the connection is gone
        assert socket_side.sent == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
        assert transport.get_extra_info("sockname") == ("127.0.0.1", 8080)

    uvloop.run(main())


DATA_SEGMENTS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info (4.6 and later)


def data_segments_in(conn: socket.socket) -> int:
    info = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int.from_bytes(info[DATA_SEGMENTS_IN : DATA_SEGMENTS_IN + 4], sys.byteorder)


def test_a_json_answer_reaches_the_client_in_one_segment(world: World) -> None:
    """Head and body in one send: one segment with data reaches the client, not two."""
    body = orjson.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + world.keys["openai"].encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )
    with socket.create_connection(("127.0.0.1", world.gateway.port), timeout=10) as conn:
        for calls in range(1, 4):  # on one keep-alive connection, as clients call
            conn.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < length_of(answer):
                piece = conn.recv(1 << 20)
                assert piece, f"the connection closed mid-answer: {answer!r}"
                answer += piece
            head, _, rest = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert orjson.loads(rest)["object"] == "chat.completion"
            assert data_segments_in(conn) == calls


def length_of(answer: bytes) -> int:
    head = answer.partition(b"\r\n\r\n")[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30
