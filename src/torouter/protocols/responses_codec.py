"""OpenAI Responses API <-> hub: whole responses, and the Response object streams share.

Requests: responses_request. Streams: responses_stream.

Choices:
- A Thinking block becomes a reasoning item whose summary is the thinking text. Its signature
  goes out as `encrypted_content` always, not only when `include` asks for it: clients that keep
  no server state (Codex, store:false) must send it back for the next turn, and others ignore it.
  RedactedThinking travels the same way, its data marked with `REDACTED_PREFIX`, so that it comes
  back as RedactedThinking rather than as a signature.
- A call to a tool the request flattened out of a namespace comes back with `name` = the inner
  name and `namespace` = the namespace, as the spec's FunctionToolCall has them (and Codex reads).
- Each block is one output item (consecutive Text blocks are separate messages, as streamed).
- Item ids derive from the response id and the output index (`rs_`, `msg_`, `fc_`, `ctc_`), so a
  stream and the final Response name every item alike.
- Stop reasons: max_tokens -> status incomplete (max_output_tokens), refusal -> incomplete
  (content_filter); everything else is completed.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from torouter import hub
from torouter.protocols.responses import (
    PROTOCOL,
    REDACTED_PREFIX,
    custom_tool_names,
    flat_tool_names,
    thinking_of,
    tool_use_of,
    usage_body,
    usage_from,
)
from torouter.protocols.responses_request import encode_settings, instructions_of

INCOMPLETE = {"max_tokens": "max_output_tokens", "refusal": "content_filter"}
_ITEM_PREFIX = {"reasoning": "rs", "message": "msg", "function_call": "fc", "custom_tool_call": "ctc"}


def response_id_for(upstream_id: str | None) -> str:
    if upstream_id and upstream_id.startswith("resp_"):
        return upstream_id
    return f"resp_{upstream_id or uuid.uuid4().hex}"


def item_id(response_id: str, kind: str, index: int) -> str:
    return f"{_ITEM_PREFIX.get(kind, 'item')}_{response_id.removeprefix('resp_')}_{index}"


# ---------------------------------------------------------------- decode


def decode_response(body: dict[str, Any]) -> hub.Response:
    """A Response object as a hub response."""
    content: list[hub.Block] = []
    refused = False
    for item in body.get("output") or []:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "reasoning":
            content.extend(thinking_of(item))
        elif kind == "message":
            for part in item.get("content") or []:
                if part.get("type") == "output_text":
                    content.append(hub.Text(part.get("text") or ""))
                elif part.get("type") == "refusal":
                    refused = True
                    content.append(hub.Text(part.get("refusal") or ""))
        elif kind in ("function_call", "custom_tool_call"):
            content.append(tool_use_of(item))
    reason = (body.get("incomplete_details") or {}).get("reason")
    stop: hub.StopReason = "end_turn"
    if body.get("status") == "incomplete" and reason == "max_output_tokens":
        stop = "max_tokens"
    elif refused or (body.get("status") == "incomplete" and reason == "content_filter"):
        stop = "refusal"
    elif any(isinstance(b, hub.ToolUse) for b in content):
        stop = "tool_use"
    created = body.get("created_at")
    return hub.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop,
        usage=usage_from(body.get("usage")) or hub.Usage(),
        created=int(created) if isinstance(created, int | float) else None,
    )


# ---------------------------------------------------------------- encode


def encode_response(
    resp: hub.Response,
    model: str,
    request: hub.Request | None = None,
    response_id: str | None = None,
) -> dict[str, Any]:
    """A full Response object for a client of this protocol."""
    rid = response_id or response_id_for(resp.id)
    created = resp.created if resp.created is not None else int(time.time())
    items = OutputItems(rid, request)
    output = [items.item(b, n) for n, b in enumerate(output_blocks(resp.content))]
    status = "incomplete" if resp.stop_reason in INCOMPLETE else "completed"
    echo = request_echo(request)
    return response_object(rid, model, echo, created, status, output, resp.usage, resp.stop_reason)


def output_blocks(blocks: list[hub.Block]) -> list[hub.Block]:
    """The blocks that become output items, one item each (as a stream writes them)."""
    return [b for b in blocks if not isinstance(b, hub.ToolResult | hub.Image | hub.Document)]


class OutputItems:
    """Builds output items with the ids and tool names a response to `request` should carry."""

    __slots__ = ("_custom", "_flat", "rid")

    def __init__(self, rid: str, request: hub.Request | None) -> None:
        self.rid = rid
        self._flat = flat_tool_names(request) if request is not None else {}
        self._custom = custom_tool_names(request) if request is not None else set()

    def kind_of(self, b: hub.Block) -> str:
        if isinstance(b, hub.Thinking | hub.RedactedThinking):
            return "reasoning"
        if isinstance(b, hub.ToolUse):
            return "custom_tool_call" if b.name in self._custom else "function_call"
        return "message"

    def item(self, b: hub.Block, index: int, status: str = "completed") -> dict[str, Any]:
        """The output item for a block, with its final content."""
        kind = self.kind_of(b)
        iid = item_id(self.rid, kind, index)
        if isinstance(b, hub.Thinking | hub.RedactedThinking):
            item: dict[str, Any] = {"id": iid, "type": "reasoning", "summary": []}
            if isinstance(b, hub.RedactedThinking):
                item["encrypted_content"] = REDACTED_PREFIX + b.data
                return item
            if b.thinking:
                item["summary"] = [{"type": "summary_text", "text": b.thinking}]
            if b.signature:
                item["encrypted_content"] = b.signature
            return item
        if isinstance(b, hub.ToolUse):
            args = b.raw_arguments or orjson.dumps(b.input).decode()
            return self.call(b, index, args, status)
        return self.message(index, [output_text(b.text if isinstance(b, hub.Text) else "")], status)

    def message(self, index: int, content: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
        iid = item_id(self.rid, "message", index)
        return {"id": iid, "type": "message", "status": status, "content": content, "role": "assistant"}

    def call(self, b: hub.ToolUse, index: int, args: str, status: str = "completed") -> dict[str, Any]:
        kind = self.kind_of(b)
        ns, name = self._flat.get(b.name, (None, b.name))
        item: dict[str, Any] = {"id": item_id(self.rid, kind, index), "type": kind}
        if kind == "custom_tool_call":
            value = b.input.get("input") if isinstance(b.input, dict) else None
            if value is None:  # streamed: the arguments are the JSON of {"input": ...}
                try:
                    value = (orjson.loads(args) if args else {}).get("input", args)
                except (orjson.JSONDecodeError, AttributeError):
                    value = args
            item.update(call_id=b.id, name=name, input=str(value))
        else:
            item.update(status=status, arguments=args, call_id=b.id, name=name)
        if ns is not None:
            item["namespace"] = ns
        return item


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def request_echo(request: hub.Request | None) -> dict[str, Any]:
    """The request's settings as a Response repeats them (computed once per response or stream)."""
    if request is None:
        return {}
    saved = request.extras.get(PROTOCOL) or {}
    echo = encode_settings(request)
    echo["instructions"] = instructions_of(request)
    echo["background"] = saved.get("background", False)
    return echo


def response_object(
    rid: str,
    model: str,
    echo: dict[str, Any],
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: hub.Usage | None,
    stop: hub.StopReason | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Response with every field the spec (and the openai SDK's model) lists; `echo` is
    request_echo(request)."""
    text = {"format": {"type": "text"}, "verbosity": "medium"}
    if isinstance(echo.get("text"), dict):
        text.update(echo["text"])
    reasoning = echo.get("reasoning") if isinstance(echo.get("reasoning"), dict) else {}
    incomplete = INCOMPLETE.get(stop or "") if status == "incomplete" else None
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": echo.get("background") is True,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": echo.get("max_tool_calls"),
        "model": model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls", True) is not False,
        "previous_response_id": echo.get("previous_response_id"),
        "prompt_cache_key": echo.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": echo.get("safety_identifier"),
        "service_tier": echo.get("service_tier") or "default",
        "store": echo.get("store", True) is not False,
        "temperature": echo.get("temperature", 1.0),
        "text": text,
        "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools") or [],
        "top_logprobs": echo.get("top_logprobs", 0),
        "top_p": echo.get("top_p", 1.0),
        "truncation": echo.get("truncation") or "disabled",
        "usage": usage_body(usage) if usage is not None else None,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
    }
