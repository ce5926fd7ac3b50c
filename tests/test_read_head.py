"""What an upstream's 2xx answer must start with before a call commits to its account."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import pytest

from torouter.upstreams.call import Unreadable, read_head

GOOD, BAD = b'data: {"a":1}', b'data: {"a":'
SEPARATORS = (b"\n\n", b"\r\n\r\n")


def answer(body: bytes) -> SimpleNamespace:
    """The parts of an aiohttp response read_head reads: a 200 whose body comes in one read."""
    chunks = [body, b""]

    async def readany() -> bytes:
        return chunks.pop(0)

    return SimpleNamespace(status=200, content=SimpleNamespace(readany=readany))


@pytest.mark.parametrize(
    ("first", "sep1", "second", "sep2", "lead"),
    list(itertools.product((GOOD, BAD), SEPARATORS, (GOOD, BAD), SEPARATORS, (b"", b"\n", b"\r\n"))),
)
def test_only_the_first_event_is_judged_whichever_separator_ends_it(
    first: bytes, sep1: bytes, second: bytes, sep2: bytes, lead: bytes
) -> None:
    head = lead + first + sep1 + second + sep2
    if first == BAD:
        with pytest.raises(Unreadable):
            asyncio.run(read_head(answer(head), "sse"))  # type: ignore[arg-type]
    else:
        assert asyncio.run(read_head(answer(head), "sse")) == (head, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"", b"  \n", b"\n\n", b"\r\n", b"<html>", b'{"error": 1}'])
def test_what_is_no_event_stream_is_refused(body: bytes) -> None:
    with pytest.raises(Unreadable):
        asyncio.run(read_head(answer(body), "sse"))  # type: ignore[arg-type]
