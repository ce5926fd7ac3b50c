"""Which hub codec each client protocol and each upstream platform speaks."""

from __future__ import annotations

from functools import cache
from typing import Any

from torouter import hub
from torouter.errors import GatewayError
from torouter.protocols import (
    anthropic_codec,
    anthropic_messages,
    anthropic_stream,
    gemini,
    gemini_codec,
    gemini_request,
    gemini_stream,
    openai_chat,
    openai_chat_codec,
    openai_chat_request,
    openai_chat_stream,
)
from torouter.surfaces.translate import Codec, Platform
from torouter.upstreams.platforms import ANTHROPIC_VERSION


def _openai_include_usage(request: hub.Request) -> bool:
    options = request.extras.get("openai_chat", {}).get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


OPENAI_CHAT = Codec(
    decode_request=openai_chat_request.decode_request,
    encode_request=openai_chat_request.encode_request,
    decode_response=openai_chat_codec.decode_response,
    encode_response=openai_chat_codec.encode_response,
    stream_decoder=openai_chat_stream.StreamDecoder,
    stream_encoder=lambda req, model: openai_chat_stream.StreamEncoder(model, _openai_include_usage(req)),
    response_usage=openai_chat.response_usage,
)


def _anthropic_encode(request: hub.Request, platform: str) -> dict[str, Any]:
    return anthropic_codec.encode_request(request)


ANTHROPIC = Codec(
    decode_request=anthropic_codec.decode_request,
    encode_request=_anthropic_encode,
    decode_response=anthropic_codec.decode_response,
    encode_response=anthropic_codec.encode_response,
    stream_decoder=anthropic_stream.StreamDecoder,
    stream_encoder=lambda req, model: anthropic_stream.StreamEncoder(model),
    response_usage=anthropic_messages.response_usage,
)


def _gemini_codec(sse: bool) -> Codec:
    return Codec(
        decode_request=lambda body: gemini_request.decode_request(body, ""),
        encode_request=gemini_request.encode_request,
        decode_response=gemini_codec.decode_response,
        encode_response=gemini_codec.encode_response,
        stream_decoder=lambda: gemini_stream.StreamDecoder(sse=True),  # upstream calls always use ?alt=sse
        stream_encoder=lambda req, model: gemini_stream.StreamEncoder(model, sse=sse),
        response_usage=gemini.response_usage,
    )


GEMINI_SSE = _gemini_codec(sse=True)
GEMINI_ARRAY = _gemini_codec(sse=False)

_JSON = {"content-type": "application/json"}
_PLATFORMS = {
    "openai": Platform(OPENAI_CHAT, "/chat/completions", _JSON),
    "openrouter": Platform(OPENAI_CHAT, "/chat/completions", _JSON),
    "openai_compatible": Platform(OPENAI_CHAT, "/chat/completions", _JSON),
    "anthropic": Platform(ANTHROPIC, "/v1/messages", {**_JSON, "anthropic-version": ANTHROPIC_VERSION}),
    "gemini": Platform(
        GEMINI_SSE,
        "/v1beta/models/{model}:generateContent",
        _JSON,
        stream_path="/v1beta/models/{model}:streamGenerateContent?alt=sse",
    ),
}


@cache
def platform_of(name: str) -> Platform:
    platform = _PLATFORMS.get(name)
    if platform is None:
        raise GatewayError(
            "invalid_request",
            f"The {name} platform cannot be reached from this endpoint in this version of ToRouter.",
            code="unsupported_platform",
        )
    return platform
