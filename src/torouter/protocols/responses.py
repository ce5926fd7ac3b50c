"""OpenAI Responses API wire format: request checks, error shapes, usage, the stream tap, and the
pieces its hub codecs share (content parts, tool calls, reasoning items, flattened tool names).

Codecs to and from the hub: responses_request (requests), responses_codec (whole responses),
responses_stream (streams).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols import openai_chat
from torouter.protocols.checks import mistyped
from torouter.protocols.sse import EventSplitter, event_data, event_json, events_with

# The same `{"error": {message, type, param, code}}` body as Chat Completions.
error_body = openai_chat.error_body
status_of = openai_chat.status_of

# field -> (accepted types, what to say)
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "stream": ((bool,), "a boolean"),
    "instructions": ((str, list), "a string"),
    "temperature": ((int, float), "a number"),
    "top_p": ((int, float), "a number"),
    "max_output_tokens": ((int,), "an integer"),
    "top_logprobs": ((int,), "an integer"),
    "tools": ((list,), "an array"),
    "tool_choice": ((str, dict), "a string or an object"),
    "parallel_tool_calls": ((bool,), "a boolean"),
    "reasoning": ((dict,), "an object"),
    "text": ((dict,), "an object"),
    "metadata": ((dict,), "an object"),
    "include": ((list,), "an array"),
    "store": ((bool,), "a boolean"),
    "user": ((str,), "a string"),
    "previous_response_id": ((str,), "a string"),
}

# Terminal and error events: what the tap parses (found by search, never by parsing every event).
_TAP_MARKERS = (
    b"response.completed",
    b"response.incomplete",
    b"response.failed",
    b'"type":"error"',
    b'"type": "error"',
)
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")

# kind -> the `code` of a Responses `error` event / a failed response's `error`
ERROR_CODES = {
    "rate_limit": "rate_limit_exceeded",
    "insufficient_quota": "rate_limit_exceeded",
    "invalid_request": "invalid_prompt",
    "request_too_large": "invalid_prompt",
}


def _invalid(message: str, param: str, code: str = "invalid_type") -> GatewayError:
    return GatewayError("invalid_request", message, param=param, code=code)


def check_request(body: Any) -> dict[str, Any]:
    """The checks a Responses call needs before it can be routed; the upstream validates the rest."""
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        raise _invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise _invalid(
            f"Invalid type for 'model': expected a string, got {openai_chat.json_kind(model)}.", "model"
        )
    if "input" in body and not isinstance(body["input"], str | list):
        raise _invalid(
            f"Invalid type for 'input': expected one of a string or array of input items, "
            f"but got {openai_chat.json_kind(body['input'])} instead.",
            "input",
        )
    for i, item in enumerate(body.get("input") if isinstance(body.get("input"), list) else []):
        if not isinstance(item, dict):
            raise _invalid(
                f"Invalid type for 'input[{i}]': expected an object, got {openai_chat.json_kind(item)}.",
                f"input[{i}]",
            )
    wrong = mistyped(body, _FIELD_TYPES)
    if wrong is not None:
        name, what, value = wrong
        raise _invalid(
            f"Invalid type for '{name}': expected {what}, got {openai_chat.json_kind(value)}.", name
        )
    return body


def usage_from(u: Any) -> hub.Usage | None:
    """Usage from a Responses `usage` object: already in the hub's normal form (OpenAI's arithmetic)."""
    if not isinstance(u, dict):
        return None
    idetails = u.get("input_tokens_details")
    odetails = u.get("output_tokens_details")
    idetails = idetails if isinstance(idetails, dict) else {}
    odetails = odetails if isinstance(odetails, dict) else {}
    try:
        return hub.Usage(
            input_tokens=int(u.get("input_tokens") or 0),
            output_tokens=int(u.get("output_tokens") or 0),
            cached_tokens=int(idetails.get("cached_tokens") or 0),
            cache_write_tokens=int(idetails.get("cache_write_tokens") or 0),
            reasoning_tokens=int(odetails.get("reasoning_tokens") or 0),
        )
    except (TypeError, ValueError):  # a count that is no number: as if none was reported
        return None


def usage_body(u: hub.Usage) -> dict[str, Any]:
    """A ResponseUsage. `cache_write_tokens` is always present: the openai SDK requires it."""
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens,
            "cache_write_tokens": u.cache_write_tokens,
        },
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def response_usage(doc: dict[str, Any]) -> hub.Usage | None:
    """The usage of a whole answer, from the document the gateway already parsed."""
    return usage_from(doc.get("usage"))


def stream_error_event(err: GatewayError, sequence_number: int = 0) -> bytes:
    """An error after the stream has started, as the spec's ResponseErrorEvent."""
    data = {
        "type": "error",
        "code": err.code or ERROR_CODES.get(err.kind, "server_error"),
        "message": err.message,
        "param": err.param,
        "sequence_number": sequence_number,
    }
    return b"event: error\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamTap:
    """Relays a Responses stream untouched while reading usage from its terminal event.

    `response.completed`, `response.incomplete` and `response.failed` carry the final Response
    with its usage; `error` and `response.failed` set `.error` (the event's JSON). Only events
    that mention one of those names are parsed; text deltas pass with a few searches per chunk.
    `hide_usage_chunk` is accepted for interface parity: Responses streams have no usage-only chunk.
    """

    __slots__ = ("_splitter", "done", "error", "usage")

    def __init__(self, hide_usage_chunk: bool = False) -> None:
        self._splitter = EventSplitter()
        self.usage: hub.Usage | None = None
        self.done = False
        self.error: bytes | None = None

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        block = self._splitter.take(chunk)
        if block:
            spans = [s for m in _TAP_MARKERS for s in events_with(block, m)]
            for a, b in sorted(set(spans)):
                self._inspect(block[a:b])
        return chunk  # pass-through: the client gets the upstream's bytes exactly

    def flush(self) -> bytes:
        rest = self._splitter.flush()  # a last event with no closing blank line
        if any(m in rest for m in _TAP_MARKERS):
            self._inspect(rest)
        return b""

    def _inspect(self, event: bytes) -> None:
        payload = event_json(event)
        if payload is None:
            return
        kind = payload.get("type")
        if kind in _TERMINAL:
            self.done = True
            response = payload.get("response")
            usage = usage_from(response.get("usage")) if isinstance(response, dict) else None
            if usage is not None:
                self.usage = usage
            if kind == "response.failed":
                self.error = event_data(event)
        elif kind == "error":
            self.error = event_data(event)


# ---------------------------------------------------------------- pieces the codecs share

PROTOCOL = "openai_responses"
MID_SYSTEM_PREFIX = "[system] "
TOOL_ERROR_MARKER = "[tool error] "
REDACTED_PREFIX = "redacted_thinking:"  # marks RedactedThinking data carried in encrypted_content
CUSTOM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"input": {"type": "string"}},
    "required": ["input"],
}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_DATA_URL = re.compile(r"^data:([^;,]+)?((?:;[^;,]+)*?);base64,(.*)$", re.DOTALL)


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError("invalid_request", message, param=param)


def flat_name(namespace: str, name: str) -> str:
    """A namespaced tool's name in the form every target accepts (^[a-zA-Z0-9_-]{1,64}$)."""
    flat = re.sub(r"[^a-zA-Z0-9_-]", "_", f"{namespace}__{name}")
    if len(flat) > 64:
        digest = hashlib.sha1(f"{namespace}/{name}".encode()).hexdigest()[:8]
        flat = f"{flat[:55]}_{digest}"
    return flat


def flat_tool_names(req: hub.Request) -> dict[str, tuple[str, str]]:
    """Flat hub tool name -> (namespace, name) for the tools decode flattened."""
    saved = (req.extras.get(PROTOCOL) or {}).get("_flat_tools") or {}
    return {k: (v[0], v[1]) for k, v in saved.items()}


def custom_tool_names(req: hub.Request) -> set[str]:
    """The hub names of the request's freeform (`custom`) tools."""
    return set((req.extras.get(PROTOCOL) or {}).get("_custom_tools") or {})


def decode_part(part: dict[str, Any], where: str) -> hub.Block:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return hub.Text(_text(part, "text", where))
    if kind == "refusal":
        return hub.Text(_text(part, "refusal", where))
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise bad_request("input_image parts need an image_url when translating to another platform "
                              "(a file_id only exists on OpenAI).", where)  # fmt: skip
        parsed = parse_data_url(url)
        if parsed:
            return hub.Image(media_type=parsed[0], data=parsed[1], detail=part.get("detail"))
        return hub.Image(url=url, detail=part.get("detail"))
    if kind == "input_file":
        if isinstance(part.get("file_data"), str):
            parsed = parse_data_url(part["file_data"]) or ("application/pdf", part["file_data"])
            return hub.Document(media_type=parsed[0], data=parsed[1], filename=part.get("filename"))
        if isinstance(part.get("file_url"), str):
            return hub.Document(url=part["file_url"], filename=part.get("filename"))
        raise bad_request("input_file parts need file_data or file_url when translating to another "
                          "platform (a file_id only exists on OpenAI).", where)  # fmt: skip
    raise bad_request(f"Unsupported content part type '{kind}'.", where)


def _text(part: dict[str, Any], field: str, where: str) -> str:
    text = part.get(field)
    if text is not None and not isinstance(text, str):
        raise bad_request(f"Invalid type for '{where}.{field}': expected a string.", f"{where}.{field}")
    return text or ""


def parse_data_url(url: str) -> tuple[str, str] | None:
    m = _DATA_URL.match(url) if url.startswith("data:") else None
    return (m.group(1) or "application/octet-stream", m.group(3)) if m else None


def tool_use_of(item: dict[str, Any], flat: dict[tuple[str, str], str] | None = None) -> hub.ToolUse:
    """A function_call or custom_tool_call item; a namespaced name becomes the flat hub name."""
    name, ns, call_id = item.get("name"), item.get("namespace"), item.get("call_id")
    name = name if isinstance(name, str) else ""
    if isinstance(ns, str) and ns:
        name = (flat or {}).get((ns, name)) or flat_name(ns, name)
    use = hub.ToolUse(id=call_id if isinstance(call_id, str) else "", name=name)
    if item.get("type") == "custom_tool_call":
        use.input = {"input": item.get("input") or ""}
        return use
    raw = item.get("arguments")
    if isinstance(raw, dict):
        use.input = raw
    elif isinstance(raw, str) and raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            use.input = parsed
        else:  # not a JSON object: keep the text so it can be passed on unchanged
            use.raw_arguments = raw
    return use


def thinking_of(item: dict[str, Any]) -> list[hub.Block]:
    """A reasoning item's block: Thinking(summary text, signature=encrypted_content), or nothing
    when it has neither (another vendor could not use it)."""
    sig = item.get("encrypted_content")
    if isinstance(sig, str) and sig.startswith(REDACTED_PREFIX):
        return [hub.RedactedThinking(sig[len(REDACTED_PREFIX) :])]
    texts = _texts_in(item.get("summary"))
    if not texts:  # gpt-oss style: the reasoning text itself
        texts = _texts_in(item.get("content"))
    text = "\n\n".join(t for t in texts if t)
    if not text and not sig:
        return []
    return [hub.Thinking(text, signature=sig if isinstance(sig, str) else None)]


def _texts_in(parts: Any) -> list[str]:
    items = parts if isinstance(parts, list) else []
    return [p["text"] for p in items if isinstance(p, dict) and isinstance(p.get("text"), str)]


def decode_format(f: Any) -> hub.ResponseFormat | None:
    if not isinstance(f, dict):
        return None
    kind = f.get("type")
    if kind in ("text", "json_object") and len(f) == 1:
        return hub.ResponseFormat(kind)
    if kind == "json_schema" and set(f) <= {"type", "name", "schema", "strict"}:
        return hub.ResponseFormat(
            "json_schema", schema=f.get("schema"), name=f.get("name"), strict=f.get("strict")
        )
    return None


def encode_part(b: hub.Text | hub.Image | hub.Document) -> dict[str, Any]:
    if isinstance(b, hub.Text):
        return {"type": "input_text", "text": b.text}
    if isinstance(b, hub.Image):
        url = b.url or f"data:{b.media_type or 'image/png'};base64,{b.data or ''}"
        return {"type": "input_image", "image_url": url, "detail": b.detail or "auto"}
    if b.text is not None:
        title = b.title or b.filename
        return {"type": "input_text", "text": f"{title}\n\n{b.text}" if title else b.text}
    if b.data is None:
        return {
            "type": "input_file",
            "file_url": b.url or "",
            **({"filename": b.filename} if b.filename else {}),
        }
    return {
        "type": "input_file",
        "file_data": f"data:{b.media_type or 'application/pdf'};base64,{b.data}",
        "filename": b.filename or b.title or "document",
    }


def encode_format(rf: hub.ResponseFormat) -> dict[str, Any]:
    if rf.kind != "json_schema":
        return {"type": rf.kind}
    f: dict[str, Any] = {"type": "json_schema", "name": rf.name or "response"}
    if rf.schema is not None:
        f["schema"] = rf.schema
    if rf.strict is not None:
        f["strict"] = rf.strict
    return f
