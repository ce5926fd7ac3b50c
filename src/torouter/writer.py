"""The shape every write-behind component shares: flush on a timer, and finish cleanly on stop.

Stopping never cancels a flush that is under way (its batch would be lost with it): the timer
is stopped, the flush in progress is awaited, and whatever is still pending is flushed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger("torouter.writer")


class BackgroundWriter:
    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._name = name
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[None] | None = None

    async def flush(self) -> None:
        raise NotImplementedError

    async def tick(self) -> None:
        """One round of background work; writers with housekeeping add to it."""
        await self.flush()

    async def wait(self) -> None:
        """Until the next round; a writer may wake sooner when much is pending."""
        await asyncio.sleep(self._interval)

    def start_writing(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while True:
            await self.wait()
            self._inflight = asyncio.ensure_future(self.tick())
            try:
                await asyncio.shield(self._inflight)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round retries; what failed stays pending
                log.warning("%s: %s", self._name, type(exc).__name__)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inflight is not None and not self._inflight.done():
            with contextlib.suppress(Exception):
                await self._inflight
        with contextlib.suppress(Exception):
            await self.flush()
