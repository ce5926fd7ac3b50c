"""Anthropic Messages wire format: request checks, error shape, usage, and the stream tap."""

from __future__ import annotations

from typing import Any

import orjson

from torouter.accounting.usage import Usage
from torouter.errors import GatewayError
from torouter.protocols.checks import mistyped
from torouter.protocols.sse import EventSplitter, event_data, event_json, event_span, events_with

# kind -> Anthropic error `type`
_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "authentication_error",
    "permission": "permission_error",
    "not_found": "not_found_error",
    "request_too_large": "request_too_large",
    "rate_limit": "rate_limit_error",
    "insufficient_quota": "rate_limit_error",
    "api_error": "api_error",
    "bad_gateway": "api_error",
    "unavailable": "overloaded_error",
    "timeout": "timeout_error",
    "overloaded": "overloaded_error",
}

_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "max_tokens": ((int,), "a valid integer"),
    "stream": ((bool,), "a valid boolean"),
    "system": ((str, list), "a valid string or list of text blocks"),
    "temperature": ((int, float), "a valid number"),
    "top_p": ((int, float), "a valid number"),
    "top_k": ((int,), "a valid integer"),
    "stop_sequences": ((list,), "a valid list"),
    "tools": ((list,), "a valid list"),
    "tool_choice": ((dict,), "a valid dictionary"),
    "metadata": ((dict,), "a valid dictionary"),
    "thinking": ((dict,), "a valid dictionary"),
}


def error_body(err: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "type": "error",
            "error": {"type": _TYPES.get(err.kind, "api_error"), "message": err.message},
            "request_id": request_id,
        }
    )


def stream_error_event(err: GatewayError) -> bytes:
    body = orjson.dumps(
        {"type": "error", "error": {"type": _TYPES.get(err.kind, "api_error"), "message": err.message}}
    )
    return b"event: error\ndata: " + body + b"\n\n"


def check_request(body: Any, *, count_tokens: bool = False) -> dict[str, Any]:
    """The checks a Messages call needs before routing, worded as Anthropic's API words them."""
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise GatewayError(
            "invalid_request",
            "model: Field required" if model is None else "model: Input should be a valid string",
        )
    messages = body.get("messages")
    if messages is None:
        raise GatewayError("invalid_request", "messages: Field required")
    if not isinstance(messages, list):
        raise GatewayError("invalid_request", "messages: Input should be a valid list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise GatewayError("invalid_request", f"messages.{i}: Input should be a valid dictionary")
        if m.get("role") not in ("user", "assistant"):
            raise GatewayError("invalid_request", f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in m:
            raise GatewayError("invalid_request", f"messages.{i}.content: Field required")
    if not count_tokens and body.get("max_tokens") is None:
        raise GatewayError("invalid_request", "max_tokens: Field required")
    wrong = mistyped(body, _FIELD_TYPES)
    if wrong is not None:
        raise GatewayError("invalid_request", f"{wrong[0]}: Input should be {wrong[1]}")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool):
            what = "Field required" if budget is None else "Input should be a valid integer"
            raise GatewayError("invalid_request", f"thinking.enabled.budget_tokens: {what}")
    return body


def usage_from(u: Any) -> Usage | None:
    """Anthropic counts cache reads and writes apart from input_tokens; the normal form adds them in."""
    if not isinstance(u, dict):
        return None
    try:
        read = int(u.get("cache_read_input_tokens") or 0)
        write = int(u.get("cache_creation_input_tokens") or 0)
        usage = Usage(
            int(u.get("input_tokens") or 0) + read + write, int(u.get("output_tokens") or 0), read, write
        )
        split = u.get("cache_creation")
        if split and isinstance(split, dict):
            usage.cache_write_1h_tokens = int(split.get("ephemeral_1h_input_tokens") or 0)
        details = u.get("output_tokens_details")
        if details and isinstance(details, dict):
            usage.reasoning_tokens = int(details.get("thinking_tokens") or 0)
    except (TypeError, ValueError):  # a count that is no number: as if none was reported
        return None
    return usage


def response_usage(doc: dict[str, Any]) -> Usage | None:
    """The usage of a whole answer, from the document the gateway already parsed."""
    return usage_from(doc.get("usage"))


class StreamTap:
    """Relays Messages events untouched while reading usage from message_start and message_delta."""

    __slots__ = ("_raw", "_splitter", "done", "error")

    def __init__(self, hide_usage_chunk: bool = False) -> None:
        self._splitter = EventSplitter()
        self._raw: dict[str, Any] = {}
        self.done = False
        self.error: bytes | None = None

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        block = self._splitter.take(chunk)
        if block:
            # Only message_start, message_delta and errors carry what the tap needs: find them by
            # search. message_start comes first and message_delta last, with nothing but message_stop
            # after it: the first and the last `"usage"` of a block, not the content between.
            spans = []
            first = block.find(b'"usage"')
            if first >= 0:
                crlf = block.find(b"\r") >= 0
                spans.append(event_span(block, first, crlf))
                last = block.rfind(b'"usage"')
                if last >= spans[0][1]:
                    spans.append(event_span(block, last, crlf))
            if errors:
                spans = sorted({*spans, *events_with(block, b"event: error")})  # in stream order, once
            for a, b in spans:
                self._inspect(block[a:b])
            if block.rfind(b"message_stop") >= 0:  # from the end, where it is
                self.done = True
        return chunk  # pass-through: the client gets the upstream's bytes exactly

    def flush(self) -> bytes:
        rest = self._splitter.flush()  # a last event with no closing blank line, as some recordings end
        if not rest:  # as nearly always: and `in` on bytes is dear (see protocols.sse)
            return b""
        if b"message_stop" in rest:
            self.done = True
        elif b'"usage"' in rest or b"event: error" in rest:
            self._inspect(rest)
        return b""

    def _inspect(self, event: bytes) -> None:
        payload = event_json(event)
        if payload is None:
            return
        kind = payload.get("type")
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict) and isinstance(message.get("usage"), dict):
                self._raw.update(message["usage"])
        elif kind == "message_delta":
            if isinstance(payload.get("usage"), dict):
                # message_delta usage is cumulative; fields it omits keep their message_start values
                self._raw.update({k: v for k, v in payload["usage"].items() if v is not None})
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self.error = event_data(event)

    @property
    def usage(self) -> Usage | None:
        """Read when asked (at the stream's end), not at each of the events that carry some."""
        return usage_from(self._raw) if self._raw else None
