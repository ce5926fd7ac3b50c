"""OpenAI Chat Completions requests <-> hub (responses: openai_chat_codec; streams: openai_chat_stream).

Rules that are not obvious from the two formats:
- system/developer messages before the first user/assistant turn go to `req.system`. One in the
  middle of the conversation becomes a user turn whose first Text starts with `MID_SYSTEM_PREFIX`
  ("[system] "), so a model behind another protocol still reads it as an instruction.
- Tool messages become user-role ToolResult blocks; consecutive ones share one user message. A
  failed result has no OpenAI field, so the content starts with `TOOL_ERROR_MARKER`
  ("[tool error] "); decode strips it and sets `is_error` (a lossless round trip).
- A tool message takes text only: images or documents inside a tool result go into a user
  message right after the tool messages, introduced by a note naming the call.
- Refused at decode with a 400 (the hub has no way to carry them to another vendor):
  `input_audio` parts, `file_id` file parts, the deprecated `function` role.
- `extras["openai_chat"]` holds the body fields the hub cannot express; encode restores them
  first, then writes the hub's fields over them. Keys starting with "_" are never sent: `_shape`
  remembers the wire form of each message (role name, string vs parts content, fields such as
  `name`, `refusal: null`, `annotations`), so a same-protocol hop gives back the client's body.
  It is only applied when the encoded messages still line up with it.

Per-platform policy of `encode_request`:

| hub field            | openai                     | openrouter                          | openai_compatible     |
|----------------------|----------------------------|-------------------------------------|-----------------------|
| max_tokens           | max_completion_tokens      | max_tokens                          | max_tokens            |
| reasoning            | reasoning_effort           | reasoning {effort/max_tokens/...}   | reasoning_effort      |
| top_k                | dropped (unsupported)      | top_k                               | top_k                 |
| cache_control        | dropped (unknown field)    | kept on text parts (system too)     | dropped               |
| Thinking history     | dropped (rejected)         | reasoning_details, with signatures  | reasoning_content     |
| RedactedThinking     | dropped                    | reasoning_details reasoning.encrypted | dropped             |
| stop                 | first 4 (OpenAI's limit)   | all                                 | all                   |

Effort from a token budget: low <= 2048 < medium <= 8192 < high. Adaptive without an effort is
"medium". Disabled reasoning sends "none"/"minimal" only when the client named that effort,
since older models reject "none". OpenRouter's effort has no "max": it becomes "xhigh";
openai_compatible servers know low/medium/high, so xhigh and max become "high".
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from torouter import hub
from torouter.protocols.openai_chat_codec import (
    EFFORTS,
    MID_SYSTEM_PREFIX,
    PROTOCOL,
    TOOL_ERROR_MARKER,
    bad_request,
    compact_json,
    parse_data_url,
    reasoning_details,
    thinking_from,
    tool_use_from,
)

# Body fields decode maps into the hub; every other field is kept in extras.
_MAPPED = {
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "max_completion_tokens",
    "max_tokens", "temperature", "top_p", "top_k", "stop", "n", "stream", "reasoning_effort",
    "reasoning", "response_format", "user",
    "_shape",  # the decoder's own key in extras: a body field of that name must not take its place
}  # fmt: skip
_REASONING_KEYS = ("reasoning_details", "thinking_blocks", "reasoning_content", "reasoning")


def decode_request(body: dict[str, Any]) -> hub.Request:
    """A checked chat body (openai_chat.check_request) as a hub request."""
    extras = {k: v for k, v in body.items() if k not in _MAPPED}
    shape: dict[str, Any] = {"system": [], "messages": []}
    req = hub.Request(model=body["model"], extras={PROTOCOL: extras})
    seen_turn = False
    pending_tools: hub.Message | None = None
    for i, m in enumerate(body["messages"]):
        role = m["role"]
        content = m.get("content")
        form = _form_of(m)
        if role in ("system", "developer"):
            blocks = _texts(content, f"messages[{i}].content")
            entry = {"role": role, "form": form, "fields": _fields(m, ("content",)), "n": len(blocks)}
            if not seen_turn:
                req.system.extend(blocks)
                shape["system"].append(entry)
                continue
            if blocks:
                blocks[0].text = MID_SYSTEM_PREFIX + blocks[0].text
            req.messages.append(hub.Message("user", list(blocks)))
            shape["messages"].append(entry)
            pending_tools = None
            continue
        seen_turn = True
        if role == "tool":
            result = _tool_result(m, i)
            if pending_tools is None:
                pending_tools = hub.Message("user", [])
                req.messages.append(pending_tools)
            pending_tools.content.append(result)
            shape["messages"].append(
                {"role": "tool", "form": form, "fields": _fields(m, ("content", "tool_call_id"))}
            )
            continue
        pending_tools = None
        if role == "user":
            req.messages.append(hub.Message("user", _user_blocks(content, i)))
            shape["messages"].append({"role": "user", "form": form, "fields": _fields(m, ("content",))})
        elif role == "assistant":
            req.messages.append(hub.Message("assistant", _assistant_blocks(m, i)))
            entry = {"role": "assistant", "form": form, "fields": _fields(m, ("content", "tool_calls"))}
            if isinstance(m.get("reasoning_details"), list):
                entry["reasoning_details"] = m["reasoning_details"]
            shape["messages"].append(entry)
        else:
            raise bad_request(
                f"The '{role}' role cannot be translated to another platform.", f"messages[{i}].role"
            )
    extras["_shape"] = shape
    _decode_settings(body, req, extras)
    return req


def _form_of(m: dict[str, Any]) -> str:
    if "content" not in m:
        return "absent"
    c = m["content"]
    return "null" if c is None else "empty" if c == "" else "parts" if isinstance(c, list) else "string"


def _fields(m: dict[str, Any], handled: tuple[str, ...]) -> dict[str, Any]:
    skip = {"role", *handled, *_REASONING_KEYS}
    out = {k: v for k, v in m.items() if k not in skip}
    if out.get("refusal") is not None:
        del out["refusal"]  # a real refusal became a Text block
    return out


def _texts(content: Any, where: str) -> list[hub.Text]:
    if content is None:
        return []
    if isinstance(content, str):
        return [hub.Text(content)]
    if not isinstance(content, list):
        raise bad_request(f"Invalid type for '{where}': expected a string or an array of text parts.", where)
    out = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise bad_request(f"Only text parts are allowed in '{where}'.", where)
        out.append(hub.Text(_text_of(part, where), cache_control=part.get("cache_control")))
    return out


def _text_of(part: dict[str, Any], where: str) -> str:
    text = part.get("text")
    if text is not None and not isinstance(text, str):
        raise bad_request(f"Invalid type for '{where}.text': expected a string.", f"{where}.text")
    return text or ""


def _user_blocks(content: Any, i: int) -> list[hub.Block]:
    if content is None or isinstance(content, str):
        return [hub.Text(content or "")]
    if not isinstance(content, list):
        where = f"messages[{i}].content"
        raise bad_request(f"Invalid type for '{where}': expected a string or an array of parts.", where)
    blocks: list[hub.Block] = []
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append(hub.Text(_text_of(part, where), cache_control=part.get("cache_control")))
        elif kind == "image_url":
            blocks.append(_image(part, where))
        elif kind == "file":
            blocks.append(_document(part, where))
        elif kind == "input_audio":
            raise bad_request("input_audio is not supported when translating to another platform.", where)
        else:
            raise bad_request(f"Unsupported content part type '{kind}'.", where)
    return blocks


def _image(part: dict[str, Any], where: str) -> hub.Image:
    spec = part.get("image_url")
    spec = {"url": spec} if isinstance(spec, str) else spec if isinstance(spec, dict) else {}
    url = spec.get("url")
    if not isinstance(url, str) or not url:
        raise bad_request("An image_url part needs a url.", where)
    detail, cc = spec.get("detail"), part.get("cache_control")
    parsed = parse_data_url(url)
    if parsed:
        return hub.Image(media_type=parsed[0], data=parsed[1], detail=detail, cache_control=cc)
    if url.startswith("data:"):
        raise bad_request("An image data URL must be base64-encoded.", where)
    return hub.Image(url=url, detail=detail, cache_control=cc)


def _document(part: dict[str, Any], where: str) -> hub.Document:
    spec = part.get("file") if isinstance(part.get("file"), dict) else {}
    data_url = spec.get("file_data")
    if not isinstance(data_url, str) or not data_url:
        raise bad_request(
            "file parts must carry file_data when translating to another platform "
            "(a file_id only exists on OpenAI).",
            where,
        )
    parsed = parse_data_url(data_url)
    if parsed is None:  # some clients send bare base64
        parsed = ("application/pdf", data_url)
    return hub.Document(
        media_type=parsed[0],
        data=parsed[1],
        filename=spec.get("filename"),
        cache_control=part.get("cache_control"),
    )


def _tool_result(m: dict[str, Any], i: int) -> hub.ToolResult:
    blocks = _texts(m.get("content"), f"messages[{i}].content")
    is_error = bool(blocks) and blocks[0].text.startswith(TOOL_ERROR_MARKER)
    if is_error:
        blocks[0].text = blocks[0].text[len(TOOL_ERROR_MARKER) :]
    call_id = m.get("tool_call_id") if isinstance(m.get("tool_call_id"), str) else ""
    return hub.ToolResult(tool_use_id=call_id, content=list(blocks), is_error=is_error)


def _assistant_blocks(m: dict[str, Any], i: int) -> list[hub.Block]:
    blocks = thinking_from(m)
    content = m.get("content")
    if isinstance(content, str):
        if content:
            blocks.append(hub.Text(content))
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                where = f"messages[{i}].content"
                raise bad_request(f"Invalid type for '{where}': expected an array of objects.", where)
            text = part.get("text") if part.get("type") == "text" else part.get("refusal")
            if isinstance(text, str) and text:
                blocks.append(hub.Text(text))
    if isinstance(m.get("refusal"), str) and m["refusal"]:
        blocks.append(hub.Text(m["refusal"]))
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
        where = f"messages[{i}].tool_calls"
        raise bad_request(f"Invalid type for '{where}': expected an array of objects.", where)
    blocks.extend(tool_use_from(call) for call in calls)
    return blocks


def _decode_settings(body: dict[str, Any], req: hub.Request, extras: dict[str, Any]) -> None:
    shape = extras["_shape"]
    for i, t in enumerate(body.get("tools") or []):
        fn = t.get("function") if isinstance(t, dict) and t.get("type") == "function" else None
        if fn is None:  # custom tools and others: kept for a same-protocol hop
            shape.setdefault("other_tools", []).append(t)
            continue
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise bad_request(
                f"Invalid 'tools[{i}].function': expected an object with a string name.", f"tools[{i}]"
            )
        description = fn.get("description") if isinstance(fn.get("description"), str) else None
        tool = hub.Tool(name=fn["name"], description=description, strict=fn.get("strict"))
        if isinstance(fn.get("parameters"), dict):
            tool.input_schema = fn["parameters"]
        req.tools.append(tool)
    choice = body.get("tool_choice")
    if choice in ("none", "auto", "required"):
        req.tool_choice = hub.ToolChoice("any" if choice == "required" else choice)
    elif isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str):
            raise bad_request("tool_choice.function.name must be a string.", "tool_choice")
        req.tool_choice = hub.ToolChoice("tool", name=name)
    elif choice is not None:
        extras["tool_choice"] = choice  # allowed_tools and the like
    if body.get("parallel_tool_calls") is False:
        if req.tool_choice is None:
            req.tool_choice = hub.ToolChoice("auto")
            shape["implicit_tool_choice"] = True
        req.tool_choice.disable_parallel = True
    elif "parallel_tool_calls" in body:
        extras["parallel_tool_calls"] = body["parallel_tool_calls"]
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    req.max_tokens = limit if isinstance(limit, int) else None
    get = body.get
    req.temperature, req.top_p, req.top_k, req.n = get("temperature"), get("top_p"), get("top_k"), get("n")
    stop = body.get("stop")
    if isinstance(stop, str):
        req.stop, shape["stop_string"] = [stop], True
    elif isinstance(stop, list):
        req.stop = [s for s in stop if isinstance(s, str)]
    req.stream = body.get("stream") is True
    if body.get("stream") is False:
        extras["stream"] = False
    req.reasoning = _decode_reasoning(body, shape)
    req.response_format = _decode_format(body.get("response_format"), extras)
    req.user = body.get("user") or body.get("safety_identifier")
    if "user" not in body and req.user is not None:
        shape["user_from_safety_identifier"] = True  # it stays in extras; no `user` is added


def _decode_reasoning(body: dict[str, Any], shape: dict[str, Any]) -> hub.Reasoning | None:
    effort = body.get("reasoning_effort")
    effort = effort if isinstance(effort, str) else None
    obj = body.get("reasoning")  # OpenRouter
    if not isinstance(obj, dict):
        return hub.Reasoning(enabled=effort != "none", effort=effort) if effort is not None else None
    effort = obj["effort"] if isinstance(obj.get("effort"), str) and obj["effort"] else effort
    if obj.get("exclude") is not None:
        shape["reasoning_exclude"] = obj["exclude"]
    budget = obj.get("max_tokens")
    enabled = obj.get("enabled", True) is not False and effort != "none"
    return hub.Reasoning(
        enabled=enabled, effort=effort, budget_tokens=budget if isinstance(budget, int) else None
    )


def _decode_format(rf: Any, extras: dict[str, Any]) -> hub.ResponseFormat | None:
    if not isinstance(rf, dict):
        return None
    kind = rf.get("type")
    if kind in ("text", "json_object"):
        return hub.ResponseFormat(kind)
    js = rf.get("json_schema")
    if kind == "json_schema" and isinstance(js, dict) and set(js) <= {"name", "schema", "strict"}:
        return hub.ResponseFormat(
            "json_schema", schema=js.get("schema"), name=js.get("name"), strict=js.get("strict")
        )
    extras["response_format"] = rf  # a form the hub cannot hold (e.g. with a description)
    return None


def encode_request(req: hub.Request, platform: str = "openai") -> dict[str, Any]:
    """The chat body for an upstream of `platform` (openai, openrouter or openai_compatible)."""
    saved = req.extras.get(PROTOCOL) or {}
    shape: dict[str, Any] = saved.get("_shape") or {}
    body: dict[str, Any] = {k: v for k, v in saved.items() if not k.startswith("_")}
    body["model"] = req.model
    keep_cache = platform == "openrouter"
    body["messages"] = _system_messages(req.system, shape.get("system") or [], keep_cache) + _apply_shape(
        [m for msg in req.messages for m in _encode_message(msg, platform, keep_cache)],
        shape.get("messages"),
        platform,
    )
    tools = [_encode_tool(t) for t in req.tools] + list(shape.get("other_tools") or [])
    if tools:
        body["tools"] = tools
    choice = req.tool_choice
    if choice is not None:
        if not (choice.kind == "auto" and shape.get("implicit_tool_choice")):
            body["tool_choice"] = (
                {"type": "function", "function": {"name": choice.name}}
                if choice.kind == "tool"
                else "required"
                if choice.kind == "any"
                else choice.kind
            )
        if choice.disable_parallel and tools:
            body["parallel_tool_calls"] = False
    if req.max_tokens is not None:
        body["max_completion_tokens" if platform == "openai" else "max_tokens"] = req.max_tokens
    for key in ("temperature", "top_p", "n"):
        if getattr(req, key) is not None:
            body[key] = getattr(req, key)
    if req.top_k is not None and platform != "openai":
        body["top_k"] = req.top_k
    if req.stop:
        stop = req.stop[:4] if platform == "openai" else req.stop
        body["stop"] = stop[0] if shape.get("stop_string") and len(stop) == 1 else stop
    if req.stream:
        # Usage only comes in a final chunk, and only when asked for: always ask.
        body["stream"] = True
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream_options", None)  # OpenAI rejects it without stream
    # A Chat client's own reasoning_effort is its choice; a setting translated from another
    # protocol (Claude Code always sends one) goes only to models that take it.
    if PROTOCOL in req.extras or takes_reasoning_effort(req.model, platform):
        _encode_reasoning(req.reasoning, platform, shape, body)
    if req.response_format is not None:
        body["response_format"] = _encode_format(req.response_format)
    if req.user is not None and not shape.get("user_from_safety_identifier"):
        body["user"] = req.user
    return body


def _system_messages(system: list[hub.Text], entries: list[dict[str, Any]], keep_cache: bool) -> list[dict]:
    if not system:
        return []
    if entries and sum(e["n"] for e in entries) == len(system):
        out, at = [], 0
        for e in entries:  # the client's own system messages, as it sent them
            blocks, at = system[at : at + e["n"]], at + e["n"]
            content: Any = [_text_part(b, keep_cache) for b in blocks]
            if e["form"] in ("string", "empty") and len(blocks) == 1:
                content = blocks[0].text
            out.append({"role": e["role"], "content": content, **e["fields"]})
        return out
    if keep_cache and any(b.cache_control for b in system):
        return [{"role": "system", "content": [_text_part(b, True) for b in system]}]
    return [{"role": "system", "content": "\n\n".join(b.text for b in system)}]


def _text_part(b: hub.Text, keep_cache: bool) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": b.text}
    if keep_cache and b.cache_control:
        part["cache_control"] = b.cache_control
    return part


def _encode_message(msg: hub.Message, platform: str, keep_cache: bool) -> list[dict[str, Any]]:
    if msg.role == "assistant":
        return [_encode_assistant(msg.content, platform)]
    # Tool messages must directly follow the assistant's tool_calls, so they come first.
    out: list[dict[str, Any]] = []
    carried: list[dict[str, Any]] = []  # tool-result images: tool messages take text only
    parts: list[dict[str, Any]] = []
    for b in msg.content:
        if isinstance(b, hub.ToolResult):
            texts = [c for c in b.content if isinstance(c, hub.Text)]
            if b.is_error:
                texts = [hub.Text(TOOL_ERROR_MARKER + (texts[0].text if texts else "")), *texts[1:]]
            content: Any = texts[0].text if len(texts) == 1 else [_text_part(t, False) for t in texts]
            out.append({"role": "tool", "tool_call_id": b.tool_use_id, "content": content or ""})
            media = [c for c in b.content if not isinstance(c, hub.Text)]
            if media:
                carried.append(
                    {"type": "text", "text": f"Attachments returned by tool call {b.tool_use_id}:"}
                )
                carried.extend(_user_part(c, platform, keep_cache) for c in media)
        elif not isinstance(b, hub.Thinking | hub.RedactedThinking):  # only assistants think
            parts.append(_user_part(b, platform, keep_cache))
    parts = carried + parts
    if parts:
        simple = len(parts) == 1 and parts[0]["type"] == "text" and len(parts[0]) == 2
        out.append({"role": "user", "content": parts[0]["text"] if simple else parts})
    return out


def _user_part(b: hub.Block, platform: str, keep_cache: bool) -> dict[str, Any]:
    if isinstance(b, hub.Text):
        return _text_part(b, keep_cache)
    if isinstance(b, hub.Image):
        url = b.url or f"data:{b.media_type or 'image/png'};base64,{b.data or ''}"
        spec = {"url": url} if b.detail is None else {"url": url, "detail": b.detail}
        part: dict[str, Any] = {"type": "image_url", "image_url": spec}
    elif isinstance(b, hub.Document):
        part = _document_part(b, platform)
    else:
        raise bad_request(f"A {type(b).__name__} block cannot appear in a user message for {platform}.")
    if keep_cache and getattr(b, "cache_control", None):
        part["cache_control"] = b.cache_control
    return part


def _document_part(b: hub.Document, platform: str) -> dict[str, Any]:
    if b.text is not None or (b.data is not None and (b.media_type or "").startswith("text/")):
        text = b.text if b.text is not None else _b64_text(b.data or "")
        title = b.title or b.filename
        return {"type": "text", "text": f"{title}\n\n{text}" if title else text}
    if b.data is None:
        raise bad_request(
            f"Documents given by URL cannot be sent to the {platform} platform; send the file's data."
        )
    spec = {"file_data": f"data:{b.media_type or 'application/pdf'};base64,{b.data}"}
    if b.filename or b.title:
        spec["filename"] = b.filename or b.title or ""
    return {"type": "file", "file": spec}


def _b64_text(data: str) -> str:
    try:
        return base64.b64decode(data).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return data


def _encode_assistant(blocks: list[hub.Block], platform: str) -> dict[str, Any]:
    texts = [b.text for b in blocks if isinstance(b, hub.Text)]
    msg: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    calls = [
        {
            "id": b.id,
            "type": "function",
            "function": {"name": b.name, "arguments": b.raw_arguments or compact_json(b.input)},
        }
        for b in blocks
        if isinstance(b, hub.ToolUse)
    ]
    if calls:
        msg["tool_calls"] = calls
    # Gemini's signatures verify only at Gemini: such thoughts do not go to another vendor.
    thinking = [
        b
        for b in blocks
        if isinstance(b, hub.RedactedThinking)
        or (isinstance(b, hub.Thinking) and not hub.from_gemini(b.signature))
    ]
    if thinking and platform == "openrouter":
        msg["reasoning_details"] = reasoning_details(thinking)
    elif thinking and platform == "openai_compatible":
        text = "".join(b.thinking for b in thinking if isinstance(b, hub.Thinking))
        if text:
            msg["reasoning_content"] = text
    return msg


def _apply_shape(
    out: list[dict[str, Any]], entries: list[dict[str, Any]] | None, platform: str
) -> list[dict]:
    """Gives the client's wire form back to messages that still line up with what decode saw."""
    if not entries or len(entries) != len(out):
        return out
    for m, e in zip(out, entries, strict=True):
        mid_system = e["role"] in ("system", "developer") and m["role"] == "user"
        if m["role"] != e["role"] and not mid_system:
            return out
    for m, e in zip(out, entries, strict=True):
        if m["role"] != e["role"]:  # a mid-conversation system message: undo the prefix
            m["role"] = e["role"]
            c = m["content"]
            first = c if isinstance(c, str) else c[0]["text"] if c and "text" in c[0] else ""
            if first.startswith(MID_SYSTEM_PREFIX):
                stripped = first[len(MID_SYSTEM_PREFIX) :]
                m["content"] = stripped if isinstance(c, str) else [{**c[0], "text": stripped}, *c[1:]]
        c, form = m.get("content"), e["form"]
        if form == "parts" and isinstance(c, str):
            m["content"] = [{"type": "text", "text": c}]
        elif form == "string" and isinstance(c, list) and len(c) == 1 and set(c[0]) == {"type", "text"}:
            m["content"] = c[0]["text"]
        elif form == "empty" and c is None:
            m["content"] = ""
        elif form == "absent" and c is None:
            del m["content"]
        m.update(e["fields"])
        if platform == "openrouter" and "reasoning_details" in m and "reasoning_details" in e:
            m["reasoning_details"] = e["reasoning_details"]  # keeps each entry's own format and id
    return out


def _encode_tool(t: hub.Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        fn["description"] = t.description
    fn["parameters"] = t.input_schema
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def _encode_format(rf: hub.ResponseFormat) -> dict[str, Any]:
    if rf.kind != "json_schema":
        return {"type": rf.kind}
    js: dict[str, Any] = {"name": rf.name or "response"}
    if rf.schema is not None:
        js["schema"] = rf.schema
    if rf.strict is not None:
        js["strict"] = rf.strict
    return {"type": "json_schema", "json_schema": js}


# OpenAI rejects reasoning_effort on models that do not reason (gpt-4o, gpt-4.1...); agents such as
# Claude Code always ask for some effort, so it is only sent where the model takes it.
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5|gpt-oss|codex|computer-use)")


def takes_reasoning_effort(model: str, platform: str) -> bool:
    return platform != "openai" or bool(_REASONING_MODELS.match(model))


def _encode_reasoning(r: hub.Reasoning | None, platform: str, shape: dict[str, Any], body: dict) -> None:
    if r is None:
        return
    effort = r.effort if r.effort in EFFORTS else None
    if not r.enabled:
        effort = effort if effort in ("none", "minimal") else None
    elif effort is None and r.budget_tokens is not None and platform != "openrouter":
        effort = "low" if r.budget_tokens <= 2048 else "medium" if r.budget_tokens <= 8192 else "high"
    elif effort is None and r.adaptive and platform != "openrouter":
        effort = "medium"
    if platform == "openrouter":
        obj: dict[str, Any] = {}
        if effort is not None:
            obj["effort"] = "xhigh" if effort == "max" else effort
        elif not r.enabled:
            obj["enabled"] = False
        elif r.budget_tokens is not None:
            obj["max_tokens"] = r.budget_tokens
        else:
            obj["enabled"] = True
        if "reasoning_exclude" in shape:
            obj["exclude"] = shape["reasoning_exclude"]
        body["reasoning"] = obj
    elif effort is not None:
        if platform == "openai_compatible" and effort in ("xhigh", "max"):
            effort = "high"
        body["reasoning_effort"] = effort
