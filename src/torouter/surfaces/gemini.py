"""The Gemini surface: /v1beta/models/{model}:{action} (and /v1, which newer SDKs call) and the model list."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

from torouter import hub
from torouter.accounting.tokens import estimate_request_tokens, text_tokens
from torouter.auth import authenticate, without_key_param
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import embeddings, gemini, gemini_request
from torouter.routing.affinity import session_of
from torouter.routing.models import listed_models, resolve
from torouter.surfaces import codecs
from torouter.surfaces.asgi import JSON, Receive, Scope, Send, parse_json, read_body, send_response
from torouter.surfaces.call import Call, new_request_id
from torouter.surfaces.codecs import platform_of
from torouter.surfaces.oneshot import call_json
from torouter.surfaces.passthrough import Forward, Wire, passthrough, send_error
from torouter.surfaces.translate import translate
from torouter.upstreams.platforms import OPENAI_LIKE

SURFACE = "gemini"


_COMMON = {
    "error_body": gemini.error_body,
    "response_usage": gemini.response_usage,
    "request_id_header": "x-request-id",
    "pass_headers": (),
    "status_of": gemini.status_of,
}
WIRE_SSE = Wire(
    stream_error_event=lambda err: gemini.stream_error_chunk(err, sse=True),
    new_tap=lambda _: gemini.SSETap(),
    **_COMMON,
)
# Without ?alt=sse, Google streams one JSON array, element by element.
WIRE_ARRAY = Wire(
    stream_error_event=lambda err: gemini.stream_error_chunk(err, sse=False),
    new_tap=lambda _: gemini.ArrayTap(),
    stream_content_type=JSON,
    **_COMMON,
)
ACTIONS = {
    "generateContent": "generate",
    "streamGenerateContent": "generate",
    "countTokens": "count",
    "embedContent": "embed",
    "batchEmbedContents": "embed",
}


def split_target(path: str) -> tuple[str, str, str] | None:
    """'/v1beta/models/gemini-2.5-pro:generateContent' -> ('v1beta', 'gemini-2.5-pro', 'generateContent')."""
    version, _, rest = path[1:].partition("/models/")
    if version not in ("v1beta", "v1", "v1alpha") or not rest:
        return None
    model, sep, action = rest.rpartition(":")
    if not sep or not model:
        return None
    return version, model, action


class ModelAction:
    """POST /{version}/models/{model}:{action}."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = split_target(scope["path"])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        sse = query.get("alt", [""])[-1] == "sse"
        wire = WIRE_SSE if sse else WIRE_ARRAY
        call = Call(self.gw, SURFACE, "", new_request_id())
        call.receive = receive
        if target is None or target[2] not in ACTIONS:
            err = GatewayError(
                "not_found",
                f"Unknown method {scope['path']!r}: use generateContent, streamGenerateContent, countTokens, embedContent or batchEmbedContents.",
            )
            await send_error(send, wire, err, call.request_id)
            return
        version, model, action = target
        call.endpoint = action
        try:
            call.key = key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            raw = await read_body(receive, self.gw.settings.max_body_bytes)
            body = parse_json(raw)
            call.model = model
            call.note_request(scope, body)
            group = key.group
            upstream_target, accounts = resolve(group, model, key.allowed_models)
            if len(accounts) > 1:  # affinity matters only where there is a choice
                call.session = session_of(scope["headers"], body)
            call.stream = action == "streamGenerateContent"
            if ACTIONS[action] == "generate":
                gemini.check_request(body)
            elif action == "countTokens":
                gemini.check_request(_count_body(body))
            if group.platform != "gemini" and ACTIONS[action] == "embed":
                if group.platform not in OPENAI_LIKE:
                    raise GatewayError(
                        "invalid_request",
                        f"Embeddings are not available on the {group.platform} platform of this key's group.",
                    )
                texts, dims = embeddings.gemini_texts(body, batch=action == "batchEmbedContents")
            elif group.platform != "gemini":
                platform_of(group.platform)
                request = gemini_request.decode_request(
                    body if action != "countTokens" else _count_body(body), model
                )
                request.stream = call.stream
                if action == "countTokens":
                    total = estimate_request_tokens(request)
                    await send_response(
                        send,
                        200,
                        orjson.dumps({"totalTokens": total}),
                        headers=[(b"x-request-id", call.request_id.encode())],
                    )
                    call.record(200)
                    return
        except GatewayError as err:
            await send_error(send, wire, err, call.request_id)
            call.record(wire.status_of(err), error=err.code)
            return
        except ConnectionAbortedError:
            return
        if group.platform != "gemini" and ACTIONS[action] == "embed":
            await self._embed_on_openai(call, wire, send, upstream_target, accounts, texts, dims, action)
            return
        if group.platform != "gemini":
            client = codecs.GEMINI_SSE if sse else codecs.GEMINI_ARRAY
            await translate(call, wire, client, send, request, upstream_target, accounts, platform_of)
            return
        fwd = Forward(
            path=f"/{version}/models/{{model}}:{action}",
            raw=raw,
            body=body,
            target=upstream_target,
            accounts=accounts,
            headers={"content-type": "application/json"},
            query=without_key_param(scope.get("query_string", b"").decode("latin-1")),
        )
        await passthrough(call, wire, send, fwd)

    async def _embed_on_openai(
        self,
        call: Call,
        wire: Wire,
        send: Send,
        target: str,
        accounts: list[Any],
        texts: list[str],
        dims: int | None,
        action: str,
    ) -> None:
        def build(account: Any, model: str) -> tuple[str, dict[str, Any]]:
            body: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
            if dims:
                body["dimensions"] = dims
            return "/embeddings", body

        await call_json(
            call,
            wire,
            send,
            target,
            accounts,
            build,
            lambda answer: embeddings.gemini_answer(
                embeddings.openai_vectors(answer), batch=action == "batchEmbedContents"
            ),
            lambda _: hub.Usage(input_tokens=sum(text_tokens(t) for t in texts)),
        )


def _count_body(body: Any) -> Any:
    """countTokens takes `contents` or a whole `generateContentRequest`."""
    if isinstance(body, dict) and isinstance(body.get("generateContentRequest"), dict):
        return body["generateContentRequest"]
    if isinstance(body, dict) and isinstance(body.get("generate_content_request"), dict):
        return body["generate_content_request"]
    return body


def _model_info(model_id: str) -> dict[str, Any]:
    return {
        "name": f"models/{model_id}",
        "baseModelId": model_id,
        "version": "001",
        "displayName": model_id,
        "description": f"{model_id}, served through ToRouter",
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    }


class Models:
    """GET /{version}/models (pageSize, pageToken) and /{version}/models/{model}, in Google's shape."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            ids = listed_models(key.group, key.allowed_models)
            _, _, rest = scope["path"][1:].partition("/models")
            model_id = rest.lstrip("/")
            if model_id:
                if model_id.startswith("models/"):
                    model_id = model_id[len("models/") :]
                if model_id not in ids:
                    raise GatewayError(
                        "not_found", f"models/{model_id} is not found for API version, or is not supported."
                    )
                body = orjson.dumps(_model_info(model_id))
            else:
                body = orjson.dumps(
                    self._page(ids, parse_qs(scope.get("query_string", b"").decode("latin-1")))
                )
        except GatewayError as err:
            await send_error(send, WIRE_SSE, err, request_id)
            return
        await send_response(send, 200, body, headers=[(b"x-request-id", request_id.encode())])

    @staticmethod
    def _page(ids: list[str], query: dict[str, list[str]]) -> dict[str, Any]:
        try:
            size = int(query.get("pageSize", ["50"])[-1])
            start = int(query.get("pageToken", ["0"])[-1] or 0)
        except ValueError:
            raise GatewayError("invalid_request", "pageSize and pageToken must be whole numbers.") from None
        size = max(1, min(size, 1000))
        page = ids[start : start + size]
        out: dict[str, Any] = {"models": [_model_info(m) for m in page]}
        if start + size < len(ids):
            out["nextPageToken"] = str(start + size)
        return out
