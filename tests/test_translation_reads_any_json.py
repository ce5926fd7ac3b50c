"""Translated streams read whatever JSON an upstream streams, wrong types included.

The inputs are the vendors' recorded streams from specs/, with fields swapped for values of other
types (as in test_taps_read_any_json.py). A decoder or encoder that cannot read such an event ends
the stream there with the malformed-event error, and nothing decoded before it is lost, even from
the same read.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.test_taps_read_any_json import PROTOCOLS, framed, mutated, recorded
from torouter import hub
from torouter.protocols import anthropic_stream, gemini_stream, openai_chat_stream, responses_stream
from torouter.protocols.faults import malformed
from torouter.surfaces.translate import StreamDecoder, StreamEncoder, TranslatingTap

DECODERS: dict[str, Callable[[], StreamDecoder]] = {
    "openai": openai_chat_stream.StreamDecoder,
    "anthropic": anthropic_stream.StreamDecoder,
    "gemini": lambda: gemini_stream.StreamDecoder(sse=True),
    "responses": responses_stream.StreamDecoder,
}
# Decoders that read a field of another type as absent wherever one can be, so that no single
# mutated field ends their stream; the others end it at fields they cannot place (a block index
# that is a list, a Gemini thought signature that is no string).
READ_AS_ABSENT = {"openai"}
ENCODERS: dict[str, Callable[[], StreamEncoder]] = {
    "openai": lambda: openai_chat_stream.StreamEncoder("m", include_usage=True),
    "anthropic": lambda: anthropic_stream.StreamEncoder("m"),
    "gemini": lambda: gemini_stream.StreamEncoder("m", sse=True),
    "gemini-array": lambda: gemini_stream.StreamEncoder("m", sse=False),
    "responses": lambda: responses_stream.StreamEncoder("m"),
}


def mutated_stream(rng: random.Random, streams: list[list[dict]]) -> tuple[list[dict], int]:
    """A recorded stream with one to three events mutated, and the index of the first of them."""
    events = list(rng.choice(streams))
    hit = []
    for _ in range(rng.randint(1, 3)):
        at = len(events) - 1 if rng.random() < 0.3 else rng.randrange(len(events))
        events[at] = mutated(events[at], rng)
        hit.append(at)
    return events, min(hit)


@pytest.mark.parametrize("upstream", list(DECODERS))
def test_a_decoder_keeps_every_event_before_one_it_cannot_read(upstream: str) -> None:
    """Decoding the whole mutated stream in one read gives first what the events before the first
    mutated one give alone: an event no reading expects costs only itself and what follows. Half
    the streams end at that event, without its blank line, so that `finish` reads it."""
    pattern, named, _ = PROTOCOLS[upstream]
    streams = recorded(pattern)
    rng = random.Random(upstream)
    faults = 0
    for _ in range(600):
        events, first = mutated_stream(rng, streams)
        prefix = DECODERS[upstream]().feed(b"".join(framed(e, named) for e in events[:first]))
        decoder = DECODERS[upstream]()
        if rng.random() < 0.5:  # cut after the first mutated event, its blank line with it
            cut = b"".join(framed(e, named) for e in events[: first + 1])[:-2]
            whole = decoder.feed(cut) + decoder.finish()
        else:
            whole = decoder.feed(b"".join(framed(e, named) for e in events))
        assert whole[: len(prefix)] == prefix
        errors = [e for e in whole if isinstance(e, hub.StreamError)]
        assert len(errors) <= 1 and (not errors or whole[-1] is errors[0])
        faults += bool(errors and errors[0].code == "upstream_malformed")
    if upstream in READ_AS_ABSENT:
        assert faults == 0  # every odd field is read as absent: no mutation ends the stream
    else:
        assert faults > 0  # the inputs do reach the fault path


@pytest.mark.parametrize("upstream", list(DECODERS))
@pytest.mark.parametrize("client", list(ENCODERS))
def test_a_translated_stream_of_mutated_events_never_raises(upstream: str, client: str) -> None:
    pattern, named, _ = PROTOCOLS[upstream]
    streams = recorded(pattern)
    rng = random.Random(upstream + client)
    for _ in range(150):
        events, _first = mutated_stream(rng, streams)
        data = b"".join(framed(e, named) for e in events)
        cut = rng.randrange(1, len(data))
        tap = TranslatingTap(DECODERS[upstream](), ENCODERS[client]())
        out = tap.feed(data[:cut]) + tap.feed(data[cut:]) + tap.flush()
        assert out or tap.error  # every recorded stream starts with something to say
        if tap.error == "upstream_malformed":
            assert tap.ended


class _Replay:
    """A decoder that hands over events already decoded, all in one read."""

    usage: hub.Usage | None = None

    def __init__(self, events: list[hub.Event]) -> None:
        self._events = events

    def feed(self, chunk: bytes) -> list[hub.Event]:
        return self._events

    def finish(self) -> list[hub.Event]:
        return []


@pytest.mark.parametrize("client", ["gemini", "gemini-array", "responses"])
def test_an_event_the_encoder_cannot_write_ends_the_stream_after_what_came_before(client: str) -> None:
    # A tool call's argument fragment that is a number, not text: these encoders join the
    # fragments when the call's block stops, and that is where they raise.
    events: list[hub.Event] = [
        hub.MessageStart("msg_1", "m", hub.Usage()),
        hub.BlockStart(0, hub.Text("")),
        hub.BlockDelta(0, "text", "Hello from before"),
        hub.BlockStop(0),
        hub.BlockStart(1, hub.ToolUse("call_1", "lookup", {})),
        hub.BlockDelta(1, "json", 5),  # type: ignore[arg-type]
        hub.BlockStop(1),
        hub.MessageDelta("tool_use", hub.Usage()),
        hub.MessageStop(),
    ]
    tap = TranslatingTap(_Replay(events), ENCODERS[client]())
    out = tap.feed(b"x")
    assert b"Hello from before" in out
    assert tap.error == "upstream_malformed" and tap.ended and not tap.done
    assert out.rfind(malformed().message.encode()) > out.find(b"Hello from before")


@pytest.mark.parametrize("upstream", list(DECODERS))
@pytest.mark.parametrize("client", list(ENCODERS))
def test_a_translated_stream_is_done_once_its_stop_is_written(upstream: str, client: str) -> None:
    """`done` (the relay's sign that a client hanging up lost nothing) comes with the last event:
    whether the stream arrives whole, or event by event."""
    pattern, named, _ = PROTOCOLS[upstream]
    for stream in recorded(pattern)[:3]:
        frames = [framed(e, named) for e in stream]
        whole = TranslatingTap(DECODERS[upstream](), ENCODERS[client]())
        whole.feed(b"".join(frames))
        whole.flush()
        assert whole.done and whole.error is None
        tap = TranslatingTap(DECODERS[upstream](), ENCODERS[client]())
        for frame in frames[:-1]:
            tap.feed(frame)
            assert not tap.done
        tap.feed(frames[-1])
        tap.flush()
        assert tap.done and tap.error is None
