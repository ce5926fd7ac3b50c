"""Builds the ASGI app: the surfaces behind a plain dispatch table, and the gateway's lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable

import orjson

from torouter import admin
from torouter.config import Settings
from torouter.cors import Cors
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.metrics import CONTENT_TYPE as METRICS_TYPE
from torouter.metrics import readiness
from torouter.protocols import anthropic_messages, openai_chat
from torouter.protocols import gemini as gemini_protocol
from torouter.surfaces import anthropic, captures, openai, openai_embeddings, openai_images, responses
from torouter.surfaces import gemini as gemini_surface
from torouter.surfaces.asgi import Receive, Scope, Send, header, send_response
from torouter.web import StaticSite

log = logging.getLogger("torouter")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class App:
    """A dict lookup per call instead of a regex router: the hot path pays for nothing it doesn't use."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.openai_models = openai.Models(gateway)
        self.anthropic_models = anthropic.Models(gateway)
        self.gemini_models = gemini_surface.Models(gateway)
        stored_responses = responses.StoredResponses(gateway)
        web = StaticSite()  # the dashboard and the Playground
        gemini_action = gemini_surface.ModelAction(gateway)
        admin_api = admin.create_admin_app(gateway)
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): openai.ChatCompletions(gateway),
            ("POST", "/v1/responses"): responses.Responses(gateway),
            ("POST", "/v1/embeddings"): openai_embeddings.Embeddings(gateway),
            ("POST", "/v1/images/generations"): openai_images.Images(gateway),
            ("POST", "/v1/messages"): anthropic.Messages(gateway),
            ("POST", "/v1/messages/count_tokens"): anthropic.Messages(gateway, count_tokens=True),
            ("GET", "/v1/models"): self.models,
            ("GET", "/v1beta/models"): self.gemini_models,
            ("GET", "/healthz"): self.healthz,
            ("GET", "/readyz"): self.readyz,
            ("GET", "/metrics"): self.metrics,
            ("GET", "/dashboard"): web,
            ("GET", "/playground"): web,
        }
        # Paths with an id in them, matched by prefix after the exact table misses.
        self.prefixes: list[tuple[str, str, Handler]] = [
            ("GET", "/v1/models/", self.models),
            ("GET", "/v1/responses/", stored_responses),
            ("DELETE", "/v1/responses/", stored_responses),
            ("GET", "/v1beta/models/", self.gemini_models),
            ("POST", "/v1beta/models/", gemini_action),
            ("POST", "/v1/models/", gemini_action),  # newer google-genai SDKs call /v1
            ("GET", captures.PREFIX, captures.CaptureLookup(gateway)),
            ("GET", "/dashboard/", web),
            ("GET", "/playground/", web),
            *((method, admin.PREFIX + "/", admin_api) for method in admin.METHODS),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            handler = self.routes.get((scope["method"], path))
            if handler is None:
                handler = self.routes.get((scope["method"], path.rstrip("/"))) or self._by_prefix(scope)
            try:
                await handler(scope, receive, send)
            except Exception:  # a bug: the client still gets an error in its protocol, never a traceback
                await self.failed(scope, send)
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
                settle_garbage_collector()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _by_prefix(self, scope: Scope) -> Handler:
        for method, prefix, handler in self.prefixes:
            if scope["method"] == method and scope["path"].startswith(prefix):
                return handler
        return self.not_found

    async def models(self, scope: Scope, receive: Receive, send: Send) -> None:
        """/v1/models is shared: Anthropic's SDK sends `anthropic-version`, Google's `x-goog-api-key` or ?key=."""
        if header(scope, b"anthropic-version") is not None:
            await self.anthropic_models(scope, receive, send)
        elif header(scope, b"x-goog-api-key") is not None or b"key=" in scope.get("query_string", b""):
            await self.gemini_models(scope, receive, send)
        else:
            await self.openai_models(scope, receive, send)

    async def healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_response(send, 200, orjson.dumps({"status": "ok"}))

    async def readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        """For load balancers: 200 once the store (and Redis, when configured) answers, else 503."""
        ready, report = await readiness(self.gateway)
        await send_response(send, 200 if ready else 503, orjson.dumps(report))

    async def metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Prometheus scrapes this: no key, and no credential in any label."""
        await send_response(send, 200, self.gateway.metrics.render(), content_type=METRICS_TYPE)

    async def failed(self, scope: Scope, send: Send) -> None:
        """What a handler that raised leaves: the traceback goes to the log, a 500 to the client."""
        log.error("unexpected error serving %s %s", scope["method"], scope["path"], exc_info=True)
        err = GatewayError("api_error", "The gateway failed to serve this request.", code="internal_error")
        path = scope["path"]
        if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path):
            status, body = gemini_protocol.status_of(err), gemini_protocol.error_body(err)
        elif path.startswith("/v1/messages") or header(scope, b"anthropic-version") is not None:
            status, body = err.status, anthropic_messages.error_body(err)
        else:
            status, body = openai_chat.status_of(err), openai_chat.error_body(err)
        try:
            await send_response(send, status, body)
        except Exception:  # the answer had begun (or the client is gone): the server ends the connection
            log.debug("no error answer for %s: the response had started", path)

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        known = any(path == scope["path"] for _, path in self.routes)
        wire_error = (
            anthropic_messages.error_body if header(scope, b"anthropic-version") else openai_chat.error_body
        )
        if known:
            err = GatewayError(
                "invalid_request", f"Method {scope['method']} is not allowed on {scope['path']}.", status=405
            )
        else:
            err = GatewayError(
                "not_found", f"Invalid URL ({scope['method']} {scope['path']}).", code="unknown_url"
            )
        await send_response(send, err.status, wire_error(err, None))


def settle_garbage_collector() -> None:
    """Keep the cycle collector off the latency tail.

    What start-up built (modules, the catalog, prices, codecs) lives as long as the process:
    frozen, a full collection no longer walks it. Calls make few reference cycles, so the youngest
    generation is collected less often; each pass is then one pause instead of many.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def create_app(settings: Settings, store_ready: bool = False) -> App | Cors:
    app = App(Gateway(settings, store_ready))
    return Cors(app, settings.cors) if settings.cors.enabled else app
