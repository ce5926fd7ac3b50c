"""OpenAI: errors, auth, Chat Completions, Embeddings, Images and Models, from the O-spec and O-sse."""

from __future__ import annotations

import base64
import re
import secrets
import time
from typing import Any

from starlette.requests import Request

from torouter.emulator._call import Answer, Call, VendorError, bearer, json_answer, sse_answer
from torouter.emulator._common import (
    MAX_DIMENSIONS,
    Reply,
    bounded_int,
    dumps,
    embedding_vector,
    float32_base64,
    plan_reply,
    random_id,
    split_chunks,
    split_fragments,
)

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "content_filter": "content_filter",
}
# (type, code) per status, as OpenAI's error-codes guide shows them.
_STATUS_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "request_forbidden",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", None, "Not found."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_MODEL_PATTERN = re.compile(r"^(gpt-|o1|o3|o4|chatgpt-|text-embedding-|dall-e-|gpt-image-|emu-)|/")
CATALOGUE: list[tuple[str, int, str]] = [
    ("gpt-5", 1754425777, "system"),
    ("gpt-5-mini", 1754425928, "system"),
    ("gpt-5-nano", 1754426384, "system"),
    ("gpt-4.1", 1744316542, "system"),
    ("gpt-4.1-mini", 1744318173, "system"),
    ("gpt-4o", 1715367049, "system"),
    ("gpt-4o-mini", 1721172741, "system"),
    ("o3", 1744225308, "system"),
    ("o4-mini", 1744225351, "system"),
    ("text-embedding-3-small", 1705948997, "system"),
    ("text-embedding-3-large", 1705953180, "system"),
    ("dall-e-3", 1698785189, "system"),
    ("gpt-image-1", 1745517030, "system"),
]
FINGERPRINT = "fp_emulator01"


def looks_like_model(model: str) -> bool:
    return bool(_MODEL_PATTERN.search(model))


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise VendorError(400, "you must provide a model parameter")
    if not looks_like_model(model):
        raise VendorError(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )
    return model


def missing(name: str) -> VendorError:
    return VendorError(
        400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


class OpenAIVendor:
    name = "openai"

    def credential(self, request: Request) -> str | None:
        return bearer(request)

    def auth_error(self, key: str | None) -> VendorError:
        if not key:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            message = f"Incorrect API key provided: {key[:3]}***{key[-4:]}. You can find your API key at https://platform.openai.com/account/api-keys."
        return VendorError(401, message, code="invalid_api_key")

    def malformed_json_error(self) -> VendorError:
        return VendorError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
        )

    def new_request_id(self) -> str:
        return "req_" + secrets.token_hex(16)

    def headers(self, request_id: str) -> dict[str, str]:
        return {"x-request-id": request_id, "openai-processing-ms": "1", "openai-version": "2020-10-01"}

    def error_body(self, error: VendorError, request_id: str) -> bytes:
        default_type, default_code, default_message = _STATUS_ERRORS.get(
            error.status,
            ("server_error", None, "Server error.")
            if error.status >= 500
            else ("invalid_request_error", None, "Error."),
        )
        if error.status == 404 and error.code is None and error.message is None:
            default_code = "model_not_found"
        return dumps(
            {
                "error": {
                    "message": error.message or default_message,
                    "type": error.type or default_type,
                    "param": error.param,
                    "code": error.code if error.code is not None else default_code,
                }
            }
        )

    def model_of(self, request: Request, body: Any) -> str | None:
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            return body["model"]
        return request.path_params.get("model_id")


VENDOR = OpenAIVendor()


def usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reply.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def chat_reply(call: Call, body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    user_texts = [
        _message_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user"
    ]
    tools = [
        (t["function"]["name"], t["function"].get("parameters"))
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
    ]
    prompt = " ".join(_message_text(m.get("content")) for m in messages if isinstance(m, dict))
    effort = body.get("reasoning_effort")
    fmt = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
    schema = None
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
    elif fmt.get("type") == "json_object":
        schema = {}
    return plan_reply(
        call.step,
        last_user_text=user_texts[-1] if user_texts else "",
        prompt_text=prompt,
        tools=tools,
        thinking=bool(effort) and effort != "none",
        json_schema=schema,
        user_turn_last=isinstance(messages[-1], dict) and messages[-1].get("role") == "user",
    )


async def chat_completions(call: Call) -> Answer:
    body = call.body if isinstance(call.body, dict) else {}
    model = require_model(body)
    if "messages" not in body:
        raise missing("messages")
    if not isinstance(body["messages"], list) or not body["messages"]:
        raise VendorError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    reply = chat_reply(call, body)
    for tool_call in reply.tool_calls:
        tool_call.id = tool_call.id or random_id("call_")
    completion_id = random_id("chatcmpl-", 29)
    created = int(time.time())
    finish = FINISH_REASONS[reply.stop_reason]
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return sse_answer(_chat_stream(completion_id, created, model, reply, finish, include_usage))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text if reply.text or not reply.tool_calls else None,
        "refusal": None,
        "annotations": [],
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments_json}}
            for t in reply.tool_calls
        ]
    return json_answer(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage(reply),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
    )


def _chat_stream(
    completion_id: str, created: int, model: str, reply: Reply, finish: str, include_usage: bool
) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _frame(completion_id, created, model, [choice])

    role: dict[str, Any] = {
        "role": "assistant",
        "content": "" if reply.text or not reply.tool_calls else None,
    }
    frames: list[bytes] = []
    tool_deltas: list[dict[str, Any]] = []
    for index, call in enumerate(reply.tool_calls):
        tool_deltas.append(
            {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
        )
        for fragment in split_fragments(call.arguments_json):
            tool_deltas.append({"index": index, "function": {"arguments": fragment}})
    if not reply.text and tool_deltas:
        # As recorded: the first tool-call fragment rides on the role chunk.
        role["tool_calls"] = [tool_deltas.pop(0)]
    role["refusal"] = None
    frames.append(chunk(role))
    frames.extend(chunk({"content": piece}) for piece in split_chunks(reply.text))
    frames.extend(chunk({"tool_calls": [delta]}) for delta in tool_deltas)
    frames.append(chunk({}, finish))
    if include_usage:
        frames.append(_frame(completion_id, created, model, [], usage=usage(reply)))
    frames.append(b"data: [DONE]\n\n")
    return frames


def _frame(completion_id: str, created: int, model: str, choices: list[Any], **extra: Any) -> bytes:
    payload = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        **extra,
    }
    return b"data: " + dumps(payload) + b"\n\n"


async def embeddings(call: Call) -> Answer:
    body = call.body if isinstance(call.body, dict) else {}
    model = require_model(body)
    if "input" not in body:
        raise missing("input")
    raw = body["input"]
    if isinstance(raw, str) or (isinstance(raw, list) and raw and isinstance(raw[0], int)):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise VendorError(400, "'$.input' is invalid. Please check the API reference.", param="input")
    texts = [item if isinstance(item, str) else " ".join(map(str, item)) for item in raw]
    dimensions = bounded_int(body.get("dimensions"), 8, 1, MAX_DIMENSIONS)
    if dimensions is None:  # as OpenAI answers a size its models do not have
        raise VendorError(
            400, f"Invalid value for 'dimensions': expected 1 to {MAX_DIMENSIONS}.", param="dimensions"
        )
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = embedding_vector(text, dimensions)
        data.append(
            {
                "object": "embedding",
                "index": index,
                "embedding": float32_base64(vector) if as_base64 else vector,
            }
        )
    tokens = sum(max(1, len(t) // 4) for t in texts)
    return json_answer(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


# A 1x1 transparent PNG: a real image, so clients that decode b64_json succeed.
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


async def images_generations(call: Call) -> Answer:
    body = call.body if isinstance(call.body, dict) else {}
    if not body.get("prompt"):
        raise missing("prompt")
    model = body.get("model") or "dall-e-2"
    if not looks_like_model(model):
        require_model(body)
    count = bounded_int(body.get("n"), 1, 1, 10)
    if count is None:
        raise VendorError(
            400, "Invalid 'n': expected an integer between 1 and 10.", param="n", code="invalid_value"
        )
    as_url = body.get("response_format") == "url" and not str(model).startswith("gpt-image")
    item: dict[str, Any] = {"revised_prompt": body["prompt"]}
    if as_url:
        item["url"] = "https://emulator.invalid/images/emulated.png"
    else:
        item["b64_json"] = base64.b64encode(PNG_1X1).decode()
    return json_answer({"created": int(time.time()), "data": [dict(item) for _ in range(count)]})


def _model_object(model_id: str, created: int = 1700000000, owned_by: str = "system") -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


async def list_models(call: Call) -> Answer:
    return json_answer({"object": "list", "data": [_model_object(*entry) for entry in CATALOGUE]})


async def get_model(call: Call) -> Answer:
    model_id = call.path_params["model_id"]
    for entry in CATALOGUE:
        if entry[0] == model_id:
            return json_answer(_model_object(*entry))
    if looks_like_model(model_id):
        return json_answer(_model_object(model_id))
    raise VendorError(
        404,
        f"The model '{model_id}' does not exist",
        type="invalid_request_error",
        param="model",
        code="model_not_found",
    )
