"""uvloop, with the connections waiting on a listening socket accepted in batches.

libuv accepts one connection per turn of the loop (libuv#3696: most turns find only one). Under
load a turn runs for milliseconds, so a burst of new connections, such as a client's pool
reconnecting, waits in the kernel's queue one turn per connection. Measured on one worker
serving 256 clients, 150 fresh connections waited 0.3 to 2 s for their first answer while the
others were served. Here the loop watches the listening socket itself and, each time it is
readable, accepts a share of what waits in its queue: all of it (up to `ACCEPT_BATCH`) for a
worker alone on the socket, and 1/N of it for one of N workers sharing it.

The share keeps workers sharing their connections. A worker that takes all it finds at every
wake put all 32 of a benchmark's new connections on one of two idle workers, and, once both were
busy, a burst on the one whose turn ended first. With 1/N, the worker whose turns are shorter
comes back sooner and takes more. TLS, sockets other than TCP, and servers that do not start at
once are left to uvloop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from typing import Any

import uvloop

log = logging.getLogger("torouter.server")

ACCEPT_BATCH = 64  # connections accepted at most per readiness of the listening socket
BACKLOG = 32  # waiting connections past which one of several workers takes its share, not one
RETRY_AFTER = 1.0  # seconds: accepting pauses this long when the process is out of descriptors
# accept() failures of one connection that is already gone: the next may be fine
_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
_OUT_OF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Loop(uvloop.Loop):  # type: ignore[misc]  # uvloop's Loop is typed as Any
    def __init__(self, acceptors: int = 1) -> None:
        super().__init__()
        self.acceptors = max(1, acceptors)  # processes accepting on the same listening sockets

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | Iterable[str] | None = None,
        port: int | None = None,
        *,
        family: int = socket.AF_UNSPEC,
        flags: int = socket.AI_PASSIVE,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
        start_serving: bool = True,
        **tls: Any,
    ) -> asyncio.AbstractServer:
        tcp = sock is None or (
            sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM
        )
        if ssl is not None or tls or not start_serving or not tcp:
            return await super().create_server(
                protocol_factory, host, port, family=family, flags=flags, sock=sock, backlog=backlog,
                ssl=ssl, reuse_address=reuse_address, reuse_port=reuse_port,
                start_serving=start_serving, **tls,
            )  # fmt: skip
        if sock is not None:
            sockets = [sock]
        else:
            sockets = await self._bind(host, port, family, flags, reuse_address, reuse_port)
        server = Server(self, sockets, protocol_factory, backlog)
        server.start()
        return server

    async def _bind(
        self,
        host: str | Iterable[str] | None,
        port: int | None,
        family: int,
        flags: int,
        reuse_address: bool | None,
        reuse_port: bool | None,
    ) -> list[socket.socket]:
        """A listening socket per address the host resolves to, as asyncio binds them."""
        hosts: list[str | None] = [host] if host is None or isinstance(host, str) else list(host)
        infos: set[tuple[Any, ...]] = set()
        for name in hosts:
            infos.update(
                await self.getaddrinfo(
                    name or None, port, family=family, type=socket.SOCK_STREAM, flags=flags
                )
            )
        sockets: list[socket.socket] = []
        try:
            for af, kind, proto, _, address in sorted(infos, key=lambda info: info[0]):
                sock = socket.socket(af, kind, proto)
                sockets.append(sock)
                if reuse_address is not False:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if af == socket.AF_INET6:  # only v6 here: "::" must not take the v4 port as well
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                try:
                    sock.bind(address)
                except OSError as exc:
                    why = f"error while attempting to bind on address {address!r}: {exc.strerror}"
                    raise OSError(exc.errno, why) from None
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        if not sockets:
            raise OSError(f"no address to listen on for {host!r}")
        return sockets


class Server(asyncio.AbstractServer):
    """Listening sockets whose connections the loop accepts in batches and hands to uvloop."""

    def __init__(
        self,
        loop: Loop,
        sockets: list[socket.socket],
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        backlog: int,
    ) -> None:
        self._loop = loop
        self._sockets = sockets
        self._factory = protocol_factory
        self._backlog = backlog
        self._serving = False
        self._closed = False

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self._closed else tuple(self._sockets)

    def start(self) -> None:
        for sock in self._sockets:
            sock.setblocking(False)
            sock.listen(self._backlog)
            self._loop.add_reader(sock.fileno(), self._accept, sock)
        self._serving = True

    def _accept(self, sock: socket.socket) -> None:
        waiting, acceptors = queued(sock), self._loop.acceptors
        share = waiting if acceptors == 1 else waiting // acceptors if waiting >= BACKLOG else 1
        for _ in range(min(max(share, 1), ACCEPT_BATCH)):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _GONE:
                    continue
                if exc.errno in _OUT_OF:
                    log.error("cannot accept connections (%s): again in %g s", exc.strerror, RETRY_AFTER)
                    self._loop.remove_reader(sock.fileno())
                    self._loop.call_later(RETRY_AFTER, self._resume, sock)
                    return
                log.error("cannot accept a connection: %s", exc.strerror)
                return
            self._connect(conn)

    def _connect(self, conn: socket.socket) -> None:
        conn.setblocking(False)  # uvloop's transport sets TCP_NODELAY, as on what it accepts itself
        setup = self._loop.connect_accepted_socket(self._factory, conn)
        # uvloop sets the connection up before the coroutine's first wait, which only waits for
        # connection_made: driving it here, not in a task, saves a task per connection.
        if not _drive(self._loop, setup) and conn.fileno() >= 0:
            conn.close()  # it failed before uvloop took the socket

    def _resume(self, sock: socket.socket) -> None:
        if not self._closed:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def close(self) -> None:
        if self._closed:
            return
        self._closed, self._serving = True, False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if not self._serving and not self._closed:
            self.start()

    async def serve_forever(self) -> None:
        await self.start_serving()
        closed = self._loop.create_future()
        try:
            await closed  # until cancelled, as asyncio's does
        finally:
            self.close()

    async def wait_closed(self) -> None:
        return  # uvicorn waits for its connections itself


def _drive(loop: asyncio.AbstractEventLoop, setup: Any) -> bool:
    """One step of a coroutine, then the next whenever what it waits for is done, as a task
    would run it. False once it has failed."""
    try:
        waiting = setup.send(None)
    except StopIteration:
        return True
    except Exception:
        log.exception("an accepted connection failed to start")
        return False
    if waiting is None:  # a bare yield: go on at the next turn
        loop.call_soon(_drive, loop, setup)
    else:
        waiting.add_done_callback(lambda _: _drive(loop, setup))
    return True


# struct tcp_info up to tcpi_unacked, which for a listening socket is its accept queue's length
_TCP_INFO = struct.Struct("24xI")


def queued(sock: socket.socket) -> int:
    """Connections waiting in a listening socket's accept queue (Linux); 0 where unknown."""
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
    except (OSError, AttributeError):
        return 0
    return _TCP_INFO.unpack_from(info)[0] if len(info) >= _TCP_INFO.size else 0


def new_event_loop(acceptors: int = 1) -> Loop:
    """The loop for a worker that is one of `acceptors` processes on the same sockets."""
    return Loop(acceptors)
