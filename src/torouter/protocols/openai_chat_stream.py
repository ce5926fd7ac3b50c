"""OpenAI chat streams <-> hub stream events, incrementally in both directions.

Decoding, the awkward parts:
- Hub blocks are sequential (one stops before the next starts); chat tool calls are not: some
  servers interleave the argument fragments of parallel calls (index 0, 1, 0, 1). So the first
  tool call streams live while it is the only one; every later call is buffered by `index` and
  emitted whole (BlockStart, one "json" delta, BlockStop), in index order, when the choice
  finishes. The live call's block stays open until then, so late fragments still have a home.
  A call whose arguments stay empty gets "{}".
- Text and reasoning stream live. Reasoning comes as `reasoning_details` (OpenRouter, with
  signatures), `reasoning_content` (DeepSeek, vLLM) or `reasoning` (OpenRouter text); a delta
  often repeats one in another, so only the richest present is read.
- Usage arrives after `finish_reason`, in a `choices: []` chunk. MessageDelta waits for it (or
  for [DONE], or the end of the stream) so it can carry the usage.
- Only choice 0 is decoded: the hub has one candidate.

Encoding: thinking goes out as `delta.reasoning_content` (what DeepSeek-style clients read), a
signature as `delta.reasoning_details: [{type: "reasoning.text", signature, format}]`
(OpenRouter-style clients keep it), redacted thinking as a `reasoning.encrypted` detail.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError, kind_for_status
from torouter.protocols.faults import guarded, malformed
from torouter.protocols.openai_chat import error_body, usage_from
from torouter.protocols.openai_chat_codec import (
    FINISH_TO_STOP,
    SIGNATURE_FORMAT,
    STOP_TO_FINISH,
    completion_id,
    usage_body,
)
from torouter.protocols.sse import EventSplitter, event_data, split_events
from torouter.protocols.text_shape import ShapedReader, TextShape

_ERROR_KINDS = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "rate_limit_exceeded": "rate_limit",
    "rate_limit_error": "rate_limit",
    "insufficient_quota": "insufficient_quota",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
}


class _Call:
    __slots__ = ("args", "block", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.args: list[str] = []
        self.block: int | None = None  # the block index while it streams live


def _plain_text(chunk: Any) -> str | None:
    """The text of a chunk that carries only text: one choice (index 0) whose delta holds
    `content` alone, with no finish and no usage. None for any other chunk."""
    # Subscripts first: on JSON values they succeed only on a dict, a list, a dict and a dict, so
    # they stand in for four type checks.
    try:
        choices = chunk["choices"]
        choice = choices[0]
        delta = choice["delta"]
        text = delta["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if type(text) is not str or not text or len(delta) != 1 or len(choices) != 1:
        return None
    if choice.get("finish_reason") or choice.get("index", 0) != 0 or chunk.get("usage") is not None:
        return None
    return text


def _text(value: Any) -> str:
    """A string field as the decoder keeps it: anything else reads as absent."""
    return value if isinstance(value, str) else ""


class StreamDecoder(ShapedReader):
    """Upstream chat-stream bytes to hub events; `usage` holds the last usage seen."""

    def __init__(self) -> None:
        self._splitter = EventSplitter()
        self.usage: hub.Usage | None = None
        self._started = False
        self._next = 0  # the next block index
        self._open: tuple[str, int] | None = None  # (kind, index) of the open block
        self._calls: dict[tuple[int, int], _Call] = {}  # by (index, n-th call seen at that index)
        self._keys: dict[int, tuple[int, int]] = {}  # index -> the key of its current call
        self._live: _Call | None = None  # the tool call streaming live, its block open
        self._held: list[tuple[str, str]] = []  # content that came while that block was open
        self._refusal = False
        self._stop: hub.StopReason | None = None
        self._finished = False  # finish_reason seen
        self._delta_sent = False
        self._ended = False  # [DONE], an error, or a malformed event: nothing more is read
        # The last text event read in full, and its block: later ones shaped alike read by bytes.
        self._shape = TextShape(b'"delta":{"content":', padding=b',"obfuscation":"')
        self._text_index = 0
        self.runs = False  # True: such texts come as one TextRun, for an encoder that writes them whole

    def feed(self, chunk: bytes) -> list[hub.Event]:
        events: list[hub.Event] = []
        if not guarded(self._feed, chunk, events):
            self._ended = True
        return events

    def _feed(self, chunk: bytes, events: list[hub.Event]) -> None:
        block = self._splitter.take(chunk)
        if not block:
            return
        self._read_events(split_events(block), events)  # after the end there is no shape

    def finish(self) -> list[hub.Event]:
        events: list[hub.Event] = []
        if not self._ended and not guarded(self._finish, None, events):
            self._ended = True
        return events

    def _finish(self, _: None, events: list[hub.Event]) -> None:
        rest = self._splitter.flush()
        if rest.strip():
            self._event(rest, events)
        if self._ended:
            return
        self._ended = True
        if self._finished:
            self._message_delta(events)
            events.append(hub.MessageStop())
        else:
            self._close(events)
            events.append(
                hub.StreamError("api_error", "The upstream stream ended early.", "upstream_disconnected")
            )

    # ------------------------------------------------------------ one SSE event

    def _event(self, raw: bytes, events: list[hub.Event]) -> None:
        self._shape.forget()
        if self._ended:
            return
        data = event_data(raw)
        if data is None:  # a comment such as OpenRouter's ": PROCESSING" keep-alive
            if raw.strip():
                events.append(hub.Ping())
            return
        data = data.strip()
        if data == b"[DONE]":
            self._done(events)
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        text = self._payload(chunk, events)
        if text is not None and self._open is not None:
            self._shape.learn(raw, text)
            self._text_index = self._open[1]

    def _done(self, events: list[hub.Event]) -> None:
        self._ended = True
        if not self._finished:  # [DONE] with no finish_reason: the stream still ended well
            self._finished, self._stop = True, "tool_use" if self._calls else "end_turn"
            self._close(events)
        self._message_delta(events)
        events.append(hub.MessageStop())

    def _payload(self, chunk: Any, events: list[hub.Event]) -> str | None:
        """Read one chunk; its text when it was one more piece of text for the open text block."""
        # Most of a stream: one more piece of text for the text block already open, in a chunk
        # with one choice, no finish and no usage. A text block open means no tool call is live
        # and no finish has come: the finish closes every block.
        opened = self._open
        if opened is not None and opened[0] == "text":
            text = _plain_text(chunk)
            if text is not None:
                events.append(hub.BlockDelta(opened[1], "text", text))
                return text
        self._read_payload(chunk, events)
        return None

    def _read_payload(self, chunk: Any, events: list[hub.Event]) -> None:
        if not isinstance(chunk, dict):
            self._ended = True
            events.append(malformed())
            return
        if "error" in chunk and not chunk.get("choices"):
            self._ended = True
            events.append(_stream_error(chunk["error"]))
            return
        if not self._started:
            self._started = True
            events.append(
                hub.MessageStart(
                    id=str(chunk.get("id") or ""),
                    model=str(chunk.get("model") or ""),
                    created=chunk.get("created"),
                )
            )
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, events)
        raw = chunk.get("usage")
        if raw is not None:  # most chunks have none, or null
            usage = usage_from(raw)
            if usage is not None:
                self.usage = usage
                if self._finished:
                    self._message_delta(events)

    def _choice(self, choice: dict[str, Any], events: list[hub.Event]) -> None:
        delta = choice.get("delta")
        if not isinstance(delta, dict):  # absent, null or not an object: nothing to read in it
            delta = {}
        if self._finished:
            return
        if len(delta) == 1 and "content" in delta:  # most of a stream: a piece of text, nothing else
            text = delta["content"]
            if isinstance(text, str) and text:
                self._delta(events, "text", text)
        else:
            self._reasoning(delta, events)
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    self._refusal = self._refusal or key == "refusal"
                    self._delta(events, "text", text)
            calls = delta.get("tool_calls")
            for frag in calls if isinstance(calls, list) else ():
                if isinstance(frag, dict):
                    self._tool_fragment(frag, events)
        finish = choice.get("finish_reason")
        if finish:
            self._finished = True
            stop = FINISH_TO_STOP.get(finish, "end_turn") if isinstance(finish, str) else "end_turn"
            self._stop = "refusal" if self._refusal else stop
            self._close(events)

    def _reasoning(self, delta: dict[str, Any], events: list[hub.Event]) -> None:
        details = delta.get("reasoning_details")
        if isinstance(details, list) and details:
            for d in details:
                if not isinstance(d, dict):
                    continue
                if d.get("type") == "reasoning.encrypted":
                    self._delta(events, "redacted", d.get("data") or "")
                    continue
                text = d.get("text") if d.get("type") == "reasoning.text" else d.get("summary")
                if isinstance(text, str) and text:
                    self._delta(events, "thinking", text)
                if d.get("signature"):
                    self._delta(events, "signature", d["signature"])
            return
        for key in ("reasoning_content", "reasoning"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._delta(events, "thinking", text)
                return

    def _tool_fragment(self, frag: dict[str, Any], events: list[hub.Event]) -> None:
        index = frag["index"] if isinstance(frag.get("index"), int) else 0
        key = self._keys.get(index, (index, 0))
        call = self._calls.get(key)
        if call is not None and frag.get("id") and call.id and frag["id"] != call.id:
            # Some servers give every call index 0: a new id means a new call.
            key = (index, key[1] + 1)
            call = None
        if call is None:
            call = self._calls[key] = _Call()
            self._keys[index] = key
        fn = frag.get("function")
        fn = fn if isinstance(fn, dict) else {}
        call.id = call.id or _text(frag.get("id"))
        call.name = call.name or _text(fn.get("name"))
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            call.args.append(args)
        # Only the first call may stream live, and only once its id and name are known.
        if self._live is None and len(self._calls) == 1 and call.name and not self._held:
            self._switch(events, None)
            self._live, call.block = call, self._next
            self._open = ("tool", self._next)
            self._next += 1
            events.append(hub.BlockStart(call.block, hub.ToolUse(call.id or "call_0", call.name, {})))
            if call.args:
                events.append(hub.BlockDelta(call.block, "json", "".join(call.args)))
        elif call is self._live and isinstance(args, str) and args and call.block is not None:
            events.append(hub.BlockDelta(call.block, "json", args))

    # ------------------------------------------------------------ blocks

    def _delta(self, events: list[hub.Event], kind: str, value: str) -> None:
        if self._live is not None:  # the live tool call's block stays open until the finish
            self._held.append((kind, value))
            return
        want = "thinking" if kind in ("thinking", "signature") else "text"
        if kind == "redacted":
            self._switch(events, None)
            events.append(hub.BlockStart(self._next, hub.RedactedThinking(value)))
            events.append(hub.BlockStop(self._next))
            self._next += 1
            return
        if self._open is None or self._open[0] != want:
            self._switch(events, want)
        assert self._open is not None
        events.append(hub.BlockDelta(self._open[1], kind, value))  # type: ignore[arg-type]

    def _switch(self, events: list[hub.Event], kind: str | None) -> None:
        """Stops the open block and, given a kind, starts a new text or thinking block."""
        if self._open is not None:
            events.append(hub.BlockStop(self._open[1]))
            self._open = None
        if kind is not None:
            block: hub.Block = hub.Text("") if kind == "text" else hub.Thinking("")
            events.append(hub.BlockStart(self._next, block))
            self._open = (kind, self._next)
            self._next += 1

    def _close(self, events: list[hub.Event]) -> None:
        """Stops the open block, emits each buffered tool call whole, then any held content."""
        live, self._live = self._live, None
        if live is not None and not live.args and live.block is not None:
            events.append(hub.BlockDelta(live.block, "json", "{}"))
        self._switch(events, None)
        for n, (_, call) in enumerate(sorted(self._calls.items(), key=lambda kv: kv[0])):
            if call is live:
                continue
            args = "".join(call.args) or "{}"
            events.append(hub.BlockStart(self._next, hub.ToolUse(call.id or f"call_{n}", call.name, {})))
            events.append(hub.BlockDelta(self._next, "json", args))
            events.append(hub.BlockStop(self._next))
            self._next += 1
        self._calls.clear()
        self._keys.clear()
        held, self._held = self._held, []
        for kind, value in held:
            self._delta(events, kind, value)
        self._switch(events, None)

    def _message_delta(self, events: list[hub.Event]) -> None:
        if not self._delta_sent and self._finished:
            self._delta_sent = True
            events.append(hub.MessageDelta(self._stop, usage=self.usage))


def _stream_error(err: Any) -> hub.StreamError:
    if not isinstance(err, dict):
        return hub.StreamError("api_error", str(err))
    code = err.get("code")
    kind = (
        kind_for_status(code)
        if isinstance(code, int)
        else _ERROR_KINDS.get(str(err.get("type")), "api_error")
    )
    if kind == "api_error" and str(code) in _ERROR_KINDS:
        kind = _ERROR_KINDS[str(code)]
    return hub.StreamError(kind, str(err.get("message") or "The upstream reported an error."))


class StreamEncoder:
    """Hub events to an OpenAI chat stream, every chunk with the same id, created and model."""

    def __init__(
        self, model: str, include_usage: bool, completion_id: str | None = None, created: int | None = None
    ) -> None:
        self._model = model
        self._include_usage = include_usage
        self._id = completion_id
        self._created = created
        self._tools: dict[int, int] = {}  # block index -> tool_calls index
        self._usage: hub.Usage | None = None
        self._usage_sent = False
        self._text_frame: tuple[bytes, bytes] | None = None  # a text chunk's bytes around its text

    writes_runs = True

    def encode(self, event: hub.Event) -> bytes:
        if type(event) is hub.TextRun:
            frame = (self._text_frame or self._frame_text()) if self._id and self._created else None
            if frame is not None:  # one join: the chunks differ only in their text
                return frame[0] + (frame[1] + frame[0]).join(map(orjson.dumps, event.texts)) + frame[1]
            return b"".join(map(self.encode, hub.text_deltas(event)))
        if isinstance(event, hub.BlockDelta):  # the hot path first
            if event.kind == "text" and self._id and self._created:
                # Most chunks of a stream differ only in their text: the rest is serialised once.
                frame = self._text_frame or self._frame_text()
                if frame is not None:
                    return frame[0] + orjson.dumps(event.value) + frame[1]
            return self._block_delta(event)
        if isinstance(event, hub.MessageStart):
            self._id = self._id or _chunk_id(event.id)
            self._created = self._created or event.created or int(time.time())
            self._usage = event.usage
            return self._chunk({"role": "assistant", "content": "", "refusal": None})
        if isinstance(event, hub.BlockStart):
            b = event.block
            if isinstance(b, hub.ToolUse):
                n = self._tools[event.index] = len(self._tools)
                # Hub convention: input arrives as json deltas; a decoder that sends it whole
                # in the start block still gets it through.
                args = b.raw_arguments or (orjson.dumps(b.input).decode() if b.input else "")
                call = {
                    "index": n,
                    "id": b.id,
                    "type": "function",
                    "function": {"name": b.name, "arguments": args},
                }
                return self._chunk({"tool_calls": [call]})
            if isinstance(b, hub.RedactedThinking):
                detail = {"type": "reasoning.encrypted", "data": b.data, "format": SIGNATURE_FORMAT}
                return self._chunk({"reasoning_details": [detail]})
            return b""
        if isinstance(event, hub.MessageDelta):
            if event.usage is not None:
                self._usage = event.usage
            out = self._chunk({}, STOP_TO_FINISH.get(event.stop_reason or "end_turn", "stop"))
            return out + (self._usage_chunk() if event.usage is not None else b"")
        if isinstance(event, hub.MessageStop):
            return self._usage_chunk() + b"data: [DONE]\n\n"
        if isinstance(event, hub.StreamError):
            return b"data: " + error_body(GatewayError(event.kind, event.message, code=event.code)) + b"\n\n"
        return b""  # BlockStop and Ping have no chat form

    def _block_delta(self, event: hub.BlockDelta) -> bytes:
        if event.kind == "text":
            return self._chunk({"content": event.value})
        if event.kind == "thinking":
            return self._chunk({"reasoning_content": event.value})
        if event.kind == "signature":
            detail = {"type": "reasoning.text", "signature": event.value, "format": SIGNATURE_FORMAT}
            return self._chunk({"reasoning_details": [detail]})
        n = self._tools.get(event.index)
        if n is None:
            return b""
        return self._chunk({"tool_calls": [{"index": n, "function": {"arguments": event.value}}]})

    def _frame_text(self) -> tuple[bytes, bytes] | None:
        marker = orjson.dumps("\x00text\x00")
        whole = self._chunk({"content": "\x00text\x00"})
        if whole.count(marker) != 1:  # an id or model holding the marker itself: no shortcut
            return None
        before, _, after = whole.partition(marker)
        self._text_frame = (before, after)
        return self._text_frame

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._frame({"choices": [choice]})

    def _usage_chunk(self) -> bytes:
        if not self._include_usage or self._usage_sent:
            return b""
        self._usage_sent = True
        return self._frame({"choices": [], "usage": usage_body(self._usage or hub.Usage())})

    def _frame(self, fields: dict[str, Any]) -> bytes:
        chunk = {
            "id": self._id or _chunk_id(""),
            "object": "chat.completion.chunk",
            "created": self._created or int(time.time()),
            "model": self._model,
            "system_fingerprint": None,
            **fields,
        }
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _chunk_id(upstream_id: str) -> str:
    return completion_id(upstream_id or f"{time.time_ns():x}")
