"""uvicorn's httptools protocol, with what an answer writes in one step of the loop sent at once.

uvicorn writes an answer's head the moment the app starts it and its body with the next message:
two sends, two segments, two wake-ups of the client. Under load, each of those sends also wakes
the client for one answer at a time. Here a connection's writes within one step of the event
loop are held and sent together when the step ends: one send for a JSON answer, and under load
the answers of one step leave together, after the bookkeeping that follows them.

A call alone on its worker does not wait for that bookkeeping: its answer goes out the moment it
is complete. Nothing waits on anything but the current step: a stream's head and each of its
events leave before the loop waits for the upstream again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class StepTransport:
    """A connection's transport whose writes within one step of the loop go out as one."""

    __slots__ = ("_held", "_loop", "_tasks", "_transport")

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, tasks: set[Any]
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._tasks = tasks  # the worker's calls in progress
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            held.append(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def answered(self) -> None:
        """An answer is complete: alone on the worker, it need not wait for the step's end."""
        if len(self._tasks) <= 1:
            self.flush()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport, as it is
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a StepTransport."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(StepTransport(transport, self.loop, self.tasks))  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        self.transport.answered()  # type: ignore[attr-defined]
        super().on_response_complete()
