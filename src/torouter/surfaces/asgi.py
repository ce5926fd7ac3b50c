"""Small raw-ASGI helpers shared by the surfaces: no Request objects on the hot path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from torouter.errors import GatewayError

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = b"application/json"
SSE = b"text/event-stream"


async def read_body(receive: Receive, limit: int) -> bytes:
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body"):  # the whole body at once
        body = message.get("body", b"")
        if len(body) <= limit:
            return body
    return await _read_body(receive, limit, message)


async def _read_body(receive: Receive, limit: int, message: Message) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError("client went away while sending the body")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise GatewayError(
                    "request_too_large",
                    f"The request body is larger than the {limit}-byte limit.",
                    code="request_too_large",
                )
            chunks.append(chunk)
        if not message.get("more_body"):
            break
        message = await receive()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise GatewayError(
            "invalid_request", "The request body is empty; send a JSON object.", code="invalid_json"
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            "invalid_request",
            f"We could not parse the JSON body of your request ({exc.args[0] if exc.args else 'invalid JSON'}).",
            code="invalid_json",
        ) from None
    if too_deep(raw, value):
        raise GatewayError(
            "invalid_request",
            f"We could not parse the JSON body of your request (it is nested more than {MAX_DEPTH} levels deep).",
            code="invalid_json",
        )
    return value


# orjson parses 1024 levels but encodes only 254, and the gateway encodes bodies again, a few levels
# deeper (captures, translated requests): deeper bodies would fail there, as 500s.
MAX_DEPTH = 128
_ENCODABLE_DEPTH = 254


def too_deep(raw: bytes, value: Any) -> bool:
    """Nested more than MAX_DEPTH levels: orjson cannot encode it inside the levels it still needs."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False  # too few brackets to nest that deep: most bodies pay only this scan
    probe = value
    for _ in range(_ENCODABLE_DEPTH - MAX_DEPTH):
        probe = [probe]
    try:
        orjson.dumps(probe)
    except orjson.JSONEncodeError:
        return True
    return False


def header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return v
    return None


def header_values(scope: Scope, name: bytes) -> list[str]:
    """Every value of a header the client may repeat (anthropic-beta), in order."""
    return [v.decode("latin-1") for k, v in scope["headers"] if k == name]


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def error_headers(
    err: GatewayError, request_id: str, id_header: str = "x-request-id"
) -> list[tuple[bytes, bytes]]:
    out = [(k.encode(), v.encode()) for k, v in err.headers.items()]
    out.append((id_header.encode(), request_id.encode()))
    return out
