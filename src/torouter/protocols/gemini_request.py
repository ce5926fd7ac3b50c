"""Gemini generateContent requests <-> hub (responses: gemini_codec; streams: gemini_stream).

The model is in the URL path, never in the body: `decode_request` takes it as an argument and
`encode_request` leaves it out. Both spellings of field names are read (camelCase from REST
clients, snake_case from python-genai dicts).

Same-protocol hops are lossless. `extras["gemini"]` keeps the body fields the hub cannot say by
name (safetySettings, cachedContent, labels, serviceTier, and "model" if a client sent it), and
under "_"-keys: the generationConfig and toolConfig fields the hub does not map, non-function
tools (googleSearch, codeExecution, urlContext...), and "_layout". After decoding, the hub is
encoded once more and compared with the body; "_layout.patch" holds what turns that encoding
back into the body (a key order-free JSON diff). Each replaced value remembers a fingerprint of
what it replaces and applies only while that value is unchanged, so a hub edited on the way is
not overwritten. snake_case bodies therefore come back in snake_case, and even fields the hub
reshapes (a Gemini `parameters` schema with keywords Gemini itself refuses, an `{"content": ...}`
function response, a thinkingConfig without includeThoughts) come back as sent.

Mapping choices:
- functionCall ids: kept when present; minted (`gemini_codec.mint_id` of turn, part, name) when
  absent. A functionResponse takes the id of its functionCall: by id, else the first unanswered
  call of that name in the latest model turn. An id is sent to Gemini only if it came on the wire
  in this request or looks like Gemini's (not minted, not call_/toolu_/fc_).
- functionResponse.response -> ToolResult text: `{"output": s}` / `{"content": s}` -> s, `{"error": s}`
  -> s with is_error (a non-string error: the whole object's JSON), any other object -> its JSON.
  Back: text that is a JSON object is sent as that object (`{"error": ...}` kept for errors),
  other text as `{"output": text}` or `{"error": text}`. Images and documents of a result follow
  the functionResponse as their own parts.
- Thinking blocks are sent as thought parts only when the request came from Gemini (a signature
  from another vendor would be rejected); otherwise they are dropped. For Gemini 3 models, the
  first functionCall of a model turn that has no signature gets Gemini's documented placeholder
  `skip_thought_signature_validator` (history from another vendor has no Gemini signatures).
- Tools: `parameters` (Gemini Schema) is read as JSON Schema (lower-case types); back, tools go
  out as `parameters` rewritten by gemini_schema.to_gemini_schema, or as `parametersJsonSchema`
  (unchanged) for tools that came from Gemini that way.
- toolConfig mode AUTO/VALIDATED -> auto, ANY -> any (one allowed name -> that tool), NONE -> none.
- thinkingConfig: thinkingBudget 0 -> reasoning disabled, -1 -> adaptive, n -> budget_tokens;
  thinkingLevel -> effort. Back: budget_tokens -> thinkingBudget; an effort -> thinkingLevel
  low/high on Gemini 3 models, else a budget (minimal/low 1024, medium 8192, high+ 24576);
  disabled -> thinkingBudget 0; includeThoughts is true whenever thinking is on.
- `user` has no Gemini field and is dropped. Consecutive same-role turns are merged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from torouter import hub
from torouter.protocols.gemini import camel, camel_keys
from torouter.protocols.gemini_codec import (
    PROTOCOL,
    decode_part,
    encode_model_blocks,
    is_minted,
    json_diff,
    json_patch,
    looks_gemini,
    media_blocks,
    media_part,
    mint_id,
)
from torouter.protocols.gemini_schema import to_gemini_schema, to_json_schema

_MAPPED = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig"})
# The decoder's own keys in extras: a body field of the same name must not take their place.
_INTERNAL = frozenset({"_layout", "_server_tools", "_tool_config", "_generation"})
_GEN_MAPPED = frozenset(
    {
        "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount",
        "thinkingConfig",
    }
)  # fmt: skip
_JSON_MIME = "application/json"
_LEVELS = {"minimal": "low", "low": "low", "medium": "high", "high": "high", "xhigh": "high", "max": "high"}
_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576, "max": 24576}
SKIP_SIGNATURE = "skip_thought_signature_validator"

# ---------------------------------------------------------------- decode


def decode_request(body: dict[str, Any], model: str) -> hub.Request:
    """The hub request for a checked generateContent body (see the module docstring)."""
    raw_body = body
    body = camel_keys(body)
    extras: dict[str, Any] = {
        k: v for k, v in raw_body.items() if camel(k) not in _MAPPED and k not in _INTERNAL
    }
    layout: dict[str, Any] = {}
    req = hub.Request(model=model)

    si = body.get("systemInstruction")
    if isinstance(si, dict):
        parts = [camel_keys(p) for p in _list(camel_keys(si).get("parts")) if isinstance(p, dict)]
        if all(isinstance(p.get("text"), str) and not p.get("thought") for p in parts):
            req.system = [hub.Text(p["text"]) for p in parts]
        else:
            extras["systemInstruction"] = si  # not plain text: kept whole for Gemini
    elif si is not None:
        extras["systemInstruction"] = si

    _decode_contents(body.get("contents") or [], req, layout)
    _decode_tools(body, req, extras, layout)
    _decode_config(body, req, extras)

    req.extras[PROTOCOL] = extras
    extras["_layout"] = layout
    patch = json_diff(raw_body, encode_request(req))
    if patch is not None:
        layout["patch"] = patch
    return req


def _list(value: Any) -> list[Any]:
    """A list field as a list; a value of another type reads as empty."""
    return value if isinstance(value, list) else []


def _decode_contents(contents: list[Any], req: hub.Request, layout: dict[str, Any]) -> None:
    unanswered: dict[str, list[str]] = {}  # name -> call ids of the latest model turn, in order
    wire_ids: list[str] = []
    prev_role = None
    for i, raw in enumerate(contents):
        c = camel_keys(raw) if isinstance(raw, dict) else {}
        role: hub.Role = "assistant" if c.get("role") == "model" else "user"
        if role == prev_role:
            layout.setdefault("split", []).append(i)  # separate turns stay separate on re-encode
        prev_role = role
        if role == "assistant":
            unanswered = {}
        blocks: list[hub.Block] = []
        for j, part in enumerate(_list(c.get("parts"))):
            if not isinstance(part, dict):
                continue
            p = camel_keys(part)
            if isinstance(p.get("functionResponse"), dict):
                blocks.append(_tool_result(p["functionResponse"], i, j, unanswered, wire_ids))
                continue
            got = decode_part(p, lambda name, i=i, j=j: mint_id(i, j, name))
            for b in got or ():  # None: executableCode and the like, restored by the patch
                if isinstance(b, hub.ToolUse):
                    unanswered.setdefault(b.name, []).append(b.id)
                    if not is_minted(b.id):
                        wire_ids.append(b.id)
                blocks.append(b)
        req.messages.append(hub.Message(role, blocks))
    if wire_ids:
        layout["ids"] = sorted(set(wire_ids))


def _tool_result(
    raw: dict[str, Any], i: int, j: int, unanswered: dict[str, list[str]], wire_ids: list[str]
) -> hub.ToolResult:
    fr = camel_keys(raw)
    name = str(fr.get("name") or "")
    fid = fr.get("id") if isinstance(fr.get("id"), str) and fr.get("id") else None
    if fid is not None:
        wire_ids.append(fid)
        for ids in unanswered.values():
            if fid in ids:
                ids.remove(fid)
        call_id = fid
    elif unanswered.get(name):
        call_id = unanswered[name].pop(0)
    else:
        call_id = mint_id(i, j, name)  # a response to no call we know of
    content, is_error = _result_content(fr.get("response"))
    for extra in _list(fr.get("parts")):  # multimodal function responses (Gemini 3)
        media = camel_keys(extra).get("inlineData") if isinstance(extra, dict) else None
        if isinstance(media, dict):
            content.extend(b for b in media_blocks(camel_keys(media), True) if not isinstance(b, hub.Text))
    return hub.ToolResult(call_id, content, is_error, name=name or None)  # type: ignore[arg-type]


def _result_content(response: Any) -> tuple[list[hub.Text | hub.Image | hub.Document], bool]:
    if response is None:
        return [], False
    if isinstance(response, dict) and len(response) == 1:
        ((key, value),) = response.items()
        if key in ("output", "content") and isinstance(value, str):
            return [hub.Text(value)], False
        if key == "error":
            return [hub.Text(value if isinstance(value, str) else _json(response))], True
    return [hub.Text(_json(response))], False


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _decode_tools(body: dict[str, Any], req: hub.Request, extras: dict[str, Any], layout: dict) -> None:
    json_tools: list[str] = []
    for entry in body.get("tools") or ():
        if not isinstance(entry, dict):
            continue
        entry = camel_keys(entry)
        for raw in _list(entry.get("functionDeclarations")):
            if not isinstance(raw, dict):
                continue
            fd = camel_keys(raw)
            description = fd.get("description") if isinstance(fd.get("description"), str) else None
            tool = hub.Tool(str(fd.get("name") or ""), description)
            if isinstance(fd.get("parametersJsonSchema"), dict):
                tool.input_schema = fd["parametersJsonSchema"]
                json_tools.append(tool.name)
            elif isinstance(fd.get("parameters"), dict):
                tool.input_schema = to_json_schema(fd["parameters"])
            req.tools.append(tool)
        rest = {k: v for k, v in entry.items() if k != "functionDeclarations"}
        if rest:
            extras.setdefault("_server_tools", []).append(rest)
    if json_tools:
        layout["json_schema_tools"] = json_tools

    tc = body.get("toolConfig")
    if isinstance(tc, dict):
        tc = camel_keys(tc)
        fcc = (
            camel_keys(tc["functionCallingConfig"])
            if isinstance(tc.get("functionCallingConfig"), dict)
            else {}
        )
        mode, names = fcc.get("mode"), fcc.get("allowedFunctionNames")
        if mode == "NONE":
            req.tool_choice = hub.ToolChoice("none")
        elif mode == "ANY" and isinstance(names, list) and len(names) == 1:
            req.tool_choice = hub.ToolChoice("tool", str(names[0]))
        elif mode == "ANY":
            req.tool_choice = hub.ToolChoice("any")
        elif mode in ("AUTO", "VALIDATED"):
            req.tool_choice = hub.ToolChoice("auto")
        rest = {k: v for k, v in tc.items() if k != "functionCallingConfig"}
        if rest:
            extras["_tool_config"] = rest


def _decode_config(body: dict[str, Any], req: hub.Request, extras: dict[str, Any]) -> None:
    gc = body.get("generationConfig")
    if not isinstance(gc, dict):
        return
    gc = camel_keys(gc)
    req.temperature, req.top_p, req.top_k = gc.get("temperature"), gc.get("topP"), gc.get("topK")
    req.max_tokens, req.n = gc.get("maxOutputTokens"), gc.get("candidateCount")
    stop = gc.get("stopSequences")
    req.stop = [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []
    rest = {k: v for k, v in gc.items() if k not in _GEN_MAPPED}
    if gc.get("responseMimeType") == _JSON_MIME:
        rest.pop("responseMimeType")
        if isinstance(gc.get("responseJsonSchema"), dict):
            # Clients (Gemini CLI) write Gemini's upper-case types here too; other vendors want JSON Schema.
            req.response_format = hub.ResponseFormat(
                "json_schema", to_json_schema(rest.pop("responseJsonSchema"))
            )
        elif isinstance(gc.get("responseSchema"), dict):
            req.response_format = hub.ResponseFormat(
                "json_schema", to_json_schema(rest.pop("responseSchema"))
            )
        else:
            req.response_format = hub.ResponseFormat("json_object")
    tc = gc.get("thinkingConfig")
    if isinstance(tc, dict):
        tc = camel_keys(tc)
        budget, level = tc.get("thinkingBudget"), tc.get("thinkingLevel")
        r = hub.Reasoning()
        if isinstance(level, str) and level.upper() != "THINKING_LEVEL_UNSPECIFIED":
            r.effort = level.lower()
        if budget == 0:
            r.enabled, r.budget_tokens = False, 0
        elif budget == -1:
            r.adaptive = True
        elif isinstance(budget, int) and budget > 0:
            r.budget_tokens = budget
        req.reasoning = r
    if rest:
        extras["_generation"] = rest


# ---------------------------------------------------------------- encode


def encode_request(req: hub.Request, platform: str = "gemini") -> dict[str, Any]:
    """The generateContent body for a Gemini upstream (the model goes in the URL)."""
    extras: dict[str, Any] = req.extras.get(PROTOCOL, {})
    layout: dict[str, Any] = extras.get("_layout", {})
    from_gemini = PROTOCOL in req.extras
    body: dict[str, Any] = {"contents": _encode_contents(req, layout, from_gemini)}
    if req.system:
        body["systemInstruction"] = {"parts": [{"text": t.text} for t in req.system]}
    tools = _encode_tools(req.tools, set(layout.get("json_schema_tools", ())))
    if tools or extras.get("_server_tools"):
        entries = [{"functionDeclarations": tools}] if tools else []
        body["tools"] = entries + list(extras.get("_server_tools", ()))
    if "web_search" in req.builtin_tools:
        body.setdefault("tools", []).append({"googleSearch": {}})
    tool_config = dict(extras.get("_tool_config") or {})
    if req.tool_choice is not None:
        tc = req.tool_choice
        fcc: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE"}.get(tc.kind, "ANY")}
        if tc.kind == "tool" and tc.name:
            fcc["allowedFunctionNames"] = [tc.name]
        tool_config["functionCallingConfig"] = fcc
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_config(req, extras)
    if config:
        body["generationConfig"] = config
    for key, value in extras.items():
        if not key.startswith("_"):
            body.setdefault(key, value)  # the hub's own fields win over what was kept
    patch = layout.get("patch")
    return json_patch(body, patch) if patch is not None else body


def _encode_contents(req: hub.Request, layout: dict[str, Any], from_gemini: bool) -> list[dict[str, Any]]:
    known = set(layout.get("ids", ()))
    names = {b.id: b.name for m in req.messages for b in m.content if isinstance(b, hub.ToolUse)}

    def send_id(tool_id: str) -> bool:
        return tool_id in known or (looks_gemini(tool_id) and not is_minted(tool_id))

    placeholder = "gemini-3" in req.model
    split = set(layout.get("split", ()))
    contents: list[dict[str, Any]] = []
    last_index = -2
    for i, m in enumerate(req.messages):
        parts = _encode_blocks(m.content, from_gemini, send_id, names)
        if m.role == "assistant" and placeholder:
            first = next((p for p in parts if "functionCall" in p), None)
            if first is not None and "thoughtSignature" not in first:
                first["thoughtSignature"] = SKIP_SIGNATURE
        if not parts:
            continue
        role = "model" if m.role == "assistant" else "user"
        if contents and contents[-1]["role"] == role and not (i in split and last_index == i - 1):
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
        last_index = i
    if not contents and req.system:
        contents.append({"role": "user", "parts": [{"text": " "}]})  # Gemini needs one turn
    return contents


def _encode_blocks(
    blocks: list[hub.Block], thinking: bool, send_id: Callable[[str], bool], names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    run: list[hub.Block] = []
    for b in [*blocks, None]:
        if b is not None and not isinstance(b, hub.ToolResult):
            run.append(b)
            continue
        if run:
            parts.extend(encode_model_blocks(run, thinking=thinking, send_id=send_id))
            run = []
        if isinstance(b, hub.ToolResult):
            parts.extend(_tool_result_parts(b, send_id, names))
    return parts


def _tool_result_parts(
    tr: hub.ToolResult, send_id: Callable[[str], bool], names: dict[str, str]
) -> list[dict[str, Any]]:
    text = hub.text_of(tr.content)
    obj: Any = None
    if text.startswith("{"):
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            obj = None
    if tr.is_error:
        response = obj if isinstance(obj, dict) and "error" in obj else {"error": text}
    else:
        response = obj if isinstance(obj, dict) else {"output": text}
    fr: dict[str, Any] = {
        "name": tr.name or names.get(tr.tool_use_id) or tr.tool_use_id,
        "response": response,
    }
    if send_id(tr.tool_use_id):
        fr["id"] = tr.tool_use_id
    media = [media_part(b) for b in tr.content if isinstance(b, hub.Image | hub.Document)]
    return [{"functionResponse": fr}, *media]


def _encode_tools(tools: list[hub.Tool], json_tools: set[str]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fd: dict[str, Any] = {"name": t.name}
        if t.description is not None:
            fd["description"] = t.description
        if t.name in json_tools:
            fd["parametersJsonSchema"] = t.input_schema
        else:
            fd["parameters"] = to_gemini_schema(t.input_schema)
        out.append(fd)
    return out


def _generation_config(req: hub.Request, extras: dict[str, Any]) -> dict[str, Any]:
    gc: dict[str, Any] = dict(extras.get("_generation") or {})
    for key, value in (
        ("temperature", req.temperature),
        ("topP", req.top_p),
        ("topK", req.top_k),
        ("maxOutputTokens", req.max_tokens),
        ("candidateCount", req.n),
    ):
        if value is not None:
            gc[key] = value
    if req.stop:
        gc["stopSequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None and fmt.kind != "text":
        gc["responseMimeType"] = _JSON_MIME
        if fmt.kind == "json_schema" and fmt.schema is not None:
            gc["responseJsonSchema"] = fmt.schema
    r = req.reasoning
    if r is not None:
        gc["thinkingConfig"] = _thinking_config(r, req.model)
    return gc


def _thinking_config(r: hub.Reasoning, model: str) -> dict[str, Any]:
    if not r.enabled or r.effort == "none":
        return {"thinkingBudget": 0}
    out: dict[str, Any] = {"includeThoughts": True}
    if r.budget_tokens is not None:
        out["thinkingBudget"] = int(r.budget_tokens)
    elif r.effort in _LEVELS:
        if "gemini-3" in model:
            out["thinkingLevel"] = _LEVELS[r.effort]
        else:
            out["thinkingBudget"] = _BUDGETS[r.effort]
    elif r.adaptive:
        out["thinkingBudget"] = -1
    return out
