"""Browser access to the API surfaces, when the config lists origins.

Starlette's CORS middleware (pure ASGI) answers preflights and adds the headers. The admin API, the
dashboard and the Playground never get CORS headers: they are same-origin pages, and an admin token
must not be usable from another site's script.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware

from torouter.config import CorsConfig
from torouter.surfaces.asgi import Receive, Scope, Send

SAME_ORIGIN_ONLY = ("/admin/", "/dashboard", "/playground", "/metrics", "/healthz", "/readyz")
# What browser code of an SDK reads back: request ids, rate-limit state and retry hints.
EXPOSED = (
    "request-id",
    "x-request-id",
    "retry-after",
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
    "x-torouter-dropped-tools",
)


class Cors:
    """Wraps the app only when CORS is configured, so the default path pays nothing."""

    def __init__(self, app: object, config: CorsConfig) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,  # type: ignore[arg-type]
            allow_origins=config.origins,
            allow_origin_regex=config.origin_regex,
            allow_methods=("GET", "POST", "DELETE", "OPTIONS"),
            allow_headers=("*",),  # reflects what the SDK asks for: anthropic-*, x-goog-*, x-stainless-*
            expose_headers=EXPOSED,
            max_age=config.max_age,
        )

    def __getattr__(self, name: str) -> object:
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(SAME_ORIGIN_ONLY):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)  # type: ignore[operator]
