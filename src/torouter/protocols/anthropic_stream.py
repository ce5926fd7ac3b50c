"""Anthropic Messages streams <-> hub events, both incremental, plus the response-side wire helpers.

The decoder reads an upstream's SSE bytes as they arrive. The encoder writes the SSE an Anthropic
client expects, in Anthropic's exact order, and keeps it well-formed whatever the hub events
look like: no empty text blocks, block indices consecutive from 0, every block closed, one
message_delta before message_stop, and a message_start first.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols.anthropic_messages import stream_error_event, usage_from
from torouter.protocols.faults import guarded, malformed
from torouter.protocols.sse import EventSplitter, event_data, event_name, split_events
from torouter.protocols.text_shape import ShapedReader, TextShape

STOP_REASONS = frozenset({"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"})
# Anthropic error `type` -> errors.KINDS key
ERROR_KINDS = {
    "invalid_request_error": "invalid_request",
    "authentication_error": "authentication",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "request_too_large": "request_too_large",
    "rate_limit_error": "rate_limit",
    "billing_error": "insufficient_quota",
    "api_error": "api_error",
    "timeout_error": "timeout",
    "overloaded_error": "overloaded",
}
_DELTAS = {"text_delta": ("text", "text"), "input_json_delta": ("json", "partial_json")}
_DELTAS |= {"thinking_delta": ("thinking", "thinking"), "signature_delta": ("signature", "signature")}
_DELTA_TYPES = {kind: (name, field) for name, (kind, field) in _DELTAS.items()}

# ---------------------------------------------------------------- wire helpers (shared with the codec)


def stop_reason_from(value: Any) -> hub.StopReason | None:
    if value is None:
        return None
    if value == "model_context_window_exceeded":
        return "max_tokens"  # the answer was cut for lack of room, as with max_tokens
    return value if value in STOP_REASONS else "end_turn"


_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_]")  # compiled once: re.sub looks a pattern up on every call


def message_id(upstream_id: str | None) -> str:
    """A `msg_` id: the upstream's own when it is one, else derived from it (stable per upstream id)."""
    if upstream_id and upstream_id.startswith("msg_"):
        return upstream_id
    tail = _NOT_IN_ID.sub("", upstream_id or "") or uuid.uuid4().hex
    return "msg_" + tail


def usage_body(u: hub.Usage, *, split: bool = True) -> dict[str, Any]:
    """Usage in Anthropic's arithmetic: input_tokens excludes both cache buckets."""
    out: dict[str, Any] = {
        "input_tokens": max(u.input_tokens - u.cached_tokens - u.cache_write_tokens, 0),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
    }
    if split:  # message and message_start usage carry the TTL split; message_delta usage does not
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": max(u.cache_write_tokens - u.cache_write_1h_tokens, 0),
            "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
        }
    out["output_tokens"] = u.output_tokens
    if u.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return out


def stop_details(stop_reason: str | None) -> dict[str, Any] | None:
    # The hub carries no refusal category or explanation, so both are null.
    if stop_reason == "refusal":
        return {"type": "refusal", "category": None, "explanation": None}
    return None


# ---------------------------------------------------------------- decoder


class StreamDecoder(ShapedReader):
    """Upstream Anthropic SSE bytes -> hub events, as each event completes.

    Blocks the hub cannot carry (server-tool calls and results, compaction, fallback notices)
    are skipped with their deltas, and later blocks renumbered so hub indices have no gaps. A
    block the upstream leaves open is closed before message_delta. `usage` is the cumulative
    usage so far, in the normal form.
    """

    __slots__ = (
        "_done",
        "_index",
        "_next",
        "_open",
        "_raw_usage",
        "_shape",
        "_splitter",
        "_stopped",
        "_text_index",
        "runs",
        "usage",
    )

    def __init__(self) -> None:
        self._splitter = EventSplitter()
        self._index: dict[int, int | None] = {}  # upstream index -> hub index (None: skipped)
        self._next = 0
        self._open: list[int] = []
        self._raw_usage: dict[str, Any] = {}
        self._done = False  # nothing more to decode (message_stop, error, or malformed event)
        self._stopped = False  # message_stop or an error event was seen
        self.usage: hub.Usage | None = None
        # The last text delta read in full, and its block: later ones shaped alike read by bytes.
        self._shape = TextShape(b'"delta":{"type":"text_delta","text":')
        self._text_index = 0
        self.runs = False  # True: such texts come as one TextRun, for an encoder that writes them whole

    def feed(self, chunk: bytes) -> list[hub.Event]:
        out: list[hub.Event] = []
        if self._done:
            return out
        if not guarded(self._feed, chunk, out):
            self._done = self._stopped = True
        return out

    def _feed(self, chunk: bytes, out: list[hub.Event]) -> None:
        block = self._splitter.take(chunk)
        if not block:
            return
        self._read_events(split_events(block), out)

    def _reading_ended(self) -> bool:
        return self._done

    def finish(self) -> list[hub.Event]:
        out: list[hub.Event] = []
        rest = self._splitter.flush()  # a last event with no closing blank line
        if rest.strip() and not self._done and not guarded(self._event, rest, out):
            self._done = self._stopped = True
        if not self._stopped:
            self._done = self._stopped = True
            out.append(
                hub.StreamError("api_error", "The upstream stream ended early.", "upstream_disconnected")
            )
        return out

    def _event(self, raw: bytes, out: list[hub.Event]) -> None:
        self._shape.forget()
        known = _KNOWN.get(raw)
        if known is not None:  # a ping, a block's stop or the message's, byte for byte as sent
            known[0](self, known[1], out)
            return
        data = event_data(raw)
        if data is None:
            return  # a comment or keep-alive
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            self._done = self._stopped = True
            out.append(malformed())
            return
        kind = payload.get("type")
        if kind == "content_block_delta":
            text = self._block_delta(payload, out)
            if text:  # the shape stands for this block: text deltas change nothing else
                self._shape.learn(raw, text)
            return
        if not (isinstance(kind, str) and kind):  # the event line names it too
            kind = (event_name(raw) or b"").decode("utf-8", "replace")
        self._payload(payload, kind, out)

    def _payload(self, payload: dict[str, Any], kind: str, out: list[hub.Event]) -> None:
        handler = _HANDLERS.get(kind)
        if handler is not None:  # unknown event types are ignored, as Anthropic asks
            handler(self, payload, out)

    def _message_start(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        message = p.get("message") if isinstance(p.get("message"), dict) else {}
        if isinstance(message.get("usage"), dict):
            self._raw_usage.update(message["usage"])
        self.usage = usage_from(self._raw_usage) if self._raw_usage else None
        out.append(
            hub.MessageStart(message.get("id", ""), message.get("model", ""), self.usage or hub.Usage())
        )

    def _block_start(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        cb = p.get("content_block") if isinstance(p.get("content_block"), dict) else {}
        kind, upstream = cb.get("type"), p.get("index", self._next)
        first: tuple[str, str] | None = None  # content a start event already carries
        block: hub.Block
        if kind == "text":
            block, first = hub.Text(""), ("text", cb.get("text") or "")
        elif kind == "tool_use":
            block = hub.ToolUse(cb.get("id", ""), cb.get("name", ""), {})
            first = ("json", orjson.dumps(cb["input"]).decode() if cb.get("input") else "")
        elif kind == "thinking":
            block, first = hub.Thinking(""), ("thinking", cb.get("thinking") or "")
        elif kind == "redacted_thinking":
            block = hub.RedactedThinking(cb.get("data", ""))
        else:
            self._index[upstream] = None
            return
        index = self._index[upstream] = self._next
        self._next += 1
        self._open.append(index)
        out.append(hub.BlockStart(index, block))
        if first and first[1]:
            out.append(hub.BlockDelta(index, first[0], first[1]))  # type: ignore[arg-type]
        if kind == "thinking" and cb.get("signature"):
            out.append(hub.BlockDelta(index, "signature", cb["signature"]))

    def _block_delta(self, p: dict[str, Any], out: list[hub.Event]) -> str | None:
        """Read a delta; its text when it was text for an open text block."""
        index = self._index.get(p.get("index", -1))
        if index is None:
            return None
        delta = p.get("delta")
        if not isinstance(delta, dict):
            return None
        mapped = _DELTAS.get(delta.get("type", ""))
        if mapped is not None and index in self._open:
            value = delta.get(mapped[1])
            if isinstance(value, str):
                out.append(hub.BlockDelta(index, mapped[0], value))  # type: ignore[arg-type]
                if mapped[0] == "text":
                    self._text_index = index
                    return value
        return None

    def _block_stop(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        index = self._index.get(p.get("index", -1))
        if index is not None and index in self._open:
            self._open.remove(index)
            out.append(hub.BlockStop(index))

    def _close_open(self, out: list[hub.Event]) -> None:
        out.extend(hub.BlockStop(i) for i in self._open)
        self._open.clear()

    def _message_delta(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        self._close_open(out)
        if isinstance(p.get("usage"), dict):
            # Cumulative: fields message_delta omits keep their message_start values.
            self._raw_usage.update({k: v for k, v in p["usage"].items() if v is not None})
            self.usage = usage_from(self._raw_usage)
        delta = p.get("delta") if isinstance(p.get("delta"), dict) else {}
        out.append(
            hub.MessageDelta(
                stop_reason_from(delta.get("stop_reason")), delta.get("stop_sequence"), self.usage
            )
        )

    def _message_stop(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        self._close_open(out)
        self._done = self._stopped = True
        out.append(hub.MessageStop())

    def _ping(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        out.append(hub.Ping())

    def _error(self, p: dict[str, Any], out: list[hub.Event]) -> None:
        err = p.get("error") if isinstance(p.get("error"), dict) else {}
        self._done = self._stopped = True
        out.append(
            hub.StreamError(ERROR_KINDS.get(err.get("type", ""), "api_error"), err.get("message") or "")
        )


_HANDLERS = {
    "message_start": StreamDecoder._message_start,
    "content_block_start": StreamDecoder._block_start,
    "content_block_delta": StreamDecoder._block_delta,
    "content_block_stop": StreamDecoder._block_stop,
    "message_delta": StreamDecoder._message_delta,
    "message_stop": StreamDecoder._message_stop,
    "ping": StreamDecoder._ping,
    "error": StreamDecoder._error,
}


def _known_events() -> dict[bytes, tuple[Any, dict[str, Any]]]:
    """The events that carry nothing but their type (and a block's index), as Anthropic writes
    them, with or without spaces: looked up by their bytes, they are read without a parse. The
    payloads are shared, so their handlers must only read them."""
    payloads: list[dict[str, Any]] = [{"type": "ping"}, {"type": "message_stop"}]
    payloads += [{"type": "content_block_stop", "index": i} for i in range(16)]
    known: dict[bytes, tuple[Any, dict[str, Any]]] = {}
    for p in payloads:
        spaced = orjson.dumps(p).replace(b'":', b'": ').replace(b',"', b', "')
        for data in (orjson.dumps(p), spaced):
            known[b"event: " + p["type"].encode() + b"\ndata: " + data + b"\n\n"] = (_HANDLERS[p["type"]], p)
    return known


_KNOWN = _known_events()

# ---------------------------------------------------------------- encoder


# _frame's bytes for a text delta, up to its text.
_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
    b'"delta":{"type":"text_delta","text":'
)


def _frame(payload: dict[str, Any]) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class StreamEncoder:
    """Hub events -> Anthropic SSE frames for a client, answered under the client's `model` name.

    A text block is announced only with its first non-empty text, so a text block that never
    gets any is not sent at all, and later blocks are renumbered to keep indices consecutive.
    A block still open when another starts, or when the message ends, is closed first. Message
    deltas are merged and sent just before message_stop (end_turn when none came).
    """

    __slots__ = (
        "_delta",
        "_id",
        "_index",
        "_model",
        "_next",
        "_open",
        "_pending",
        "_stage",
        "_text_at",
        "_text_head",
        "_usage",
    )

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self._model = model
        self._id = message_id
        self._stage = 0  # 0: nothing sent, 1: message started, 2: finished (stop or error)
        self._index: dict[int, int] = {}  # hub index -> client index, for blocks announced
        self._next = 0
        self._open: int | None = None  # hub index of the block the client sees open
        self._pending: dict[int, hub.Text] = {}  # text blocks waiting for their first text
        self._usage = hub.Usage()
        self._delta: hub.MessageDelta | None = None
        # The text block the last event wrote text to, and its frame's bytes up to the text: while
        # nothing else comes between, more text for it needs no other check.
        self._text_at: int | None = None
        self._text_head = b""

    writes_runs = True

    def encode(self, event: hub.Event) -> bytes:
        if type(event) is hub.TextRun:
            if event.index == self._text_at:  # more text for the block written to last: one join
                head = self._text_head
                return head + (b"}}\n\n" + head).join(map(orjson.dumps, event.texts)) + b"}}\n\n"
            return b"".join(map(self.encode, hub.text_deltas(event)))
        if (
            type(event) is hub.BlockDelta
            and event.index == self._text_at
            and event.kind == "text"
            and event.value
        ):
            return self._text_head + orjson.dumps(event.value) + b"}}\n\n"  # most of a stream
        self._text_at = None
        if self._stage == 2:
            return b""
        out: list[bytes] = []
        if self._stage == 0:
            start = event if isinstance(event, hub.MessageStart) else None
            self._start(start, out)
            if start is not None:
                return b"".join(out)
        if isinstance(event, hub.BlockStart):
            self._block_start(event, out)
        elif isinstance(event, hub.BlockDelta):
            self._block_delta(event, out)
        elif isinstance(event, hub.BlockStop):
            self._pending.pop(event.index, None)  # a text block that never got text: not sent
            if self._open == event.index:
                self._close(out)
        elif isinstance(event, hub.MessageDelta):
            self._merge_delta(event)
        elif isinstance(event, hub.MessageStop):
            self._finish(out)
        elif isinstance(event, hub.Ping):
            out.append(_frame({"type": "ping"}))
        elif isinstance(event, hub.StreamError):
            self._stage = 2
            out.append(stream_error_event(GatewayError(event.kind, event.message)))
        return b"".join(out)

    def _start(self, event: hub.MessageStart | None, out: list[bytes]) -> None:
        self._stage = 1
        if event is not None:
            self._usage = event.usage
        usage = usage_body(self._usage)
        usage["output_tokens"] = self._usage.output_tokens or 1  # as Anthropic's message_start says
        message = {
            "id": self._id or message_id(event.id if event else None),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "usage": usage,
        }
        out.append(_frame({"type": "message_start", "message": message}))
        out.append(_frame({"type": "ping"}))  # Anthropic sends one right after message_start

    def _block_start(self, event: hub.BlockStart, out: list[bytes]) -> None:
        b = event.block
        if isinstance(b, hub.Text):
            self._pending[event.index] = b
            if b.text:
                self._block_delta(hub.BlockDelta(event.index, "text", b.text), out)
            return
        if isinstance(b, hub.ToolUse):
            block: dict[str, Any] = {"type": "tool_use", "id": b.id, "name": b.name, "input": {}}
        elif isinstance(b, hub.Thinking):
            block = {"type": "thinking", "thinking": "", "signature": ""}
        elif isinstance(b, hub.RedactedThinking):
            block = {"type": "redacted_thinking", "data": b.data}
        else:
            return  # images or documents in an answer: nothing Anthropic can stream
        self._announce(event.index, block, out)
        if isinstance(b, hub.ToolUse) and (b.input or b.raw_arguments):
            value = b.raw_arguments or orjson.dumps(b.input).decode()
            self._block_delta(hub.BlockDelta(event.index, "json", value), out)
        elif isinstance(b, hub.Thinking):
            for kind, value in (("thinking", b.thinking), ("signature", b.signature)):
                if value:
                    self._block_delta(hub.BlockDelta(event.index, kind, value), out)  # type: ignore[arg-type]

    def _announce(self, index: int, block: dict[str, Any], out: list[bytes]) -> None:
        if self._open is not None:
            self._close(out)  # Anthropic streams one block at a time
        self._index[index] = self._next
        self._next += 1
        self._open = index
        out.append(
            _frame({"type": "content_block_start", "index": self._index[index], "content_block": block})
        )

    def _block_delta(self, event: hub.BlockDelta, out: list[bytes]) -> None:
        if event.index in self._pending:
            if event.kind != "text" or not event.value:
                return
            self._pending.pop(event.index)
            self._announce(event.index, {"type": "text", "text": ""}, out)
        if event.index != self._open or (event.kind == "text" and not event.value):
            return  # a delta for a closed or unknown block cannot be placed any more
        if event.kind == "text":  # the block is open and announced: later text takes encode's shortcut
            self._text_at, self._text_head = event.index, _TEXT_DELTA % self._index[event.index]
            out.append(self._text_head + orjson.dumps(event.value) + b"}}\n\n")
            return
        name, field = _DELTA_TYPES[event.kind]
        delta = {"type": name, field: event.value}
        out.append(_frame({"type": "content_block_delta", "index": self._index[event.index], "delta": delta}))

    def _close(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(_frame({"type": "content_block_stop", "index": self._index[self._open]}))
            self._open = None

    def _merge_delta(self, event: hub.MessageDelta) -> None:
        prev = self._delta
        if prev is None:
            self._delta = hub.MessageDelta(event.stop_reason, event.stop_sequence, event.usage)
            return
        prev.stop_reason = event.stop_reason or prev.stop_reason
        prev.stop_sequence = event.stop_sequence or prev.stop_sequence
        prev.usage = event.usage or prev.usage

    def _finish(self, out: list[bytes]) -> None:
        self._close(out)
        self._pending.clear()
        delta = self._delta or hub.MessageDelta("end_turn")
        stop = delta.stop_reason or "end_turn"
        usage = usage_body(delta.usage or self._usage, split=False)
        body = {"stop_reason": stop, "stop_sequence": delta.stop_sequence, "stop_details": stop_details(stop)}
        out.append(_frame({"type": "message_delta", "delta": body, "usage": usage}))
        out.append(_frame({"type": "message_stop"}))
        self._stage = 2
