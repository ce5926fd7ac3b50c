"""The OpenAI Responses API: POST /v1/responses on every platform, and the responses ToRouter stored.

openai groups get the client's bytes (pass-through). Other platforms are reached through the hub,
with the conversation of a `previous_response_id` taken from ToRouter's own store. Built-in tools
(web_search) become the target's own search tool where it has one and are dropped otherwise,
with a log line and an `x-torouter-dropped-tools` header: agents such as Codex always send them.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import orjson

from torouter import hub
from torouter.auth import authenticate
from torouter.catalog import KeyEntry
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import openai_chat, responses, responses_codec, responses_request, responses_stream
from torouter.routing.affinity import session_of
from torouter.routing.models import resolve
from torouter.surfaces.asgi import Receive, Scope, Send, parse_json, read_body, send_response
from torouter.surfaces.call import Call, new_request_id
from torouter.surfaces.codecs import platform_of
from torouter.surfaces.passthrough import Forward, Wire, passthrough, send_error
from torouter.surfaces.translate import Codec, translate

log = logging.getLogger("torouter.responses")
PROTOCOL = "openai_responses"
WIRE = Wire(
    error_body=openai_chat.error_body,
    stream_error_event=responses.stream_error_event,
    response_usage=responses.response_usage,
    new_tap=responses.StreamTap,
    request_id_header="x-request-id",
    pass_headers=("openai-processing-ms", "openai-version"),
    status_of=openai_chat.status_of,
)
# Built-in tool type -> the hub's vendor-neutral name, and the platforms that run it.
BUILTINS = {"web_search": "web_search", "web_search_preview": "web_search"}
SEARCH_PLATFORMS = frozenset({"anthropic", "gemini"})


def new_response_id() -> str:
    """Opaque to clients; its first 8 hex digits are the minting second (see ResponseStore.get)."""
    return "resp_" + f"{int(time.time()) & 0xFFFFFFFF:08x}" + os.urandom(20).hex()


def as_input_items(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


def map_builtin_tools(request: hub.Request, platform: str) -> list[str]:
    """Keep the built-in tools the target can run; returns the ones dropped."""
    extras = request.extras.get(PROTOCOL, {})
    dropped: list[str] = []
    for tool in extras.get("builtin_tools", ()):
        kind = tool.get("type") if isinstance(tool, dict) else str(tool)
        name = BUILTINS.get(kind)
        if name and platform in SEARCH_PLATFORMS:
            if name not in request.builtin_tools:
                request.builtin_tools.append(name)
        else:
            dropped.append(kind)
    forced = extras.get("tool_choice")  # set only for a choice the hub cannot express (a built-in tool)
    if isinstance(forced, dict):
        kind = str(forced.get("type"))
        if kind in dropped or (kind in BUILTINS and platform not in SEARCH_PLATFORMS):
            raise GatewayError(
                "invalid_request",
                f"tool_choice forces the built-in tool '{kind}', which the {platform} platform of this key's group does not have.",
                param="tool_choice",
            )
    if dropped:
        log.warning(
            "built-in tools %s dropped: the %s platform has no equivalent", ", ".join(dropped), platform
        )
    return dropped


class Responses:
    """POST /v1/responses."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(self.gw, "openai", "responses", new_request_id())
        call.receive = receive
        try:
            call.key = key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            raw = await read_body(receive, self.gw.settings.max_body_bytes)
            body = responses.check_request(parse_json(raw))
            call.model = body["model"]
            call.note_request(scope, body)
            call.stream = body.get("stream") is True
            group = key.group
            target, accounts = resolve(group, call.model, key.allowed_models)
            if len(accounts) > 1:  # affinity matters only where there is a choice
                call.session = session_of(scope["headers"], body)
            if group.platform == "openai":
                fwd = Forward(
                    path="/responses",
                    raw=raw,
                    body=body,
                    target=target,
                    accounts=accounts,
                    headers={"content-type": "application/json"},
                )
            else:
                platform_of(group.platform)
                history = await self._history(body, key)
                merged = {**body, "input": history + as_input_items(body.get("input"))}
                merged.pop("previous_response_id", None)
                request = responses_request.decode_request(merged)
                request.stream = call.stream
                dropped = map_builtin_tools(request, group.platform)
        except GatewayError as err:
            await send_error(send, WIRE, err, call.request_id)
            call.record(err.status, error=err.code)
            return
        except ConnectionAbortedError:
            return
        if group.platform == "openai":
            await passthrough(call, WIRE, send, fwd)
            return
        await self._translated(call, send, body, merged, request, target, accounts, key, dropped)

    async def _history(self, body: dict[str, Any], key: KeyEntry) -> list[Any]:
        """The conversation a previous_response_id continues: its input items, then its output."""
        previous = body.get("previous_response_id")
        if not previous:
            return []
        entry = await self.gw.responses.get(previous, key.id)
        if entry is None:
            raise GatewayError(
                "not_found",
                f"Previous response with id '{previous}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return [*entry.input_items, *entry.response.get("output", [])]

    async def _translated(
        self,
        call: Call,
        send: Send,
        body: dict[str, Any],
        merged: dict[str, Any],
        request: hub.Request,
        target: str,
        accounts: list[Any],
        key: KeyEntry,
        dropped: list[str],
    ) -> None:
        response_id = new_response_id()
        answers: list[dict[str, Any]] = []
        encoders: list[Any] = []

        def encode_response(resp: hub.Response, model: str) -> dict[str, Any]:
            out = responses_codec.encode_response(resp, model, request=request, response_id=response_id)
            answers.append(out)
            return out

        def stream_encoder(req: hub.Request, model: str) -> Any:
            encoder = responses_stream.StreamEncoder(model, request=request, response_id=response_id)
            encoders.append(encoder)
            return encoder

        client = Codec(
            decode_request=responses_request.decode_request,
            encode_request=responses_request.encode_request,
            decode_response=responses_codec.decode_response,
            encode_response=encode_response,
            stream_decoder=responses_stream.StreamDecoder,
            stream_encoder=stream_encoder,
            response_usage=responses.response_usage,
        )
        names = ",".join(re.sub(r"[^\w.:-]", "_", kind, flags=re.ASCII) for kind in dropped)
        extra_headers = [(b"x-torouter-dropped-tools", names.encode())] if dropped else []
        await translate(
            call, WIRE, client, _with_headers(send, extra_headers), request, target, accounts, platform_of
        )
        final = answers[-1] if answers else (encoders[-1].final_response() if encoders else None)
        if (
            final is not None
            and body.get("store") is not False
            and final.get("status") in ("completed", "incomplete")
        ):
            self.gw.responses.put(final["id"], key.id, merged["input"], final)


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    if not extra:
        return send

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return wrapped


class StoredResponses:
    """GET and DELETE /v1/responses/{id}: what ToRouter stored, for the key that made it."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        response_id = scope["path"][len("/v1/responses/") :]
        try:
            key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            if scope["method"] == "DELETE":
                if not await self.gw.responses.delete(response_id, key.id):
                    raise _missing(response_id)
                body = {"id": response_id, "object": "response", "deleted": True}
            else:
                entry = await self.gw.responses.get(response_id, key.id)
                if entry is None:
                    raise _missing(response_id)
                body = entry.response
        except GatewayError as err:
            await send_error(send, WIRE, err, request_id)
            return
        await send_response(send, 200, orjson.dumps(body), headers=[(b"x-request-id", request_id.encode())])


def _missing(response_id: str) -> GatewayError:
    return GatewayError("not_found", f"Response with id '{response_id}' not found.", param="response_id")
