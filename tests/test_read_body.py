"""Reading a request's body from ASGI messages: whole, in parts, too large, or cut off."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from torouter.errors import GatewayError
from torouter.surfaces.asgi import read_body


def read(*messages: dict[str, Any], limit: int = 10) -> bytes:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return asyncio.run(read_body(receive, limit))


def part(body: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


def test_a_body_comes_whole_or_in_parts() -> None:
    assert read(part(b"abc")) == b"abc"
    assert read({"type": "http.request"}) == b""
    assert read(part(b"ab", True), part(b"", True), part(b"cd")) == b"abcd"
    assert read(part(b"0123456789")) == b"0123456789"  # at the limit


@pytest.mark.parametrize("messages", [[part(b"0123456789x")], [part(b"012345", True), part(b"6789x")]])
def test_a_body_over_the_limit_is_refused(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(GatewayError) as refused:
        read(*messages)
    assert refused.value.code == "request_too_large"


@pytest.mark.parametrize(
    "messages", [[{"type": "http.disconnect"}], [part(b"ab", True), {"type": "http.disconnect"}]]
)
def test_a_client_that_leaves_mid_body_is_no_request(messages: list[dict[str, Any]]) -> None:
    with pytest.raises(ConnectionAbortedError):
        read(*messages)
