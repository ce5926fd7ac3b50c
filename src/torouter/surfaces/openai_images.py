"""POST /v1/images/generations: passed through to openai groups; other platforms cannot generate images here."""

from __future__ import annotations

from torouter.auth import authenticate
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.routing.models import resolve
from torouter.surfaces.asgi import Receive, Scope, Send, parse_json, read_body
from torouter.surfaces.call import Call, new_request_id
from torouter.surfaces.openai import WIRE
from torouter.surfaces.passthrough import Forward, passthrough, send_error


class Images:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(self.gw, "openai", "images.generations", new_request_id())
        try:
            call.key = key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            raw = await read_body(receive, self.gw.settings.max_body_bytes)
            body = parse_json(raw)
            if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
                raise GatewayError(
                    "invalid_request",
                    "Missing required parameter: 'prompt'.",
                    param="prompt",
                    code="missing_required_parameter",
                )
            platform = key.group.platform
            if platform != "openai":
                raise GatewayError(
                    "invalid_request",
                    f"Image generation is not available on the {platform} platform of this key's group "
                    f"'{key.group.name}'; it needs an openai group.",
                    code="unsupported_platform",
                )
            call.model = body.get("model") if isinstance(body.get("model"), str) else "dall-e-2"
            call.note_request(scope, body)
            target, accounts = resolve(key.group, call.model, key.allowed_models)
        except GatewayError as err:
            await send_error(send, WIRE, err, call.request_id)
            call.record(err.status, error=err.code)
            return
        except ConnectionAbortedError:
            return
        fwd = Forward(
            path="/images/generations",
            raw=raw,
            body=body,
            target=target,
            accounts=accounts,
            headers={"content-type": "application/json"},
            rewrite="model" not in body,
        )
        await passthrough(call, WIRE, send, fwd)
