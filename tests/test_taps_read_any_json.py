"""Pass-through taps read whatever JSON an upstream streams, wrong types included, without raising.

The inputs are the vendors' recorded streams from specs/, with fields swapped for values of
other types. A tap that raised would cut a stream the client's SDK could have read.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.emulator_harness import find_specs_dir
from torouter.protocols import anthropic_messages, gemini, openai_chat, responses
from torouter.surfaces.relay import Tap

WRONG: list[Any] = [None, 0, -1, 1.5, "", "x", "12", [], {}, [1], [None], {"a": 1}, True, [{}]]

# protocol -> (recorded streams under specs/, how one event is framed, a new tap)
PROTOCOLS: dict[str, tuple[str, bool, Callable[[random.Random], Tap]]] = {
    "openai": (
        "openai/examples/**/chat-completions/*streaming*.json",
        False,
        lambda r: openai_chat.StreamTap(r.random() < 0.5),
    ),
    "anthropic": ("anthropic/examples/**/*streaming*.json", True, lambda r: anthropic_messages.StreamTap()),
    "responses": ("openai/examples/**/responses/*streaming*.json", True, lambda r: responses.StreamTap()),
    "gemini": ("gemini/examples/**/*streaming*.json", False, lambda r: gemini.SSETap()),
}


# The usage chunk OpenAI ends a stream with when asked (stream_options.include_usage): the
# recordings were made without it.
USAGE_CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "choices": [],
    "usage": {
        "prompt_tokens": 9,
        "completion_tokens": 4,
        "total_tokens": 13,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
}


def recorded(pattern: str) -> list[list[dict[str, Any]]]:
    found = []
    for path in sorted(Path(find_specs_dir()).glob(pattern)):
        doc = json.loads(path.read_text())
        if isinstance(doc, list) and doc and all(isinstance(e, dict) for e in doc):
            found.append([*doc, USAGE_CHUNK] if "chat-completions" in pattern else doc)
    return found


def _paths(value: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, inner in items:
        yield from _paths(inner, (*at, key))


def mutated(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The event with one field, at any depth, set to a value of another type."""
    event = json.loads(json.dumps(event))
    path = rng.choice(list(_paths(event))[1:] or [()])
    if not path:
        return event
    parent = event
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = rng.choice(WRONG)
    return event


def framed(event: dict[str, Any], named: bool) -> bytes:
    head = b"event: " + str(event.get("type")).encode() + b"\n" if named else b""
    return head + b"data: " + orjson.dumps(event) + b"\n\n"


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_a_pass_through_tap_reads_mutated_recorded_streams_without_raising(protocol: str) -> None:
    pattern, named, new_tap = PROTOCOLS[protocol]
    streams = recorded(pattern)
    assert len(streams) >= 5, pattern
    rng = random.Random(protocol)
    for _ in range(1000):
        events = list(rng.choice(streams))
        for _ in range(rng.randint(1, 3)):
            # Half the time the last event: where usage is, and what the taps read most closely.
            at = len(events) - 1 if rng.random() < 0.5 else rng.randrange(len(events))
            events[at] = mutated(events[at], rng)
        data = b"".join(framed(e, named) for e in events)
        cut = rng.randrange(1, len(data))
        tap = new_tap(rng)
        tap.feed(data[:cut])
        tap.feed(data[cut:])
        tap.flush()
        assert tap.usage is None or isinstance(tap.usage.input_tokens, int)  # Gemini's reads it when asked
