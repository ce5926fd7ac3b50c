"""Incremental Server-Sent Events framing: split a byte stream into whole events, as they complete."""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

# On the per-chunk path, `data.find(x) >= 0` and not `x in data`: CPython's `in` on bytes first
# tries the needle as a byte value, raising and discarding a TypeError with a formatted message
# each time. That cost more than the search itself: 12 of them were 2% of a relayed stream.


class EventSplitter:
    """Feed it chunks as they arrive; it yields each complete event's bytes, separator included.

    The bytes are never rewritten, so a pass-through relay forwards exactly what the upstream sent.
    Chunk boundaries may fall anywhere, even inside a line or a CRLF.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> Iterable[bytes]:
        return split_events(self.take(chunk))

    def take(self, chunk: bytes) -> bytes:
        """All the events this chunk completes, as one block; the unfinished tail waits for more.

        A few C-level searches per chunk: the hot path only splits a block when it must look inside.
        """
        if not self._buf and chunk.endswith(b"\n\n") and chunk.find(b"\r") < 0:
            return chunk  # ends with its last event: as relayed blocks do, and whole streams
        buf = self._buf + chunk if self._buf else chunk
        lf = buf.rfind(b"\n\n")
        end = lf + 2 if lf >= 0 else 0
        if buf.find(b"\r") >= 0:  # one memchr spares a CRLF search that scans the whole block
            crlf = buf.rfind(b"\r\n\r\n")
            if crlf >= 0 and crlf + 4 > end:
                end = crlf + 4
        if end == len(buf):
            self._buf = b""
            return buf
        self._buf = buf[end:]
        return buf[:end]

    def flush(self) -> bytes:
        """What is left when the stream ends (an event with no closing blank line)."""
        rest, self._buf = self._buf, b""
        return rest


def split_events(block: bytes) -> list[bytes]:
    """Each event of a block of whole events, separator included."""
    if block.find(b"\r") < 0:
        # LF framing, as every vendor sends: one C-level split, not a search per event.
        events = block.split(b"\n\n")
        events.pop()  # what follows the last blank line: no whole event
        return list(map(operator.add, events, itertools.repeat(b"\n\n")))  # no bytecode per event
    return list(_split_mixed(block))


def _split_mixed(block: bytes) -> Iterator[bytes]:
    start = 0
    while True:
        lf = block.find(b"\n\n", start)
        crlf = block.find(b"\r\n\r\n", start)
        if lf < 0 and crlf < 0:
            return
        # Whichever separator closes the earlier event wins; streams may mix LF and CRLF.
        end = min(e for e in (lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1) if e >= 0)
        yield block[start:end]
        start = end


def event_span(block: bytes, pos: int, crlf: bool = True) -> tuple[int, int]:
    """Start and end of the event in a block of whole events that holds the byte at `pos`.

    `crlf=False` says the block holds no CR, so CRLF separators are not searched for.
    """
    lf = block.rfind(b"\n\n", 0, pos)
    start = lf + 2 if lf >= 0 else 0
    lf = block.find(b"\n\n", pos)
    end = lf + 2 if lf >= 0 else -1
    if crlf:
        cr = block.rfind(b"\r\n\r\n", 0, pos)
        start = max(start, cr + 4 if cr >= 0 else 0)
        cr = block.find(b"\r\n\r\n", pos)
        if cr >= 0 and (end < 0 or cr + 4 <= end):
            end = cr + 4
    return start, end if end >= 0 else len(block)


def events_with(block: bytes, marker: bytes, followed_by: tuple[bytes, ...] = ()) -> list[tuple[int, int]]:
    """Spans of the events that contain `marker` (followed by one of `followed_by`, if given):
    found by one search, without splitting the block."""
    spans: list[tuple[int, int]] = []
    pos = block.find(marker)
    crlf = pos >= 0 and block.find(b"\r") >= 0
    while pos >= 0:
        if followed_by and not block.startswith(followed_by, pos + len(marker)):
            pos = block.find(marker, pos + 1)
            continue
        span = event_span(block, pos, crlf)
        spans.append(span)
        pos = block.find(marker, span[1])
    return spans


def last_marked(block: bytes, marker: bytes, followed_by: tuple[bytes, ...], end: int) -> int:
    """Where the last `marker` (followed by one of `followed_by`) before `end` starts, or -1:
    searched from the end, so a block whose last such event is near its end is not scanned."""
    pos = block.rfind(marker, 0, end)
    while pos >= 0 and not block.startswith(followed_by, pos + len(marker)):
        pos = block.rfind(marker, 0, pos)
    return pos


def _lone_data(event: bytes) -> bytes | None:
    """The data of an event that is one `data:` line (after an `event:` line, or not) and its
    blank line, as vendors send nearly all of them; None for any other shape (the line-by-line
    reading takes those)."""
    # As vendors send nearly every event: `data: ` (after one `event:` line, as Anthropic and
    # the Responses API write them), one line of data, a blank line, no CR anywhere.
    if event.endswith(b"\n\n") and event.find(b"\r") < 0:
        if event.startswith(b"data: "):
            value = event[6:-2]
            if value.find(b"\n") < 0:
                return value
        elif event.startswith(b"event:"):
            start = event.find(b"\n") + 7
            if event.startswith(b"data: ", start - 6):
                value = event[start:-2]
                if value.find(b"\n") < 0:
                    return value
    if event.startswith(b"data:"):
        start = 0
    elif event.startswith(b"event:"):  # Anthropic's and the Responses API's events
        start = event.find(b"\n") + 1
        if not start or not event.startswith(b"data:", start):
            return None
    else:
        return None
    if event.find(b"\r") >= 0:
        return None
    nl = event.find(b"\n", start)
    if nl < 0:
        value = event[start + 5 :]
    elif event.count(b"\n", nl) == len(event) - nl:  # nothing but newlines after the line
        value = event[start + 5 : nl]
    else:
        return None
    return value[1:] if value.startswith(b" ") else value


def event_data(event: bytes) -> bytes | None:
    """The joined `data:` payload of one event, or None if it has none."""
    lone = _lone_data(event)
    if lone is not None:
        return lone
    parts: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts) if parts else None


def event_json(event: bytes) -> dict[str, Any] | None:
    """The JSON object an event's data holds, or None (no data, not JSON, not an object)."""
    data = event_data(event)
    if data is None:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


SSE_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")


def well_formed(event: bytes, strict: bool = True) -> bool:
    """An event as every vendor sends them: SSE field lines only, and data that is JSON or [DONE].

    A comment or a lone `event:` line is well formed; an HTML page or truncated JSON is not.
    Without `strict`, the data's JSON is judged by its shape (an object or array, opened and
    closed) instead of parsed: relayed events are then not parsed twice, and what breaks a
    stream mid-way (a cut-off object, a proxy's page) is still caught.
    """
    data = _lone_data(event)
    if data is None:
        parts: list[bytes] = []
        for line in event.splitlines():
            if line.startswith(b"data:"):
                value = line[5:]
                parts.append(value[1:] if value.startswith(b" ") else value)
            elif line and not line.startswith(SSE_FIELDS):
                return False
        if not parts:
            return True
        data = b"\n".join(parts)
    data = data.strip()
    if data == b"[DONE]":
        return True
    if not strict:
        return data[:1] in (b"{", b"[") and data[-1:] in (b"}", b"]")
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


# A "\n\n" whose event may end in something other than `}` or `]`: the only kind the exact loop
# can fault, so a block without one skips that loop. After a `\n` it only closes an empty event
# (the loop's `find` stops a byte earlier). Overlapping matches count too, so the search can only
# send more blocks to the loop. The literal first gives sre a prefix to scan for; a leading
# look-behind would make it try every byte, ~40x slower.
_SUSPECT_END = re.compile(rb"\n\n(?<![}\]\n]\n\n)")


def first_misshapen(block: bytes) -> int:
    """`first_malformed` without parsing, for every event a pass-through relays: where the first
    event whose data does not end as JSON (or [DONE]) ends, or that is no SSE at all, starts; -1.

    Usually one C-level search per block: the loop over events runs only when some event does not
    end right before its blank line in `}` or `]`. What it catches is what breaks a stream mid-way:
    a cut-off object, a proxy's HTML page.
    """
    if block.find(b"\r") >= 0:  # CRLF framing is rare: take the line-by-line path
        return first_malformed(block, strict=False)
    # The end check: a last event with no blank line after it is not covered by the search.
    if block.endswith(b"\n\n") and _SUSPECT_END.search(block) is None:
        return -1
    at, size = 0, len(block)
    while at < size:
        end = block.find(b"\n\n", at)
        if end < 0:
            end = size
        tail = block[max(at, end - 8) : end].rstrip()
        if tail and not (tail.endswith((b"}", b"]", b"[DONE]"))):
            event = block[at:end]
            if b"data:" in event or not event.lstrip().startswith(SSE_FIELDS):
                return at
        at = end + 2
    return -1


def first_malformed(block: bytes, strict: bool = True) -> int:
    """Where the first event that is not `well_formed` starts in a block of whole events, or -1."""
    at = 0
    for event in split_events(block):
        if not well_formed(event, strict):
            return at
        at += len(event)
    return -1


def event_name(event: bytes) -> bytes | None:
    for line in event.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None


def encode(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
