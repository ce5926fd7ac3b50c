"""OpenAI Chat Completions <-> hub: whole responses, and what requests, responses and streams share.

Requests: openai_chat_request. Streams: openai_chat_stream.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols.openai_chat import usage_from

PROTOCOL = "openai_chat"
MID_SYSTEM_PREFIX = "[system] "
TOOL_ERROR_MARKER = "[tool error] "
SIGNATURE_FORMAT = "anthropic-claude-v1"  # OpenRouter's name for Anthropic-style signatures

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
DATA_URL = re.compile(r"^data:([^;,]+)?((?:;[^;,]+)*?);base64,(.*)$", re.DOTALL)

FINISH_TO_STOP: dict[str, hub.StopReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError("invalid_request", message, param=param)


def parse_data_url(url: str) -> tuple[str, str] | None:
    m = DATA_URL.match(url) if url.startswith("data:") else None
    return (m.group(1) or "application/octet-stream", m.group(3)) if m else None


def thinking_from(m: dict[str, Any]) -> list[hub.Block]:
    """Reasoning carried on an assistant message, richest convention first (they often repeat)."""
    details = m.get("reasoning_details")
    if isinstance(details, list) and details:
        return [b for d in details if isinstance(d, dict) for b in [_from_detail(d)] if b is not None]
    blocks = m.get("thinking_blocks")
    if isinstance(blocks, list) and blocks:
        out: list[hub.Block] = []
        for b in blocks:
            if isinstance(b, dict) and b.get("type") == "redacted_thinking":
                out.append(hub.RedactedThinking(_str(b.get("data"))))
            elif isinstance(b, dict):
                out.append(hub.Thinking(_str(b.get("thinking")), signature=_str(b.get("signature")) or None))
        return out
    for key in ("reasoning_content", "reasoning"):
        text = m.get(key)
        if isinstance(text, str) and text:
            return [hub.Thinking(text)]
    return []


def _from_detail(d: dict[str, Any]) -> hub.Block | None:
    kind = d.get("type")
    if kind == "reasoning.encrypted":
        return hub.RedactedThinking(_str(d.get("data")))
    if kind == "reasoning.summary":
        return hub.Thinking(_str(d.get("summary")))
    if kind == "reasoning.text":
        return hub.Thinking(_str(d.get("text")), signature=_str(d.get("signature")) or None)
    return None


def tool_use_from(call: dict[str, Any]) -> hub.ToolUse:
    fn = call.get("function") if isinstance(call.get("function"), dict) else {}
    raw = fn.get("arguments")
    use = hub.ToolUse(id=_str(call.get("id")), name=_str(fn.get("name")))
    if isinstance(raw, dict):
        use.input = raw
    elif isinstance(raw, str) and raw:
        parsed = loads_lenient(raw)
        if isinstance(parsed, dict):
            use.input = parsed
        else:  # not a JSON object: keep the text so it can be passed on unchanged
            use.raw_arguments = raw
    return use


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def loads_lenient(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def reasoning_details(blocks: list[hub.Block]) -> list[dict[str, Any]]:
    """OpenRouter's form of thinking blocks: the one chat convention that keeps signatures."""
    out: list[dict[str, Any]] = []
    for i, b in enumerate(blocks):
        if isinstance(b, hub.RedactedThinking):
            out.append(
                {"type": "reasoning.encrypted", "data": b.data, "format": SIGNATURE_FORMAT, "index": i}
            )
        elif isinstance(b, hub.Thinking):
            d = {"type": "reasoning.text", "text": b.thinking, "format": SIGNATURE_FORMAT, "index": i}
            if b.signature:
                d["signature"] = b.signature
            out.append(d)
    return out


def compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def decode_response(body: dict[str, Any]) -> hub.Response:
    """A `chat.completion` as a hub response (choice 0; the hub has one candidate)."""
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    msg = choice.get("message") or {}
    content = thinking_from(msg)
    text = msg.get("content")
    if isinstance(text, str) and text:
        content.append(hub.Text(text))
    refusal = msg.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append(hub.Text(refusal))
    content.extend(tool_use_from(c) for c in msg.get("tool_calls") or [] if isinstance(c, dict))
    finish = choice.get("finish_reason")
    stop: hub.StopReason | None = FINISH_TO_STOP.get(finish, "end_turn") if finish else None
    if refusal:
        stop = "refusal"
    return hub.Response(
        id=str(body.get("id") or ""),
        model=str(body.get("model") or ""),
        content=content,
        stop_reason=stop,
        usage=usage_from(body.get("usage")) or hub.Usage(),
        created=body.get("created"),
    )


def completion_id(resp_id: str) -> str:
    return resp_id if resp_id.startswith("chatcmpl-") else f"chatcmpl-{resp_id}"


def encode_response(resp: hub.Response, model: str) -> dict[str, Any]:
    """A full `chat.completion` for a client of this protocol."""
    texts = [b.text for b in resp.content if isinstance(b, hub.Text)]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
        "annotations": [],
    }
    calls = [
        {
            "id": b.id,
            "type": "function",
            "function": {"name": b.name, "arguments": b.raw_arguments or compact_json(b.input)},
        }
        for b in resp.content
        if isinstance(b, hub.ToolUse)
    ]
    if calls:
        message["tool_calls"] = calls
    thinking = [b for b in resp.content if isinstance(b, hub.Thinking | hub.RedactedThinking)]
    if thinking:
        message["reasoning_content"] = "".join(b.thinking for b in thinking if isinstance(b, hub.Thinking))
        message["reasoning_details"] = reasoning_details(thinking)
    return {
        "id": completion_id(resp.id),
        "object": "chat.completion",
        "created": resp.created if resp.created is not None else int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": STOP_TO_FINISH.get(resp.stop_reason or "end_turn", "stop"),
            }
        ],
        "usage": usage_body(resp.usage),
        "system_fingerprint": None,
    }


def usage_body(u: hub.Usage) -> dict[str, Any]:
    """OpenAI's arithmetic: cached tokens inside prompt_tokens, reasoning inside completion_tokens."""
    prompt: dict[str, Any] = {"cached_tokens": u.cached_tokens}
    if u.cache_write_tokens:
        prompt["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": prompt,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }
