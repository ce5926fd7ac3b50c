"""Stream taps on recorded vendor streams, cut at every kind of chunk boundary."""

from __future__ import annotations

import itertools
import json
import random

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulator_harness import find_specs_dir
from torouter.catalog import Account
from torouter.protocols import anthropic_messages, openai_chat
from torouter.protocols.sse import (
    SSE_FIELDS,
    EventSplitter,
    event_data,
    event_span,
    events_with,
    first_malformed,
    first_misshapen,
    split_events,
    well_formed,
)
from torouter.surfaces.guard import EventGuard

SPECS = find_specs_dir()
OPENAI_USAGE = (SPECS / "openai/examples/sdk-sse/chat_text_stream_with_usage.sse").read_bytes()
ANTHROPIC_TOOL = (SPECS / "anthropic/examples/sdk-sse/tool_use_response.txt").read_bytes()
GEMINI_CRLF = (
    SPECS / "gemini/examples/firebase-mock-responses/streaming-success-basic-reply-short.txt"
).read_bytes()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(edges) if b > a]


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=40)


@settings(max_examples=200, deadline=None)
@given(cuts)
def test_splitter_yields_the_same_events_however_the_bytes_are_cut(points: list[int]) -> None:
    for data in (OPENAI_USAGE, ANTHROPIC_TOOL, GEMINI_CRLF):
        whole = list(EventSplitter().feed(data))
        splitter = EventSplitter()
        pieces = [event for chunk in cut(data, points) for event in splitter.feed(chunk)]
        assert pieces == whole
        assert b"".join(whole) + splitter.flush() == data


def test_gemini_crlf_frames_are_separated() -> None:
    events = list(EventSplitter().feed(GEMINI_CRLF))
    assert len(events) >= 2 and all(e.endswith(b"\r\n\r\n") for e in events)
    assert all(orjson.loads(event_data(e) or b"null") for e in events)


@settings(max_examples=200, deadline=None)
@given(cuts)
def test_openai_tap_passes_bytes_untouched_and_reads_usage(points: list[int]) -> None:
    tap = openai_chat.StreamTap(hide_usage_chunk=False)
    out = b"".join(tap.feed(c) for c in cut(OPENAI_USAGE, points)) + tap.flush()
    assert out == OPENAI_USAGE
    expected = orjson.loads(event_data(list(EventSplitter().feed(OPENAI_USAGE))[-2]) or b"{}")["usage"]
    assert tap.usage is not None and tap.usage.input_tokens == expected["prompt_tokens"]
    assert tap.usage.output_tokens == expected["completion_tokens"] and tap.done


@settings(max_examples=200, deadline=None)
@given(cuts)
def test_openai_tap_hides_only_the_usage_chunk_when_asked(points: list[int]) -> None:
    tap = openai_chat.StreamTap(hide_usage_chunk=True)
    out = b"".join(tap.feed(c) for c in cut(OPENAI_USAGE, points)) + tap.flush()
    events = list(EventSplitter().feed(OPENAI_USAGE))
    usage_events = [e for e in events if b'"choices":[]' in e]
    assert len(usage_events) == 1
    assert out == b"".join(e for e in events if e not in usage_events)
    assert tap.usage is not None and tap.usage.output_tokens > 0


def spaced(stream: bytes) -> bytes:
    """The recording as servers that write JSON with spaces send it (`"usage": {`), with
    `"usage": null` on every chunk before the last, as some OpenAI-compatible servers do."""
    out = []
    for event in split_events(stream):
        data = event_data(event) or b""
        if data.startswith(b"{"):
            chunk = orjson.loads(data)
            chunk.setdefault("usage", None)
            event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        out.append(event)
    return b"".join(out)


@pytest.mark.parametrize("hide", [False, True])
def test_openai_tap_reads_usage_written_with_spaces_and_skips_null_usage(hide: bool) -> None:
    stream = spaced(OPENAI_USAGE)
    assert b'"usage": {' in stream and b'"usage": null' in stream
    tap = openai_chat.StreamTap(hide_usage_chunk=hide)
    out = tap.feed(stream) + tap.flush()
    events = list(split_events(stream))
    kept = [e for e in events if not (hide and b'"choices": []' in e)]
    assert len(kept) == len(events) - hide  # only the usage-only chunk is hidden
    assert out == b"".join(kept)
    plain = openai_chat.StreamTap(hide_usage_chunk=False)
    plain.feed(OPENAI_USAGE)
    assert tap.usage == plain.usage and tap.usage is not None and tap.done


@settings(max_examples=200, deadline=None)
@given(cuts)
def test_anthropic_tap_reads_cumulative_usage_and_cache_buckets(points: list[int]) -> None:
    tap = anthropic_messages.StreamTap()
    out = b"".join(tap.feed(c) for c in cut(ANTHROPIC_TOOL, points)) + tap.flush()
    assert out == ANTHROPIC_TOOL
    start = orjson.loads(
        event_data(next(e for e in EventSplitter().feed(ANTHROPIC_TOOL) if b"message_start" in e))
    )
    delta = orjson.loads(
        event_data(next(e for e in EventSplitter().feed(ANTHROPIC_TOOL) if b"message_delta" in e))
    )
    raw = {**start["message"]["usage"], **{k: v for k, v in delta["usage"].items() if v is not None}}
    u = tap.usage
    assert u is not None and tap.done
    read, write = raw.get("cache_read_input_tokens") or 0, raw.get("cache_creation_input_tokens") or 0
    assert u.input_tokens == raw["input_tokens"] + read + write
    assert (u.cached_tokens, u.cache_write_tokens, u.output_tokens) == (read, write, raw["output_tokens"])


def test_anthropic_usage_keeps_the_one_hour_cache_split() -> None:
    u = anthropic_messages.usage_from(
        {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 50,
            "cache_creation": {"ephemeral_5m_input_tokens": 20, "ephemeral_1h_input_tokens": 30},
            "output_tokens_details": {"thinking_tokens": 2},
        }
    )
    assert u is not None
    assert (u.input_tokens, u.cached_tokens, u.cache_write_tokens, u.cache_write_1h_tokens) == (
        160,
        100,
        50,
        30,
    )
    assert (u.output_tokens, u.reasoning_tokens) == (5, 2)


def test_anthropic_tap_sees_an_error_event() -> None:
    tap = anthropic_messages.StreamTap()
    tap.feed(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    assert tap.error is not None and b"overloaded_error" in tap.error


def misshapen_by_the_loop(block: bytes) -> int:
    """`first_misshapen` as it was before its pre-filter, verbatim: the behaviour it must keep."""
    if b"\r" in block:  # CRLF framing is rare: take the line-by-line path
        return first_malformed(block, strict=False)
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


EVENT_BODIES = (
    b'data: {"id":"c","choices":[{"delta":{"content":" w"}}]}',
    b"data: [1,2]",
    b"data: [DONE]",
    b": ping",
    b":",
    b"event: ping",
    b'event: delta\ndata: {"type":"x"}',
    b'data: {"cut":',
    b'data: {"a":1}\ndata: tail',
    b"<html><body>502 Bad Gateway</body></html>",
    b"data: x",
    b"id: 7",
    b"",
)
CLEAN_BODIES = tuple(b for b in EVENT_BODIES if b.endswith((b"}", b"]")))
# Runs before the blank line: bytes.rstrip() takes all of them, the 8-byte tail window may not.
TRAILS = (b"", b"", b"", b" ", b"\t", b"\x0b", b"\x0c", b" \t ", b"\n", b"\n \n", b" " * 8, b"\t" * 9)
SEPARATORS = (b"\n\n", b"\n\n", b"\n\n", b"\n", b"", b"\n\n\n", b"\n\n\n\n")
NOISE = b'{}[]: \n\tdata"x\x0b\x0c'
EDGES = (
    b"",
    b"\n",
    b"\n\n",
    b"\n\n\n",
    b"\n\n\n\n\n",
    b": ping\n\n",
    b"event: ping\n\n",
    b"data: x\n \n\n",
    b"data: x\x0b\n\n",
    b"data: x\n\n\n",
    b'data: {"a":1}\n\n\ndata: x\n\n',
    b'data: {"a":1} \t\n\n',
    b"data: x" + b" " * 8 + b"\n\n",
    b'data: {"a":1}\n\ndata: {"b":',
    b"\n\ndata: [DONE]\n\n",
    b"data: {}\r\n\r\ndata: x\r\n\r\n",
)


def random_block(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return bytes(rng.choices(NOISE, k=rng.randrange(0, 40)))
    # Most blocks look like a real stream with at most a flaw or two: the pre-filter's job is to
    # pass those, and a flawed one slipping through is the bug to catch.
    flaw = 0.02 if roll < 0.6 else 0.3
    parts = []
    for _ in range(rng.randrange(0, 9)):
        if rng.random() < flaw:
            parts += [rng.choice(EVENT_BODIES), rng.choice(TRAILS), rng.choice(SEPARATORS)]
        else:
            parts += [rng.choice(CLEAN_BODIES), b"\n\n"]
        if rng.random() < flaw / 4:
            parts.append(bytes(rng.choices(NOISE, k=rng.randrange(1, 6))))
    return b"".join(parts)


def test_misshapen_pre_filter_keeps_the_loops_answer_on_random_blocks() -> None:
    rng = random.Random(20240611)
    blocks = [*EDGES, *(random_block(rng) for _ in range(60_000))]
    answers = [first_misshapen(b) for b in blocks]
    mismatches = [(b, a) for b, a in zip(blocks, answers, strict=True) if a != misshapen_by_the_loop(b)]
    assert not mismatches, mismatches[:5]
    # Both outcomes in bulk, or the comparison proves little.
    found = sum(a >= 0 for a in answers)
    assert 0.1 * len(blocks) < found < 0.9 * len(blocks)


def events_by_search(block: bytes) -> list[bytes]:
    """split_events as it was before its LF shortcut: the reference."""
    out, start = [], 0
    while True:
        lf, crlf = block.find(b"\n\n", start), block.find(b"\r\n\r\n", start)
        if lf < 0 and crlf < 0:
            return out
        end = min(e for e in (lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1) if e >= 0)
        out.append(block[start:end])
        start = end


def test_split_events_cuts_where_the_search_for_each_blank_line_does() -> None:
    rng = random.Random(11)
    pieces = (b"data: {}", b"event: x", b"\n", b"\n\n", b"\n\n\n", b"\r\n", b"\r\n\r\n", b"x", b": c")
    blocks = [b"".join(rng.choices(pieces, k=rng.randrange(0, 12))) for _ in range(20_000)]
    assert [list(split_events(b)) for b in blocks] == [events_by_search(b) for b in blocks]


def end_by_search(buf: bytes) -> int:
    """Where EventSplitter.take cut before it searched for CRLF only when a CR is there: the reference."""
    lf, crlf = buf.rfind(b"\n\n"), buf.rfind(b"\r\n\r\n")
    return max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)


def span_by_search(block: bytes, pos: int) -> tuple[int, int]:
    """event_span as it was before it skipped CRLF searches in a block without a CR: the reference."""
    lf, crlf = block.rfind(b"\n\n", 0, pos), block.rfind(b"\r\n\r\n", 0, pos)
    start = max(lf + 2 if lf >= 0 else 0, crlf + 4 if crlf >= 0 else 0)
    lf, crlf = block.find(b"\n\n", pos), block.find(b"\r\n\r\n", pos)
    ends = [e for e in (lf + 2 if lf >= 0 else -1, crlf + 4 if crlf >= 0 else -1) if e >= 0]
    return start, min(ends) if ends else len(block)


def test_splitter_and_event_spans_cut_where_searching_for_both_separators_does() -> None:
    rng = random.Random(17)
    pieces = (b"data: {}", b"event: x", b"\n", b"\n\n", b"\r\n", b"\r\n\r\n", b"\r", b"x", b"m")
    for _ in range(20_000):
        buf = b"".join(rng.choices(pieces, k=rng.randrange(0, 12)))
        splitter = EventSplitter()
        block = splitter.take(buf)
        assert len(block) == end_by_search(buf), buf
        assert block + splitter.flush() == buf
        for pos in range(len(buf)):
            assert event_span(buf, pos, b"\r" in buf) == span_by_search(buf, pos), (buf, pos)
        spans = events_with(buf, b"m")
        assert spans == [span_by_search(buf, p) for p in _marker_starts(buf)], buf


def _marker_starts(buf: bytes) -> list[int]:
    """The positions events_with searches from: each marker after the previous span's end."""
    out, pos = [], buf.find(b"m")
    while pos >= 0:
        out.append(pos)
        pos = buf.find(b"m", span_by_search(buf, pos)[1])
    return out


def data_by_lines(event: bytes) -> bytes | None:
    """event_data as it read every event before its fast path for one-line events."""
    parts = [line[5:][1:] if line[5:].startswith(b" ") else line[5:] for line in event.splitlines()]
    kept = [p for line, p in zip(event.splitlines(), parts, strict=True) if line.startswith(b"data:")]
    return b"\n".join(kept) if kept else None


def test_one_line_events_read_as_the_line_by_line_reading_does() -> None:
    rng = random.Random(20261206)
    heads = (
        b"data:",
        b"data: ",
        b"data:  ",
        b"event: x\ndata: ",
        b"event:x\ndata:",
        b"event: x\n",
        b"event: x\r\ndata: ",
        b"event: x\nevent: y\ndata: ",
        b"event: x\nid: 1\ndata: ",
        b"event:",
        b": c\ndata:",
        b"id: 1\n",
        b"",
    )
    tails = (
        b"",
        b"\n",
        b"\n\n",
        b"\n\n\n",
        b"\r\n\r\n",
        b"\n\r\n",
        b"\ndata: 2\n\n",
        b"\nid: 3\n\n",
        b"\n: x\n\n",
    )
    events = [EDGES[0], b"data:", b"data: \n\n", b"data:\n", b"\n\n"]
    for _ in range(40_000):
        body = rng.choice([*EVENT_BODIES, b"[DONE]", b"", b" ", b"x\ry"])
        events.append(rng.choice(heads) + body + rng.choice(TRAILS) + rng.choice(tails))
    for event in events:
        assert event_data(event) == data_by_lines(event), event
        for strict in (True, False):
            assert well_formed(event, strict) == well_formed_by_lines(event, strict), (event, strict)
    # The fast path's shape in bulk, or the comparison proves little.
    assert sum(e.startswith(b"data:") and e.count(b"\n") <= 2 and b"\r" not in e for e in events) > 2_000
    assert sum(e.startswith(b"event:") and e.count(b"\n") <= 3 and b"\r" not in e for e in events) > 1_000


def well_formed_by_lines(event: bytes, strict: bool) -> bool:
    parts: list[bytes] = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
        elif line and not line.startswith(SSE_FIELDS):
            return False
    if not parts:
        return True
    data = b"\n".join(parts).strip()
    if data == b"[DONE]":
        return True
    if not strict:
        return data[:1] in (b"{", b"[") and data[-1:] in (b"}", b"]")
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


OPENAI_ERROR = b'data: {"error":{"message":"Upstream overloaded","type":"server_error","code":null}}\n\n'
ANTHROPIC_ERROR = (
    b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
)


@settings(max_examples=200, deadline=None)
@given(cuts, st.integers(min_value=0, max_value=40))
def test_a_tap_told_no_error_is_there_reads_the_same_as_one_that_searches(points: list[int], at: int) -> None:
    account = Account(1, "a", "openai", "http://up.example", "sk-secret", 1, 0, "active", (), {}, 0, 1, 1, 1)
    for stream, error, new_tap in (
        (OPENAI_USAGE, OPENAI_ERROR, lambda: openai_chat.StreamTap(hide_usage_chunk=True)),
        (ANTHROPIC_TOOL, ANTHROPIC_ERROR, anthropic_messages.StreamTap),
    ):
        events = list(EventSplitter().feed(stream))
        for data in (stream, b"".join([*events[: at % len(events)], error, *events[at % len(events) :]])):
            guard, told, searching = EventGuard(account), new_tap(), new_tap()
            out_told, out_searching = [], []
            for chunk in cut(data, points):
                block = guard.take(chunk)
                if block:
                    assert guard.errors == (b"error" in block)
                    out_told.append(told.feed(block, guard.errors))
                    out_searching.append(searching.feed(block))
            assert out_told == out_searching and b"".join(out_told)
            assert (told.usage, told.error, told.done) == (searching.usage, searching.error, searching.done)
            assert (told.error is not None) == (error in data)


def _random_usage(rng: random.Random, names: tuple[str, ...]) -> dict[str, int | None]:
    return {n: rng.choice((None, 0, rng.randint(1, 90_000))) for n in names if rng.random() < 0.8}


def _openai_stream(rng: random.Random) -> bytes:
    """Chunks as OpenAI and compatible servers send them: usage null on each, in every chunk
    (continuous usage), nested where it is no usage of the call, or only in the last."""
    spaces = rng.random() < 0.5
    events = []
    for i in range(rng.randint(1, 12)):
        chunk: dict[str, object] = {
            "id": "c",
            "choices": [{"index": 0, "delta": {"content": rng.choice(("a", "usage", '"usage":{'))}}],
        }
        roll = rng.random()
        if roll < 0.3:
            chunk["usage"] = None
        elif roll < 0.6:
            chunk["usage"] = {"prompt_tokens": rng.randint(1, 99), "completion_tokens": i}
        elif roll < 0.7:
            chunk["choices"][0]["delta"]["usage"] = {"prompt_tokens": 7}  # type: ignore[index]
        elif roll < 0.75:
            chunk["usage"] = {}
        events.append(chunk)
    if rng.random() < 0.7:
        events.append({"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}})
    dump = (lambda c: json.dumps(c).encode()) if spaces else orjson.dumps
    return b"".join(b"data: " + dump(c) + b"\n\n" for c in events) + b"data: [DONE]\n\n"


def _anthropic_stream(rng: random.Random) -> bytes:
    fields = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    start = {"type": "message_start", "message": {"id": "m", "usage": _random_usage(rng, fields)}}
    events = [("message_start", start)]
    for _ in range(rng.randint(0, 10)):
        text = rng.choice(("a", "usage", '"usage"', '{"usage": 1}'))
        if rng.random() < 0.2:
            events.append(("ping", {"type": "ping"}))
        events.append(("content_block_delta", {"type": "content_block_delta", "delta": {"text": text}}))
    if rng.random() < 0.8:
        events.append(("message_delta", {"type": "message_delta", "usage": _random_usage(rng, fields)}))
    events.append(("message_stop", {"type": "message_stop"}))
    return b"".join(b"event: " + n.encode() + b"\ndata: " + orjson.dumps(d) + b"\n\n" for n, d in events)


def test_taps_read_the_usage_that_reading_every_event_gives() -> None:
    """The taps search a block for its first and last usage only (Anthropic) or from its end
    (OpenAI, when nothing is hidden); reading every event in order must give the same usage."""
    rng = random.Random(31)
    for _ in range(3000):
        stream = _openai_stream(rng)
        want = None
        for event in split_events(stream):
            data = event_data(event)
            chunk = orjson.loads(data) if data and data != b"[DONE]" else None
            if isinstance(chunk, dict) and openai_chat.usage_from(chunk.get("usage")) is not None:
                want = openai_chat.usage_from(chunk["usage"])
        points = [rng.randint(0, len(stream)) for _ in range(rng.randint(0, 6))]
        for hide in (False, True):
            tap = openai_chat.StreamTap(hide_usage_chunk=hide)
            out = b"".join(tap.feed(c) for c in cut(stream, points)) + tap.flush()
            assert tap.usage == want, stream
            assert hide or out == stream

        stream = _anthropic_stream(rng)
        raw: dict[str, object] = {}
        for event in split_events(stream):
            payload = orjson.loads(event_data(event) or b"{}")
            if payload["type"] == "message_start":
                raw.update(payload["message"]["usage"])
            elif payload["type"] == "message_delta":
                raw.update({k: v for k, v in payload["usage"].items() if v is not None})
        points = [rng.randint(0, len(stream)) for _ in range(rng.randint(0, 6))]
        tap = anthropic_messages.StreamTap()
        assert b"".join(tap.feed(c) for c in cut(stream, points)) + tap.flush() == stream
        assert tap.usage == (anthropic_messages.usage_from(raw) if raw else None), stream
