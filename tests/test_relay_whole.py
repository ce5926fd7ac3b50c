"""A stream that came whole with its headers: relayed as one body with a length."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from torouter.catalog import Account
from torouter.protocols import openai_chat
from torouter.surfaces.relay import relay_stream
from torouter.upstreams.call import Outcome

ACCOUNT = Account(1, "a", "openai", "http://up.example", "sk-secret", 1, 0, "active", (), {}, 0, 1, 1, 1)
EVENTS = [
    b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n',
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n',
    b"data: [DONE]\n\n",
]


def ended_response(left: bytes) -> Any:
    """An aiohttp response whose stream has ended, `left` still unread in its buffer."""

    async def read() -> bytes:
        return left

    content = SimpleNamespace(is_eof=lambda: True, at_eof=lambda: not left)
    return SimpleNamespace(status=200, content=content, read=read, release=lambda: None)


@pytest.mark.parametrize("head_events", [1, 2, 3])
def test_what_the_first_read_left_is_relayed_too(head_events: int) -> None:
    head, left = b"".join(EVENTS[:head_events]), b"".join(EVENTS[head_events:])
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    outcome = Outcome(ACCOUNT, ended_response(left), 200, body=head)
    tap = openai_chat.StreamTap(hide_usage_chunk=False)
    result = asyncio.run(
        relay_stream(send, outcome, [], tap, openai_chat.stream_error_event, whole_events=True)  # type: ignore[arg-type]
    )
    start, body = sent
    assert body["body"] == b"".join(EVENTS)
    assert (b"content-length", str(len(body["body"])).encode()) in start["headers"]
    assert result.error is None and result.usage is not None and result.usage.output_tokens == 1
