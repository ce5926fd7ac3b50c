"""Translated calls whose answer is one JSON body (embeddings): build, send with failover, convert."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import orjson

from torouter import hub
from torouter.catalog import Account
from torouter.errors import GatewayError
from torouter.routing.models import upstream_model_for
from torouter.surfaces.asgi import Send, send_response
from torouter.surfaces.call import Call
from torouter.surfaces.passthrough import Wire, open_upstream, send_error
from torouter.upstreams.call import Outcome
from torouter.upstreams.platforms import auth_headers, url_for

log = logging.getLogger("torouter.oneshot")
T = TypeVar("T")

# (path after the platform's base URL, body) for one account and its model name
BodyBuilder = Callable[[Account, str], tuple[str, dict[str, Any]]]


async def read_answer(
    call: Call, wire: Wire, send: Send, outcome: Outcome, convert: Callable[[Any], T]
) -> T | None:
    """Read a whole upstream answer and convert it; an unreadable one becomes a 502 and None."""
    resp = outcome.response
    assert resp is not None
    try:
        data = outcome.body if outcome.body is not None else await resp.read()  # read and checked by send
    except asyncio.CancelledError:
        call.record(502, error="shutdown_grace_exceeded")  # the server is stopping: keep the record
        raise
    finally:
        resp.release()
    try:
        return convert(outcome.doc if outcome.doc is not None else orjson.loads(data))
    except (orjson.JSONDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("undecodable answer from %s: %s", outcome.account.name, type(exc).__name__)
        err = GatewayError(
            "bad_gateway",
            "The upstream sent an answer the gateway could not read.",
            code="upstream_malformed",
        )
        await send_error(send, wire, err, call.request_id)
        call.record(err.status, error=err.code)
        return None


async def call_json(
    call: Call,
    wire: Wire,
    send: Send,
    target: str,
    accounts: list[Account],
    build_body: BodyBuilder,
    convert: Callable[[Any], dict[str, Any]],
    usage: Callable[[dict[str, Any]], hub.Usage | None],
) -> None:
    def build(account: Account) -> tuple[str, dict[str, str], bytes]:
        model = upstream_model_for(account, target)
        path, body = build_body(account, model)
        headers = auth_headers(account)
        headers["content-type"] = "application/json"
        return url_for(account, path, model), headers, orjson.dumps(body)

    outcome = await open_upstream(call, wire, send, accounts, target, build)
    if outcome is None:
        return
    answer = await read_answer(call, wire, send, outcome, convert)
    if answer is None:
        return
    await send_response(
        send,
        200,
        orjson.dumps(answer),
        headers=[(wire.request_id_header.encode(), call.request_id.encode()), *call.limit_headers()],
    )
    call.record(200, usage(answer))
