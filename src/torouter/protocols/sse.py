"""Incremental Server-Sent Events framing: split a byte stream into whole events, as they complete."""

from __future__ import annotations

from collections.abc import Iterator


class EventSplitter:
    """Feed it chunks as they arrive; it yields each complete event's bytes, separator included.

    The bytes are never rewritten, so a pass-through relay forwards exactly what the upstream sent.
    Chunk boundaries may fall anywhere, even inside a line or a CRLF.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        start = 0
        while True:
            lf = buf.find(b"\n\n", start)
            crlf = buf.find(b"\r\n\r\n", start)
            if lf < 0 and crlf < 0:
                break
            # Whichever separator closes the earlier event wins; streams may mix LF and CRLF.
            end = min(e for e in (lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1) if e >= 0)
            yield buf[start:end]
            start = end
        self._buf = buf[start:]

    def flush(self) -> bytes:
        """What is left when the stream ends (an event with no closing blank line)."""
        rest, self._buf = self._buf, b""
        return rest


def event_data(event: bytes) -> bytes | None:
    """The joined `data:` payload of one event, or None if it has none."""
    parts: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts) if parts else None


def event_name(event: bytes) -> bytes | None:
    for line in event.splitlines():
        if line.startswith(b"event:"):
            return line[6:].strip()
    return None


def encode(data: bytes, event: str | None = None) -> bytes:
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
