"""Replay of recorded vendor answers from the specs folder, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

from torouter.emulator._call import Answer, VendorError, sse_answer

_EVENT = re.compile(rb".*?(?:\r\n\r\n|\n\n)|.+$", re.S)


def split_events(data: bytes) -> list[bytes]:
    """Split an SSE body into events, keeping every byte so the pieces join back to `data`."""
    return [m.group(0) for m in _EVENT.finditer(data) if m.group(0)]


def replay_answer(specs_dir: Path | None, relative: str, status: int | None) -> Answer:
    if specs_dir is None:
        raise VendorError(
            400, "emulator replay needs a specs folder: set TOROUTER_SPECS_DIR or pass specs_dir"
        )
    path = (specs_dir / relative).resolve()
    if specs_dir.resolve() not in path.parents or not path.is_file():
        raise VendorError(400, f"emulator replay file not found under {specs_dir}: {relative}")
    data = path.read_bytes()
    if path.suffix == ".json":
        parsed: Any = orjson.loads(data)
        if isinstance(parsed, list) and "streaming" in path.name:
            answer = sse_answer(render_events(relative, parsed))
        else:
            answer = Answer([data])
    else:
        answer = sse_answer(split_events(data))
    if status is not None:
        answer.status = status
    return answer


def render_events(relative: str, events: list[Any]) -> list[bytes]:
    """Frame parsed stream events (lingua captures) the way the vendor sends them."""
    vendor = relative.replace("\\", "/").split("/", 1)[0]
    if vendor == "gemini":
        return [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events]
    named = vendor == "anthropic" or any(str(e.get("type", "")).startswith("response.") for e in events)
    if named:
        return [
            b"event: " + str(e["type"]).encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
        ]
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
