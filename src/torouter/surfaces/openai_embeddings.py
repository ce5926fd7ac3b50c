"""POST /v1/embeddings: passed through to OpenAI-protocol groups, translated for gemini groups."""

from __future__ import annotations

from typing import Any

from torouter import hub
from torouter.auth import authenticate
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import embeddings
from torouter.routing.models import resolve
from torouter.surfaces.asgi import Receive, Scope, Send, parse_json, read_body
from torouter.surfaces.call import Call, new_request_id
from torouter.surfaces.oneshot import call_json
from torouter.surfaces.openai import WIRE
from torouter.surfaces.passthrough import Forward, passthrough, send_error

_EMBEDDING_PLATFORMS = ("openai", "openai_compatible", "openrouter")


def _usage(answer: dict[str, Any]) -> hub.Usage | None:
    u = answer.get("usage") or {}
    return hub.Usage(input_tokens=int(u.get("prompt_tokens") or 0))


class Embeddings:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(self.gw, "openai", "embeddings", new_request_id())
        try:
            call.key = key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            raw = await read_body(receive, self.gw.settings.max_body_bytes)
            body = embeddings.check_openai(parse_json(raw))
            call.model = body["model"]
            call.note_request(scope, body)
            platform = key.group.platform
            target, accounts = resolve(key.group, call.model, key.allowed_models)
            if platform not in _EMBEDDING_PLATFORMS and platform != "gemini":
                raise GatewayError(
                    "invalid_request",
                    f"Embeddings are not available on the {platform} platform of this key's group '{key.group.name}'.",
                    code="unsupported_platform",
                )
            texts = embeddings.openai_texts(body) if platform == "gemini" else []
        except GatewayError as err:
            await send_error(send, WIRE, err, call.request_id)
            call.record(err.status, error=err.code)
            return
        except ConnectionAbortedError:
            return
        if platform in _EMBEDDING_PLATFORMS:
            fwd = Forward(
                path="/embeddings",
                raw=raw,
                body=body,
                target=target,
                accounts=accounts,
                headers={"content-type": "application/json"},
            )
            await passthrough(call, WIRE, send, fwd)
            return
        encoding = body.get("encoding_format") or "float"
        dims = body.get("dimensions")

        def build(account: Any, model: str) -> tuple[str, dict[str, Any]]:
            action, gemini_body = embeddings.to_gemini(texts, model, dims)
            return f"/v1beta/models/{{model}}:{action}", gemini_body

        await call_json(
            call,
            WIRE,
            send,
            target,
            accounts,
            build,
            lambda answer: embeddings.openai_answer(
                embeddings.gemini_vectors(answer), call.model, texts, encoding
            ),
            _usage,
        )
