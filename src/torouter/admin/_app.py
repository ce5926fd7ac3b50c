"""The admin API's ASGI app: a bearer-token check in front of a FastAPI app mounted at /admin/api.

FastAPI serves only this path, never a proxy call: it gives the OpenAPI document and 422 answers
that list each bad field. Its Swagger and ReDoc pages load from a CDN, so they are off.
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from torouter import __version__
from torouter.admin import _groups, _keys, _prices, _upstreams, _usage
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.store.errors import Conflict, Invalid, NotFound, StoreError
from torouter.surfaces.asgi import Receive, Scope, Send, header, send_response

PREFIX = "/admin/api"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # what the gateway's dispatch sends here
DESCRIPTION = (
    "Manage upstream accounts, groups, keys and prices, and read usage. Every call needs "
    "`Authorization: Bearer <admin_token>`. See docs/admin-api.md."
)


class AdminAuth:
    """Pure ASGI: refuse before FastAPI parses anything. 403 with no admin_token set, 401 without the token."""

    def __init__(self, app: FastAPI, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = self.gateway.settings.admin_token
        if not token:
            detail = "The admin API is off: set admin_token in the config file, or TOROUTER_ADMIN_TOKEN, and restart."
            await send_response(send, 403, orjson.dumps({"detail": detail}))
            return
        throttle = self.gateway.auth_throttle
        if throttle.blocked:
            try:
                throttle.check(scope)
            except GatewayError as err:
                headers = [(k.encode(), v.encode()) for k, v in err.headers.items()]
                await send_response(send, 429, orjson.dumps({"detail": err.message}), headers=headers)
                return
        given = header(scope, b"authorization") or b""
        scheme, _, value = given.partition(b" ")
        if scheme.lower() != b"bearer" or not hmac.compare_digest(value.strip(), token.encode()):
            if given:  # a missing header is not a guess
                throttle.failed(scope)
            detail = "Give the admin token: Authorization: Bearer <admin_token>."
            await send_response(
                send, 401, orjson.dumps({"detail": detail}), headers=[(b"www-authenticate", b"Bearer")]
            )
            return
        await self.app(scope, receive, send)


def _field_errors(errors: Any) -> list[dict[str, Any]]:
    """loc, msg and type of each error; never `input`, which could echo a credential back."""
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _field_errors(exc.errors())}, status_code=422)


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, Invalid):
        errors = [{"loc": ["body", *exc.field], "msg": str(exc), "type": "value_error"}]
        return JSONResponse({"detail": errors}, status_code=422)
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _integrity(request: Request, exc: Exception) -> JSONResponse:
    """Two admins racing to create the same name: the loser gets what a taken name gets."""
    return JSONResponse({"detail": "the change clashes with a row just written; try again"}, status_code=409)


def create_admin_app(gateway: Gateway) -> AdminAuth:
    app = FastAPI(
        title="ToRouter admin API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    api = APIRouter(prefix=PREFIX)
    for module in (_keys, _groups, _upstreams, _prices, _usage):
        api.include_router(module.router)
    app.include_router(api)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(IntegrityError, _integrity)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "adminToken": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"adminToken": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return AdminAuth(app, gateway)
