"""OpenAI Responses API requests <-> hub (responses: responses_codec; streams: responses_stream).

Rules that are not obvious from the two formats:
- `instructions` and the system/developer items before the first user/assistant item go to
  `req.system`. A later one becomes a user turn whose first Text starts with `MID_SYSTEM_PREFIX`.
- Consecutive assistant-side items (reasoning, assistant messages, function calls) share one
  assistant message, and consecutive tool outputs one user message, as other vendors want them.
- A reasoning item becomes Thinking(summary text, signature=encrypted_content); one with neither
  text nor encrypted content carries nothing another vendor can use and gives no block.
- A function tool inside a `namespace` tool (Codex) is flattened to `<namespace>__<name>`, cut to
  64 characters with a hash suffix when needed; `flat_tool_names(req)` gives the way back.
- A `custom` (freeform) tool becomes a function taking `{"input": string}`; its calls carry
  `input={"input": text}` (not `raw_arguments`, which other encoders would send as JSON text).
- Built-in tools (web_search, file_search, mcp...) go to `extras["openai_responses"]["builtin_tools"]`,
  input items the hub cannot hold (web_search_call, item_reference, mcp_*...) to `other_items`
  with their positions, and a tool_choice naming a built-in tool to `tool_choice`: the surface
  decides whether the target can serve them.
- A failed tool result has no Responses field: the output starts with `TOOL_ERROR_MARKER`.
- Refused at decode with a 400: `file_id` images and files, which only exist on OpenAI.
- `extras["openai_responses"]` holds the body fields the hub cannot express; encode restores
  them first. Keys starting with "_" are never sent: `_input` and `_tools` are the client's own
  lists. Encode re-decodes them and gives back each item (or the tool list) verbatim while the hub
  still holds the same blocks for it, so a same-protocol hop returns the client's body exactly;
  an item whose blocks changed is written afresh. Hub Thinking that did not come from a
  Responses item is dropped: OpenAI accepts reasoning items only with its own ids.
- Responses has no stop sequences, top_k or n: they are dropped when encoding.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from torouter import hub
from torouter.protocols.responses import (
    CUSTOM_SCHEMA,
    MID_SYSTEM_PREFIX,
    PROTOCOL,
    TOOL_ERROR_MARKER,
    bad_request,
    custom_tool_names,
    decode_format,
    decode_part,
    encode_format,
    encode_part,
    flat_name,
    flat_tool_names,
    thinking_of,
    tool_use_of,
)

# OpenAI rejects reasoning settings on models that do not reason.
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5|gpt-oss|codex|computer-use)")

# Body fields decode maps into the hub; every other field is kept in extras.
_MAPPED = {
    "model", "input", "instructions", "tools", "tool_choice", "max_output_tokens", "temperature",
    "top_p", "reasoning", "text", "stream", "user",
    # the decoder's own keys in extras: a body field of the same name must not take their place
    "_shape", "_input", "_tools", "_flat_tools", "_custom_tools", "_reasoning",
}  # fmt: skip
_PUBLIC_NOT_BODY = ("builtin_tools", "other_items")


# ---------------------------------------------------------------- decode


def decode_request(body: dict[str, Any]) -> hub.Request:
    """A checked Responses body (responses.check_request) as a hub request."""
    extras = {k: v for k, v in body.items() if k not in _MAPPED}
    req = hub.Request(model=body["model"], extras={PROTOCOL: extras})
    _decode_tools(body.get("tools"), req, extras)
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        req.system.append(hub.Text(instructions))
        extras["_shape"] = {"instructions": True}
    elif instructions is not None:
        extras["instructions"] = instructions  # a list of items (a prompt template's): kept
    if "input" in body:
        extras["_input"] = body["input"]
        _decode_items(_items_of(body["input"]), req, extras)
    if "tools" in body:
        extras["_tools"] = body["tools"]
    _decode_settings(body, req, extras)
    return req


def _items_of(inp: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": inp}] if isinstance(inp, str) else list(inp or [])


def _decode_tools(tools: Any, req: hub.Request, extras: dict[str, Any]) -> None:
    flat: dict[str, list[str]] = {}
    custom: dict[str, dict[str, Any]] = {}
    for i, t in enumerate(tools or []):
        kind = t.get("type") if isinstance(t, dict) else None
        if not isinstance(kind, str) or not isinstance(t.get("name", ""), str):
            raise bad_request(
                f"Invalid 'tools[{i}]': expected an object with a string type and name.", f"tools[{i}]"
            )
        if kind in ("function", "custom"):
            req.tools.append(_tool(t, t.get("name") or "", custom))
        elif kind == "namespace":
            ns = t.get("name") or ""
            inners = t.get("tools") or []
            if not isinstance(inners, list) or not all(
                isinstance(x, dict) and _filled(x.get("name")) for x in inners
            ):
                raise bad_request(
                    f"Invalid 'tools[{i}].tools': expected an array of named tools.", f"tools[{i}]"
                )
            for inner in inners:
                name = flat_name(ns, inner.get("name") or "")
                flat[name] = [ns, inner.get("name") or ""]
                req.tools.append(_tool(inner, name, custom))
        else:  # web_search, file_search, mcp, ...: the surface decides
            extras.setdefault("builtin_tools", []).append(t)
    if flat:
        extras["_flat_tools"] = flat
    if custom:
        extras["_custom_tools"] = custom


def _tool(t: dict[str, Any], name: str, custom: dict[str, dict[str, Any]]) -> hub.Tool:
    description = t.get("description") if isinstance(t.get("description"), str) else None
    if t.get("type") == "custom":
        custom[name] = t
        return hub.Tool(name=name, description=description, input_schema=dict(CUSTOM_SCHEMA))
    tool = hub.Tool(name=name, description=description, strict=t.get("strict"))
    if isinstance(t.get("parameters"), dict):
        tool.input_schema = t["parameters"]
    return tool


def _decode_items(items: list[dict[str, Any]], req: hub.Request, extras: dict[str, Any]) -> list[int]:
    """Fills req.system and req.messages; returns how many hub blocks each item gave."""
    flat = {(ns, n): f for f, (ns, n) in flat_tool_names(req).items()}
    names: dict[str, str] = {}  # call_id -> hub tool name, for ToolResult.name
    counts: list[int] = []
    seen_turn = False
    for i, item in enumerate(items):
        kind = item.get("type") or "message"
        role = item.get("role")
        blocks: list[hub.Block]
        if kind == "message" and role in ("system", "developer"):
            blocks = [
                decode_part(p, f"input[{i}].content")
                for p in _parts(item.get("content"), f"input[{i}].content")
            ]
            if not seen_turn:
                texts = [b for b in blocks if isinstance(b, hub.Text)]
                req.system.extend(texts)
                counts.append(len(texts))
                continue
            if blocks and isinstance(blocks[0], hub.Text):
                blocks[0].text = MID_SYSTEM_PREFIX + blocks[0].text
            req.messages.append(hub.Message("user", blocks))
            counts.append(len(blocks))
            continue
        if kind == "message":
            seen_turn = True
            blocks = [
                decode_part(p, f"input[{i}].content[{j}]")
                for j, p in enumerate(_parts(item.get("content"), f"input[{i}].content"))
            ]
            if role == "assistant":
                blocks = [b for b in blocks if not isinstance(b, hub.Text) or b.text]
                _append(req, "assistant", blocks)
            else:
                req.messages.append(hub.Message("user", blocks))
        elif kind in ("function_call", "custom_tool_call"):
            seen_turn = True
            blocks = [tool_use_of(item, flat)]
            names[blocks[0].id] = blocks[0].name  # type: ignore[union-attr]
            _append(req, "assistant", blocks)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            seen_turn = True
            blocks = [_tool_result(item, names, i)]
            _append(req, "user", blocks)
        elif kind == "reasoning":
            blocks = thinking_of(item)
            _append(req, "assistant", blocks)
        else:  # web_search_call, item_reference, mcp_*...: restored by position on a same-protocol hop
            blocks = []
            extras.setdefault("other_items", []).append({"index": i, "item": item})
        counts.append(len(blocks))
    return counts


def _append(req: hub.Request, role: hub.Role, blocks: list[hub.Block]) -> None:
    """Assistant blocks join the assistant turn before them; tool outputs join tool outputs."""
    last = req.messages[-1] if req.messages else None
    joins = last is not None and last.role == role and last.content
    if joins and role == "user":
        joins = all(isinstance(b, hub.ToolResult) for b in last.content)  # type: ignore[union-attr]
    if joins:
        last.content.extend(blocks)  # type: ignore[union-attr]
    elif blocks or role == "user":
        req.messages.append(hub.Message(role, list(blocks)))


def _parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise bad_request(f"Invalid type for '{where}': expected a string or an array of parts.", where)
    return [p if isinstance(p, dict) else {"type": None} for p in content]


def _filled(value: Any) -> bool:
    """A non-empty string."""
    return isinstance(value, str) and bool(value)


def _tool_result(item: dict[str, Any], names: dict[str, str], i: int) -> hub.ToolResult:
    output = item.get("output")
    if isinstance(output, list):
        content = [decode_part(p, f"input[{i}].output") for p in _parts(output, f"input[{i}].output")]
    else:
        content = [hub.Text(output if isinstance(output, str) else "" if output is None else str(output))]
    is_error = (
        bool(content) and isinstance(content[0], hub.Text) and content[0].text.startswith(TOOL_ERROR_MARKER)
    )
    if is_error:
        content[0].text = content[0].text[len(TOOL_ERROR_MARKER) :]  # type: ignore[union-attr]
    call_id = item.get("call_id") if _filled(item.get("call_id")) else ""
    return hub.ToolResult(tool_use_id=call_id, content=content, is_error=is_error, name=names.get(call_id))  # type: ignore[arg-type]


def _decode_settings(body: dict[str, Any], req: hub.Request, extras: dict[str, Any]) -> None:
    shape = extras.setdefault("_shape", {})
    choice = body.get("tool_choice")
    if choice in ("none", "auto", "required"):
        req.tool_choice = hub.ToolChoice("any" if choice == "required" else choice)
    elif (
        isinstance(choice, dict)
        and choice.get("type") in ("function", "custom")
        and _filled(choice.get("name"))
    ):
        req.tool_choice = hub.ToolChoice("tool", name=choice["name"])
    elif choice is not None:
        extras["tool_choice"] = choice  # a forced built-in tool, allowed_tools, mcp: the surface decides
    if body.get("parallel_tool_calls") is False:
        if req.tool_choice is None:
            req.tool_choice = hub.ToolChoice("auto")
            shape["implicit_tool_choice"] = True
        req.tool_choice.disable_parallel = True
    limit = body.get("max_output_tokens")
    req.max_tokens = limit if isinstance(limit, int) else None
    req.temperature, req.top_p = body.get("temperature"), body.get("top_p")
    req.stream = body.get("stream") is True
    if body.get("stream") is False:
        extras["stream"] = False
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict):
        extras["_reasoning"] = reasoning
        req.reasoning = _decode_reasoning(reasoning)
    elif reasoning is not None:
        extras["reasoning"] = reasoning
    text = body.get("text")
    if isinstance(text, dict):
        rest = {k: v for k, v in text.items() if k != "format"}
        req.response_format = decode_format(text.get("format"))
        if req.response_format is None and "format" in text:
            rest["format"] = text["format"]  # a form the hub cannot hold
        extras["text"] = rest
    elif text is not None:
        extras["text"] = text
    req.user = body.get("user") or body.get("safety_identifier")
    if "user" not in body and req.user is not None:
        shape["user_from_safety_identifier"] = True  # it stays in extras; no `user` is added


def _decode_reasoning(r: dict[str, Any]) -> hub.Reasoning:
    effort, summary = r.get("effort"), r.get("summary")
    return hub.Reasoning(
        enabled=effort != "none",
        effort=effort if isinstance(effort, str) else None,
        summary=summary if isinstance(summary, str) else None,
    )


# ---------------------------------------------------------------- encode


def encode_request(req: hub.Request, platform: str = "openai") -> dict[str, Any]:
    """The Responses body for an upstream that speaks it (OpenAI)."""
    body = encode_settings(req)
    instructions, items = _encode_input(req, req.extras.get(PROTOCOL) or {})
    if instructions is not None:
        body["instructions"] = instructions
    if items is not None:
        body["input"] = items
    return body


def encode_settings(req: hub.Request) -> dict[str, Any]:
    """Every body field but `instructions` and `input` (what a Response echoes back)."""
    saved = req.extras.get(PROTOCOL) or {}
    shape: dict[str, Any] = saved.get("_shape") or {}
    body: dict[str, Any] = {
        k: v for k, v in saved.items() if not k.startswith("_") and k not in _PUBLIC_NOT_BODY
    }
    body["model"] = req.model
    tools = _encode_tools(req, saved)
    if tools is not None:
        body["tools"] = tools
    choice = req.tool_choice
    if choice is not None and not shape.get("implicit_tool_choice"):
        kind = {"any": "required", "auto": "auto", "none": "none"}.get(choice.kind)
        if kind is not None:
            body["tool_choice"] = kind
        elif choice.name:
            body["tool_choice"] = {"type": "custom" if choice.name in custom_tool_names(req) else "function",
                                   "name": flat_tool_names(req).get(choice.name, ("", choice.name))[1]}  # fmt: skip
    if choice is not None and choice.disable_parallel:
        body["parallel_tool_calls"] = False
    for key, value in (("max_output_tokens", req.max_tokens), ("temperature", req.temperature),
                       ("top_p", req.top_p)):  # fmt: skip
        if value is not None:
            body[key] = value
    if req.stream:
        body["stream"] = True
    reasoning = _encode_reasoning(req, saved)
    if reasoning is not None:
        body["reasoning"] = reasoning
    text = dict(saved["text"]) if isinstance(saved.get("text"), dict) else {}
    if req.response_format is not None:
        text["format"] = encode_format(req.response_format)
    if text or "text" in saved:
        body["text"] = text if text or isinstance(saved.get("text"), dict) else saved["text"]
    if req.user is not None and not shape.get("user_from_safety_identifier"):
        body["user"] = req.user
    return body


def instructions_of(req: hub.Request) -> str | None:
    """What a Response echoes as `instructions`: the client's own, else the hub's system text."""
    saved = req.extras.get(PROTOCOL) or {}
    if "_input" in saved or "_shape" in saved:
        lead = (saved.get("_shape") or {}).get("instructions") and req.system
        return req.system[0].text if lead else None
    return "\n\n".join(b.text for b in req.system) if req.system else None


def _encode_input(req: hub.Request, saved: dict[str, Any]) -> tuple[str | None, Any]:
    """(instructions, input): the client's own items wherever the hub still holds their blocks."""
    if "_input" in saved:
        lead = 1 if (saved.get("_shape") or {}).get("instructions") and req.system else 0
        items = _aligned_items(req, saved, req.system[lead:])
        if items is not None:
            return (req.system[0].text if lead else None), items
    instructions = "\n\n".join(b.text for b in req.system) if req.system else None
    blocks = [(m.role, b) for m in req.messages for b in m.content]
    if not blocks and "_input" not in saved:
        return instructions, None
    return instructions, _encode_blocks(blocks, req, None)


def _aligned_items(req: hub.Request, saved: dict[str, Any], system: list[hub.Text]) -> Any:
    """The client's items, each kept verbatim while its blocks are unchanged; None if they no
    longer line up with the hub's blocks (then everything is written afresh)."""
    original = saved["_input"]
    items = _items_of(original)
    scratch = hub.Request(model="", extras={PROTOCOL: {"_flat_tools": saved.get("_flat_tools")}})
    counts = _decode_items(items, scratch, {})
    expected = [("system", b) for b in scratch.system]
    expected += [(m.role, b) for m in scratch.messages for b in m.content]
    actual: list[tuple[str, hub.Block]] = [("system", b) for b in system]
    actual += [(m.role, b) for m in req.messages for b in m.content]
    if [r for r, _ in expected] != [r for r, _ in actual]:
        return None
    out: list[Any] = []
    at = 0
    for item, n in zip(items, counts, strict=True):
        if expected[at : at + n] == actual[at : at + n]:
            out.append(item)
        else:
            out.extend(_encode_blocks(actual[at : at + n], req, item))
        at += n
    return original if isinstance(original, str) and out == items else out


def _encode_blocks(
    blocks: list[tuple[str, hub.Block]], req: hub.Request, hint: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Items for a run of (role, block) pairs, written afresh."""
    flat, custom = flat_tool_names(req), custom_tool_names(req)
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    parts_role = "user"

    def flush() -> None:
        if parts:
            role = parts_role
            if (
                hint is not None
                and hint.get("role") in ("system", "developer")
                and role in ("user", "system")
            ):
                role = hint["role"]
                if parts[0].get("type") == "input_text" and parts[0]["text"].startswith(MID_SYSTEM_PREFIX):
                    parts[0]["text"] = parts[0]["text"][len(MID_SYSTEM_PREFIX) :]
            if role == "assistant":
                out.append({"role": "assistant", "content": "".join(p.get("text", "") for p in parts)})
            else:
                out.append({"role": "developer" if role == "system" else role, "content": list(parts)})
            parts.clear()

    for role, b in blocks:
        if isinstance(b, hub.Text | hub.Image | hub.Document):
            if parts and parts_role != role:
                flush()
            parts_role = role
            parts.append(encode_part(b))
            continue
        flush()
        if isinstance(b, hub.ToolUse):
            out.append(_encode_call(b, flat, custom))
        elif isinstance(b, hub.ToolResult):
            out.append(_encode_output(b, custom))
        elif isinstance(b, hub.Thinking) and hint is not None and hint.get("type") == "reasoning":
            item: dict[str, Any] = {"type": "reasoning", "id": hint.get("id"), "summary": []}
            if b.thinking:
                item["summary"] = [{"type": "summary_text", "text": b.thinking}]
            if b.signature:
                item["encrypted_content"] = b.signature
            out.append(item)
        # other Thinking and RedactedThinking: OpenAI takes reasoning items only with its own ids
    flush()
    return out


def _encode_call(b: hub.ToolUse, flat: dict[str, tuple[str, str]], custom: set[str]) -> dict[str, Any]:
    ns, name = flat.get(b.name, (None, b.name))
    if b.name in custom:
        item: dict[str, Any] = {"type": "custom_tool_call", "call_id": b.id, "name": name,
                                "input": str(b.input.get("input", "")) if b.input else b.raw_arguments or ""}  # fmt: skip
    else:
        args = b.raw_arguments or orjson.dumps(b.input).decode()
        item = {"type": "function_call", "call_id": b.id, "name": name, "arguments": args}
    if ns is not None:
        item["namespace"] = ns
    return item


def _encode_output(b: hub.ToolResult, custom: set[str]) -> dict[str, Any]:
    kind = "custom_tool_call_output" if b.name in custom else "function_call_output"
    marker = TOOL_ERROR_MARKER if b.is_error else ""
    if all(isinstance(c, hub.Text) for c in b.content):
        output: Any = marker + "".join(c.text for c in b.content)  # type: ignore[union-attr]
    else:
        output = [encode_part(c) for c in b.content]
        if marker:
            output.insert(0, {"type": "input_text", "text": marker})
    return {"type": kind, "call_id": b.tool_use_id, "output": output}


def _encode_tools(req: hub.Request, saved: dict[str, Any]) -> list[dict[str, Any]] | None:
    if "_tools" in saved:
        scratch = hub.Request(model="")
        _decode_tools(saved["_tools"], scratch, {})
        if scratch.tools == req.tools:
            return saved["_tools"]
    flat, custom = flat_tool_names(req), (saved.get("_custom_tools") or {})
    out: list[dict[str, Any]] = []
    spaces: dict[str, dict[str, Any]] = {}
    for t in req.tools:
        tool = custom.get(t.name) or {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": t.input_schema,
            "strict": bool(t.strict),  # Responses defaults to strict when omitted
        }
        if t.description is None and "description" in tool and tool["type"] == "function":
            del tool["description"]
        if t.name in flat:
            ns, name = flat[t.name]
            if ns not in spaces:
                known = [
                    x
                    for x in saved.get("_tools") or []
                    if x.get("type") == "namespace" and x.get("name") == ns
                ]
                spaces[ns] = {"type": "namespace", "name": ns, "description": known[0].get("description", "")
                              if known else "", "tools": []}  # fmt: skip
                out.append(spaces[ns])
            spaces[ns]["tools"].append({**tool, "name": name})
        else:
            out.append(tool)
    out.extend(saved.get("builtin_tools") or [])
    return out if out or "_tools" in saved else None


def _encode_reasoning(req: hub.Request, saved: dict[str, Any]) -> dict[str, Any] | None:
    r = req.reasoning
    original = saved.get("_reasoning")
    if isinstance(original, dict) and r is not None and _decode_reasoning(original) == r:
        return original
    if r is None or not _REASONING_MODELS.match(req.model):
        return None
    effort = r.effort
    if not r.enabled:
        effort = effort if effort in ("none", "minimal") else None
    elif effort is None and r.budget_tokens is not None:
        effort = "low" if r.budget_tokens <= 2048 else "medium" if r.budget_tokens <= 8192 else "high"
    elif effort is None and r.adaptive:
        effort = "medium"
    obj: dict[str, Any] = {}
    if effort is not None:
        obj["effort"] = "xhigh" if effort == "max" else effort
    if r.summary is not None:
        obj["summary"] = r.summary
    return obj or None
