"""OpenAI Responses streams <-> hub stream events, incrementally in both directions.

Encoding writes the full event sequence OpenAI sends, every event with `event: <type>` and a
`sequence_number` counting from 0: response.created and response.in_progress; per block one output
item (added, its part and deltas, their .done events, output_item.done); then response.completed
(or response.incomplete for max_tokens and refusals) with the whole Response, as
responses_codec.encode_response would write it. A StreamError becomes an `error` event followed
by response.failed. A reasoning summary part opens on the first thinking text, so signature-only
thinking gives an item with an empty summary, as OpenAI's own encrypted reasoning does.

Decoding reads items in order (OpenAI streams one output item at a time): text and reasoning
summary deltas stream live, function-call arguments as json deltas; a reasoning item's
encrypted_content arrives on output_item.done and becomes a signature delta.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from torouter import hub
from torouter.protocols.faults import guarded, malformed
from torouter.protocols.responses import ERROR_CODES, REDACTED_PREFIX, tool_use_of, usage_from
from torouter.protocols.responses_codec import (
    INCOMPLETE,
    OutputItems,
    decode_response,
    item_id,
    output_text,
    request_echo,
    response_id_for,
    response_object,
)
from torouter.protocols.sse import EventSplitter, event_data

_ERROR_KINDS = {
    "rate_limit_exceeded": "rate_limit",
    "insufficient_quota": "insufficient_quota",
    "invalid_prompt": "invalid_request",
    "invalid_request_error": "invalid_request",
    "server_error": "api_error",
}


class _Item:
    __slots__ = ("block", "id", "index", "kind", "signature", "summary", "text")

    def __init__(self, rid: str, index: int, kind: str, block: hub.Block) -> None:
        self.index, self.kind, self.block = index, kind, block
        self.id = item_id(rid, kind, index)
        self.text: list[str] = []  # text, thinking or argument fragments
        self.signature = block.signature if isinstance(block, hub.Thinking) else None
        self.summary = False  # a reasoning summary part is open


class StreamEncoder:
    """Hub events to a Responses stream. `final_response()` is the last full Response sent."""

    def __init__(
        self, model: str, request: hub.Request | None = None, response_id: str | None = None
    ) -> None:
        self._model = model
        self._rid = response_id
        self._request = request
        self._echo = request_echo(request)
        self._items: OutputItems | None = None
        self._seq = 0
        self._created = int(time.time())
        self._open: dict[int, _Item] = {}  # hub block index -> its item
        self._output: list[dict[str, Any]] = []
        self._usage: hub.Usage | None = None
        self._stop: hub.StopReason | None = None
        self._final: dict[str, Any] | None = None
        self._ended = False

    def final_response(self) -> dict[str, Any] | None:
        return self._final

    def encode(self, event: hub.Event) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, hub.BlockDelta):  # the hot path first
            return self._delta(event)
        if isinstance(event, hub.MessageStart):
            self._usage = event.usage
            return self._open_stream(event.id, event.created)
        out = b""
        if self._items is None:  # no MessageStart: the client still needs response.created first
            out = self._open_stream() if not isinstance(event, hub.StreamError) else self._start()
        if isinstance(event, hub.BlockStart):
            return out + self._block_start(event)
        if isinstance(event, hub.BlockStop):
            item = self._open.pop(event.index, None)
            return out + (self._block_stop(item) if item is not None else b"")
        if isinstance(event, hub.MessageDelta):
            self._stop = event.stop_reason
            self._usage = event.usage or self._usage
            return out
        if isinstance(event, hub.MessageStop):
            for index in sorted(self._open):
                out += self._block_stop(self._open.pop(index))
            self._ended = True
            status = "incomplete" if self._stop in INCOMPLETE else "completed"
            self._final = self._response(status, self._output, self._usage or hub.Usage())
            return out + self._emit(f"response.{status}", response=self._final)
        if isinstance(event, hub.StreamError):
            self._ended = True
            code = ERROR_CODES.get(event.kind, "server_error")
            out += self._emit("error", code=code, message=event.message, param=None)
            error = {"code": code, "message": event.message}
            self._final = self._response("failed", self._output, self._usage, error)
            return out + self._emit("response.failed", response=self._final)
        return out  # Ping has no Responses form

    # ------------------------------------------------------------ pieces

    def _start(self, upstream_id: str | None = None, created: int | None = None) -> bytes:
        self._rid = self._rid or response_id_for(upstream_id)
        self._created = created or self._created
        self._items = OutputItems(self._rid, self._request)
        return b""

    def _open_stream(self, upstream_id: str | None = None, created: int | None = None) -> bytes:
        self._start(upstream_id, created)
        shell = self._response("in_progress", [], None)
        return self._emit("response.created", response=shell) + self._emit(
            "response.in_progress", response=shell
        )

    def _response(
        self, status: str, output: list[dict[str, Any]], usage: hub.Usage | None, error: Any = None
    ) -> dict[str, Any]:
        assert self._rid is not None
        return response_object(
            self._rid, self._model, self._echo, self._created, status, list(output), usage, self._stop, error
        )

    def _emit(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, **fields, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _block_start(self, event: hub.BlockStart) -> bytes:
        assert self._items is not None
        b, index = event.block, len(self._output) + len(self._open)
        if isinstance(b, hub.ToolResult | hub.Image | hub.Document):
            return b""
        item = self._open[event.index] = _Item(self._items.rid, index, self._items.kind_of(b), b)
        if isinstance(b, hub.ToolUse):
            if b.input or b.raw_arguments:  # a decoder that sent the input whole
                item.text.append(b.raw_arguments or orjson.dumps(b.input).decode())
            added = self._items.call(b, index, "", "in_progress")
            if item.kind == "custom_tool_call":
                added["input"] = ""
            return self._emit("response.output_item.added", output_index=index, item=added)
        if isinstance(b, hub.Thinking | hub.RedactedThinking):
            added = {"id": item.id, "type": "reasoning", "summary": []}
            out = self._emit("response.output_item.added", output_index=index, item=added)
            if isinstance(b, hub.Thinking) and b.thinking:
                out += self._thinking(item, b.thinking)
            return out
        added = self._items.message(index, [], "in_progress")
        part = output_text("")
        out = self._emit("response.output_item.added", output_index=index, item=added)
        out += self._emit(
            "response.content_part.added", item_id=added["id"], output_index=index, content_index=0, part=part
        )
        if isinstance(b, hub.Text) and b.text:
            out += self._delta(hub.BlockDelta(event.index, "text", b.text))
        return out

    def _delta(self, event: hub.BlockDelta) -> bytes:
        item = self._open.get(event.index)
        if item is None:
            return b""
        if event.kind == "text" and item.kind == "message":
            item.text.append(event.value)
            return self._emit(
                "response.output_text.delta",
                item_id=item.id,
                output_index=item.index,
                content_index=0,
                delta=event.value,
                logprobs=[],
            )
        if event.kind == "thinking" and item.kind == "reasoning":
            return self._thinking(item, event.value)
        if event.kind == "signature" and isinstance(item.block, hub.Thinking):
            item.signature = (item.signature or "") + event.value
            return b""
        if event.kind == "json" and item.kind == "function_call":
            item.text.append(event.value)
            return self._emit(
                "response.function_call_arguments.delta",
                item_id=item.id,
                output_index=item.index,
                delta=event.value,
            )
        if event.kind == "json":
            item.text.append(event.value)  # a custom tool's input: sent whole when the block stops
        return b""

    def _thinking(self, item: _Item, text: str) -> bytes:
        iid, out = item.id, b""
        if not item.summary:
            item.summary = True
            part = {"type": "summary_text", "text": ""}
            out = self._emit(
                "response.reasoning_summary_part.added",
                item_id=iid,
                output_index=item.index,
                summary_index=0,
                part=part,
            )
        item.text.append(text)
        return out + self._emit(
            "response.reasoning_summary_text.delta",
            item_id=iid,
            output_index=item.index,
            summary_index=0,
            delta=text,
        )

    def _block_stop(self, item: _Item) -> bytes:
        assert self._items is not None
        b, index, text, out = item.block, item.index, "".join(item.text), b""
        if isinstance(b, hub.ToolUse):
            done = self._items.call(b, index, text or "{}")
            if item.kind == "function_call":
                out = self._emit(
                    "response.function_call_arguments.done",
                    item_id=done["id"],
                    output_index=index,
                    arguments=done["arguments"],
                )
            else:
                fields = {"item_id": done["id"], "output_index": index}
                out = self._emit("response.custom_tool_call_input.delta", **fields, delta=done["input"])
                out += self._emit("response.custom_tool_call_input.done", **fields, input=done["input"])
        elif isinstance(b, hub.Thinking):
            done = self._items.item(hub.Thinking(text, signature=item.signature), index)
            if item.summary:
                fields = {"item_id": done["id"], "output_index": index, "summary_index": 0}
                out = self._emit("response.reasoning_summary_text.done", **fields, text=text)
                part = {"type": "summary_text", "text": text}
                out += self._emit("response.reasoning_summary_part.done", **fields, part=part)
        elif isinstance(b, hub.RedactedThinking):
            done = self._items.item(b, index)
        else:
            done = self._items.item(hub.Text(text), index)
            fields = {"item_id": done["id"], "output_index": index, "content_index": 0}
            out = self._emit("response.output_text.done", **fields, text=text, logprobs=[])
            out += self._emit("response.content_part.done", **fields, part=output_text(text))
        self._output.append(done)
        return out + self._emit("response.output_item.done", output_index=index, item=done)


class StreamDecoder:
    """Responses stream bytes (from an upstream that speaks it) to hub events."""

    def __init__(self) -> None:
        self._splitter = EventSplitter()
        self.usage: hub.Usage | None = None
        self._next = 0  # the next hub block index
        self._open: tuple[str, int] | None = None  # (item id or output index, block index)
        self._args: dict[str, bool] = {}  # output key -> argument deltas seen
        self._custom: dict[str, list[str]] = {}
        self._tools = False
        self._ended = False

    def feed(self, chunk: bytes) -> list[hub.Event]:
        events: list[hub.Event] = []
        if not guarded(self._feed, chunk, events):
            self._ended = True
        return events

    def _feed(self, chunk: bytes, events: list[hub.Event]) -> None:
        for raw in self._splitter.feed(chunk):
            self._event(raw, events)

    def finish(self) -> list[hub.Event]:
        events: list[hub.Event] = []
        rest = self._splitter.flush()
        if rest.strip() and not self._ended and not guarded(self._event, rest, events):
            self._ended = True
        if not self._ended:
            self._ended = True
            self._stop(events)
            events.append(
                hub.StreamError("api_error", "The upstream stream ended early.", "upstream_disconnected")
            )
        return events

    def _event(self, raw: bytes, events: list[hub.Event]) -> None:
        data = event_data(raw)
        if self._ended or data is None:
            return
        try:
            ev = orjson.loads(data)
        except orjson.JSONDecodeError:
            ev = None
        if not isinstance(ev, dict):
            self._ended = True
            events.append(malformed())
            return
        kind = ev.get("type")
        key = str(ev.get("output_index"))
        if kind == "response.created":
            r = ev.get("response") or {}
            created = r.get("created_at")
            events.append(
                hub.MessageStart(
                    id=str(r.get("id") or ""),
                    model=str(r.get("model") or ""),
                    created=int(created) if isinstance(created, int | float) else None,
                )
            )
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            self._live(events, key, hub.Text(""), "text", ev.get("delta") or "")
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self._live(events, key, hub.Thinking(""), "thinking", ev.get("delta") or "")
        elif kind == "response.output_item.added":
            item = ev.get("item") or {}
            if item.get("type") in ("function_call", "custom_tool_call"):
                self._tools = True
                use = tool_use_of({**item, "arguments": "", "input": ""})
                use.input = {}
                self._begin(events, key, use)
        elif kind == "response.function_call_arguments.delta" and self._open and self._open[0] == key:
            self._args[key] = True
            events.append(hub.BlockDelta(self._open[1], "json", ev.get("delta") or ""))
        elif kind == "response.custom_tool_call_input.delta":
            self._custom.setdefault(key, []).append(ev.get("delta") or "")
        elif kind == "response.output_item.done":
            self._item_done(events, key, ev.get("item") or {})
        elif kind in ("response.completed", "response.incomplete"):
            self._ended = True
            self._stop(events)
            resp = decode_response(ev.get("response") or {})
            self.usage = usage_from((ev.get("response") or {}).get("usage")) or self.usage
            stop = resp.stop_reason
            if stop == "end_turn" and self._tools:
                stop = "tool_use"
            events.append(hub.MessageDelta(stop, usage=self.usage))
            events.append(hub.MessageStop())
        elif kind in ("response.failed", "error"):
            self._ended = True
            self._stop(events)
            err = (ev.get("response") or {}).get("error") if kind == "response.failed" else ev
            err = err if isinstance(err, dict) else {}
            code = str(err.get("code") or "")
            message = str(err.get("message") or "The upstream reported an error.")
            events.append(hub.StreamError(_ERROR_KINDS.get(code, "api_error"), message))

    def _begin(self, events: list[hub.Event], key: str, block: hub.Block) -> None:
        self._stop(events)
        self._open = (key, self._next)
        events.append(hub.BlockStart(self._next, block))
        self._next += 1

    def _live(self, events: list[hub.Event], key: str, block: hub.Block, kind: str, value: str) -> None:
        if self._open is None or self._open[0] != key:
            self._begin(events, key, block)
        assert self._open is not None
        if value:
            events.append(hub.BlockDelta(self._open[1], kind, value))  # type: ignore[arg-type]

    def _stop(self, events: list[hub.Event]) -> None:
        if self._open is not None:
            events.append(hub.BlockStop(self._open[1]))
            self._open = None

    def _item_done(self, events: list[hub.Event], key: str, item: dict[str, Any]) -> None:
        kind = item.get("type")
        if kind == "reasoning":
            sig = item.get("encrypted_content")
            if isinstance(sig, str) and sig.startswith(REDACTED_PREFIX):
                self._begin(events, key, hub.RedactedThinking(sig[len(REDACTED_PREFIX) :]))
            elif isinstance(sig, str) and sig:
                self._live(events, key, hub.Thinking(""), "signature", sig)
        elif kind == "function_call" and not self._args.get(key):
            self._live(events, key, hub.ToolUse("", ""), "json", item.get("arguments") or "{}")
        elif kind == "custom_tool_call":
            text = "".join(self._custom.get(key, [])) or item.get("input") or ""
            self._live(events, key, hub.ToolUse("", ""), "json", orjson.dumps({"input": text}).decode())
        elif kind == "message" and (self._open is None or self._open[0] != key):
            for part in item.get("content") or []:  # an upstream that sent no deltas
                value = part.get("text") or part.get("refusal") or ""
                self._live(events, key, hub.Text(""), "text", value)
        if self._open is not None and self._open[0] == key:
            self._stop(events)
