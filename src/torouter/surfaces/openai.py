"""The OpenAI surface: /v1/chat/completions and /v1/models, as OpenAI's API answers them."""

from __future__ import annotations

import itertools
import os
import time

import orjson

from torouter.accounting.usage import Usage, usage_row
from torouter.auth import authenticate
from torouter.catalog import Account, KeyEntry
from torouter.errors import GatewayError
from torouter.gateway import Gateway
from torouter.protocols import openai_chat
from torouter.routing.models import listed_models, resolve, upstream_model_for
from torouter.routing.pool import order_candidates
from torouter.surfaces.asgi import Receive, Scope, Send, error_headers, parse_json, read_body, send_response
from torouter.surfaces.relay import pick_headers, relay_json, relay_stream
from torouter.upstreams.call import send as send_upstream
from torouter.upstreams.errors import from_upstream
from torouter.upstreams.platforms import OPENAI_LIKE, auth_headers, url_for

SURFACE = "openai"
_PASS_HEADERS = ("x-request-id", "openai-processing-ms", "openai-version", "openrouter-provider")


_ID_PREFIX = "req_" + os.urandom(6).hex()
_ids = itertools.count(1)


def new_request_id() -> str:
    """Unique per process and start: a random prefix and a counter, with no syscall per call."""
    return f"{_ID_PREFIX}{next(_ids):010x}"


async def send_error(send: Send, err: GatewayError, request_id: str) -> None:
    await send_response(send, err.status, openai_chat.error_body(err), headers=error_headers(err, request_id))


class ChatCompletions:
    """POST /v1/chat/completions: pass-through to OpenAI-protocol platforms."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gw = self.gw
        t0 = time.perf_counter()
        created = time.time()
        request_id = new_request_id()
        key: KeyEntry | None = None
        model = ""
        try:
            key = authenticate(gw.catalog.snapshot, scope)
            raw = await read_body(receive, gw.settings.max_body_bytes)
            body = openai_chat.check_request(parse_json(raw))
            model = body["model"]
            group = key.group
            if group.platform not in OPENAI_LIKE:
                raise GatewayError(
                    "invalid_request",
                    f"This key's group '{group.name}' is on the {group.platform} platform, which the chat completions "
                    "endpoint cannot reach in this version of ToRouter.",
                    code="unsupported_platform",
                )
            target, accounts = resolve(group, model, key.allowed_models)
            stream = body.get("stream") is True
            hide_usage = False
            if stream:
                options = body.get("stream_options")
                if not (isinstance(options, dict) and options.get("include_usage")):
                    # Ask for usage anyway, so every streamed call is accounted; the tap hides it again.
                    hide_usage = True
                    body["stream_options"] = {**(options or {}), "include_usage": True}
            payloads: dict[str, bytes] = {}

            def build(account: Account) -> tuple[str, dict[str, str], bytes]:
                upstream_model = upstream_model_for(account, target)
                payload = payloads.get(upstream_model)
                if payload is None:
                    if upstream_model == model and not hide_usage:
                        payload = raw  # nothing to rewrite: forward the client's bytes as they are
                    else:
                        body["model"] = upstream_model
                        payload = orjson.dumps(body)
                    payloads[upstream_model] = payload
                headers = auth_headers(account)
                headers["content-type"] = "application/json"
                return url_for(account, "/chat/completions"), headers, payload

            outcome = await send_upstream(gw.client, order_candidates(accounts), build)
        except GatewayError as err:
            await send_error(send, err, request_id)
            if key is not None:
                self._record(
                    key, request_id, created, t0, model, "", "", False, err.status, None, None, 0, err.code
                )
            return
        except ConnectionAbortedError:
            return

        account = outcome.account
        upstream_model = upstream_model_for(account, target)
        if outcome.response is None or outcome.status >= 400:
            err = from_upstream(account, outcome.status, outcome.body or b"", _retry_after(outcome))
            await send_error(send, err, request_id)
            self._record(
                key,
                request_id,
                created,
                t0,
                model,
                upstream_model,
                account.name,
                stream,
                err.status,
                None,
                None,
                len(outcome.attempts),
                err.code,
            )
            return

        headers = pick_headers(outcome.response, _PASS_HEADERS)
        upstream_id = outcome.response.headers.get("x-request-id")
        if upstream_id:
            request_id = upstream_id  # the id the client sees is the one the usage record keeps
        else:
            headers.append((b"x-request-id", request_id.encode()))
        if stream:
            tap = openai_chat.StreamTap(hide_usage)
            result = await relay_stream(send, outcome, headers, tap, openai_chat.stream_error_event)
            ttft = (result.first_byte_at - t0) * 1000 if result.first_byte_at else None
            status = 200 if result.error is None and tap.error is None else 502
            self._record(
                key,
                request_id,
                created,
                t0,
                model,
                upstream_model,
                account.name,
                True,
                status,
                result.usage,
                ttft,
                len(outcome.attempts),
                result.error,
            )
        else:
            status, usage, _ = await relay_json(send, outcome, headers, openai_chat.response_usage)
            self._record(
                key,
                request_id,
                created,
                t0,
                model,
                upstream_model,
                account.name,
                False,
                status,
                usage,
                None,
                len(outcome.attempts),
                None,
            )

    def _record(
        self,
        key: KeyEntry,
        request_id: str,
        created: float,
        t0: float,
        model: str,
        upstream_model: str,
        account: str,
        stream: bool,
        status: int,
        usage: Usage | None,
        ttft_ms: float | None,
        attempts: int,
        error: str | None,
    ) -> None:
        self.gw.usage.submit(
            usage_row(
                request_id=request_id,
                created_at=created,
                key_id=key.id,
                key_name=key.name,
                group_name=key.group.name,
                account_name=account,
                surface=SURFACE,
                platform=key.group.platform,
                endpoint="chat.completions",
                model=model,
                upstream_model=upstream_model,
                stream=stream,
                status_code=status,
                usage=usage,
                latency_ms=(time.perf_counter() - t0) * 1000,
                ttft_ms=ttft_ms,
                attempts=attempts,
                error=error,
            )
        )


def _retry_after(outcome: object) -> str | None:
    resp = getattr(outcome, "response", None)
    return resp.headers.get("retry-after") if resp is not None else None


class Models:
    """GET /v1/models: the models the key's group serves, in OpenAI's list shape."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = new_request_id()
        try:
            key = authenticate(self.gw.catalog.snapshot, scope)
        except GatewayError as err:
            await send_error(send, err, request_id)
            return
        created = int(self.gw.catalog.loaded_at)
        owner = key.group.platform
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": owner}
            for m in listed_models(key.group, key.allowed_models)
        ]
        await send_response(
            send,
            200,
            orjson.dumps({"object": "list", "data": data}),
            headers=[(b"x-request-id", request_id.encode())],
        )
