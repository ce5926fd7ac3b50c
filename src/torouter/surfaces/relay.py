"""Writing an upstream's answer back to the client: whole JSON bodies, or SSE as it arrives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import orjson

from torouter.accounting.usage import Usage
from torouter.errors import GatewayError
from torouter.protocols.faults import raised_at
from torouter.surfaces.asgi import JSON, SSE, Receive, Send
from torouter.surfaces.guard import EventGuard
from torouter.upstreams.call import Outcome
from torouter.upstreams.deadline import IdleWatch

log = logging.getLogger("torouter.relay")


class Tap(Protocol):
    """Reads a stream as it passes: returns the bytes to forward, keeps usage and errors."""

    usage: Usage | None
    done: bool  # the stream's terminal event has gone to the client

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        """`errors=False`: the caller found no "error" in the chunk, so no error event need be sought."""
        ...

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
    usage_of: Callable[[Any], Usage | None],
) -> tuple[int, Usage | None, bytes]:
    """Relay a whole JSON answer; `usage_of` reads the usage from the document send() parsed."""
    resp = outcome.response
    assert resp is not None
    try:
        data = outcome.body if outcome.body is not None else await resp.read()  # read and checked by send
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
    doc = outcome.doc if outcome.doc is not None else _loads(data)
    return resp.status, usage_of(doc) if isinstance(doc, dict) else None, data


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


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


class Malformed(Exception):
    """The upstream sent something mid-stream that is not an event."""


def unreadable(exc: Exception) -> Malformed:
    """A tap that raised on what the upstream sent: the last net, for a bug, since the taps read
    odd shapes themselves (the usage readers, and the translating tap through protocols.faults).
    The stream ends as for a malformed event, with the protocol's error event and the call
    recorded. The log says what raised and where, not
    the exception's text: that may quote the upstream's event, and so a secret it echoed."""
    log.warning(
        "a stream tap could not read the upstream's events: %s at %s", type(exc).__name__, raised_at(exc)
    )
    return Malformed()


# result.error -> (kind, message) of the error event that ends a stream the upstream failed
MID_STREAM = {
    "upstream_timeout": ("timeout", "The upstream stopped answering mid-stream."),
    "upstream_disconnected": ("api_error", "The upstream connection was lost mid-stream."),
    "upstream_malformed": ("api_error", "The upstream sent a malformed event mid-stream."),
}


def mid_stream_error(code: str) -> GatewayError:
    kind, message = MID_STREAM[code]
    return GatewayError(kind, message, code=code)


async def relay_stream(
    send: Send,
    outcome: Outcome,
    headers: list[tuple[bytes, bytes]],
    tap: Tap,
    error_event: Callable[[GatewayError], bytes],
    content_type: bytes = SSE,
    receive: Receive | None = None,
    whole_events: bool = False,
    loop: asyncio.AbstractEventLoop | None = None,
) -> StreamResult:
    """Forward each upstream chunk the moment it arrives; an upstream failure becomes an error event.

    `outcome.body` holds the stream's first bytes, read (and checked) while choosing the account.
    With `whole_events` (pass-through SSE), only whole, well-formed events reach the tap; see
    EventGuard. `loop`, the upstream client's, spares looking it up (a getpid call on 3.11).

    The wait for each chunk is limited by the account's idle timeout; the upstream client sets no
    read timeout of its own (see upstreams.deadline.IdleWatch).
    """
    resp = outcome.response
    assert resp is not None
    result = StreamResult()
    guard = EventGuard(outcome.account) if whole_events else None
    error_event = getattr(tap, "error_event", error_event)  # a tap that knows what it sent says it best

    def pump(chunk: bytes) -> bytes:
        try:
            if guard is None:
                return tap.feed(chunk) if chunk else b""
            chunk = guard.take(chunk)
            return tap.feed(chunk, guard.errors) if chunk else b""
        except Exception as exc:
            raise unreadable(exc) from exc

    def finish() -> bytes:
        try:
            rest = guard.rest() if guard is not None else b""
            return (tap.feed(rest, guard.errors) if rest and guard is not None else b"") + tap.flush()
        except Exception as exc:
            raise unreadable(exc) from exc

    if resp.content.is_eof():
        # The whole stream came with the headers (a short answer): one body with a length, no
        # chunked framing. Nothing waits for this: every byte is already here.
        unread = False
        try:
            body = outcome.body or b""
            if not resp.content.at_eof():  # what the first read left (it usually took it all)
                body += await resp.read()
            out = pump(body) + finish()
        except Malformed:
            out, unread = b"", True
        finally:
            resp.release()
        if unread or (guard is not None and guard.broken) or getattr(tap, "broken", False):
            result.error = "upstream_malformed"
            out += error_event(mid_stream_error(result.error))
        result.first_byte_at = time.perf_counter()
        result.usage = tap.usage
        result.chunks.append(out)  # for the usage estimate, when the stream reported none
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
    loop = loop or asyncio.get_running_loop()
    kept = 0
    try:
        with IdleWatch(outcome.account.idle_timeout, loop) as idle:
            chunk = outcome.body or b""
            chunks = resp.content.iter_any()
            while True:
                out = pump(chunk) if chunk else b""
                if out:
                    if result.first_byte_at is None:
                        result.first_byte_at = time.perf_counter()
                    if kept < KEEP_BYTES:
                        kept += len(out)
                        result.chunks.append(out)
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if (guard is not None and guard.broken) or getattr(tap, "broken", False):
                    raise Malformed
                # A translated stream that ended with an error: nothing more is read.
                if getattr(tap, "ended", False):
                    resp.close()
                    break
                idle.reading = loop.time()
                try:
                    chunk = await anext(chunks)
                except StopAsyncIteration:
                    idle.reading = 0.0
                    break
                idle.reading = 0.0
            rest = finish()
            if rest:
                await send({"type": "http.response.body", "body": rest, "more_body": True})
            if (guard is not None and guard.broken) or getattr(tap, "broken", False):
                raise Malformed
    except asyncio.CancelledError:
        if watcher is None or not watcher.done() or watcher.cancelled():
            raise
        # The client went away: stop reading, and closing the connection tells the upstream.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        resp.close()
        # A client may hang up as soon as it reads the terminal event (or an error event), before
        # the upstream's end of body reaches us: that call ended as the stream says.
        result.error = None if tap.done or getattr(tap, "error", None) else "client_disconnected"
        result.usage = tap.usage
        return result
    except (TimeoutError, aiohttp.ClientError, OSError, Malformed) as exc:
        if isinstance(exc, Malformed):
            result.error = "upstream_malformed"
            resp.close()  # nothing more is read: the vendor may stop generating
        else:
            result.error = "upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_disconnected"
        await send(
            {
                "type": "http.response.body",
                "body": error_event(mid_stream_error(result.error)),
                "more_body": True,
            }
        )
    finally:
        if watcher is not None and not watcher.done():
            watcher.cancel()
        resp.release()
    result.usage = tap.usage
    await send({"type": "http.response.body", "body": b""})
    return result
