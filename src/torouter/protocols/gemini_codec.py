"""Gemini <-> hub: whole responses, and the part codec that requests and responses share.

Requests: gemini_request. Streams: gemini_stream. Wire basics (errors, usage, taps): gemini.

Choices (tested in tests/test_codec_gemini.py):
- Thought signatures. A `thought: true` part is a Thinking block (its thoughtSignature is the
  signature). A signature on a functionCall part is `ToolUse.signature`. A signature on a
  non-thought text part (Gemini 3 puts one on the first part of a turn, or on an empty final
  part) becomes a Thinking block with empty text just before the Text: encoders give such a
  signature-only Thinking block's signature to the next non-thought part, or to an empty text
  part when none follows, so the Gemini parts come back as they were. (An empty `thought: true`
  part with a signature comes back as that carrier: a known, harmless reshaping.)
- Function call ids are optional in Gemini (2.x omits them). A missing id is minted as `call_` +
  12 hex digits of a hash of where the call sits, so the same response or history always gets
  the same id. Minted ids are never sent to Gemini, nor shown to Gemini clients.
- finishReason: STOP -> end_turn (tool_use when the candidate has function calls: Gemini says
  STOP for them), MAX_TOKENS -> max_tokens, the safety family (SAFETY, RECITATION, LANGUAGE,
  BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*, NO_IMAGE, OTHER, ESCALATION) -> refusal, the
  malformed-call family and anything unknown -> end_turn (LiteLLM's map). A blocked prompt (no
  candidates) is a refusal whose Text says why. Back to Gemini: refusal -> SAFETY, max_tokens ->
  MAX_TOKENS, all else STOP.
- Only candidate 0 is read: the hub has one answer.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from collections.abc import Callable
from typing import Any

import orjson

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols.gemini import camel_keys, usage_body, usage_from

PROTOCOL = "gemini"
_REFUSALS = frozenset(
    {
        "SAFETY", "RECITATION", "LANGUAGE", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_OTHER", "IMAGE_RECITATION", "NO_IMAGE",
        "ESCALATION",
    }
)  # fmt: skip
STOP_TO_FINISH = {"max_tokens": "MAX_TOKENS", "refusal": "SAFETY"}  # everything else: STOP
_MINTED = re.compile(r"call_[0-9a-f]{12}")
_FOREIGN = ("call_", "toolu_", "fc_")  # OpenAI, Anthropic and Responses ids
_DATA_URL = re.compile(r"^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$", re.S)


def stop_reason_from(finish: Any, has_tool_use: bool) -> hub.StopReason:
    if finish == "MAX_TOKENS":
        return "max_tokens"
    if isinstance(finish, str) and (finish in _REFUSALS or finish.startswith("IMAGE_")):
        return "refusal"
    return "tool_use" if has_tool_use else "end_turn"


def finish_reason(stop: str | None) -> str:
    return STOP_TO_FINISH.get(stop or "", "STOP")


def mint_id(*where: Any) -> str:
    """A stable tool-call id for a call Gemini gave none: the same position, the same id."""
    return "call_" + hashlib.sha256(repr(where).encode()).hexdigest()[:12]


def is_minted(tool_id: str) -> bool:
    return _MINTED.fullmatch(tool_id) is not None


def looks_gemini(tool_id: str) -> bool:
    """An id Gemini (or a Gemini client) made, as opposed to a minted or another vendor's id."""
    return bool(tool_id) and not tool_id.startswith(_FOREIGN)


def guess_mime(uri: str, default: str) -> str:
    guessed = mimetypes.guess_type(uri.split("?", 1)[0])[0]
    return guessed or default


def blocked_text(feedback: Any) -> str:
    fb = feedback if isinstance(feedback, dict) else {}
    reason = fb.get("blockReason") or "unspecified"
    message = fb.get("blockReasonMessage")
    return f"The prompt was blocked (reason: {reason})." + (f" {message}" if message else "")


# ---------------------------------------------------------------- parts -> blocks


def decode_part(part: dict[str, Any], tool_id: Callable[[str], str]) -> list[hub.Block] | None:
    """Hub blocks for one model-side part; None when the hub cannot hold it.

    `tool_id(name)` gives the id for a functionCall that has none.
    """
    p = camel_keys(part)
    sig = p.get("thoughtSignature") if isinstance(p.get("thoughtSignature"), str) else None
    if "functionCall" in p and isinstance(p["functionCall"], dict):
        fc = p["functionCall"]
        name = str(fc.get("name") or "")
        args = fc.get("args")
        call_id = fc.get("id") if isinstance(fc.get("id"), str) and fc.get("id") else tool_id(name)
        return [hub.ToolUse(call_id, name, args if isinstance(args, dict) else {}, signature=sig)]
    if isinstance(p.get("text"), str) or (sig is not None and len(p) == 1):
        text = p.get("text") or ""
        if p.get("thought") is True:
            return [hub.Thinking(text, hub.gemini_signature(sig))]
        blocks: list[hub.Block] = [hub.Thinking("", hub.gemini_signature(sig))] if sig is not None else []
        if text or sig is None:
            blocks.append(hub.Text(text))
        return blocks
    media = p.get("inlineData") or p.get("fileData")
    if isinstance(media, dict):
        return media_blocks(camel_keys(media), "inlineData" in p)
    return None


def media_blocks(media: dict[str, Any], inline: bool) -> list[hub.Block]:
    """An Image or Document for inlineData/fileData; other media types are refused (400)."""
    uri = media.get("fileUri") if not inline else None
    data, mime, title = media.get("data") if inline else None, media.get("mimeType"), media.get("displayName")
    if not all(isinstance(v, str | None) for v in (uri, data, mime, title)):
        raise GatewayError(
            "invalid_request",
            f"{'inlineData' if inline else 'fileData'} fields must be strings (mimeType, data, fileUri, displayName).",
        )
    mime = mime or (guess_mime(uri, "") if uri else "")
    if mime.startswith("image/"):
        if inline:
            return [hub.Image(mime, data)]
        return [hub.Image(mime, url=uri)]
    if mime in ("application/pdf", "text/plain"):
        if inline:
            return [hub.Document(mime, data, title=title)]
        return [hub.Document(mime, url=uri, title=title)]
    raise GatewayError(
        "invalid_request",
        f"{'inlineData' if inline else 'fileData'} of type {mime or 'unknown'!r} cannot be translated "
        "for this model's platform: only images, PDFs and plain text can.",
    )


# ---------------------------------------------------------------- blocks -> parts


def media_part(b: hub.Image | hub.Document) -> dict[str, Any]:
    default = "image/jpeg" if isinstance(b, hub.Image) else "application/pdf"
    data, mime, url = b.data, b.media_type, b.url
    if data is None and url and url.startswith("data:"):
        m = _DATA_URL.match(url)
        if m is None:
            raise GatewayError("invalid_request", "Data URLs must be base64-encoded.")
        mime, data = m.group(1), m.group(2)
    if data is not None:
        return {"inlineData": {"mimeType": mime or default, "data": data}}
    if url:
        # Gemini fetches Files-API, GCS and some public URLs; others fail upstream with
        # "Cannot fetch content from the provided URL" (a known limit, not checked here).
        return {"fileData": {"mimeType": mime or guess_mime(url, default), "fileUri": url}}
    if isinstance(b, hub.Document) and b.text is not None:
        return {"text": b.text}
    raise GatewayError("invalid_request", "An image or document needs data or a URL.")


def encode_model_blocks(
    blocks: list[hub.Block], *, thinking: bool, send_id: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """Gemini parts for assistant-side blocks (Text, Thinking, ToolUse, Image, Document).

    `thinking`: keep Thinking blocks (signatures are provider-specific, so only for Gemini's own).
    `send_id(id)`: whether a tool-use id goes on the functionCall.
    """
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # a signature-only Thinking's signature, for the next part
    for b in blocks:
        part: dict[str, Any] | None = None
        if isinstance(b, hub.Thinking):
            if not thinking:
                continue
            if not b.thinking and b.signature is not None:
                pending = hub.plain_signature(b.signature)
                continue
            part = {"text": b.thinking, "thought": True}
            if b.signature is not None:
                part["thoughtSignature"] = hub.plain_signature(b.signature)
            parts.append(part)
            continue
        if isinstance(b, hub.Text):
            if not b.text and pending is None:
                continue
            part = {"text": b.text}
        elif isinstance(b, hub.ToolUse):
            fc: dict[str, Any] = {"name": b.name, "args": b.input or _parse_args(b.raw_arguments)}
            if send_id(b.id):
                fc["id"] = b.id
            part = {"functionCall": fc}
            if b.signature is not None:
                part["thoughtSignature"] = b.signature
        elif isinstance(b, hub.Image | hub.Document):
            part = media_part(b)
        if part is None:
            continue  # redacted thinking, tool results: nothing Gemini can read here
        if pending is not None and "thoughtSignature" not in part:
            part["thoughtSignature"] = pending
        pending = None
        parts.append(part)
    if pending is not None:
        parts.append({"text": "", "thoughtSignature": pending})
    return parts


def _parse_args(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# ---------------------------------------------------------------- responses


def decode_response(body: dict[str, Any]) -> hub.Response:
    """The hub response for a GenerateContentResponse (candidate 0)."""
    body = camel_keys(body)
    resp_id = str(body.get("responseId") or "")
    candidates = body.get("candidates") if isinstance(body.get("candidates"), list) else []
    resp = hub.Response(
        id=resp_id, model=str(body.get("modelVersion") or ""), usage=usage_from(body.get("usageMetadata"))
    )
    if not candidates:
        resp.content, resp.stop_reason = [hub.Text(blocked_text(body.get("promptFeedback")))], "refusal"
        return resp
    cand = camel_keys(candidates[0]) if isinstance(candidates[0], dict) else {}
    content = cand.get("content") if isinstance(cand.get("content"), dict) else {}
    calls = 0

    def tool_id(name: str) -> str:
        return mint_id(resp_id, calls, name)

    for part in content.get("parts") or ():
        if not isinstance(part, dict):
            continue
        try:
            blocks = decode_part(part, tool_id)
        except GatewayError:
            blocks = None  # audio or video in an answer: nothing the hub can carry
        for b in blocks or ():
            calls += isinstance(b, hub.ToolUse)
            resp.content.append(b)
    has_tools = any(isinstance(b, hub.ToolUse) for b in resp.content)
    resp.stop_reason = stop_reason_from(cand.get("finishReason"), has_tools)
    return resp


def encode_response(resp: hub.Response, model: str) -> dict[str, Any]:
    """A GenerateContentResponse for a hub response, answered under the client's `model` name."""
    parts = encode_model_blocks(resp.content, thinking=True, send_id=lambda i: not is_minted(i))
    out: dict[str, Any] = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": finish_reason(resp.stop_reason),
                "index": 0,
            }
        ],
        "usageMetadata": usage_body(resp.usage),
        "modelVersion": model,
    }
    if resp.id:
        out["responseId"] = resp.id
    return out


# ---------------------------------------------------------------- patches (same-protocol hops)


def _fingerprint(value: Any) -> str:
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def json_diff(raw: Any, enc: Any) -> dict[str, Any] | None:
    """What turns `enc` into `raw` (None when equal), descending into dicts and same-length lists."""
    if raw == enc:
        return None
    if isinstance(raw, dict) and isinstance(enc, dict):
        sub: dict[str, Any] = {}
        for k, v in raw.items():
            d = json_diff(v, enc[k]) if k in enc else {"=": v}
            if d is not None:
                sub[k] = d
        out: dict[str, Any] = {"d": sub} if sub else {}
        drop = [k for k in enc if k not in raw]
        if drop:
            out["x"] = drop
        return out
    if isinstance(raw, list) and isinstance(enc, list) and len(raw) == len(enc):
        items = {
            str(n): d
            for n, (a, b) in enumerate(zip(raw, enc, strict=True))
            if (d := json_diff(a, b)) is not None
        }
        return {"l": items, "n": len(raw)}
    return {"=": raw, "if": _fingerprint(enc)}


def json_patch(value: Any, patch: dict[str, Any]) -> Any:
    """`value` patched; a part of the patch whose target has changed since decode is skipped."""
    if "=" in patch:
        if "if" in patch and _fingerprint(value) != patch["if"]:
            return value
        return orjson.loads(orjson.dumps(patch["="]))  # a copy: the body may be edited later
    if "l" in patch:
        if not isinstance(value, list) or len(value) != patch["n"]:
            return value
        for n, sub in patch["l"].items():
            value[int(n)] = json_patch(value[int(n)], sub)
        return value
    if not isinstance(value, dict):
        return value
    for k, sub in patch.get("d", {}).items():
        if k in value:
            value[k] = json_patch(value[k], sub)
        elif "=" in sub and "if" not in sub:
            value[k] = orjson.loads(orjson.dumps(sub["="]))
    for k in patch.get("x", ()):
        value.pop(k, None)
    return value
