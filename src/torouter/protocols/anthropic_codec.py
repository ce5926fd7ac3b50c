"""Anthropic Messages <-> hub: requests and whole responses (the stream codec is anthropic_stream).

Same-protocol hops are lossless: whatever the hub cannot say is kept in `req.extras["anthropic"]`
(unknown top-level fields by name, server tools under "server_tools", and under "_layout" the
shape details a re-encode needs: string vs block content, raw unknown blocks with their positions,
and per-block or per-tool keys the hub does not carry). The hub's fields always win over extras.

Choices for requests that come from other protocols (documented here, tested in
tests/test_codec_anthropic.py):
- max_tokens defaults to 4096 when the client gave none (Anthropic requires it).
- temperature is clamped to [0, 1] (OpenAI allows 0-2; clamping, not scaling, keeps 0.7 as 0.7).
- A thinking budget is raised to Anthropic's minimum of 1024; when max_tokens is not above it,
  max_tokens becomes budget + 1024 so the answer keeps room after the thinking.
- An effort without a budget becomes adaptive thinking plus output_config.effort
  (minimal/low -> low, medium, high, xhigh, max as is; "none" -> thinking disabled).
- Tool arguments: the parsed `input` object is sent; when it is empty and `raw_arguments` holds
  JSON text, that text is parsed; text that is not a JSON object becomes `{}` (LiteLLM's rule).
- Thinking blocks without a signature cannot be replayed to Anthropic and are dropped.
- Empty text blocks are dropped (Anthropic rejects them); consecutive same-role turns are merged
  and tool_result blocks are moved to the start of their user turn.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols.anthropic_messages import usage_from
from torouter.protocols.anthropic_stream import message_id, stop_details, stop_reason_from, usage_body

VENDOR = "anthropic"
DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}

# Top-level fields the hub expresses; every other field goes to extras by name.
_MAPPED = frozenset(
    {
        "model", "messages", "system", "tools", "tool_choice", "max_tokens", "temperature", "top_p",
        "top_k", "stop_sequences", "stream", "thinking", "output_config", "metadata",
        "_layout",  # the decoder's own key in extras: a body field of that name must not take its place
    }
)  # fmt: skip
# Extras keys that are not request fields, or that merge into a field the hub also fills.
_NOT_FIELDS = frozenset({"_layout", "server_tools", "output_config", "metadata"})
_DATA_URL = re.compile(r"^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$", re.S)

# ---------------------------------------------------------------- blocks


def _decode_block(raw: Any) -> hub.Block | None:
    """A hub block for an Anthropic content block, or None when the hub cannot hold it."""
    if not isinstance(raw, dict):
        return None
    kind = raw.get("type")
    if kind == "text" and isinstance(raw.get("text"), str):
        return hub.Text(raw["text"], raw.get("cache_control"), raw.get("citations"))
    if kind == "image":
        src = raw.get("source") if isinstance(raw.get("source"), dict) else {}
        if src.get("type") == "base64" and _strs(src.get("media_type"), src.get("data")):
            return hub.Image(src["media_type"], src["data"], cache_control=raw.get("cache_control"))
        if src.get("type") == "url" and _strs(src.get("url")):
            return hub.Image(url=src["url"], cache_control=raw.get("cache_control"))
        return None
    if kind == "document":
        return _decode_document(raw)
    if kind == "tool_use" and _strs(raw.get("id", ""), raw.get("name", "")):
        inp = raw.get("input")
        return hub.ToolUse(
            raw.get("id", ""), raw.get("name", ""), inp if isinstance(inp, dict) else {},
            cache_control=raw.get("cache_control"),
        )  # fmt: skip
    if kind == "tool_result" and _strs(raw.get("tool_use_id", "")):
        content = raw.get("content")
        inner: list[Any] = [hub.Text(content)] if isinstance(content, str) and content else []
        if isinstance(content, list):
            inner = [
                b for b in map(_decode_block, content) if isinstance(b, hub.Text | hub.Image | hub.Document)
            ]
        return hub.ToolResult(
            raw.get("tool_use_id", ""),
            inner,
            bool(raw.get("is_error")),
            cache_control=raw.get("cache_control"),
        )
    if kind == "thinking" and _strs(raw.get("thinking", ""), raw.get("signature") or ""):
        return hub.Thinking(raw.get("thinking", ""), raw.get("signature"), raw.get("cache_control"))
    if kind == "redacted_thinking" and _strs(raw.get("data", "")):
        return hub.RedactedThinking(raw.get("data", ""))
    # Server-tool blocks, search results, containers, and known blocks whose fields have the wrong
    # type: kept raw by the caller.
    return None


def _strs(*values: Any) -> bool:
    return all(isinstance(v, str) for v in values)


def _decode_document(raw: dict[str, Any]) -> hub.Document | None:
    src = raw.get("source") if isinstance(raw.get("source"), dict) else {}
    if not _strs(raw.get("title") or "", raw.get("context") or ""):
        return None
    doc = hub.Document(
        title=raw.get("title"), context=raw.get("context"), cache_control=raw.get("cache_control")
    )
    kind = src.get("type")
    if kind == "base64" and _strs(src.get("media_type"), src.get("data")):
        doc.media_type, doc.data = src.get("media_type"), src.get("data")
    elif kind == "url" and _strs(src.get("url")):
        doc.media_type, doc.url = "application/pdf", src.get("url")  # Anthropic's URL documents are PDFs
    elif kind == "text" and _strs(src.get("media_type", "text/plain"), src.get("data", "")):
        doc.media_type, doc.text = src.get("media_type", "text/plain"), src.get("data", "")
    elif kind == "content":
        content = src.get("content")
        blocks = [_decode_block(b) for b in content] if isinstance(content, list) else []
        doc.text = content if isinstance(content, str) else hub.text_of(blocks)
    else:
        return None
    return doc


def _with_cache(out: dict[str, Any], cache_control: dict[str, Any] | None) -> dict[str, Any]:
    if cache_control is not None:
        out["cache_control"] = cache_control
    return out


def _encode_block(b: Any, *, replay: bool = True) -> dict[str, Any] | None:
    """The Anthropic block for a hub block, or None for one Anthropic would reject (dropped).

    `replay` is for requests: a thinking block without its signature cannot be sent back.
    """
    if isinstance(b, hub.Text):
        if not b.text:
            return None
        out: dict[str, Any] = {"type": "text", "text": b.text}
        if b.citations is not None:
            out["citations"] = b.citations
        return _with_cache(out, b.cache_control)
    if isinstance(b, hub.ToolUse):
        out = {
            "type": "tool_use",
            "id": b.id,
            "name": b.name,
            "input": b.input or _parse_args(b.raw_arguments),
        }
        return _with_cache(out, b.cache_control)
    if isinstance(b, hub.ToolResult):
        inner = [e for e in (_encode_block(c) for c in b.content) if e is not None]
        out = {"type": "tool_result", "tool_use_id": b.tool_use_id}
        if len(inner) == 1 and inner[0].keys() == {"type", "text"}:
            out["content"] = inner[0]["text"]  # the plain form every client sends
        elif inner:
            out["content"] = inner
        if b.is_error:
            out["is_error"] = True
        return _with_cache(out, b.cache_control)
    if isinstance(b, hub.Thinking):
        if replay and (b.signature is None or hub.from_gemini(b.signature)):
            return None  # Anthropic cannot verify a missing or a Gemini signature: the block is dropped
        out = {"type": "thinking", "thinking": b.thinking, "signature": b.signature or ""}
        return _with_cache(out, b.cache_control)
    if isinstance(b, hub.RedactedThinking):
        return {"type": "redacted_thinking", "data": b.data}
    if isinstance(b, hub.Image):
        return _with_cache({"type": "image", "source": _image_source(b)}, b.cache_control)
    if isinstance(b, hub.Document):
        return _encode_document(b)
    return None


def _parse_args(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _image_source(img: hub.Image) -> dict[str, Any]:
    media_type, data = img.media_type, img.data
    if data is None and img.url and img.url.startswith("data:"):
        m = _DATA_URL.match(img.url)
        if m is None:
            raise GatewayError("invalid_request", "Image data URLs must be base64-encoded.")
        media_type, data = m.group(1), m.group(2)
    if data is not None:
        if media_type not in IMAGE_TYPES:
            raise GatewayError(
                "invalid_request",
                f"Image media type {media_type!r} is not supported by Anthropic models; "
                "use image/jpeg, image/png, image/gif or image/webp.",
            )
        return {"type": "base64", "media_type": media_type, "data": data}
    if img.url:
        return {"type": "url", "url": img.url}
    raise GatewayError("invalid_request", "An image needs either base64 data or a URL.")


def _encode_document(doc: hub.Document) -> dict[str, Any]:
    media_type = doc.media_type or "application/pdf"
    if doc.text is not None:
        source: dict[str, Any] = {"type": "text", "media_type": "text/plain", "data": doc.text}
    elif doc.data is not None and media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": doc.data}
    elif doc.data is not None and media_type == "text/plain":
        try:
            text = base64.b64decode(doc.data, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise GatewayError("invalid_request", "A text/plain document must be base64 UTF-8 text.") from e
        source = {"type": "text", "media_type": "text/plain", "data": text}
    elif doc.url is not None:
        source = {"type": "url", "url": doc.url}
    else:
        raise GatewayError(
            "invalid_request",
            f"Document media type {media_type!r} is not supported by Anthropic models; use a PDF or plain text.",
        )
    out: dict[str, Any] = {"type": "document", "source": source}
    title = doc.title or doc.filename
    if title is not None:
        out["title"] = title
    if doc.context is not None:
        out["context"] = doc.context
    return _with_cache(out, doc.cache_control)


# ---------------------------------------------------------------- shape patches


def _diff(raw: dict[str, Any], enc: dict[str, Any] | None) -> dict[str, Any] | None:
    """What turns `enc` back into `raw`: keys to set and keys to drop (None when equal)."""
    if enc is None or enc == raw:
        return None
    # `of` ties the patch to the block type it was made for, should the hub's content change.
    patch: dict[str, Any] = {
        "of": enc.get("type"),
        "set": {k: v for k, v in raw.items() if enc.get(k, _MISSING) != v},
    }
    drop = [k for k in enc if k not in raw]
    if drop:
        patch["drop"] = drop
    return patch


_MISSING = object()


def _patched(out: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    if patch and out.get("type") == patch["of"]:
        out.update(patch["set"])
        for k in patch.get("drop", ()):
            out.pop(k, None)
    return out


# ---------------------------------------------------------------- request


_KEPT_IF_EMPTY = ("system", "stop_sequences", "stream", "tools", "temperature", "top_p", "top_k")


def decode_request(body: dict[str, Any]) -> hub.Request:
    """The hub request for a checked Messages body; nothing is lost (see the module docstring)."""
    extras: dict[str, Any] = {k: v for k, v in body.items() if k not in _MAPPED}
    layout: dict[str, Any] = {}
    req = hub.Request(model=body["model"], max_tokens=body.get("max_tokens"))
    req.temperature, req.top_p, req.top_k = body.get("temperature"), body.get("top_p"), body.get("top_k")
    req.stop = list(body.get("stop_sequences") or [])
    req.stream = body.get("stream") is True

    system = body.get("system")
    if isinstance(system, str):
        req.system = [hub.Text(system)] if system else []
        layout["system"] = "string"
    elif isinstance(system, list):
        layout["system"] = "blocks"
        texts = [_decode_block(b) for b in system]
        if all(isinstance(t, hub.Text) and t.text for t in texts):
            req.system = _decode_content(system, -1, layout)  # type: ignore[assignment]
        else:
            extras["system"] = system  # not plain text blocks: kept whole for Anthropic
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content")
        if isinstance(content, str):
            layout.setdefault("string_content", []).append(i)
            blocks: list[hub.Block] = [hub.Text(content)]
        else:
            blocks = _decode_content(content if isinstance(content, list) else [], i, layout)
        req.messages.append(hub.Message(m.get("role", "user"), blocks))

    _decode_tools(body, req, extras, layout)
    _decode_reasoning(body, req, extras, layout)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        req.user = metadata["user_id"]
        if len(metadata) > 1:
            extras["metadata"] = {k: v for k, v in metadata.items() if k != "user_id"}
    elif "metadata" in body:
        extras["metadata"] = metadata
    # Mapped fields whose value the hub reads as "absent" (false, null, []) are kept as given.
    for key in _KEPT_IF_EMPTY:
        if key in body:  # most are absent: one test each
            value = body[key]
            if (value is None or value is False or value == "" or value == []) and key not in extras:
                extras[key] = value
    if layout:
        extras["_layout"] = layout
    req.extras[VENDOR] = extras
    return req


def _decode_content(raws: list[Any], i: int, layout: dict[str, Any]) -> list[hub.Block]:
    """Hub blocks of one message (i < 0: the system prompt), noting what a re-encode must restore."""
    blocks: list[hub.Block] = []
    for j, raw in enumerate(raws):
        block = _decode_block(raw)
        try:
            enc = _encode_block(block) if block is not None else None
        except GatewayError:
            enc = {}  # e.g. an image type Anthropic refuses: keep it, so the refusal is Anthropic's
        if block is None or enc is None:
            layout.setdefault("raw_blocks", []).append([i, j, raw])  # the hub cannot carry it
            continue
        patch = _diff(raw, enc) if enc else None
        if patch:
            layout.setdefault("block_patches", {})[f"{i}.{len(blocks)}"] = patch
        blocks.append(block)
    return blocks


def _decode_tools(body: dict[str, Any], req: hub.Request, extras: dict[str, Any], layout: dict) -> None:
    for k, t in enumerate(body.get("tools") or []):
        if not _hub_tool(t):
            extras.setdefault("server_tools", []).append(t)  # web search, code execution, bash...
            layout.setdefault("server_tool_at", []).append(k)
            continue
        tool = hub.Tool(t["name"], t.get("description"), t.get("input_schema") or {}, t.get("strict"))
        tool.cache_control = t.get("cache_control")
        patch = _diff(t, _encode_tool(tool))
        if patch:
            layout.setdefault("tool_patches", {})[str(len(req.tools))] = patch
        req.tools.append(tool)
    tc = body.get("tool_choice")
    if (
        isinstance(tc, dict)
        and tc.get("type") in ("auto", "any", "none", "tool")
        and _strs(tc.get("name", ""))
    ):
        req.tool_choice = hub.ToolChoice(
            tc["type"], tc.get("name"), bool(tc.get("disable_parallel_tool_use"))
        )
        patch = _diff(tc, _encode_tool_choice(req.tool_choice))
        if patch:
            layout["tool_choice_patch"] = patch
    elif "tool_choice" in body:
        extras["tool_choice"] = tc


def _hub_tool(t: Any) -> bool:
    """A client tool the hub can hold; anything else (web search, bash, malformed) is kept raw."""
    return (
        isinstance(t, dict)
        and t.get("type") in (None, "custom")
        and _strs(t.get("name"), t.get("description") or "")
        and isinstance(t.get("input_schema") or {}, dict)
    )


def _decode_reasoning(body: dict[str, Any], req: hub.Request, extras: dict[str, Any], layout: dict) -> None:
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind in ("enabled", "adaptive", "disabled"):
        assert isinstance(thinking, dict)
        req.reasoning = hub.Reasoning(
            enabled=kind != "disabled",
            budget_tokens=thinking.get("budget_tokens") if kind == "enabled" else None,
            adaptive=kind == "adaptive",
            display=thinking.get("display"),
        )
        patch = _diff(thinking, _encode_thinking(req.reasoning, req.max_tokens or DEFAULT_MAX_TOKENS)[0])
        if patch:
            layout["thinking_patch"] = patch
    elif "thinking" in body:
        extras["thinking"] = thinking
    config = body.get("output_config")
    if not isinstance(config, dict):
        if "output_config" in body:
            extras["output_config"] = config
        return
    rest = dict(config)
    effort = rest.pop("effort") if isinstance(rest.get("effort"), str) else None
    fmt = rest.get("format")
    if effort is not None:
        if req.reasoning is None:
            req.reasoning = hub.Reasoning()
            layout["no_thinking"] = True  # effort alone: re-encode must not add a thinking field
        req.reasoning.effort = effort
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and fmt.keys() <= {"type", "schema"}:
        req.response_format = hub.ResponseFormat("json_schema", fmt.get("schema"))
        del rest["format"]
    if rest or not config:
        extras["output_config"] = rest


def _encode_tool(t: hub.Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        out["description"] = t.description
    out["input_schema"] = t.input_schema
    if t.strict is not None:
        out["strict"] = t.strict
    return _with_cache(out, t.cache_control)


def _encode_tool_choice(tc: hub.ToolChoice) -> dict[str, Any]:
    out: dict[str, Any] = {"type": tc.kind}
    if tc.kind == "tool":
        out["name"] = tc.name
    if tc.disable_parallel and tc.kind != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _encode_thinking(r: hub.Reasoning, max_tokens: int) -> tuple[dict[str, Any], int]:
    """The thinking field for hub reasoning, and max_tokens raised if the budget needs room."""
    if not r.enabled or r.effort == "none":
        return {"type": "disabled"}, max_tokens
    if r.budget_tokens is not None:
        budget = max(int(r.budget_tokens), MIN_THINKING_BUDGET)
        if max_tokens <= budget:
            max_tokens = budget + MIN_THINKING_BUDGET
        out: dict[str, Any] = {"type": "enabled", "budget_tokens": budget}
    else:
        out = {"type": "adaptive"}  # an effort, or "think" with no size: the model decides
    if r.display is not None:
        out["display"] = r.display
    return out, max_tokens


def encode_request(req: hub.Request) -> dict[str, Any]:
    """The Messages body for an Anthropic upstream (rules in the module docstring)."""
    extras: dict[str, Any] = req.extras.get(VENDOR, {})
    layout: dict[str, Any] = extras.get("_layout", {})
    body: dict[str, Any] = {"model": req.model}
    body["messages"] = _encode_messages(req.messages, layout)
    max_tokens = req.max_tokens or DEFAULT_MAX_TOKENS
    config: dict[str, Any] = dict(extras.get("output_config") or {})
    r = req.reasoning
    if r is not None:
        thinking, max_tokens = _encode_thinking(r, max_tokens)
        if not layout.get("no_thinking"):
            body["thinking"] = _patched(thinking, layout.get("thinking_patch"))
        if r.effort is not None and r.effort != "none":
            config["effort"] = EFFORTS.get(r.effort, r.effort)  # an unknown level: Anthropic's to judge
    body["max_tokens"] = max_tokens
    if req.system:
        blocks = [
            _patched(e, layout.get("block_patches", {}).get(f"-1.{k}")) for k, e in _enc_all(req.system)
        ]
        plain = len(blocks) == 1 and blocks[0].keys() == {"type", "text"}
        string = layout.get("system") == "string" or (plain and layout.get("system") != "blocks")
        body["system"] = blocks[0]["text"] if string and plain else blocks
    if req.tools or "server_tools" in extras:
        patches = layout.get("tool_patches", {})
        tools = [_patched(_encode_tool(t), patches.get(str(k))) for k, t in enumerate(req.tools)]
        for at, raw in zip(layout.get("server_tool_at", []), extras.get("server_tools", []), strict=False):
            tools.insert(min(at, len(tools)), raw)
        body["tools"] = tools
    if "web_search" in req.builtin_tools:
        body.setdefault("tools", []).append({"type": "web_search_20250305", "name": "web_search"})
    if req.tool_choice is not None:
        body["tool_choice"] = _patched(_encode_tool_choice(req.tool_choice), layout.get("tool_choice_patch"))
    if req.temperature is not None:
        t = req.temperature
        body["temperature"] = t if 0 <= t <= 1 else min(max(float(t), 0.0), 1.0)
    for key, value in (("top_p", req.top_p), ("top_k", req.top_k)):
        if value is not None:
            body[key] = value
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.stream:
        body["stream"] = True
    fmt = req.response_format
    if fmt is not None and fmt.kind != "text":
        schema = fmt.schema if fmt.kind == "json_schema" and fmt.schema is not None else {"type": "object"}
        config["format"] = {"type": "json_schema", "schema": schema}
    if config or "output_config" in extras:
        body["output_config"] = config
    metadata = extras.get("metadata")
    if req.user is not None:
        metadata = {**(metadata or {}), "user_id": req.user}
    if metadata is not None or "metadata" in extras:
        body["metadata"] = metadata
    for key, value in extras.items():
        if key not in _NOT_FIELDS:
            body.setdefault(key, value)  # the hub's own fields win over what was kept
    return body


def _enc_all(blocks: list[Any]) -> list[tuple[int, dict[str, Any]]]:
    """Encoded blocks with their hub positions (for patches); dropped blocks leave a gap."""
    return [(k, e) for k, e in ((k, _encode_block(b)) for k, b in enumerate(blocks)) if e is not None]


def _encode_messages(messages: list[hub.Message], layout: dict[str, Any]) -> list[dict[str, Any]]:
    patches: dict[str, Any] = layout.get("block_patches", {})
    strings = set(layout.get("string_content", ()))
    raws: dict[int, list[tuple[int, Any]]] = {}
    for i, j, raw in layout.get("raw_blocks", ()):
        raws.setdefault(i, []).append((j, raw))
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if i in strings and len(m.content) == 1 and isinstance(m.content[0], hub.Text) and i not in raws:
            t = m.content[0]
            if t.cache_control is None and t.citations is None:
                out.append({"role": m.role, "content": t.text})
                continue
        content: list[Any] = [_patched(e, patches.get(f"{i}.{k}")) for k, e in _enc_all(m.content)]
        for j, raw in raws.get(i, ()):
            content.insert(min(j, len(content)), raw)
        if m.role == "user":
            content = _results_first(content)
        if content or i in strings:
            out.append({"role": m.role, "content": content})
    return _merge_turns(out)


def _merge_turns(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for m in messages:
        if merged and merged[-1]["role"] == m["role"]:
            prev = merged[-1]
            prev["content"] = _as_blocks(prev["content"]) + _as_blocks(m["content"])
            if prev["role"] == "user":
                prev["content"] = _results_first(prev["content"])
        else:
            merged.append(m)
    return merged


def _results_first(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Anthropic wants a user turn's tool results before anything else in it.
    results = [c for c in content if c.get("type") == "tool_result"]
    return results + [c for c in content if c.get("type") != "tool_result"] if results else content


def _as_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return list(content)


# ---------------------------------------------------------------- response


def decode_response(body: dict[str, Any]) -> hub.Response:
    """The hub response for a Message. Server-tool and other unknown blocks are not carried."""
    blocks = [_decode_block(b) for b in body.get("content") or []]
    return hub.Response(
        id=body.get("id", ""),
        model=body.get("model", ""),
        content=[b for b in blocks if b is not None],
        stop_reason=stop_reason_from(body.get("stop_reason")),
        stop_sequence=body.get("stop_sequence"),
        usage=usage_from(body.get("usage")) or hub.Usage(),
    )


def encode_response(resp: hub.Response, model: str) -> dict[str, Any]:
    """A full Anthropic `Message` for a hub response, answered under the client's `model` name."""
    content = []
    for b in resp.content:
        if isinstance(b, hub.Text | hub.ToolUse | hub.Thinking | hub.RedactedThinking):
            enc = _encode_block(b, replay=False)
            if enc is not None:
                content.append(enc)
    return {
        "id": message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": resp.stop_reason,
        "stop_sequence": resp.stop_sequence,
        "stop_details": stop_details(resp.stop_reason),
        "usage": usage_body(resp.usage),
    }
