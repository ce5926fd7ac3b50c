"""OpenAI Chat Completions wire format: request checks, error shape, usage, and the stream tap."""

from __future__ import annotations

from typing import Any

import orjson

from torouter.accounting.usage import Usage
from torouter.errors import GatewayError
from torouter.protocols.checks import mistyped
from torouter.protocols.sse import EventSplitter, event_data, event_span, events_with, last_marked

# kind -> OpenAI error `type`
_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "invalid_request_error",
    "permission": "permission_error",
    "not_found": "invalid_request_error",
    "request_too_large": "invalid_request_error",
    "rate_limit": "rate_limit_exceeded",
    "insufficient_quota": "insufficient_quota",
    "api_error": "server_error",
    "bad_gateway": "server_error",
    "unavailable": "server_error",
    "timeout": "server_error",
    "overloaded": "server_error",
}

# field -> (accepted types, what to say)
_FIELD_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "stream": ((bool,), "a boolean"),
    "temperature": ((int, float), "a number"),
    "top_p": ((int, float), "a number"),
    "n": ((int,), "an integer"),
    "max_tokens": ((int,), "an integer"),
    "max_completion_tokens": ((int,), "an integer"),
    "presence_penalty": ((int, float), "a number"),
    "frequency_penalty": ((int, float), "a number"),
    "seed": ((int,), "an integer"),
    "tools": ((list,), "an array"),
    "stop": ((str, list), "a string or an array of strings"),
    "stream_options": ((dict,), "an object"),
    "user": ((str,), "a string"),
    "metadata": ((dict,), "an object"),
    "response_format": ((dict,), "an object"),
    "parallel_tool_calls": ((bool,), "a boolean"),
    "logprobs": ((bool,), "a boolean"),
}


def error_body(err: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": err.message,
                "type": _TYPES.get(err.kind, "server_error"),
                "param": err.param,
                "code": err.code,
            }
        }
    )


def status_of(err: GatewayError) -> int:
    """OpenAI says "overloaded" with a 503; Anthropic's 529 would surprise OpenAI clients."""
    return 503 if err.kind == "overloaded" else err.status


def stream_error_event(err: GatewayError) -> bytes:
    """An error after the stream has started: a `data:` line whose JSON has an `error` key."""
    return b"data: " + error_body(err) + b"\n\n"


def check_request(body: Any) -> dict[str, Any]:
    """The checks a chat call needs before it can be routed; the upstream validates the rest."""
    if not isinstance(body, dict):
        raise GatewayError("invalid_request", "The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        raise GatewayError("invalid_request", "you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise GatewayError(
            "invalid_request",
            f"Invalid type for 'model': expected a string, got {json_kind(model)}.",
            param="model",
            code="invalid_type",
        )
    messages = body.get("messages")
    if messages is None:
        raise GatewayError(
            "invalid_request",
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise GatewayError(
            "invalid_request",
            f"Invalid type for 'messages': expected an array of objects, got {json_kind(messages)}.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        raise GatewayError(
            "invalid_request",
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise GatewayError(
                "invalid_request",
                f"Invalid type for 'messages[{i}]': expected an object, got {json_kind(m)}.",
                param=f"messages[{i}]",
                code="invalid_type",
            )
        if not isinstance(m.get("role"), str):
            raise GatewayError(
                "invalid_request",
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="missing_required_parameter",
            )
    wrong = mistyped(body, _FIELD_TYPES)
    if wrong is not None:
        name, what, value = wrong
        raise GatewayError(
            "invalid_request",
            f"Invalid type for '{name}': expected {what}, got {json_kind(value)}.",
            param=name,
            code="invalid_type",
        )
    return body


def json_kind(value: Any) -> str:
    """How OpenAI names a JSON value's type in its 400 messages."""
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a decimal",
    }.get(type(value), "null" if value is None else type(value).__name__)


def usage_from(u: Any) -> Usage | None:
    """Usage from an OpenAI `usage` object; cached tokens are part of the prompt tokens there."""
    if not isinstance(u, dict):
        return None
    try:
        usage = Usage(int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0))
        details = u.get("prompt_tokens_details")
        if details and isinstance(details, dict):
            usage.cached_tokens = int(details.get("cached_tokens") or 0)
            usage.cache_write_tokens = int(details.get("cache_write_tokens") or 0)
        details = u.get("completion_tokens_details")
        if details and isinstance(details, dict):
            usage.reasoning_tokens = int(details.get("reasoning_tokens") or 0)
    except (TypeError, ValueError):  # a count that is no number: as if none was reported
        return None
    return usage


def response_usage(doc: dict[str, Any]) -> Usage | None:
    """The usage of a whole answer, from the document the gateway already parsed."""
    return usage_from(doc.get("usage"))


class StreamTap:
    """Relays a chat stream untouched while reading its usage.

    When the gateway added `include_usage` for its own accounting, the usage-only chunk
    (`choices: []`) is held back, since the client did not ask for it. Events are only split
    apart when a block of them mentions usage or an error; the rest passes with two searches.
    """

    __slots__ = ("_hide_usage_chunk", "_splitter", "done", "error", "usage")

    def __init__(self, hide_usage_chunk: bool) -> None:
        self._splitter = EventSplitter()
        self._hide_usage_chunk = hide_usage_chunk
        self.usage: Usage | None = None
        self.done = False
        self.error: bytes | None = None

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        block = self._splitter.take(chunk)
        if block:
            if block.rfind(b"[DONE]") >= 0:  # from the end, where it is: not a scan of the block
                self.done = True
            # Find the few events worth parsing by search; most blocks hold only content deltas.
            if self._hide_usage_chunk:
                spans = events_with(block, b'"usage":', (b"{", b" {"))
            else:
                spans = []
                self._read_last_usage(block)
            if errors:
                spans += events_with(block, b'"error"')
            if spans:
                drop = [(a, b) for a, b in sorted(set(spans)) if not self._inspect(block[a:b])]
                if drop and self._hide_usage_chunk:
                    kept, at = [], 0
                    for a, b in drop:
                        kept.append(block[at:a])
                        at = b
                    kept.append(block[at:])
                    return b"".join(kept)
        # Without hiding, the client gets the upstream's chunk as it came, partial events included.
        return block if self._hide_usage_chunk else chunk

    def flush(self) -> bytes:
        rest = self._splitter.flush()
        return rest if self._hide_usage_chunk and rest.strip() else b""

    def _read_last_usage(self, block: bytes) -> None:
        """Usage is cumulative, so the last chunk that reports it is the one that counts: search
        from the end (where the usage chunk is) and stop at the first event that has it. Only
        when usage chunks are hidden must each of them be found."""
        end, crlf = len(block), block.find(b"\r") >= 0
        while (pos := last_marked(block, b'"usage":', (b"{", b" {"), end)) >= 0:
            start, stop = event_span(block, pos, crlf)
            before = self.usage
            self._inspect(block[start:stop])
            if self.usage is not before:
                return
            end = start

    def _inspect(self, event: bytes) -> bool:
        """Reads one event; False means: hold it back from the client."""
        if event.find(b"[DONE]") >= 0:
            self.done = True
            return True
        data = event_data(event)
        if data is None:
            return True
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(chunk, dict):
            return True
        if "error" in chunk and "choices" not in chunk:
            self.error = data
            return True
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            if self._hide_usage_chunk and not chunk.get("choices"):
                return False
        return True
