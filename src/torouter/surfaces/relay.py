"""Writing an upstream's answer back to the client: whole JSON bodies, or SSE as it arrives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

import aiohttp

from torouter.accounting.usage import Usage
from torouter.errors import GatewayError
from torouter.surfaces.asgi import JSON, SSE, Receive, Send
from torouter.upstreams.call import Outcome


class Tap(Protocol):
    """Reads a stream as it passes: returns the bytes to forward, keeps usage and errors."""

    usage: Usage | None
    done: bool  # the stream's terminal event has gone to the client

    def feed(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


def pick_headers(resp: aiohttp.ClientResponse, names: tuple[str, ...]) -> list[tuple[bytes, bytes]]:
    out = []
    for name in names:
        value = resp.headers.get(name)
        if value is not None:
            out.append((name.encode(), value.encode("latin-1")))
    return out


async def relay_json(
    send: Send,
    outcome: Outcome,
    headers: list[tuple[bytes, bytes]],
    usage_of: Callable[[bytes], Usage | None],
) -> tuple[int, Usage | None, bytes]:
    resp = outcome.response
    assert resp is not None
    try:
        data = await resp.read()
    finally:
        resp.release()
    await send(
        {
            "type": "http.response.start",
            "status": resp.status,
            "headers": [(b"content-type", JSON), (b"content-length", str(len(data)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})
    return resp.status, usage_of(data), data


def _watch_disconnect(receive: Receive) -> asyncio.Task[None]:
    """A task that cancels the relaying task when the client disconnects."""
    relay = asyncio.current_task()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if relay is not None:
            relay.cancel()

    return asyncio.create_task(watch())


KEEP_BYTES = 4 * 1024 * 1024  # of a stream, kept to estimate its usage if the upstream never says


class StreamResult:
    __slots__ = ("chunks", "error", "first_byte_at", "usage")

    def __init__(self) -> None:
        self.first_byte_at: float | None = None
        self.usage: Usage | None = None
        self.error: str | None = None
        self.chunks: list[bytes] = []


async def relay_stream(
    send: Send,
    outcome: Outcome,
    headers: list[tuple[bytes, bytes]],
    tap: Tap,
    error_event: Callable[[GatewayError], bytes],
    content_type: bytes = SSE,
    receive: Receive | None = None,
) -> StreamResult:
    """Forward each upstream chunk the moment it arrives; an upstream failure becomes an error event."""
    resp = outcome.response
    assert resp is not None
    result = StreamResult()
    if resp.content.is_eof():
        # The whole stream came with the headers (a short answer): one body with a length, no
        # chunked framing. Nothing waits for this: every byte is already here.
        try:
            out = tap.feed(await resp.read()) + tap.flush()
        finally:
            resp.release()
        result.first_byte_at = time.perf_counter()
        result.usage = tap.usage
        await send(
            {
                "type": "http.response.start",
                "status": resp.status,
                "headers": [
                    (b"content-type", content_type),
                    (b"cache-control", b"no-cache"),
                    (b"content-length", str(len(out)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": out})
        return result
    await send(
        {
            "type": "http.response.start",
            "status": resp.status,
            "headers": [(b"content-type", content_type), (b"cache-control", b"no-cache"), *headers],
        }
    )
    watcher = _watch_disconnect(receive) if receive is not None else None
    idle = outcome.account.idle_timeout
    # aiohttp's own read timeout is the longer of first-byte and idle; a shorter idle limit is ours.
    watch_idle = idle < outcome.account.first_byte_timeout
    kept = 0
    try:
        chunks = resp.content.iter_any()
        while True:
            try:
                if watch_idle:
                    async with asyncio.timeout(idle):
                        chunk = await anext(chunks)
                else:
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            out = tap.feed(chunk)
            if out:
                if result.first_byte_at is None:
                    result.first_byte_at = time.perf_counter()
                if kept < KEEP_BYTES:
                    kept += len(out)
                    result.chunks.append(out)
                await send({"type": "http.response.body", "body": out, "more_body": True})
        rest = tap.flush()
        if rest:
            await send({"type": "http.response.body", "body": rest, "more_body": True})
    except asyncio.CancelledError:
        if watcher is None or not watcher.done() or watcher.cancelled():
            raise
        # The client went away: stop reading, and closing the connection tells the upstream.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        resp.close()
        # A client may hang up as soon as it reads the terminal event, before the upstream's
        # end of body reaches us: that call completed.
        result.error = None if tap.done else "client_disconnected"
        result.usage = tap.usage
        return result
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        timeout = isinstance(exc, asyncio.TimeoutError)
        result.error = "upstream_timeout" if timeout else "upstream_disconnected"
        err = GatewayError(
            "timeout" if timeout else "api_error",
            "The upstream stopped answering mid-stream."
            if timeout
            else "The upstream connection was lost mid-stream.",
            code=result.error,
        )
        await send({"type": "http.response.body", "body": error_event(err), "more_body": True})
    finally:
        if watcher is not None and not watcher.done():
            watcher.cancel()
        resp.release()
    result.usage = tap.usage
    await send({"type": "http.response.body", "body": b""})
    return result
