"""Anthropic Messages, count_tokens and Models, from the A-spec, A-sse and the lingua captures."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from starlette.requests import Request

from torouter.emulator._call import Answer, Call, VendorError, bearer, json_answer, sse_answer
from torouter.emulator._common import Reply, dumps, plan_reply, random_id, split_chunks, split_fragments

STOP_REASONS = {"content_filter": "refusal"}
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_MODEL_PATTERN = re.compile(r"^(claude-|emu-)|/")
# (id, display name, created_at, max input tokens, max output tokens), newest first as the API lists them.
CATALOGUE: list[tuple[str, str, str, int, int]] = [
    ("claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-24T00:00:00Z", 200000, 64000),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-15T00:00:00Z", 200000, 64000),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z", 200000, 64000),
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05T00:00:00Z", 200000, 32000),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z", 200000, 64000),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z", 200000, 8192),
]


class AnthropicVendor:
    name = "anthropic"

    def credential(self, request: Request) -> str | None:
        return request.headers.get("x-api-key") or bearer(request)

    def auth_error(self, key: str | None) -> VendorError:
        return VendorError(401, "invalid x-api-key" if key else "x-api-key header is required")

    def malformed_json_error(self) -> VendorError:
        return VendorError(
            400, "There was an error parsing the body of your request. Please send valid JSON."
        )

    def new_request_id(self) -> str:
        return random_id("req_011C", 20)

    def headers(self, request_id: str) -> dict[str, str]:
        return {"request-id": request_id, "anthropic-organization-id": "00000000-0000-4000-8000-000000000000"}

    def error_body(self, error: VendorError, request_id: str) -> bytes:
        fallback = (
            ("api_error", "Internal server error")
            if error.status >= 500
            else ("invalid_request_error", "Error")
        )
        default_type, default_message = _STATUS_ERRORS.get(error.status, fallback)
        return dumps(
            {
                "type": "error",
                "error": {"type": error.type or default_type, "message": error.message or default_message},
                "request_id": request_id,
            }
        )

    def model_of(self, request: Request, body: Any) -> str | None:
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return body["model"]
        return request.path_params.get("model_id")


VENDOR = AnthropicVendor()


def looks_like_model(model: str) -> bool:
    return bool(_MODEL_PATTERN.search(model))


def _validate(body: Any, *, needs_max_tokens: bool) -> str:
    if not isinstance(body, dict):
        raise VendorError(400, "Input should be a valid dictionary")
    required = ("model", "messages", "max_tokens") if needs_max_tokens else ("model", "messages")
    for name in required:
        if name not in body:
            raise VendorError(400, f"{name}: Field required")
    model = body["model"]
    if not isinstance(model, str) or not looks_like_model(model):
        raise VendorError(404, f"model: {model}")
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise VendorError(400, "messages: at least one message is required")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise VendorError(
                400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if needs_max_tokens and budget >= int(body["max_tokens"]):
            raise VendorError(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
    return model


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _prompt_text(body: dict[str, Any]) -> str:
    parts = [_text_of(body.get("system"))]
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        parts.append(_text_of(content))
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content")))
    return " ".join(p for p in parts if p)


def _reply(call: Call, body: dict[str, Any]) -> Reply:
    messages = [m for m in body["messages"] if isinstance(m, dict)]
    users = [m for m in messages if m.get("role") == "user" and _text_of(m.get("content"))]
    last = messages[-1] if messages else {}
    content = last.get("content")
    results = isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )
    tools = [
        (t["name"], t.get("input_schema"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and "name" in t
    ]
    thinking = body.get("thinking") if isinstance(body.get("thinking"), dict) else {}
    output = body.get("output_config") if isinstance(body.get("output_config"), dict) else {}
    fmt = output.get("format") if isinstance(output.get("format"), dict) else {}
    return plan_reply(
        call.step,
        last_user_text=_text_of(users[-1].get("content")) if users else "",
        prompt_text=_prompt_text(body),
        tools=tools,
        thinking=thinking.get("type") in ("enabled", "adaptive"),
        user_turn_last=last.get("role") == "user" and not results,
        json_schema=(fmt.get("schema") or {}) if fmt.get("type") == "json_schema" else None,
    )


def _signature() -> str:
    return base64.b64encode(secrets.token_bytes(48)).decode()


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.thinking is not None:
        blocks.append({"type": "thinking", "thinking": reply.thinking, "signature": _signature()})
    if reply.text or not reply.tool_calls:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id or random_id("toolu_01", 22),
                "name": call.name,
                "input": call.arguments,
                "caller": {"type": "direct"},
            }
        )
    return blocks


def _usage(reply: Reply, *, output_tokens: int | None = None) -> dict[str, Any]:
    uncached = max(0, reply.input_tokens - reply.cached_tokens - reply.cache_creation_tokens)
    return {
        "input_tokens": uncached,
        "cache_creation_input_tokens": reply.cache_creation_tokens,
        "cache_read_input_tokens": reply.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": reply.cache_creation_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": reply.output_tokens if output_tokens is None else output_tokens,
        "output_tokens_details": {"thinking_tokens": reply.reasoning_tokens},
        "server_tool_use": None,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


async def messages(call: Call) -> Answer:
    model = _validate(call.body, needs_max_tokens=True)
    reply = _reply(call, call.body)
    stop_reason = STOP_REASONS.get(reply.stop_reason, reply.stop_reason)
    message: dict[str, Any] = {
        "model": model,
        "id": random_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "content": _blocks(reply),
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "stop_details": {"type": "refusal", "category": None, "explanation": None}
        if stop_reason == "refusal"
        else None,
        "usage": _usage(reply),
        "container": None,
    }
    if call.body.get("stream"):
        return sse_answer(_events(message, reply))
    return json_answer(message)


PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def _event(event_type: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event_type.encode() + b"\ndata: " + dumps({"type": event_type, **payload}) + b"\n\n"


def _events(message: dict[str, Any], reply: Reply) -> list[bytes]:
    start = dict(
        message, content=[], stop_reason=None, stop_details=None, usage=_usage(reply, output_tokens=1)
    )
    frames = [_event("message_start", {"message": start})]
    for index, block in enumerate(message["content"]):
        events = _block_events(index, block)
        if index == 0:
            events.insert(1, PING)  # recorded right after the first block opens
        frames.extend(events)
    if not message["content"]:
        frames.append(PING)
    usage = message["usage"]
    final_usage = {
        key: usage[key]
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    }
    delta = {
        "stop_reason": message["stop_reason"],
        "stop_sequence": None,
        "stop_details": message["stop_details"],
    }
    frames.append(_event("message_delta", {"delta": delta, "usage": final_usage}))
    frames.append(_event("message_stop", {}))
    return frames


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    def delta(body: dict[str, Any]) -> bytes:
        return _event("content_block_delta", {"index": index, "delta": body})

    kind = block["type"]
    if kind == "thinking":
        opening = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [delta({"type": "thinking_delta", "thinking": p}) for p in split_chunks(block["thinking"])]
        deltas.append(delta({"type": "signature_delta", "signature": block["signature"]}))
    elif kind == "text":
        opening = {"type": "text", "text": ""}
        deltas = [delta({"type": "text_delta", "text": p}) for p in split_chunks(block["text"])]
    else:
        opening = dict(block, input={})
        fragments = ["", *split_fragments(dumps(block["input"]).decode())]
        deltas = [delta({"type": "input_json_delta", "partial_json": f}) for f in fragments]
    return [
        _event("content_block_start", {"index": index, "content_block": opening}),
        *deltas,
        _event("content_block_stop", {"index": index}),
    ]


async def count_tokens(call: Call) -> Answer:
    _validate(call.body, needs_max_tokens=False)
    prompt = _prompt_text(call.body)
    for tool in call.body.get("tools") or []:
        prompt += " " + dumps(tool).decode()
    return json_answer({"input_tokens": max(1, len(prompt) // 4)})


def _model_info(entry: tuple[str, str, str, int, int]) -> dict[str, Any]:
    model_id, display_name, created_at, max_input, max_output = entry
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": created_at,
        "max_input_tokens": max_input,
        "max_tokens": max_output,
        "capabilities": None,
    }


async def list_models(call: Call) -> Answer:
    ids = [entry[0] for entry in CATALOGUE]
    try:
        limit = int(call.query.get("limit", 20))
    except ValueError:
        raise VendorError(400, "limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise VendorError(400, "limit: Input should be between 1 and 1000")
    after, before = call.query.get("after_id"), call.query.get("before_id")
    for cursor in (after, before):
        if cursor is not None and cursor not in ids:
            raise VendorError(404, f"model: {cursor}")
    if before is not None:
        end = ids.index(before)
        start = max(0, end - limit)
        page, has_more = CATALOGUE[start:end], start > 0
    else:
        start = ids.index(after) + 1 if after is not None else 0
        page, has_more = CATALOGUE[start : start + limit], start + limit < len(CATALOGUE)
    return json_answer(
        {
            "data": [_model_info(e) for e in page],
            "has_more": has_more,
            "first_id": page[0][0] if page else None,
            "last_id": page[-1][0] if page else None,
        }
    )


async def get_model(call: Call) -> Answer:
    model_id = call.path_params["model_id"]
    for entry in CATALOGUE:
        if entry[0] == model_id:
            return json_answer(_model_info(entry))
    if looks_like_model(model_id):
        return json_answer(_model_info((model_id, model_id, "2025-01-01T00:00:00Z", 200000, 64000)))
    raise VendorError(404, f"model: {model_id}")
