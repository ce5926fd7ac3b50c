"""What an upstream's 2xx answer must start with before a call commits to its account."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import pytest

from torouter.upstreams.call import Unreadable, read_head

GOOD, BAD = b'data: {"a":1}', b'data: {"a":'
SEPARATORS = (b"\n\n", b"\r\n\r\n")


def answer(body: bytes, *more: bytes) -> SimpleNamespace:
    """The parts of an aiohttp response read_head reads: a 200 whose body comes in one read,
    or in as many as there are parts."""
    chunks = [body, *more, b""]

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


def test_reads_go_on_until_the_first_event_is_whole() -> None:
    parts = [b"da", b'ta: {"a"', b":1}\n", b"\n", b"data: {}\n\n"]
    head, _ = asyncio.run(read_head(answer(*parts), "sse"))  # type: ignore[arg-type]
    assert head == b"".join(parts[:4])  # not the event after it: that waits for the relay
    with pytest.raises(Unreadable):  # ended before a blank line, cut off
        asyncio.run(read_head(answer(b"data: ", b'{"a"'), "sse"))  # type: ignore[arg-type]


def test_an_array_stream_is_read_to_its_first_bracket() -> None:
    head, _ = asyncio.run(read_head(answer(b"  ", b"\n", b'[{"a": 1}', b",{}]"), "array"))  # type: ignore[arg-type]
    assert head == b'  \n[{"a": 1}'
    with pytest.raises(Unreadable):
        asyncio.run(read_head(answer(b" ", b"<html>"), "array"))  # type: ignore[arg-type]
