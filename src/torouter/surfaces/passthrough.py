"""Same-protocol calls: forward the client's bytes (model rewritten if need be) and relay the answer as is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from torouter.accounting.gate import requested_output
from torouter.accounting.prices import cost_usd
from torouter.accounting.usage import Usage
from torouter.captures import Capture
from torouter.catalog import Account, any_limited
from torouter.errors import GatewayError
from torouter.routing.models import upstream_model_for
from torouter.routing.pool import order_candidates
from torouter.surfaces.asgi import JSON, SSE, Send, error_headers, send_response
from torouter.surfaces.call import Call
from torouter.surfaces.relay import Tap, pick_headers, relay_json, relay_stream
from torouter.upstreams.call import Expect, Outcome, RequestBuilder, attempt_log
from torouter.upstreams.call import send as send_upstream
from torouter.upstreams.errors import from_upstream
from torouter.upstreams.platforms import auth_headers, url_for


@dataclass(frozen=True, slots=True)
class Wire:
    """What one client protocol brings to the shared pass-through."""

    error_body: Callable[[GatewayError, str], bytes]
    stream_error_event: Callable[[GatewayError], bytes]
    response_usage: Callable[[dict[str, Any]], Usage | None]  # from a whole answer's parsed JSON
    new_tap: Callable[[bool], Tap]
    request_id_header: str
    pass_headers: tuple[str, ...]
    status_of: Callable[[GatewayError], int] = lambda err: err.status
    stream_content_type: bytes = SSE


async def open_upstream(
    call: Call,
    wire: Wire,
    send: Send,
    accounts: list[Account],
    target: str,
    build: RequestBuilder,
    expect: Expect | None = None,
) -> Outcome | None:
    """Send with failover. On failure, answer the client in its protocol, record it, and return None.

    `expect` is what the answer's body must be (see upstreams.call.read_head): by default SSE for
    a streamed call, else JSON.
    """
    if call.capture is not None:
        build = capturing(call.capture, build)
    try:
        gw = call.gw
        deadline = time.monotonic() + gw.settings.retry_deadline
        key = call.key
        tokens = 0
        if key is not None:
            rules = gw.gate.rules_for(key)
            if rules or any_limited(accounts):
                build = first_built(build, accounts)
                tokens, cost = estimate_reservation(call, build, accounts, target)
                if rules:
                    held = gw.gate.admit_now(rules, tokens, cost)
                    call.held = held if held is not None else await gw.gate.admit(rules, tokens, cost)
        candidates = order_candidates(accounts, health=gw.health)
        if call.session is not None and key is not None and len(candidates) > 1:
            # A pinned account that is still usable goes first: the conversation's cache lives there.
            pinned = await gw.affinity.lookup(key.id, call.session)
            first = next((a for a in candidates if a.id == pinned), None)
            if first is not None:
                # The pinned account goes first, or last once it turned slow, so the session moves.
                slow = gw.health.slow(first, candidates)
                candidates.sort(key=lambda a: (a.id == pinned) if slow else (a.id != pinned))
        outcome = await send_upstream(
            gw.client,
            candidates,
            build,
            gw.health,
            gw.settings.max_attempts,
            deadline,
            gw.gate,
            tokens,
            expect or ("sse" if call.stream else "json"),
        )
    except asyncio.CancelledError:
        record_cut(call, None)
        raise
    except GatewayError as err:
        call.attempts = getattr(err, "attempts", 0)
        call.attempt_log = getattr(err, "attempt_log", None)
        call.account = getattr(err, "account", "")
        await send_error(send, wire, err, call.request_id)
        call.record(err.status, error=err.code)
        return None
    account = outcome.account
    call.account_held = outcome.held
    call.account = account.name
    call.upstream_model = upstream_model_for(account, target)
    call.attempts = len(outcome.attempts)
    call.attempt_log = attempt_log(outcome.attempts)
    resp = outcome.response
    if resp is None or outcome.status >= 400:
        retry_after = resp.headers.get("retry-after") if resp is not None else None
        err = from_upstream(account, outcome.status, outcome.body or b"", retry_after)
        await send_error(send, wire, err, call.request_id)
        call.record(err.status, error=err.code)
        return None
    if call.session is not None and call.key is not None:
        call.gw.affinity.pin(call.key.id, call.session, account.id)
    return outcome


def capturing(capture: Capture, build: RequestBuilder) -> RequestBuilder:
    """The same builder, noting each request it builds for the capture (the last one wins)."""

    def build_and_note(account: Account) -> tuple[str, dict[str, str], bytes]:
        url, headers, body = build(account)
        capture.upstream(url, headers, body, account.credential)
        return url, headers, body

    return build_and_note


def first_built(build: RequestBuilder, accounts: list[Account]) -> RequestBuilder:
    """The same builder, with the first account's request built once: the estimate reads it, and
    the first attempt (nearly always to that account) sends it."""
    if not accounts:
        return build
    first = accounts[0]
    built = build(first)

    def build_once(account: Account) -> tuple[str, dict[str, str], bytes]:
        return built if account is first else build(account)

    return build_once


def record_cut(call: Call, usage: Usage | None) -> None:
    """A call still running when the shutdown grace ran out: the server cancels it mid-way."""
    call.record(502, usage, error="shutdown_grace_exceeded")


def estimate_reservation(
    call: Call, build: RequestBuilder, accounts: list[Account], target: str
) -> tuple[int, float]:
    """What a call holds until it settles: its input tokens (from the body's size) against TPM, and
    the cost of that input plus its output cap against budgets."""
    size = len(build(accounts[0])[2]) if accounts else 0
    tokens = size // 4
    price = call.gw.prices.lookup(target)
    if price is None:
        return tokens, 0.0
    key = call.key
    multiplier = key.group.price_multiplier if key is not None else 1.0
    return tokens, cost_usd(Usage(tokens, requested_output(call.body)), price, multiplier)


async def send_error(send: Send, wire: Wire, err: GatewayError, request_id: str) -> None:
    headers = error_headers(err, request_id, wire.request_id_header)
    await send_response(send, wire.status_of(err), wire.error_body(err, request_id), headers=headers)


@dataclass(slots=True)
class Forward:
    """One pass-through call: where it goes and what to send."""

    path: str
    raw: bytes
    body: dict[str, Any]
    target: str
    accounts: list[Account]
    headers: dict[str, str]
    query: str = ""
    rewrite: bool = False  # the body was changed (beyond the model) and must be re-serialised
    hide_usage: bool = False


async def passthrough(call: Call, wire: Wire, send: Send, fwd: Forward) -> None:
    payloads: dict[str, bytes] = {}

    def build(account: Account) -> tuple[str, dict[str, str], bytes]:
        upstream_model = upstream_model_for(account, fwd.target)
        payload = payloads.get(upstream_model)
        if payload is None:
            if upstream_model == call.model and not fwd.rewrite:
                payload = fwd.raw  # nothing to rewrite: forward the client's bytes as they are
            else:
                fwd.body["model"] = upstream_model
                payload = orjson.dumps(fwd.body)
            payloads[upstream_model] = payload
        headers = auth_headers(account)
        headers.update(fwd.headers)
        return url_for(account, fwd.path, upstream_model, fwd.query), headers, payload

    array = call.stream and wire.stream_content_type == JSON  # Gemini streams without ?alt=sse
    outcome = await open_upstream(
        call, wire, send, fwd.accounts, fwd.target, build, "array" if array else None
    )
    if outcome is None:
        return
    resp = outcome.response
    assert resp is not None

    headers = pick_headers(resp, wire.pass_headers)
    upstream_id = resp.headers.get(wire.request_id_header)
    if upstream_id:
        call.request_id = upstream_id  # the id the client sees is the one the usage record keeps
    headers.append((wire.request_id_header.encode(), call.request_id.encode()))
    if call.held is not None:
        headers.extend(call.limit_headers())
    if call.stream:
        tap = wire.new_tap(fwd.hide_usage)
        try:
            result = await relay_stream(
                send,
                outcome,
                headers,
                tap,
                wire.stream_error_event,
                wire.stream_content_type,
                call.receive,
                whole_events=wire.stream_content_type == SSE,
                loop=call.gw.client.loop,
            )
        except asyncio.CancelledError:
            record_cut(call, tap.usage)
            raise
        failed = result.error or getattr(tap, "error", None)
        status = 499 if result.error == "client_disconnected" else 502 if failed else 200
        call.relayed = result.chunks
        call.record(status, result.usage, result.first_byte_at, result.error)
    else:
        try:
            status, usage, data = await relay_json(send, outcome, headers, wire.response_usage)
        except asyncio.CancelledError:
            record_cut(call, None)
            raise
        if usage is None:
            call.relayed = [data]  # no usage, or none readable: the estimate reads the answer's text
        call.record(status, usage)
