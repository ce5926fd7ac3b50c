"""GET /torouter/captures/{request_id}: what went upstream for a call, shown to the key that made it."""

from __future__ import annotations

import orjson

from torouter.auth import authenticate
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import openai_chat
from torouter.surfaces.asgi import Receive, Scope, Send, send_response
from torouter.surfaces.call import new_request_id

PREFIX = "/torouter/captures/"


class CaptureLookup:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        headers = [(b"x-request-id", request_id.encode()), (b"cache-control", b"no-store")]
        try:
            key = authenticate(self.gw.catalog.snapshot, scope, self.gw.auth_throttle)
            wanted = scope["path"][len(PREFIX) :]
            data = await self.gw.captures.get(wanted, key.id)
            if data is None:
                raise GatewayError(
                    "not_found",
                    f"No capture of request '{wanted}' for this key. Captures are kept for 10 minutes, "
                    "for calls sent with the header 'x-torouter-capture: 1', and only while they run "
                    "or after they end.",
                    code="capture_not_found",
                )
        except GatewayError as err:
            body = openai_chat.error_body(err, request_id)
            await send_response(send, err.status, body, headers=headers)
            return
        await send_response(send, 200, orjson.dumps(data), headers=headers)
