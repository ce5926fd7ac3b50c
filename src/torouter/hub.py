"""The internal format every translation goes through: N protocols need 2N codecs, not N×N.

It is modelled on content blocks, the richest of the vendors' formats, so nothing is lost on the
way. Plain slotted dataclasses: built and read on the hot path of translated calls, never validated.

Conventions every codec keeps:
- Usage is in one normal form: `input_tokens` includes cache reads and writes, `output_tokens`
  includes reasoning tokens (OpenAI's arithmetic). Anthropic's and Gemini's codecs convert.
- Tool inputs are objects. A tool call whose arguments are not valid JSON keeps them in
  `ToolUse.raw_arguments` so the same text can be passed on.
- `extras` keeps a request's fields that the hub cannot express, under the name of the protocol
  they came from, so that a hop back to that same protocol can restore them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Literal

# ---------------------------------------------------------------- content blocks


@dataclass(slots=True)
class Text:
    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Any] | None = None


@dataclass(slots=True)
class Image:
    """An image: base64 `data` with its `media_type`, or a `url` (http(s), or a file URI)."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    detail: str | None = None  # OpenAI's low/high/auto
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class Document:
    """A document (PDF or plain text): base64 `data`, a `url`, or inline `text`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    text: str | None = None
    title: str | None = None
    context: str | None = None
    filename: str | None = None
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any] = field(default_factory=dict)
    raw_arguments: str | None = None  # arguments exactly as a JSON-string protocol sent them
    signature: str | None = None  # Gemini's thoughtSignature on a functionCall part
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolResult:
    tool_use_id: str
    content: list[Text | Image | Document] = field(default_factory=list)
    is_error: bool = False
    name: str | None = None  # the tool's name, which Gemini's functionResponse needs
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class Thinking:
    thinking: str
    signature: str | None = None
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class RedactedThinking:
    data: str


Block = Text | Image | Document | ToolUse | ToolResult | Thinking | RedactedThinking
Role = Literal["user", "assistant"]


@dataclass(slots=True)
class Message:
    role: Role
    content: list[Block] = field(default_factory=list)


# ---------------------------------------------------------------- request


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    input_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None


@dataclass(slots=True)
class ToolChoice:
    kind: Literal["auto", "any", "none", "tool"] = "auto"
    name: str | None = None
    disable_parallel: bool = False


@dataclass(slots=True)
class Reasoning:
    """Thinking or reasoning settings, in whichever terms the client gave them.

    `effort` is one of none, minimal, low, medium, high, xhigh, max. `budget_tokens` is a token
    budget. `adaptive` is Anthropic's model-decides mode. Codecs derive what their vendor takes.
    """

    enabled: bool = True
    effort: str | None = None
    budget_tokens: int | None = None
    adaptive: bool = False
    summary: str | None = None  # Responses API: auto/concise/detailed
    display: str | None = None  # Anthropic: summarized/omitted


@dataclass(slots=True)
class ResponseFormat:
    kind: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(slots=True)
class Request:
    model: str
    messages: list[Message] = field(default_factory=list)
    system: list[Text] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    reasoning: Reasoning | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    n: int | None = None
    # Tools the vendor runs itself, named vendor-neutrally ("web_search"); codecs render their own.
    builtin_tools: list[str] = field(default_factory=list)
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)


# ---------------------------------------------------------------- response

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"]


@dataclass(slots=True)
class Usage:
    """Token counts in one normal form: input includes cached tokens, output includes reasoning."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written with a 1-hour TTL
    reasoning_tokens: int = 0


@dataclass(slots=True)
class Response:
    id: str
    model: str
    content: list[Block] = field(default_factory=list)
    stop_reason: StopReason | None = "end_turn"
    stop_sequence: str | None = None
    usage: Usage = field(default_factory=Usage)
    created: int | None = None


# ---------------------------------------------------------------- stream events
# A decoder turns upstream bytes into these as they arrive; an encoder turns them into the
# client's protocol. Block indices count the blocks of one message from 0, with no gaps.


@dataclass(slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage = field(default_factory=Usage)
    created: int | None = None


@dataclass(slots=True)
class BlockStart:
    index: int
    block: Block  # Text(""), ToolUse(id, name, {}), Thinking(""), or RedactedThinking(data)


@dataclass(slots=True)
class BlockDelta:
    index: int
    kind: Literal["text", "json", "thinking", "signature"]
    value: str


@dataclass(slots=True)
class TextRun:
    """Text deltas in a row for one block, as a decoder read them in one go: the same as a
    BlockDelta(index, "text", t) for each text, in order, none empty. A decoder makes them only
    when asked (`runs`), for an encoder that writes them whole (`writes_runs`)."""

    index: int
    texts: list[str]


@dataclass(slots=True)
class BlockStop:
    index: int


@dataclass(slots=True)
class MessageDelta:
    stop_reason: StopReason | None
    stop_sequence: str | None = None
    usage: Usage | None = None  # cumulative when present


@dataclass(slots=True)
class MessageStop:
    pass


@dataclass(slots=True)
class Ping:
    pass


@dataclass(slots=True)
class StreamError:
    kind: str  # an errors.KINDS key
    message: str
    # For the usage record, when the fault was the upstream's stream itself (malformed, cut short).
    code: str | None = field(default=None, compare=False)


Event = (
    MessageStart
    | BlockStart
    | BlockDelta
    | TextRun
    | BlockStop
    | MessageDelta
    | MessageStop
    | Ping
    | StreamError
)


def text_deltas(run: TextRun) -> map[BlockDelta]:
    """A run as the text deltas it stands for."""
    return map(BlockDelta, repeat(run.index), repeat("text"), run.texts)


# Thinking signatures only verify at the vendor that made them. Gemini's travel to other clients
# with this prefix, so the way back can tell them apart: Gemini gets them (unprefixed) and every
# other vendor drops the block instead of failing on a signature it cannot check.
GEMINI_SIGNATURE = "gemini:"


def gemini_signature(sig: str | None) -> str | None:
    return GEMINI_SIGNATURE + sig if sig and not sig.startswith(GEMINI_SIGNATURE) else sig


def from_gemini(sig: str | None) -> bool:
    return bool(sig) and sig.startswith(GEMINI_SIGNATURE)  # type: ignore[union-attr]


def plain_signature(sig: str | None) -> str | None:
    return sig[len(GEMINI_SIGNATURE) :] if sig and sig.startswith(GEMINI_SIGNATURE) else sig


def text_of(blocks: list[Any]) -> str:
    """The plain text of a list of blocks (used where a target has only a string)."""
    return "".join(b.text for b in blocks if isinstance(b, Text))
