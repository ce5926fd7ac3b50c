"""The Anthropic surface: /v1/messages, /v1/messages/count_tokens and /v1/models in Anthropic's shape."""

from __future__ import annotations

import time

import orjson

from torouter import hub
from torouter.accounting.tokens import estimate_request_tokens
from torouter.auth import authenticate, without_key_param
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import anthropic_betas, anthropic_messages
from torouter.request_headers import header_map
from torouter.routing.affinity import session_of
from torouter.routing.models import listed_models, resolve
from torouter.surfaces import codecs
from torouter.surfaces.asgi import Receive, Scope, Send, header_values, parse_json, read_body, send_response
from torouter.surfaces.call import Call, new_request_id
from torouter.surfaces.codecs import platform_of
from torouter.surfaces.passthrough import Forward, Wire, passthrough, send_error
from torouter.surfaces.translate import translate
from torouter.upstreams.platforms import ANTHROPIC_VERSION

SURFACE = "anthropic"
WIRE = Wire(
    error_body=anthropic_messages.error_body,
    stream_error_event=anthropic_messages.stream_error_event,
    response_usage=anthropic_messages.response_usage,
    new_tap=anthropic_messages.StreamTap,
    request_id_header="request-id",
    pass_headers=(),
)


def new_anthropic_id() -> str:
    return new_request_id("req_")


def anthropic_headers(scope: Scope) -> dict[str, str]:
    """The version and every beta flag the client sent go upstream unchanged (betas joined, in order)."""
    version = ANTHROPIC_VERSION
    betas: list[str] = []
    found = header_map(scope)
    if len(found) == len(scope["headers"]):  # no header repeats: at most one of each
        if (value := found.get(b"anthropic-version")) is not None:
            version = value.decode("latin-1")
        if (value := found.get(b"anthropic-beta")) is not None:
            betas.append(value.decode("latin-1"))
    else:
        for name, value in scope["headers"]:
            if name == b"anthropic-version":
                version = value.decode("latin-1")  # the last one, as a dict would keep
            elif name == b"anthropic-beta":
                betas.append(value.decode("latin-1"))
    headers = {"content-type": "application/json", "anthropic-version": version}
    if betas:
        headers["anthropic-beta"] = ",".join(betas)
    return headers


class Messages:
    """POST /v1/messages (with or without ?beta=true) and POST /v1/messages/count_tokens."""

    def __init__(self, gw: Gateway, count_tokens: bool = False) -> None:
        self.gw = gw
        self.count_tokens = count_tokens
        self.path = "/v1/messages/count_tokens" if count_tokens else "/v1/messages"
        self.endpoint = "messages.count_tokens" if count_tokens else "messages"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(self.gw, SURFACE, self.endpoint, new_anthropic_id())
        call.receive = receive
        try:
            call.key = key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            raw = await read_body(receive, self.gw.settings.max_body_bytes)
            body = anthropic_messages.check_request(parse_json(raw), count_tokens=self.count_tokens)
            call.model = body["model"]
            call.note_request(scope, body)
            group = key.group
            target, accounts = resolve(group, call.model, key.allowed_models)
            if len(accounts) > 1:  # affinity matters only where there is a choice
                call.session = session_of(scope["headers"], body)
            call.stream = not self.count_tokens and body.get("stream") is True
            if group.platform != "anthropic":
                platform_of(group.platform)  # refuses a platform with no codec before any upstream call
                request = codecs.ANTHROPIC.decode_request(body)
                betas = anthropic_betas.split(header_values(scope, b"anthropic-beta"))
                anthropic_betas.note_for_platform(betas, group.platform)
                if self.count_tokens:
                    await self._count_locally(call, send, request)
                    return
        except GatewayError as err:
            await send_error(send, WIRE, err, call.request_id)
            call.record(err.status, error=err.code)
            return
        except ConnectionAbortedError:
            return
        if group.platform != "anthropic":
            await translate(call, WIRE, codecs.ANTHROPIC, send, request, target, accounts, platform_of)
            return
        fwd = Forward(
            path=self.path,
            raw=raw,
            body=body,
            target=target,
            accounts=accounts,
            headers=anthropic_headers(scope),
            query=without_key_param(scope.get("query_string", b"").decode("latin-1")),
        )
        await passthrough(call, WIRE, send, fwd)

    async def _count_locally(self, call: Call, send: Send, request: hub.Request) -> None:
        """count_tokens where the platform has no such endpoint: an offline estimate (docs state its accuracy)."""
        body = orjson.dumps({"input_tokens": estimate_request_tokens(request)})
        await send_response(send, 200, body, headers=[(b"request-id", call.request_id.encode())])
        call.record(200)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _model_info(model_id: str, created: str) -> dict[str, object]:
    return {"type": "model", "id": model_id, "display_name": model_id, "created_at": created}


class Models:
    """GET /v1/models and /v1/models/{id} for clients that send `anthropic-version`."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_anthropic_id()
        try:
            key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            ids = listed_models(key.group, key.allowed_models)
            created = _rfc3339(self.gw.catalog.loaded_at)
            path = scope["path"]
            if path.startswith("/v1/models/"):
                model_id = path[len("/v1/models/") :]
                if model_id not in ids:
                    raise GatewayError("not_found", f"model: {model_id}")
                body = orjson.dumps(_model_info(model_id, created))
            else:
                body = orjson.dumps(self._page(ids, created, scope.get("query_string", b"")))
        except GatewayError as err:
            await send_error(send, WIRE, err, request_id)
            return
        await send_response(send, 200, body, headers=[(b"request-id", request_id.encode())])

    @staticmethod
    def _page(ids: list[str], created: str, query: bytes) -> dict[str, object]:
        from urllib.parse import parse_qs

        params = {k: v[-1] for k, v in parse_qs(query.decode("latin-1")).items()}
        try:
            limit = int(params.get("limit", 20))
        except ValueError:
            raise GatewayError("invalid_request", "limit: Input should be a valid integer") from None
        if not 1 <= limit <= 1000:
            raise GatewayError("invalid_request", "limit: Input should be between 1 and 1000")
        before, after = params.get("before_id"), params.get("after_id")
        if before and after:
            raise GatewayError("invalid_request", "Only one of before_id and after_id may be given")
        for ref in (before, after):
            if ref and ref not in ids:
                raise GatewayError("invalid_request", f"No model with id {ref!r} to page from")
        if after:
            window = ids[ids.index(after) + 1 :]
            page, has_more = window[:limit], len(window) > limit
        elif before:
            window = ids[: ids.index(before)]
            page, has_more = window[-limit:], len(window) > limit
        else:
            page, has_more = ids[:limit], len(ids) > limit
        return {
            "data": [_model_info(m, created) for m in page],
            "has_more": has_more,
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }
