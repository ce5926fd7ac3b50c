"""Vendor-neutral pieces of an emulated answer: ids, token estimates, the reply plan, embeddings.

Nothing here knows a wire format; each vendor module turns a `Reply` into its own shape.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
import string
import struct
from dataclasses import dataclass, field
from typing import Any

import orjson

from torouter.emulator._script import Step

_ALNUM = string.ascii_letters + string.digits
DEFAULT_PREFIX = "Hello from the emulator. You said: "
TOOL_TRIGGER = "CALL_TOOL"


def random_id(prefix: str, length: int = 24, alphabet: str = _ALNUM) -> str:
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def estimate_tokens(text: str) -> int:
    # The brief's deterministic estimate: one token per four characters, never zero.
    return max(1, len(text) // 4)


def split_chunks(text: str) -> list[str]:
    """Word-by-word pieces (each keeps its leading space) that concatenate back to `text`."""
    pieces = re.findall(r"\s*\S+|\s+$", text)
    return pieces or ([text] if text else [])


def split_fragments(text: str, count: int = 3) -> list[str]:
    """Cut a JSON argument string into `count` arbitrary fragments, as vendors stream them."""
    if len(text) < count:
        return [text]
    size = math.ceil(len(text) / count)
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        return orjson.dumps(self.arguments).decode()


@dataclass(slots=True)
class Reply:
    """What the emulated model answers, before any vendor framing."""

    text: str
    thinking: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "end_turn"
    # Totals as OpenAI counts them: input includes cached; output includes reasoning.
    input_tokens: int = 1
    output_tokens: int = 1
    cached_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0


def minimal_arguments(schema: Any) -> dict[str, Any]:
    """Arguments that satisfy the schema's required properties: strings "x", numbers 1, booleans true."""
    if not isinstance(schema, dict):
        return {}
    properties = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in schema.get("required") or []:
        args[name] = _sample_value(properties.get(name) or {})
    return args


def sample_json(schema: Any) -> Any:
    """A value that fits a JSON (or Gemini, upper-case) schema; an empty schema gives an object."""
    if not isinstance(schema, dict) or not schema:
        return {}
    return _sample_value(schema)


def _sample_value(schema: dict[str, Any]) -> Any:
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "string")
    kind = str(kind).lower()
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return minimal_arguments(schema)
    return "x"


def plan_reply(
    step: Step | None,
    *,
    last_user_text: str,
    prompt_text: str,
    tools: list[tuple[str, Any]],
    thinking: bool = False,
    user_turn_last: bool = True,
    json_schema: Any = None,
) -> Reply:
    """Decide the answer from the request and an optional scripted step.

    `user_turn_last` is False when the conversation ends with tool results: CALL_TOOL then
    answers with text, so an agent's tool loop ends after one round, as in specs/clients.
    """
    tool_calls: list[ToolCall] = []
    if step is not None and step.tool_calls is not None:
        tool_calls = [
            ToolCall(t["name"], dict(t.get("arguments") or {}), t.get("id")) for t in step.tool_calls
        ]
    elif TOOL_TRIGGER in last_user_text and tools and user_turn_last:
        name, schema = tools[0]
        tool_calls = [ToolCall(name, minimal_arguments(schema))]

    if step is not None and step.text is not None:
        text = step.text
    elif tool_calls:
        text = ""
    elif json_schema is not None:
        # JSON mode: a model answers with an object that fits the schema, as clients that route
        # or classify with structured output (Gemini CLI's router) expect.
        text = json.dumps(sample_json(json_schema), separators=(",", ":"))
    else:
        text = DEFAULT_PREFIX + last_user_text[:200]

    thought: str | None = None
    if step is not None and step.thinking is not None:
        thought = step.thinking
    elif thinking:
        thought = f"The user wrote {len(last_user_text)} characters. I will answer politely."

    stop = step.stop_reason if step is not None and step.stop_reason else None
    stop = stop or ("tool_use" if tool_calls else "end_turn")

    visible = text + "".join(call.arguments_json for call in tool_calls)
    reasoning = estimate_tokens(thought) if thought else 0
    reply = Reply(
        text=text,
        thinking=thought,
        tool_calls=tool_calls,
        stop_reason=stop,
        input_tokens=estimate_tokens(prompt_text),
        output_tokens=estimate_tokens(visible) + reasoning,
        reasoning_tokens=reasoning,
    )
    overrides = step.usage if step is not None and step.usage else {}
    reply.input_tokens = int(overrides.get("input_tokens", reply.input_tokens))
    reply.output_tokens = int(overrides.get("output_tokens", reply.output_tokens))
    reply.cached_tokens = int(overrides.get("cached_tokens", 0))
    reply.cache_creation_tokens = int(overrides.get("cache_creation_tokens", 0))
    reply.reasoning_tokens = int(overrides.get("reasoning_tokens", reply.reasoning_tokens))
    return reply


MAX_DIMENSIONS = 3072  # the largest embedding either vendor offers


def bounded_int(value: Any, default: int, low: int, high: int) -> int | None:
    """`value` as a whole number within [low, high] (the default when absent), else None."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        return None
    return int(value) if low <= value <= high else None


def embedding_vector(text: str, dimensions: int = 8) -> list[float]:
    """A deterministic unit vector derived from a hash of the text."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Round-trip through float32 so base64 and float encodings agree exactly.
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in values]


def float32_base64(values: list[float]) -> str:
    import base64

    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
