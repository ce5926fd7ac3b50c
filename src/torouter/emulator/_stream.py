"""The one response class the emulator sends: a body in frames, with scripted timing and faults.

It is plain ASGI so each frame reaches the socket as it is produced (nothing is buffered), and
so it can watch for the client going away and cut the connection on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from torouter.emulator._encoding import encode_frames

MALFORMED_DATA = b'data: {"truncated": '


def malformed_frame(frame: bytes) -> bytes:
    """The same frame with its JSON cut short: keeps the `event:` line so SDKs try to parse it."""
    terminator = b"\r\n\r\n" if frame.endswith(b"\r\n\r\n") else b"\n\n"
    if not frame.lstrip().startswith((b"event:", b"data:")):
        return b'{"truncated": '  # a JSON-array stream (Gemini without alt=sse)
    head = frame.split(b"\n", 1)[0] + b"\n" if frame.startswith(b"event:") else b""
    return head + MALFORMED_DATA + terminator


class EmulatorResponse:
    """Send `frames` with optional delay, spacing, a late end, a mid-stream drop or no response.

    `content_encoding` compresses the frames (each still flushed on its own); `drip` then re-cuts
    the body into pieces of that many bytes, so `chunk_delay` and `drop_after` count pieces.
    """

    def __init__(
        self,
        *,
        status: int,
        frames: list[bytes],
        content_type: str,
        headers: Mapping[str, str] | None = None,
        record: dict[str, Any] | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        tail_delay: float = 0.0,
        drop_after: int | None = None,
        drop_before_headers: bool = False,
        malformed_at: int | None = None,
        streaming: bool = False,
        content_encoding: str | None = None,
        drip: int | None = None,
    ) -> None:
        self.status = status
        self.frames = list(frames)
        if malformed_at is not None and 0 <= malformed_at < len(self.frames):
            self.frames[malformed_at] = malformed_frame(self.frames[malformed_at])
        self.headers = dict(headers or {})
        self.headers["content-type"] = content_type
        if content_encoding is not None:
            self.frames = encode_frames(self.frames, content_encoding)
            self.headers["content-encoding"] = content_encoding
        if drip is not None:
            body = b"".join(self.frames)
            self.frames = [body[i : i + drip] for i in range(0, len(body), drip)]
        if streaming:
            self.headers.setdefault("cache-control", "no-cache")
        else:
            self.headers["content-length"] = str(sum(len(f) for f in self.frames))
        self.record = record if record is not None else {}
        self.delay = delay
        self.chunk_delay = chunk_delay
        self.tail_delay = tail_delay
        self.drop_after = drop_after
        self.drop_before_headers = drop_before_headers
        self._finished = False
        self._dropping = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()
        listener = asyncio.create_task(self._watch_disconnect(receive, gone))
        try:
            await self._send_all(receive, send, gone)
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _watch_disconnect(self, receive: Receive, gone: asyncio.Event) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # uvicorn also says "disconnect" once the response is complete; that is not a cancel.
                if not self._finished and not self._dropping:
                    self.record["disconnected"] = True
                    self.record["disconnected_at"] = time.time()
                gone.set()
                return

    async def _send_all(self, receive: Receive, send: Send, gone: asyncio.Event) -> None:
        if await _pause(self.delay, gone):
            return
        if self.drop_before_headers:
            await self._drop(receive)
            return
        raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw_headers})
        for index, frame in enumerate(self.frames):
            if self.drop_after is not None and index >= self.drop_after:
                await self._drop(receive)
                return
            if index and await _pause(self.chunk_delay, gone):
                return
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        if self.drop_after is not None and self.drop_after >= len(self.frames) and self.frames:
            await self._drop(receive)  # a drop after the last frame still leaves the body unfinished
            return
        # The last event is out; the end of the body comes later, as behind some proxies.
        self._finished = True
        if await _pause(self.tail_delay, gone):
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _drop(self, receive: Receive) -> None:
        """Close the TCP connection under uvicorn, without finishing the chunked body."""
        self._dropping = True
        self.record["dropped"] = True
        cycle = getattr(receive, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            raise RuntimeError("emulator connection drop needs uvicorn's transport")
        transport.close()  # flushes what was written, then closes: the client sees a cut body
        for _ in range(100):
            if getattr(cycle, "disconnected", True):
                return
            await asyncio.sleep(0.01)


async def _pause(seconds: float, gone: asyncio.Event) -> bool:
    """Sleep, waking early if the client leaves; True when it left."""
    if seconds <= 0:
        await asyncio.sleep(0)  # lets the disconnect watcher run between back-to-back frames
        return gone.is_set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gone.wait(), timeout=seconds)
    return gone.is_set()
