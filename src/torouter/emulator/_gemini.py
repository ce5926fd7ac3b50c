"""Gemini v1beta: generateContent, streamGenerateContent, countTokens, embeddings and models (G-disc, G-fx)."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Any

from starlette.requests import Request

from torouter.emulator._call import Answer, Call, VendorError, json_answer
from torouter.emulator._common import (
    MAX_DIMENSIONS,
    Reply,
    bounded_int,
    dumps,
    embedding_vector,
    estimate_tokens,
    plan_reply,
    random_id,
    split_chunks,
)
from torouter.emulator._gemini_schema import check_tools

FINISH_REASONS = {"max_tokens": "MAX_TOKENS", "refusal": "SAFETY", "content_filter": "SAFETY"}
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "Requested entity was not found."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}  # fmt: skip
_MODEL_PATTERN = re.compile(r"^(gemini-|embedding-|text-embedding-|emu-)|/")
_GENERATE = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
# (id, display name, input limit, output limit, methods)
CATALOGUE: list[tuple[str, str, int, int, list[str]]] = [
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1048576, 65536, _GENERATE),
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1048576, 65536, _GENERATE),
    ("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", 1048576, 65536, _GENERATE),
    ("gemini-2.0-flash", "Gemini 2.0 Flash", 1048576, 8192, _GENERATE),
    (
        "gemini-embedding-001",
        "Gemini Embedding 001",
        2048,
        1,
        ["embedContent", "countTokens", "asyncBatchEmbedContent"],
    ),
    ("text-embedding-004", "Text Embedding 004", 2048, 1, ["embedContent"]),
]


class GeminiVendor:
    name = "gemini"

    def credential(self, request: Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query_params.get("key")

    def auth_error(self, key: str | None) -> VendorError:
        message = "API key not valid. Please pass a valid API key."
        return VendorError(
            400,
            message,
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": message,
                },
            ],
        )

    def malformed_json_error(self) -> VendorError:
        return VendorError(400, "Invalid JSON payload received. Unexpected token.")

    def new_request_id(self) -> str:
        return secrets.token_hex(8)

    def headers(self, request_id: str) -> dict[str, str]:
        return {"x-emulator-request-id": request_id}

    def error_body(self, error: VendorError, request_id: str) -> bytes:
        fallback = (
            ("INTERNAL", "Internal error.")
            if error.status >= 500
            else ("INVALID_ARGUMENT", "Invalid request.")
        )
        status, message = _STATUS_ERRORS.get(error.status, fallback)
        return dumps(
            {
                "error": {
                    "code": error.status,
                    "message": error.message or message,
                    "status": error.type or status,
                    "details": error.details or [],
                }
            }
        )

    def model_of(self, request: Request, body: Any) -> str | None:
        return split_target(target_of(request.path_params))[0]


VENDOR = GeminiVendor()


def target_of(path_params: dict[str, Any]) -> str:
    # /v1beta/models/{target} and, for SDKs that default to v1, /v1/models/{model_id}.
    return str(path_params.get("target") or path_params.get("model_id") or "")


def field(value: Any, name: str) -> Any:
    """A camelCase field, or its snake_case spelling: the API's proto JSON parser takes both."""
    if not isinstance(value, dict):
        return None
    if name in value:
        return value[name]
    return value.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name))


def split_target(target: str) -> tuple[str, str | None]:
    """`gemini-2.5-flash:generateContent` -> (model, method)."""
    model, _, method = target.rpartition(":") if ":" in target else (target, "", "")
    return model.removeprefix("models/"), method or None


def looks_like_model(model: str) -> bool:
    return bool(_MODEL_PATTERN.search(model))


def _not_found(model: str, method: str) -> VendorError:
    return VendorError(
        404,
        f"models/{model} is not found for API version v1beta, or is not supported for {method}. "
        "Call ListModels to see the list of available models and their supported methods.",
    )


def _text_of(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return "".join(p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str))


def _validate_contents(body: Any, owner: str = "GenerateContentRequest") -> list[dict[str, Any]]:
    contents = body.get("contents") if isinstance(body, dict) else None
    if not isinstance(contents, list) or not contents:
        raise VendorError(400, f"* {owner}.contents: contents is not specified\n")
    for index, content in enumerate(contents):
        if not isinstance(content, dict) or not content.get("parts"):
            raise VendorError(400, f"* {owner}.contents[{index}].parts: contents.parts must not be empty.\n")
    return contents


def _reply(call: Call, body: dict[str, Any], contents: list[dict[str, Any]]) -> Reply:
    users = [c for c in contents if c.get("role", "user") == "user" and _text_of(c)]
    tools: list[tuple[str, Any]] = []
    for tool in body.get("tools") or []:
        for declaration in field(tool, "functionDeclarations") or []:
            schema = declaration.get("parameters", field(declaration, "parametersJsonSchema"))
            tools.append((declaration["name"], schema))
    generation = field(body, "generationConfig")
    thinking_config = field(generation, "thinkingConfig")
    json_mode = field(generation, "responseMimeType") == "application/json"
    schema = field(generation, "responseJsonSchema") or field(generation, "responseSchema") or {}
    prompt = " ".join([_text_of(field(body, "systemInstruction")), *(_text_of(c) for c in contents)])
    return plan_reply(
        call.step,
        last_user_text=_text_of(users[-1]) if users else "",
        prompt_text=prompt,
        tools=tools,
        thinking=bool(field(thinking_config, "includeThoughts")),
        json_schema=schema if json_mode else None,
        user_turn_last=contents[-1].get("role", "user") == "user"
        and not any(isinstance(p, dict) and field(p, "functionResponse") for p in contents[-1]["parts"]),
    )


def _parts(reply: Reply) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if reply.thinking is not None:
        parts.append({"text": reply.thinking, "thought": True})
    if reply.text or not reply.tool_calls:
        parts.append({"text": reply.text})
    parts.extend({"functionCall": {"name": t.name, "args": t.arguments}} for t in reply.tool_calls)
    if reply.thinking is not None and len(parts) > 1:
        # Gemini signs the part that follows the thought summary.
        parts[1]["thoughtSignature"] = base64.b64encode(secrets.token_bytes(48)).decode()
    return parts


def _usage(reply: Reply, candidates: int | None = None, thoughts: int | None = None) -> dict[str, Any]:
    thoughts = reply.reasoning_tokens if thoughts is None else thoughts
    full = max(0, reply.output_tokens - reply.reasoning_tokens)
    candidates = full if candidates is None else candidates
    usage: dict[str, Any] = {"promptTokenCount": reply.input_tokens}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = reply.input_tokens + candidates + thoughts
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.input_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if reply.cached_tokens:
        usage["cachedContentTokenCount"] = reply.cached_tokens
    return usage


async def generate(call: Call, model: str, *, stream: bool) -> Answer:
    body = call.body if isinstance(call.body, dict) else {}
    method = "streamGenerateContent" if stream else "generateContent"
    if not looks_like_model(model):
        raise _not_found(model, method)
    contents = _validate_contents(body)
    check_tools(body.get("tools"))
    reply = _reply(call, body, contents)
    finish = FINISH_REASONS.get(reply.stop_reason, "STOP")
    head = {"modelVersion": model, "responseId": random_id("", 23)}
    parts = _parts(reply)
    if not stream:
        candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}
        return json_answer({"candidates": [candidate], "usageMetadata": _usage(reply), **head})
    chunks = _stream_chunks(reply, parts, finish, head)
    if call.query.get("alt") == "sse":
        frames = [b"data: " + dumps(c) + b"\r\n\r\n" for c in chunks]
        return Answer(frames, content_type="text/event-stream", streaming=True)
    # Without alt=sse the body is one JSON array, written element by element.
    frames = [(b"[" if i == 0 else b"\n,\r\n") + dumps(c) for i, c in enumerate(chunks)] + [b"]"]
    return Answer(frames, content_type="application/json; charset=UTF-8", streaming=True)


def _stream_chunks(
    reply: Reply, parts: list[dict[str, Any]], finish: str, head: dict[str, Any]
) -> list[dict[str, Any]]:
    """One chunk per thought, per word of text, and per whole function call; usage grows cumulatively."""
    pieces: list[dict[str, Any]] = []
    for part in parts:
        if "text" in part and not part.get("thought"):
            words = split_chunks(part["text"]) or [""]
            pieces.extend(dict(part, text=w) if i == 0 else {"text": w} for i, w in enumerate(words))
        else:
            pieces.append(part)
    total = max(0, reply.output_tokens - reply.reasoning_tokens)
    visible = [p for p in pieces if not p.get("thought")]
    chunks: list[dict[str, Any]] = []
    seen = 0
    for index, part in enumerate(pieces):
        if not part.get("thought"):
            seen += 1
        candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
        if index == len(pieces) - 1:
            candidate["finishReason"] = finish
        so_far = total * seen // max(1, len(visible))
        chunks.append({"candidates": [candidate], "usageMetadata": _usage(reply, candidates=so_far), **head})
    return chunks


async def count_tokens(call: Call, model: str) -> Answer:
    body = call.body if isinstance(call.body, dict) else {}
    if not looks_like_model(model):
        raise _not_found(model, "countTokens")
    wrapped = field(body, "generateContentRequest")
    if "contents" in body and wrapped is not None:
        raise VendorError(400, "contents and generate_content_request cannot both be set.")
    inner = wrapped if wrapped is not None else body
    owner = "GenerateContentRequest" if wrapped is not None else "CountTokensRequest"
    contents = _validate_contents(inner, owner)
    check_tools(inner.get("tools") if isinstance(inner, dict) else None)
    text = " ".join([_text_of(field(inner, "systemInstruction")), *(_text_of(c) for c in contents)])
    tokens = estimate_tokens(text)
    return json_answer(
        {"totalTokens": tokens, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": tokens}]}
    )


def _embed_one(request: Any, owner: str) -> dict[str, Any]:
    content = request.get("content") if isinstance(request, dict) else None
    if not isinstance(content, dict) or not content.get("parts"):
        raise VendorError(400, f"* {owner}.content: content is not specified\n")
    dimensions = bounded_int(field(request, "outputDimensionality"), 8, 1, MAX_DIMENSIONS)
    if dimensions is None:
        raise VendorError(400, f"* {owner}.output_dimensionality: must be between 1 and {MAX_DIMENSIONS}.\n")
    return {"values": embedding_vector(_text_of(content), dimensions)}


async def embed_content(call: Call, model: str) -> Answer:
    if not looks_like_model(model):
        raise _not_found(model, "embedContent")
    return json_answer({"embedding": _embed_one(call.body, "EmbedContentRequest")})


async def batch_embed_contents(call: Call, model: str) -> Answer:
    if not looks_like_model(model):
        raise _not_found(model, "batchEmbedContents")
    requests = call.body.get("requests") if isinstance(call.body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise VendorError(400, "* BatchEmbedContentsRequest.requests: requests is not specified\n")
    owner = "BatchEmbedContentsRequest.requests[{}]"
    return json_answer({"embeddings": [_embed_one(r, owner.format(i)) for i, r in enumerate(requests)]})


def _model_info(entry: tuple[str, str, int, int, list[str]]) -> dict[str, Any]:
    model_id, display_name, input_limit, output_limit, methods = entry
    info: dict[str, Any] = {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": display_name,
        "description": f"{display_name} (emulated)",
        "inputTokenLimit": input_limit,
        "outputTokenLimit": output_limit,
        "supportedGenerationMethods": methods,
    }
    if "generateContent" in methods:
        info.update(
            temperature=1, topP=0.95, topK=64, maxTemperature=2, thinking=model_id.startswith("gemini-2.5")
        )
    return info


async def list_models(call: Call) -> Answer:
    try:
        size = int(call.query.get("pageSize") or 50)
        start = (
            int(base64.urlsafe_b64decode(call.query["pageToken"]).decode())
            if call.query.get("pageToken")
            else 0
        )
    except ValueError:
        raise VendorError(400, "Invalid page token or page size.") from None
    size = max(1, min(size, 1000))
    body: dict[str, Any] = {"models": [_model_info(e) for e in CATALOGUE[start : start + size]]}
    if start + size < len(CATALOGUE):
        body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
    return json_answer(body)


async def models_target(call: Call) -> Answer:
    """Everything under /v1beta/models/...: `GET {model}` or `POST {model}:{method}`."""
    model, method = split_target(target_of(call.path_params))
    if call.request.method == "GET":
        if method is not None:
            raise VendorError(404, f"Method not found: {method}", type="NOT_FOUND")
        for entry in CATALOGUE:
            if entry[0] == model:
                return json_answer(_model_info(entry))
        if looks_like_model(model):
            return json_answer(_model_info((model, model, 1048576, 65536, _GENERATE)))
        raise VendorError(404, f"models/{model} is not found for API version v1beta.")
    handlers = {
        "generateContent": lambda: generate(call, model, stream=False),
        "streamGenerateContent": lambda: generate(call, model, stream=True),
        "countTokens": lambda: count_tokens(call, model),
        "embedContent": lambda: embed_content(call, model),
        "batchEmbedContents": lambda: batch_embed_contents(call, model),
    }
    if method not in handlers:
        raise VendorError(404, f"Method {method} is not supported for models/{model}.")
    return await handlers[method]()
