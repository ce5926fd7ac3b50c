"""A deadline for one upstream attempt: asyncio.timeout's behaviour, at a fraction of its cost.

Every call enters one, around the wait for the upstream's headers and first bytes. asyncio.timeout
is an async context manager with a state machine and a reschedule step; on the proxy's hot path
that was some 3% of the event loop's time. This is a plain context manager with one timer: when
it fires, it cancels the task, and on the way out a cancellation it caused (and no one else's)
becomes TimeoutError, exactly as asyncio.timeout decides it.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    """`with Deadline(seconds):` inside a task; raises TimeoutError if the block outlasts it."""

    __slots__ = ("_cancelling", "_delay", "_fired", "_handle", "_loop", "_task")

    def __init__(self, delay: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """`loop`, when the caller knows it, spares asking for the running loop: on Python 3.11
        that is a getpid system call each time."""
        self._delay = delay
        self._fired = False
        self._loop = loop

    def __enter__(self) -> Deadline:
        task = asyncio.current_task(self._loop)
        if task is None:
            raise RuntimeError("Deadline must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._handle = (self._loop or task.get_loop()).call_later(self._delay, self._fire)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.cancel()
        # As asyncio.timeout: the cancellation is ours to turn into a timeout only if nobody else
        # asked for one meanwhile.
        if self._fired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()


class IdleWatch(Deadline):
    """`with IdleWatch(seconds, loop) as watch:` around a stream's reads: TimeoutError once one read
    has waited `seconds`. Around each read, `watch.reading = loop.time()`, then `watch.reading = 0.0`.

    One timer for the whole stream, re-armed only when it fires, where aiohttp's sock_read re-arms
    one for every packet received. Time spent outside a read, such as writing to a slow client,
    never counts.
    """

    __slots__ = ("reading",)

    def __init__(self, delay: float, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(delay, loop)
        self.reading = 0.0  # when the read under way began; 0.0: none is

    def _fire(self) -> None:
        loop = self._task.get_loop()
        since = self.reading
        due = (since or loop.time()) + self._delay
        if since and due <= loop.time():
            super()._fire()
        else:
            self._handle = loop.call_at(due, self._fire)
