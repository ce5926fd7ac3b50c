"""Text events read by their bytes (TextShape) give exactly what reading them in full gives."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from tests.emulator_harness import find_specs_dir
from tests.test_stream_decoder_shortcuts import (
    GeneralAnthropicDecoder,
    GeneralOpenAIDecoder,
    _cut,
    assert_decoded_alike,
)
from torouter import hub
from torouter.protocols import anthropic_stream, gemini_stream, openai_chat_stream
from torouter.protocols.text_shape import TextShape, string_end
from torouter.surfaces.translate import TranslatingTap

OPENAI_MARK = b'"delta":{"content":'
PAD = b',"obfuscation":"'
HEAD = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":'
)
TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'


def _event(text: bytes, tail: bytes = TAIL, head: bytes = HEAD) -> bytes:
    return head + text + tail


def _learnt(event: bytes, text: str, padding: bytes = PAD) -> TextShape:
    shape = TextShape(OPENAI_MARK, padding)
    shape.learn(event, text)
    return shape


@pytest.mark.parametrize(
    ("raw", "end"),
    [
        (b'"abc" x', 5),
        (b'"a\\"b" x', 6),
        (b'"a\\\\" x', 5),
        (b'"a\\\\\\"" x', 7),
        (b'"\\\\\\\\"', 6),
        (b'"open', -1),
        (b'"a\\"', -1),
    ],
)
def test_string_end_skips_escaped_quotes_only(raw: bytes, end: int) -> None:
    assert string_end(raw, 0) == end


def test_a_learnt_shape_reads_other_texts_in_the_same_place() -> None:
    shape = _learnt(_event(b'"Hi"'), "Hi")
    assert shape.text(_event(b'" there"')) == " there"
    assert shape.text(_event(b'"say \\"x\\"\\n\\u00e9\\ud83d\\ude00"')) == 'say "x"\n\u00e9\U0001f600'
    assert shape.text(_event('"é ☃"'.encode())) == "é ☃"
    assert shape.text(_event(b' "spaced" ')) == "spaced"  # whitespace between tokens means nothing


@pytest.mark.parametrize(
    "event",
    [
        _event(b'""'),  # empty text: the full reading decides what it means
        _event(b"5"),
        _event(b"null"),
        _event(b'"a","b"'),
        _event(b'"a" "b"'),
        _event(b'"unterminated'),
        _event(b'"bad \\x escape"'),
        _event(b'"raw \n line"'),
        _event(b'"a"', tail=b'},"logprobs":null,"finish_reason":"stop"}]}\n\n'),
        _event(b'"a"', tail=b',"role":"assistant"},"logprobs":null,"finish_reason":null}]}\n\n'),
        _event(b'"a"', tail=TAIL[:-2]),
        _event(b'"a"', head=HEAD.replace(b'"index":0', b'"index":1')),
        _event(b'"a"', tail=TAIL.replace(b"]}\n", b'],"usage":{"total_tokens":3}}\n')),
        _event(b'"a"', tail=TAIL.replace(b"]}\n", b'],"obfuscation":"Xy"}\n')),  # learnt without padding
        b"data: [DONE]\n\n",
        b": keep-alive\n\n",
    ],
)
def test_a_learnt_shape_leaves_every_other_event_to_the_full_reading(event: bytes) -> None:
    assert _learnt(_event(b'"Hi"'), "Hi").text(event) is None


def _padded(text: bytes, value: bytes) -> bytes:
    return _event(text, tail=TAIL.replace(b"]}\n", b'],"obfuscation":"' + value + b'"}\n'))


def test_a_padding_field_may_differ_from_event_to_event() -> None:
    shape = _learnt(_padded(b'"Hi"', b"qmz0pEt3"), "Hi")
    assert shape.text(_padded(b'"yes"', b"Bn")) == "yes"
    assert shape.text(_padded(b'"a \\",\\"obfuscation\\":\\"x"', b"Z9")) == 'a ","obfuscation":"x'
    for value in (b"", b"a-b", b"\xc3\xa9", b'a\\"'):
        assert shape.text(_padded(b'"yes"', value)) is None, value
    assert shape.text(_event(b'"yes"')) is None  # learnt with padding: an event without it is not alike
    moved = _event(b'"yes"', tail=b'},"logprobs":null,"finish_reason":null,"obfuscation":"Ab"}]}\n\n')
    assert shape.text(moved) is None


@pytest.mark.parametrize(
    ("event", "text"),
    [
        (_event(b'"Hi"'), "Bye"),  # what the full reading found is not what sits there
        (_event(b'"Hi"', tail=b',"content":"Hi"}}]}\n\n'), "Hi"),  # the marker twice
        (_event(b'"Hi"', tail=b',"refusal":null},"finish_reason":null}]}\n\n'), "Hi"),  # text not last
        (b'data: {"choices":[{"delta":{"content":5}}]}\n\n', "5"),
        (b'data: {"choices":[]}\n\n', "x"),
        # the marker first in another field, holding the same text
        (b'data: {"x":{"delta":{"content":"Hi"}},' + HEAD[7:] + b'"Hi"' + TAIL, "Hi"),
    ],
)
def test_an_event_that_does_not_show_where_its_text_is_teaches_nothing(event: bytes, text: str) -> None:
    shape = _learnt(event, text)
    assert shape.text(_event(b'"other"')) is None
    assert shape.text(event) is None


class OneByOne(TextShape):
    """Counts the events read one by one: a run should not need that."""

    __slots__ = ("singles",)

    def __init__(self, marker: bytes, padding: bytes = b"") -> None:
        super().__init__(marker, padding)
        self.singles = 0

    def text(self, event: bytes) -> str | None:
        self.singles += 1
        return super().text(event)


def test_a_run_is_read_in_one_go_up_to_the_first_event_not_alike() -> None:
    shape = OneByOne(OPENAI_MARK, PAD)
    shape.learn(_event(b'"Hi"'), "Hi")
    run = [_event(orjson.dumps(f"t{i}")) for i in range(150)]  # more than two windows
    assert shape.texts(run, 0) == [f"t{i}" for i in range(150)]
    assert shape.texts(run, 140) == [f"t{i}" for i in range(140, 150)]
    assert shape.singles == 0
    finish = _event(b'"end"', tail=b'},"logprobs":null,"finish_reason":"stop"}]}\n\n')
    assert shape.texts([*run[:3], finish, *run[3:]], 0) == ["t0", "t1", "t2"]
    assert shape.singles == 0  # heads and tails alone told where the run ends


@pytest.mark.parametrize("odd", [b"null", b'"a","b"', b'"x"]', b'""', b" "])
def test_a_run_with_a_piece_that_is_not_one_text_is_read_up_to_it(odd: bytes) -> None:
    shape = _learnt(_event(b'"Hi"'), "Hi")
    events = [_event(b'"a"'), _event(b'"b"'), _event(odd), _event(b'"c"')]
    assert shape.texts(events, 0) == ["a", "b"]
    assert shape.texts(events, 3) == ["c"]


def test_a_padded_shape_reads_a_run_event_by_event() -> None:
    shape = _learnt(_padded(b'"Hi"', b"ab"), "Hi")
    events = [_padded(b'"a"', b"Q1"), _padded(b'"b"', b"zz9"), _event(b'"c"'), _padded(b'"d"', b"x")]
    assert shape.texts(events, 0) == ["a", "b"]


def test_forget_drops_the_shape() -> None:
    shape = _learnt(_event(b'"Hi"'), "Hi")
    shape.forget()
    assert shape.text(_event(b'"Hi"')) is None


# ---------------------------------------------------------------- whole streams, both decoders


class CountingShape(TextShape):
    """A TextShape that counts the events it read: the tests below must exercise it."""

    __slots__ = ("hits",)

    def __init__(self, marker: bytes, padding: bytes = b"") -> None:
        super().__init__(marker, padding)
        self.hits = 0

    def texts(self, events: list[bytes], start: int) -> list[str]:
        texts = super().texts(events, start)
        self.hits += len(texts)
        return texts


def _counting(decoder: Any, marker: bytes, padding: bytes = b"") -> Any:
    decoder._shape = CountingShape(marker, padding)
    return decoder


def _openai_fast() -> Any:
    return _counting(openai_chat_stream.StreamDecoder(), OPENAI_MARK, PAD)


ANTHROPIC_MARK = b'"delta":{"type":"text_delta","text":'


def _anthropic_fast() -> Any:
    return _counting(anthropic_stream.StreamDecoder(), ANTHROPIC_MARK)


TEXTS = ["Hi", " there", "", "\n", 'a "quote"', "back\\slash", "é☃😀", "\u2028", '"},"x":"', ","]


def _text(rng: random.Random) -> bytes:
    """A text as a JSON string, sometimes written with escapes orjson would not use."""
    text = rng.choice(TEXTS)
    if rng.random() < 0.2:
        return b'"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in text).encode() + b'"'
    return orjson.dumps(text)


def _openai_chunk(rng: random.Random, head: bytes, tail: bytes) -> bytes:
    """Mostly text in the stream's one shape, with every near miss of it."""
    roll = rng.random()
    text = _text(rng)
    if roll < 0.6:
        return head + text + tail
    if roll < 0.65:
        return head + text + tail.replace(b'"finish_reason":null', b'"finish_reason":"stop"')
    if roll < 0.7:
        return head + text + b',"role":"assistant"' + tail
    if roll < 0.73:  # not one string: a run holding it is read event by event
        return head + rng.choice([b"null", b"5", b'"a","b"', b'"x"]', b'["y"', b" ", b"", b'"a" "b"']) + tail
    if roll < 0.76:
        return (
            head + text + tail.replace(b"null}]", b'null}],"usage":{"prompt_tokens":1,"completion_tokens":2}')
        )
    if roll < 0.79:
        return head.replace(b'"index":0', b'"index":1') + text + tail
    if roll < 0.82:
        return head + text + tail.replace(b"\n\n", b"\r\n\r\n")
    if roll < 0.85:
        return head.replace(b"data: ", b"data:") + text + tail
    if roll < 0.88:
        obf = rng.choice([b"Ab1", b"", b"x-y"])
        return head + text + tail.replace(b"]}\n", b'],"obfuscation":"' + obf + b'"}\n')
    if roll < 0.9:
        return b": keep-alive\n\n"
    if roll < 0.93:
        call = b'{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}'
        return (
            head.replace(b'"delta":{"content":', b'"delta":{"tool_calls":[' + call + b'],"content":')
            + text
            + tail
        )
    if roll < 0.96:
        return head + text + tail[:-3] + b"\n\n"  # cut short: malformed
    return b"data: [DONE]\n\n"


def _openai_shapes(rng: random.Random) -> tuple[bytes, bytes]:
    head, tail = HEAD, TAIL
    if rng.random() < 0.4:  # as OpenAI writes them today: a per-event padding field last
        tail = tail.replace(b"]}\n", b'],"obfuscation":"' + rng.choice([b"qmz0", b"Bn"]) + b'"}\n')
    if rng.random() < 0.3:
        head = head.replace(b'"created":1,', b'"created":1, "service_tier":"default",')
    return head, tail


def _openai_stream(rng: random.Random) -> bytes:
    head, tail = _openai_shapes(rng)
    first = head.replace(b'{"content":', b'{"role":"assistant","content":') + b'""' + tail
    events = [
        first,
        *(
            _openai_chunk(rng, *_openai_shapes(rng) if rng.random() < 0.1 else (head, tail))
            for _ in range(rng.randint(0, 40))
        ),
    ]
    if rng.random() < 0.05:  # a long run: more than one window of the run reading
        events[1:1] = [head + _text(rng).replace(b'""', b'"-"') + tail for _ in range(rng.randint(60, 200))]
    if rng.random() < 0.8:
        events.append(head + b'""' + tail.replace(b'"finish_reason":null', b'"finish_reason":"stop"'))
        events.append(b"data: [DONE]\n\n")
    return b"".join(events)


def assert_alike(stream: Any, fast: Any, general: Any, seed: int) -> int:
    """Random streams read alike both ways; the text events the shape read, in all."""
    return sum(d._shape.hits for d in assert_decoded_alike(stream, fast, general, seed, streams=3000))


def test_openai_streams_read_by_shape_decode_as_read_in_full() -> None:
    hits = assert_alike(_openai_stream, _openai_fast, GeneralOpenAIDecoder, 21)
    assert hits > 2_000  # near misses end many streams early


ANTHROPIC_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":'


def _anthropic_event(rng: random.Random, index: int) -> bytes:
    roll = rng.random()
    text = _text(rng)
    head = ANTHROPIC_HEAD % index
    if roll < 0.6:
        return head + text + b"}}\n\n"
    if roll < 0.64:
        return (ANTHROPIC_HEAD % (index + 1)) + text + b"}}\n\n"
    if roll < 0.67:
        return head.replace(b"event: content_block_delta\n", b"") + text + b"}}\n\n"
    if roll < 0.7:
        return head + text + b',"citations":[]}}\n\n'
    if roll < 0.73:
        return (
            head.replace(b"text_delta", b"thinking_delta").replace(b'"text":', b'"thinking":')
            + text
            + b"}}\n\n"
        )
    if roll < 0.76:
        return head + text + b"}}\r\n\r\n"
    if roll < 0.79:
        return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % index
    if roll < 0.82:
        block = b'{"type":"text","text":""}'
        return (
            b'event: content_block_start\ndata: {"type":"content_block_start","index":%d,"content_block":%s}\n\n'
            % (
                index + 1,
                block,
            )
        )
    if roll < 0.85:
        return b'event: ping\ndata: {"type":"ping"}\n\n'
    if roll < 0.87:
        return head + text + b"}\n\n"  # cut short: malformed
    if roll < 0.88:
        return head + rng.choice([b"null", b'"a","b"', b'"x"]', b" "]) + b"}}\n\n"
    if roll < 0.89:
        return (
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'
        )
    if roll < 0.91:
        return b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":4}}\n\n'
    return head + b'"' + rng.choice([b"", b"x"]) + b'"' + b"}}\n\n"


def _anthropic_stream(rng: random.Random) -> bytes:
    start = b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"m","usage":{"input_tokens":2}}}\n\n'
    block = b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
    events = [start, block]
    index = 0
    for _ in range(rng.randint(0, 40)):
        event = _anthropic_event(rng, index)
        if event.startswith(b"event: content_block_start"):
            index += 1
        events.append(event)
    if rng.random() < 0.8:
        events.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    return b"".join(events)


def test_anthropic_streams_read_by_shape_decode_as_read_in_full() -> None:
    hits = assert_alike(_anthropic_stream, _anthropic_fast, GeneralAnthropicDecoder, 22)
    assert hits > 5_000


# ---------------------------------------------------------------- the vendors' recorded streams


def _recorded_openai() -> list[tuple[str, bytes]]:
    specs = find_specs_dir() / "openai" / "examples"
    streams = [(p.name, p.read_bytes()) for p in sorted((specs / "sdk-sse").glob("*.sse"))]
    for path in sorted(specs.glob("lingua-captures/*/chat-completions/*streaming.json")):
        chunks = orjson.loads(path.read_bytes())  # as OpenAI wrote them, obfuscation included
        body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
        streams.append((str(path.relative_to(specs)), body))
    return streams


def _recorded_anthropic() -> list[tuple[str, bytes]]:
    specs = find_specs_dir() / "anthropic" / "examples" / "sdk-sse"
    return [(p.name, p.read_bytes()) for p in sorted(specs.glob("*.txt"))]


def _decode(decoder: Any, body: bytes, cuts: list[int]) -> list[Any]:
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return [e for p in pieces for e in decoder.feed(p)] + decoder.finish()


@pytest.mark.parametrize(
    ("fast", "general", "recorded"),
    [
        (_openai_fast, GeneralOpenAIDecoder, _recorded_openai),
        (_anthropic_fast, GeneralAnthropicDecoder, _recorded_anthropic),
    ],
    ids=["openai", "anthropic"],
)
def test_recorded_streams_decode_alike_and_mostly_by_shape(fast: Any, general: Any, recorded: Any) -> None:
    streams = recorded()
    assert len(streams) >= 5
    rng = random.Random(3)
    hits = 0
    for name, body in streams:
        for cuts in ([], sorted(rng.sample(range(1, len(body)), 5))):
            decoder = fast()
            assert _decode(decoder, body, cuts) == _decode(general(), body, cuts), name
            hits += decoder._shape.hits
    assert hits >= 8  # the recorded streams are short: two texts of three, say, read by shape


def test_the_recorded_padding_is_what_the_openai_decoder_allows() -> None:
    """OpenAI's streams today end each chunk with a random `obfuscation` field: those streams
    still read by shape."""
    specs = find_specs_dir() / "openai" / "examples" / "lingua-captures"
    path = specs / "simpleRequest" / "chat-completions" / "response-streaming.json"
    chunks = orjson.loads(path.read_bytes())
    assert all("obfuscation" in c for c in chunks)
    texts = [c for c in chunks if c["choices"] and set(c["choices"][0]["delta"]) == {"content"}]
    assert len(texts) >= 2
    decoder = _openai_fast()
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    decoder.feed(body)
    assert decoder._shape.hits >= len(texts) - 2  # the first two are read in full: they teach it


def test_a_stream_fed_byte_by_byte_decodes_as_fed_whole() -> None:
    """A stream fed byte by byte decodes as fed whole: the shape never sees half an event."""
    body = _openai_stream(random.Random(9))
    whole = _decode(_openai_fast(), body, [])
    assert _decode(_openai_fast(), body, list(range(1, len(body)))) == whole


# ---------------------------------------------------------------- runs, written whole


def _runs_decoder(make: Any) -> Any:
    decoder = make()
    decoder.runs = True
    return decoder


ENCODERS = {
    "anthropic": lambda: anthropic_stream.StreamEncoder("m", "msg_1"),
    "openai": lambda: openai_chat_stream.StreamEncoder("m", True, "chatcmpl-1", 1),
    "openai-late-id": lambda: openai_chat_stream.StreamEncoder("m", False),
}


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
@pytest.mark.parametrize(
    ("stream", "decoder"),
    [
        (_openai_stream, openai_chat_stream.StreamDecoder),
        (_anthropic_stream, anthropic_stream.StreamDecoder),
    ],
    ids=["from-openai", "from-anthropic"],
)
def test_runs_written_whole_give_the_bytes_their_text_deltas_give(
    stream: Any, decoder: Any, encoder: str
) -> None:
    """Random streams cut at random points: a decoder that makes runs, into an encoder that
    writes them whole, gives the client the same bytes as text deltas one by one."""
    rng = random.Random(31)
    runs = 0
    for _ in range(1500):
        pieces = _cut(stream(rng), rng)
        out: list[bytes] = []
        for make in (lambda: _runs_decoder(decoder), decoder):
            d, e = make(), ENCODERS[encoder]()
            events = [ev for p in pieces for ev in d.feed(p)] + d.finish()
            runs += sum(type(ev) is hub.TextRun for ev in events) if d.runs else 0
            out.append(b"".join(map(e.encode, events)))
        assert out[0] == out[1], pieces
    assert runs > 500


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_a_run_for_a_block_not_written_to_last_is_written_delta_by_delta(encoder: str) -> None:
    start = hub.MessageStart("chatcmpl-1", "m", created=1)
    events: list[Any] = [start, hub.BlockStart(0, hub.Text("")), hub.BlockDelta(0, "text", "a")]
    events += [hub.BlockStop(0), hub.BlockStart(1, hub.Text(""))]
    run = hub.TextRun(1, ["b", 'c "q"', "é"])
    whole, by_delta = ENCODERS[encoder](), ENCODERS[encoder]()
    assert b"".join(map(whole.encode, [*events, run, run])) == b"".join(
        map(by_delta.encode, [*events, *hub.text_deltas(run), *hub.text_deltas(run)])
    )


def test_the_tap_asks_for_runs_only_for_an_encoder_that_writes_them() -> None:
    for encoder, wanted in (
        (anthropic_stream.StreamEncoder("m"), True),
        (openai_chat_stream.StreamEncoder("m", False), True),
        (gemini_stream.StreamEncoder("m", sse=True), False),
    ):
        decoder = openai_chat_stream.StreamDecoder()
        TranslatingTap(decoder, encoder)
        assert decoder.runs is wanted
