"""Gemini (Generative Language v1beta) wire basics: error shape, request checks, usage, stream taps.

Errors after a stream has started, and what python-genai (`google/genai/_api_client.py`) does:
- SSE (`?alt=sse`, the only mode the SDK uses): `data: {"error": {...}}` then a blank line. The SDK
  joins the `data:` lines of the event, json-loads them, sees the dump start with `{"error":`,
  and raises `errors.APIError.raise_error(code, ...)`: ClientError for 4xx, ServerError for 5xx.
  (Raw, unprefixed JSON lines are also accepted: its `_RawJsonLineBuffer` collects lines until
  the braces balance; Google itself sends errors that way.)
- JSON array (no `alt`): the error object is the next array element, then the array is closed,
  so the whole body stays valid JSON (`[{...},\r\n{"error": {...}}]`), which is what Google's
  REST stream does. The SDK never asks for this form; REST clients that read the array whole or
  element by element see an element with an `error` key.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError, kind_for_status
from torouter.protocols.checks import FieldTypes, mistyped
from torouter.protocols.sse import EventSplitter, event_data, events_with

# kind -> (HTTP status, google.rpc canonical status); None keeps err.status
_STATUS: dict[str, tuple[int | None, str]] = {
    "invalid_request": (400, "INVALID_ARGUMENT"),
    "authentication": (401, "UNAUTHENTICATED"),  # the SDK raises ClientError(401) on it
    "permission": (403, "PERMISSION_DENIED"),
    "not_found": (404, "NOT_FOUND"),
    "request_too_large": (None, "INVALID_ARGUMENT"),  # keeps 413: no canonical status fits better
    "rate_limit": (429, "RESOURCE_EXHAUSTED"),
    "insufficient_quota": (429, "RESOURCE_EXHAUSTED"),
    "api_error": (500, "INTERNAL"),
    "bad_gateway": (502, "UNAVAILABLE"),
    "unavailable": (503, "UNAVAILABLE"),
    "timeout": (504, "DEADLINE_EXCEEDED"),
    "overloaded": (503, "UNAVAILABLE"),  # Anthropic's 529 would surprise Gemini clients
}
# canonical status -> errors.KINDS key (for errors read from an upstream)
_KINDS = {
    "INVALID_ARGUMENT": "invalid_request",
    "FAILED_PRECONDITION": "invalid_request",
    "OUT_OF_RANGE": "invalid_request",
    "UNAUTHENTICATED": "authentication",
    "PERMISSION_DENIED": "permission",
    "NOT_FOUND": "not_found",
    "RESOURCE_EXHAUSTED": "rate_limit",
    "INTERNAL": "api_error",
    "UNKNOWN": "api_error",
    "CANCELLED": "api_error",
    "UNAVAILABLE": "unavailable",
    "DEADLINE_EXCEEDED": "timeout",
}
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def status_of(err: GatewayError) -> int:
    status = _STATUS.get(err.kind, (None, ""))[0]
    return status if status is not None else err.status


def error_object(err: GatewayError, request_id: str | None = None) -> dict[str, Any]:
    """The `{"code", "message", "status", "details"}` object Google puts under `error`."""
    info: dict[str, Any] = {
        "@type": _ERROR_INFO,
        "reason": (err.code or err.kind).upper(),
        "domain": "torouter",
    }
    if request_id:
        info["metadata"] = {"request_id": request_id}
    details: list[dict[str, Any]] = [info]
    retry = err.headers.get("retry-after")
    if retry and retry.isdigit():
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry}s"})
    return {
        "code": status_of(err),
        "message": err.message,
        "status": _STATUS.get(err.kind, (None, "INTERNAL"))[1],
        "details": details,
    }


def error_body(err: GatewayError, request_id: str | None = None) -> bytes:
    return orjson.dumps({"error": error_object(err, request_id)})


def stream_error_chunk(err: GatewayError, sse: bool, started: bool = True) -> bytes:
    """An error after the stream started (see the module docstring for what clients do with it).

    In array mode the array is closed after the error; `started=False` means no `[` was sent yet.
    """
    body = error_body(err)
    if sse:
        return b"data: " + body + b"\r\n\r\n"
    return (b",\r\n" if started else b"[") + body + b"]"


def error_kind(error: Any) -> str:
    """The errors.KINDS key for a Google error object read from an upstream."""
    if not isinstance(error, dict):
        return "api_error"
    for d in error.get("details") or ():
        if isinstance(d, dict) and d.get("reason") == "API_KEY_INVALID":
            return "authentication"  # Google says 400 for a bad key; it is an auth failure
    kind = _KINDS.get(str(error.get("status") or ""))
    if kind is not None:
        return kind
    code = error.get("code")
    return kind_for_status(code) if isinstance(code, int) else "api_error"


# ---------------------------------------------------------------- request checks

_CONTAINERS: dict[str, tuple[type, str]] = {
    "systemInstruction": (dict, "an object"),
    "generationConfig": (dict, "an object"),
    "toolConfig": (dict, "an object"),
    "tools": (list, "a list"),
    "safetySettings": (list, "a list"),
    "cachedContent": (str, "a string"),
}

# generationConfig fields the translators read as numbers (the rest pass as given)
_GENERATION_FIELDS: FieldTypes = {
    "temperature": ((int, float), "a number"),
    "topP": ((int, float), "a number"),
    "topK": ((int,), "an integer"),
    "maxOutputTokens": ((int,), "an integer"),
    "candidateCount": ((int,), "an integer"),
    "stopSequences": ((list,), "a list of strings"),
}


def camel(key: str) -> str:
    """python-genai's snake_case field names, as the REST API spells them."""
    if "_" not in key or key.startswith("_"):
        return key
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def camel_keys(d: dict[str, Any]) -> dict[str, Any]:
    """One level of keys in camelCase (values untouched: args and schemas are user data)."""
    if not any("_" in k for k in d):
        return d
    return {camel(k): v for k, v in d.items()}


def _bad(message: str) -> GatewayError:
    return GatewayError("invalid_request", message)


def check_request(body: Any) -> dict[str, Any]:
    """The checks a generateContent call needs before routing; the upstream validates the rest."""
    if not isinstance(body, dict):
        raise _bad("Invalid JSON payload received: the request body must be a JSON object.")
    b = camel_keys(body)
    contents = b.get("contents")
    if contents is None:
        raise _bad("* GenerateContentRequest.contents: contents is not specified")
    if not isinstance(contents, list):
        raise _bad("Invalid value at 'contents': expected a list of Content objects.")
    for i, c in enumerate(contents):
        if not isinstance(c, dict):
            raise _bad(f"Invalid value at 'contents[{i}]': expected a Content object.")
        role = c.get("role")
        if role is not None and role not in ("user", "model", "function"):
            raise _bad(f"Please use a valid role: user, model (contents[{i}].role is {role!r}).")
        parts = c.get("parts")
        if not isinstance(parts, list):
            raise _bad(f"Invalid value at 'contents[{i}].parts': expected a list of Part objects.")
        for j, p in enumerate(parts):
            if not isinstance(p, dict):
                raise _bad(f"Invalid value at 'contents[{i}].parts[{j}]': expected a Part object.")
    for name, (kind, what) in _CONTAINERS.items():
        value = b.get(name)
        if value is not None and not isinstance(value, kind):
            raise _bad(f"Invalid value at '{name}': expected {what}.")
    config = b.get("generationConfig")
    wrong = mistyped(camel_keys(config), _GENERATION_FIELDS) if isinstance(config, dict) else None
    if wrong is not None:
        raise _bad(f"Invalid value at 'generationConfig.{wrong[0]}': expected {wrong[1]}.")
    return body


# ---------------------------------------------------------------- usage


def usage_from(um: Any) -> hub.Usage:
    """Gemini's usageMetadata in the normal form: prompt includes the cache, output the thoughts."""
    return read_usage(um) or hub.Usage()


def read_usage(um: Any) -> hub.Usage | None:
    """usage_from, or None when there is no usageMetadata object or a count in it is no number."""
    if not isinstance(um, dict):
        return None
    try:
        thoughts = int(um.get("thoughtsTokenCount") or 0)
        return hub.Usage(
            input_tokens=int(um.get("promptTokenCount") or 0) + int(um.get("toolUsePromptTokenCount") or 0),
            output_tokens=int(um.get("candidatesTokenCount") or 0) + thoughts,
            cached_tokens=int(um.get("cachedContentTokenCount") or 0),
            reasoning_tokens=thoughts,
        )
    except (TypeError, ValueError):  # a count that is no number: as if none was reported
        return None


def usage_body(u: hub.Usage) -> dict[str, Any]:
    """usageMetadata for hub usage: candidatesTokenCount excludes the thoughts, as Gemini counts."""
    out: dict[str, Any] = {
        "promptTokenCount": u.input_tokens,
        "candidatesTokenCount": max(u.output_tokens - u.reasoning_tokens, 0),
        "totalTokenCount": u.input_tokens + u.output_tokens,
    }
    if u.reasoning_tokens:
        out["thoughtsTokenCount"] = u.reasoning_tokens
    if u.cached_tokens:
        out["cachedContentTokenCount"] = u.cached_tokens
    return out


def response_usage(doc: dict[str, Any]) -> hub.Usage | None:
    """The usage of a whole answer, from the document the gateway already parsed."""
    return read_usage(doc.get("usageMetadata"))


# ---------------------------------------------------------------- incremental JSON scanning

_OUTSIDE = re.compile(rb'[{}\[\]"]')
_INSIDE = re.compile(rb'["\\]')


def object_end(buf: bytes, start: int) -> int:
    """The end (exclusive) of the JSON object starting at `buf[start]` (a `{`), or -1 if cut off."""
    depth, pos, in_str = 0, start, False
    while True:
        m = (_INSIDE if in_str else _OUTSIDE).search(buf, pos)
        if m is None:
            return -1
        c, pos = buf[m.start()], m.end()
        if in_str:
            if c == 0x5C:  # backslash: skip the escaped byte
                pos += 1
            else:
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in b"{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos


class ArrayScanner:
    """Splits a streamed JSON array of objects (`[{...},\r\n{...}]`) into each whole element.

    Brace- and string-aware, so `}` or `]` inside text cannot end an element early; only the
    bytes of the element being received are kept. A bare object (not in an array) is an element.
    """

    __slots__ = ("_buf", "_depth", "_escape", "_in_str", "_start", "closed", "opened")

    def __init__(self) -> None:
        self._buf = b""
        self._depth = 0
        self._in_str = False
        self._escape = False
        self._start = -1  # where the element being received starts in _buf
        self.opened = False  # the top-level array's `[` was seen
        self.closed = False  # and its `]`

    @property
    def pending(self) -> int:
        """Bytes of the element still arriving (the tail of what was fed)."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        pos = len(self._buf)  # what was kept is already scanned
        buf = self._buf + chunk if self._buf else chunk
        if self._escape and pos < len(buf):
            pos, self._escape = pos + 1, False
        while pos < len(buf):
            m = (_INSIDE if self._in_str else _OUTSIDE).search(buf, pos)
            if m is None:
                break
            c, pos = buf[m.start()], m.end()
            if self._in_str:
                if c == 0x5C:
                    if pos >= len(buf):
                        self._escape = True
                    pos += 1
                else:
                    self._in_str = False
            elif c == 0x22:
                self._in_str = True
            elif c in b"{[":
                if c == 0x5B and self._depth == 0:
                    self.opened = True
                if c == 0x7B and self._start < 0 and self._depth <= 1:
                    self._start = m.start()  # an element (or a bare object) begins
                self._depth += 1
            else:
                self._depth -= 1
                if c == 0x7D and self._start >= 0 and self._depth <= 1:
                    out.append(buf[self._start : pos])
                    self._start = -1
                elif c == 0x5D and self._depth == 0:
                    self.closed = True
        if self._start >= 0:
            self._buf, self._start = buf[self._start :], 0
        else:
            self._buf = b""
        return out


# ---------------------------------------------------------------- stream taps


def _last_usage(data: bytes) -> bytes | None:
    """The raw usageMetadata object of the last chunk in `data` that has one (not parsed)."""
    at = data.rfind(b'"usageMetadata"')
    if at < 0:
        return None
    brace = data.find(b"{", at)
    end = object_end(data, brace) if brace >= 0 else -1
    return data[brace:end] if end > 0 else None


class _Tap:
    """Usage is cumulative on every Gemini chunk: keep the raw bytes of the last, parse on demand."""

    __slots__ = ("_usage", "_usage_raw", "done", "error")

    def __init__(self) -> None:
        self._usage_raw: bytes | None = None
        self._usage: hub.Usage | None = None
        self.done = False  # a finishReason, or a blocked prompt, was seen
        self.error: bytes | None = None

    @property
    def usage(self) -> hub.Usage | None:
        if self._usage is None and self._usage_raw is not None:
            try:
                self._usage = read_usage(orjson.loads(self._usage_raw))
            except orjson.JSONDecodeError:
                self._usage_raw = None
        return self._usage

    def _read(self, data: bytes) -> None:
        raw = _last_usage(data)
        if raw is not None:
            self._usage_raw, self._usage = raw, None
        if b'"finishReason"' in data or b'"blockReason"' in data:
            self.done = True

    def _check_error(self, data: bytes) -> None:
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict) and "error" in payload and "candidates" not in payload:
            self.error = data


class SSETap(_Tap):
    """Relays `?alt=sse` chunks untouched while reading the usage and any error event."""

    __slots__ = ("_splitter",)

    def __init__(self) -> None:
        super().__init__()
        self._splitter = EventSplitter()

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        block = self._splitter.take(chunk)
        if block:
            self._read(block)
            for a, b in events_with(block, b'"error"') if errors else ():
                data = event_data(block[a:b])
                if data is not None:
                    self._check_error(data)
        return chunk

    def flush(self) -> bytes:
        rest = self._splitter.flush()  # a last event with no blank line after it
        if rest.strip():
            self._read(rest)
            data = event_data(rest)
            if data is not None and b'"error"' in data:
                self._check_error(data)
        return b""


class ArrayTap(_Tap):
    """Relays a streamed JSON array element by element, reading usage and errors on the way.

    An element is forwarded once it is whole and parses, so a client never gets a broken one:
    on the first that doesn't (or an array that never closes), `broken` is set and the relay ends
    the stream with `error_event`, which closes the array validly whatever was sent before.
    """

    __slots__ = ("_held", "_scanner", "_sent", "broken", "opened")

    def __init__(self) -> None:
        super().__init__()
        self._scanner = ArrayScanner()
        self._held = b""  # received, not yet forwarded: the element still arriving
        self._sent = 0  # whole elements forwarded
        self.opened = False  # the array's `[` was forwarded
        self.broken = False

    def feed(self, chunk: bytes, errors: bool = True) -> bytes:
        if self.broken:
            return b""
        held = self._held + chunk if self._held else chunk
        at = 0
        for element in self._scanner.feed(chunk):
            start = held.find(element, at)
            try:
                payload = orjson.loads(element)
            except orjson.JSONDecodeError:
                self.broken = True
                return self._forward(held[:start].rstrip().removesuffix(b","))  # up to the broken one
            at = start + len(element)
            self._sent += 1
            self._read(element)
            if isinstance(payload, dict) and "error" in payload and "candidates" not in payload:
                self.error = element
        if self._scanner.closed:
            self.done = True
        cut = len(held) - self._scanner.pending
        self._held = held[cut:]
        return self._forward(held[:cut])

    def _forward(self, out: bytes) -> bytes:
        if out.strip():
            self.opened = True
        return out

    def error_event(self, err: GatewayError) -> bytes:
        return (b"" if self.opened else b"[") + (b",\r\n" if self._sent else b"") + error_body(err) + b"]"

    def flush(self) -> bytes:
        if not self.broken and (self._held.strip() or (self._scanner.opened and not self._scanner.closed)):
            self.broken = True  # an element or the array was left unfinished
        return b""
