"""Builds the ASGI app: the surfaces behind a plain dispatch table, and the gateway's lifespan."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson

from torouter.config import Settings
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import openai_chat
from torouter.surfaces import openai
from torouter.surfaces.asgi import Receive, Scope, Send, send_response

log = logging.getLogger("torouter")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class App:
    """A dict lookup per call instead of a regex router: the hot path pays for nothing it doesn't use."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): openai.ChatCompletions(gateway),
            ("GET", "/v1/models"): openai.Models(gateway),
            ("GET", "/healthz"): self.healthz,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            handler = self.routes.get((scope["method"], path))
            if handler is None:
                handler = self.routes.get((scope["method"], path.rstrip("/"))) or self.not_found
            await handler(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.gateway.start()
                except Exception as exc:
                    log.error("start-up failed: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, orjson.dumps({"status": "ok"}))

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        known = any(path == scope["path"] for _, path in self.routes)
        if known:
            err = GatewayError(
                "invalid_request", f"Method {scope['method']} is not allowed on {scope['path']}.", status=405
            )
        else:
            err = GatewayError(
                "not_found", f"Invalid URL ({scope['method']} {scope['path']}).", code="unknown_url"
            )
        await send_response(send, err.status, openai_chat.error_body(err))


def create_app(settings: Settings) -> App:
    return App(Gateway(settings))
