"""Gemini streamGenerateContent <-> hub stream events, incrementally in both directions.

Each Gemini chunk is a whole GenerateContentResponse holding a slice of the parts, with the usage
so far (cumulative) on every chunk and finishReason only on the last. Two framings: SSE
(`?alt=sse`: `data: {...}` + CRLF CRLF, no [DONE]; the stream ends when the connection closes) and,
without `alt`, one JSON array sent element by element.

Decoding: consecutive text parts share a Text block, consecutive thought parts a Thinking block;
a change of kind closes the open block. A thought part's signature is a "signature" delta that
closes its Thinking block (one signature per block, as Anthropic clients expect). A signature on
a non-thought part is a Thinking block of its own with only that signature (gemini_codec's
carrier rule). A functionCall comes whole: BlockStart(ToolUse), one "json" delta, BlockStop,
with the signature on the ToolUse and an id minted as in gemini_codec.decode_response. Inline
images become Image blocks (start and stop, no deltas). finishReason gives the MessageDelta at
once; MessageStop comes from finish(), at the end of the stream, and a stream that ends with no
finishReason gives a StreamError. A blocked prompt is a refusal with a Text saying why.

Encoding writes one chunk per text or thinking delta (with the usage known so far), one chunk per
tool call at its BlockStop, and the final chunk (finishReason, full usage) at MessageStop.
"""

from __future__ import annotations

from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols.faults import guarded, malformed
from torouter.protocols.gemini import (
    ArrayScanner,
    camel_keys,
    error_kind,
    read_usage,
    stream_error_chunk,
    usage_body,
)
from torouter.protocols.gemini_codec import (
    blocked_text,
    finish_reason,
    is_minted,
    media_blocks,
    media_part,
    mint_id,
    stop_reason_from,
)
from torouter.protocols.sse import EventSplitter, event_data


class StreamDecoder:
    """Upstream Gemini stream bytes -> hub events; `usage` is the latest (cumulative) usage."""

    def __init__(self, sse: bool = True) -> None:
        self._sse = sse
        self._splitter = EventSplitter()
        self._scanner = ArrayScanner()
        self.usage: hub.Usage | None = None
        self._started = False
        self._id = ""
        self._next = 0
        self._open: tuple[str, int] | None = None  # (kind, index) of the open block
        self._calls = 0
        self._finished = False  # finishReason (or a blocked prompt) seen
        self._ended = False  # nothing more is decoded

    def feed(self, chunk: bytes) -> list[hub.Event]:
        events: list[hub.Event] = []
        if not self._ended and not guarded(self._feed, chunk, events):
            self._ended = True
        return events

    def _feed(self, chunk: bytes, events: list[hub.Event]) -> None:
        if self._sse:
            for raw in self._splitter.feed(chunk):
                data = event_data(raw)
                if data is not None:
                    self._chunk(data, events)
        else:
            for element in self._scanner.feed(chunk):
                self._chunk(element, events)

    def finish(self) -> list[hub.Event]:
        events: list[hub.Event] = []
        rest = self._splitter.flush() if self._sse else b""
        data = event_data(rest) if rest.strip() else None  # a last event with no blank line
        if data is not None and not self._ended and not guarded(self._chunk, data, events):
            self._ended = True
        if self._ended:
            return events
        self._ended = True
        if self._finished:
            events.append(hub.MessageStop())
        else:
            self._close(events)
            events.append(
                hub.StreamError("api_error", "The upstream stream ended early.", "upstream_disconnected")
            )
        return events

    # ------------------------------------------------------------ one chunk

    def _chunk(self, data: bytes, events: list[hub.Event]) -> None:
        if self._ended:
            return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self._ended = True
            self._close(events)
            events.append(malformed("chunk"))
            return
        chunk = camel_keys(payload)
        if "error" in chunk and not chunk.get("candidates"):
            self._ended = True
            self._close(events)
            err = chunk["error"]
            message = err.get("message") if isinstance(err, dict) else None
            events.append(hub.StreamError(error_kind(err), str(message or err)))
            return
        if isinstance(chunk.get("usageMetadata"), dict):
            self.usage = read_usage(chunk["usageMetadata"])
        if self._finished:
            return  # anything after the final chunk only updates the usage
        if not self._started:
            self._started = True
            self._id = str(chunk.get("responseId") or "")
            events.append(
                hub.MessageStart(self._id, str(chunk.get("modelVersion") or ""), self.usage or hub.Usage())
            )
        candidates = chunk.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._delta(events, "text", blocked_text(feedback))
                self._end(events, "refusal")
            return
        cand = camel_keys(candidates[0]) if isinstance(candidates[0], dict) else {}
        content = cand.get("content") if isinstance(cand.get("content"), dict) else {}
        parts = content.get("parts")
        for part in parts if isinstance(parts, list) else ():
            if isinstance(part, dict):
                self._part(camel_keys(part), events)
        if cand.get("finishReason"):
            self._end(events, stop_reason_from(cand["finishReason"], self._calls > 0))

    def _part(self, p: dict[str, Any], events: list[hub.Event]) -> None:
        sig = p.get("thoughtSignature")
        fc = p.get("functionCall")
        if isinstance(fc, dict):
            self._close(events)
            name = str(fc.get("name") or "")
            call_id = fc.get("id") if isinstance(fc.get("id"), str) and fc["id"] else None
            call_id = call_id or mint_id(self._id, self._calls, name)
            self._calls += 1
            args = fc.get("args") if isinstance(fc.get("args"), dict) else {}
            index = self._start(events, "tool", hub.ToolUse(call_id, name, {}, signature=sig))
            events.append(hub.BlockDelta(index, "json", orjson.dumps(args).decode()))
            self._close(events)
            return
        if isinstance(p.get("text"), str) or (sig is not None and len(p) == 1):
            text = p.get("text") or ""
            if p.get("thought") is True:
                if not text and sig is None:
                    return
                self._delta(events, "thinking", text)
                if sig is not None:
                    self._delta(events, "signature", hub.gemini_signature(sig))
                    self._close(events)
                return
            if sig is not None:  # a signature on a plain part: a Thinking block of its own
                self._close(events)
                self._delta(events, "signature", hub.gemini_signature(sig))
                self._close(events)
            if text:
                self._delta(events, "text", text)
            return
        media = p.get("inlineData") or p.get("fileData")
        if isinstance(media, dict):
            try:
                blocks = media_blocks(camel_keys(media), "inlineData" in p)
            except GatewayError:
                return  # audio or video: no hub block carries it
            for b in blocks:
                self._close(events)
                self._start(events, "media", b)
                self._close(events)

    def _start(self, events: list[hub.Event], kind: str, block: hub.Block) -> int:
        index, self._next = self._next, self._next + 1
        self._open = (kind, index)
        events.append(hub.BlockStart(index, block))
        return index

    def _delta(self, events: list[hub.Event], kind: str, value: str) -> None:
        """A delta for the open block of that kind, opening one (and closing another) if needed."""
        block_kind = "text" if kind == "text" else "thinking"
        if self._open is None or self._open[0] != block_kind:
            self._close(events)
            self._start(events, block_kind, hub.Text("") if block_kind == "text" else hub.Thinking(""))
        if value:
            assert self._open is not None
            events.append(hub.BlockDelta(self._open[1], kind, value))  # type: ignore[arg-type]

    def _close(self, events: list[hub.Event]) -> None:
        if self._open is not None:
            events.append(hub.BlockStop(self._open[1]))
            self._open = None

    def _end(self, events: list[hub.Event], stop: hub.StopReason) -> None:
        self._close(events)
        self._finished = True
        events.append(hub.MessageDelta(stop, None, self.usage or hub.Usage()))


class StreamEncoder:
    """Hub events -> Gemini stream chunks for a client, answered under the client's `model` name."""

    def __init__(self, model: str, sse: bool = True) -> None:
        self._model = model
        self._sse = sse
        self._id = ""
        self._usage = hub.Usage()
        self._kinds: dict[int, str] = {}  # block index -> text, thinking, tool
        self._thought: set[int] = set()  # thinking blocks that sent text
        self._tools: dict[int, tuple[hub.ToolUse, list[str]]] = {}
        self._pending: str | None = None  # a signature for the next non-thought part
        self._delta: hub.MessageDelta | None = None
        self._sent = False  # anything written (the array's `[` included)
        self._done = False

    def encode(self, event: hub.Event) -> bytes:
        if self._done:
            return b""
        if isinstance(event, hub.BlockDelta):
            return self._block_delta(event)
        if isinstance(event, hub.BlockStart):
            return self._block_start(event)
        if isinstance(event, hub.BlockStop):
            entry = self._tools.pop(event.index, None)
            return self._tool_chunk(*entry) if entry is not None else b""
        if isinstance(event, hub.MessageStart):
            self._id, self._usage = event.id, event.usage
            return b""
        if isinstance(event, hub.MessageDelta):
            prev = self._delta
            self._delta = (
                event
                if prev is None
                else hub.MessageDelta(event.stop_reason or prev.stop_reason, None, event.usage or prev.usage)
            )
            if event.usage is not None:
                self._usage = event.usage
            return b""
        if isinstance(event, hub.MessageStop):
            return self._final()
        if isinstance(event, hub.StreamError):
            self._done = True
            err = GatewayError(event.kind, event.message, code=event.code)
            return stream_error_chunk(err, self._sse, self._sent)
        return b""  # Ping: Gemini streams have no keep-alive the SDK would not choke on

    def _block_start(self, event: hub.BlockStart) -> bytes:
        b, i = event.block, event.index
        if isinstance(b, hub.Text):
            self._kinds[i] = "text"
            return self._block_delta(hub.BlockDelta(i, "text", b.text)) if b.text else b""
        if isinstance(b, hub.Thinking):
            self._kinds[i] = "thinking"
            out = self._block_delta(hub.BlockDelta(i, "thinking", b.thinking)) if b.thinking else b""
            if b.signature:
                out += self._block_delta(
                    hub.BlockDelta(i, "signature", hub.plain_signature(b.signature) or "")
                )
            return out
        if isinstance(b, hub.ToolUse):
            self._kinds[i] = "tool"
            first = b.raw_arguments or (orjson.dumps(b.input).decode() if b.input else "")
            self._tools[i] = (b, [first] if first else [])
            return b""
        if isinstance(b, hub.Image | hub.Document):
            try:
                return self._emit([media_part(b)])
            except GatewayError:
                return b""
        return b""  # redacted thinking: Gemini has no such part

    def _block_delta(self, event: hub.BlockDelta) -> bytes:
        i, value = event.index, event.value
        if event.kind == "text":
            return self._emit([{"text": value}]) if value else b""
        if event.kind == "thinking":
            if not value:
                return b""
            self._thought.add(i)
            return self._emit([{"text": value, "thought": True}])
        if event.kind == "signature":
            value = hub.plain_signature(value) or ""
            if i in self._thought:  # the signature of a thought that was sent: its own part
                return self._emit([{"text": "", "thought": True, "thoughtSignature": value}])
            self._pending = value  # a signature-only block: it rides on the next part
            return b""
        entry = self._tools.get(i)
        if entry is not None:
            entry[1].append(value)
        return b""

    def _tool_chunk(self, b: hub.ToolUse, fragments: list[str]) -> bytes:
        args: Any = {}
        if fragments:
            try:
                args = orjson.loads("".join(fragments))
            except orjson.JSONDecodeError:
                args = {}
        fc: dict[str, Any] = {"name": b.name, "args": args if isinstance(args, dict) else {}}
        if b.id and not is_minted(b.id):
            fc["id"] = b.id
        part: dict[str, Any] = {"functionCall": fc}
        if b.signature is not None:
            part["thoughtSignature"] = b.signature
        return self._emit([part])

    def _emit(self, parts: list[dict[str, Any]], finish: str | None = None) -> bytes:
        if self._pending is not None:
            for part in parts:
                if not part.get("thought") and "thoughtSignature" not in part:
                    part["thoughtSignature"], self._pending = self._pending, None
                    break
        cand: dict[str, Any] = {}
        if parts:
            cand["content"] = {"role": "model", "parts": parts}
        if finish is not None:
            cand["finishReason"] = finish
        cand["index"] = 0
        chunk: dict[str, Any] = {
            "candidates": [cand],
            "usageMetadata": usage_body(self._usage),
            "modelVersion": self._model,
        }
        if self._id:
            chunk["responseId"] = self._id
        body = orjson.dumps(chunk)
        if self._sse:
            return b"data: " + body + b"\r\n\r\n"
        prefix = b",\r\n" if self._sent else b"["
        self._sent = True
        return prefix + body

    def _final(self) -> bytes:
        self._done = True
        delta = self._delta or hub.MessageDelta("end_turn")
        if delta.usage is not None:
            self._usage = delta.usage
        parts = [{"text": ""}] if self._pending is not None else []
        out = self._emit(parts, finish_reason(delta.stop_reason))
        return out if self._sse else out + b"]"
