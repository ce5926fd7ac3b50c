"""The OpenAI surface: /v1/chat/completions and /v1/models, as OpenAI's API answers them."""

from __future__ import annotations

import orjson

from torouter.auth import authenticate
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import openai_chat
from torouter.routing.affinity import session_of
from torouter.routing.models import listed_models, resolve
from torouter.surfaces import codecs
from torouter.surfaces.asgi import Receive, Scope, Send, parse_json, read_body, send_response
from torouter.surfaces.call import Call, new_request_id
from torouter.surfaces.codecs import platform_of
from torouter.surfaces.passthrough import Forward, Wire, passthrough, send_error
from torouter.surfaces.translate import translate
from torouter.upstreams.platforms import OPENAI_LIKE

SURFACE = "openai"
WIRE = Wire(
    error_body=openai_chat.error_body,
    stream_error_event=openai_chat.stream_error_event,
    response_usage=openai_chat.response_usage,
    new_tap=openai_chat.StreamTap,
    request_id_header="x-request-id",
    pass_headers=("openai-processing-ms", "openai-version", "openrouter-provider"),
    status_of=openai_chat.status_of,
)
_JSON_HEADERS = {"content-type": "application/json"}


class ChatCompletions:
    """POST /v1/chat/completions."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(self.gw, SURFACE, "chat.completions", new_request_id())
        call.receive = receive
        try:
            call.key = key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            raw = await read_body(receive, self.gw.settings.max_body_bytes)
            body = openai_chat.check_request(parse_json(raw))
            call.model = body["model"]
            call.note_request(scope, body)
            group = key.group
            target, accounts = resolve(group, call.model, key.allowed_models)
            if len(accounts) > 1:  # affinity matters only where there is a choice
                call.session = session_of(scope["headers"], body)
            call.stream = body.get("stream") is True
            if group.platform not in OPENAI_LIKE:
                platform_of(group.platform)  # refuses a platform with no codec before any upstream call
                request = codecs.OPENAI_CHAT.decode_request(body)
        except GatewayError as err:
            await send_error(send, WIRE, err, call.request_id)
            call.record(err.status, error=err.code)
            return
        except ConnectionAbortedError:
            return
        if group.platform not in OPENAI_LIKE:
            await translate(call, WIRE, codecs.OPENAI_CHAT, send, request, target, accounts, platform_of)
            return
        hide_usage = False
        if call.stream:
            options = body.get("stream_options")
            if not (isinstance(options, dict) and options.get("include_usage")):
                # Ask for usage anyway, so every streamed call is accounted; the tap hides it again.
                hide_usage = True
                body["stream_options"] = {**(options or {}), "include_usage": True}
        fwd = Forward(
            path="/chat/completions",
            raw=raw,
            body=body,
            target=target,
            accounts=accounts,
            headers=_JSON_HEADERS,
            rewrite=hide_usage,
            hide_usage=hide_usage,
        )
        await passthrough(call, WIRE, send, fwd)


class Models:
    """GET /v1/models and /v1/models/{id}: the models the key's group serves, in OpenAI's shape."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
        except GatewayError as err:
            await send_error(send, WIRE, err, request_id)
            return
        created = int(self.gw.catalog.loaded_at)
        owner = key.group.platform
        ids = listed_models(key.group, key.allowed_models)
        headers = [(b"x-request-id", request_id.encode())]
        model_id = scope["path"][len("/v1/models/") :] if scope["path"].startswith("/v1/models/") else None
        if model_id is None:
            data = [{"id": m, "object": "model", "created": created, "owned_by": owner} for m in ids]
            await send_response(send, 200, orjson.dumps({"object": "list", "data": data}), headers=headers)
        elif model_id in ids:
            model = {"id": model_id, "object": "model", "created": created, "owned_by": owner}
            await send_response(send, 200, orjson.dumps(model), headers=headers)
        else:
            err = GatewayError(
                "not_found", f"The model '{model_id}' does not exist", code="model_not_found", param="model"
            )
            await send_error(send, WIRE, err, request_id)
