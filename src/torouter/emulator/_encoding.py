"""Content-Encoding for scripted answers: gzip, deflate and br, each frame flushed as it is sent.

A streamed answer stays a stream when compressed: every frame ends on a flush point, so a client
decodes each one as it arrives. Brotli is written as stored (uncompressed) meta-blocks, which is
valid brotli and needs no brotli library.
"""

from __future__ import annotations

import zlib

ENCODINGS = ("gzip", "deflate", "br")
_STORED_MAX = 1 << 16  # the longest stored meta-block with a four-nibble length


def encode_frames(frames: list[bytes], encoding: str) -> list[bytes]:
    """The frames as one body in `encoding`, cut at the same places."""
    if encoding == "br":
        return _brotli_stored(frames)
    z = zlib.compressobj(wbits=31 if encoding == "gzip" else 15)
    out = [z.compress(f) + z.flush(zlib.Z_SYNC_FLUSH) for f in frames] or [b""]
    out[-1] += z.flush()
    return out


class _Bits:
    """Brotli's bit order: each value least significant bit first, bytes filled from bit 0."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def write(self, value: int, width: int) -> None:
        self.value |= value << self.count
        self.count += width

    def bytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")  # zero-padded to a byte


def _brotli_stored(frames: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    first = True
    for frame in frames:
        encoded = b""
        for at in range(0, len(frame), _STORED_MAX):
            piece = frame[at : at + _STORED_MAX]
            bits = _Bits()
            if first:
                bits.write(0, 1)  # WBITS: a 64 KiB window
                first = False
            bits.write(0, 1)  # ISLAST: no
            bits.write(0, 2)  # MNIBBLES: four
            bits.write(len(piece) - 1, 16)  # MLEN - 1
            bits.write(1, 1)  # ISUNCOMPRESSED: the bytes follow, from the next byte boundary
            encoded += bits.bytes() + piece
        out.append(encoded)
    end = _Bits()
    if first:
        end.write(0, 1)
    end.write(1, 1)  # ISLAST
    end.write(1, 1)  # ISLASTEMPTY
    if not out:
        out.append(b"")
    out[-1] += end.bytes()
    return out
