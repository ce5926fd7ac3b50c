"""One client call as the surfaces see it: its ids, timings and key, and the usage record it leaves."""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from torouter.accounting.estimate import estimate_usage
from torouter.accounting.gate import meter_headers
from torouter.accounting.limits import Held
from torouter.accounting.prices import cost_usd
from torouter.accounting.usage import Usage, usage_row
from torouter.captures import Capture, wants_capture
from torouter.catalog import KeyEntry
from torouter.gateway import Gateway
from torouter.surfaces.asgi import Receive

_ID_PREFIX = os.urandom(6).hex()
_ids = itertools.count(1)


def new_request_id(prefix: str = "req_") -> str:
    """Unique per process and start: a random prefix and a counter, with no syscall per call."""
    return f"{prefix}{_ID_PREFIX}{next(_ids):010x}"


class Call:
    __slots__ = (
        "account",
        "account_held",
        "attempt_log",
        "attempts",
        "body",
        "capture",
        "created",
        "endpoint",
        "gw",
        "held",
        "key",
        "model",
        "receive",
        "recorded",
        "relayed",
        "request_id",
        "session",
        "stream",
        "surface",
        "t0",
        "upstream_model",
    )

    def __init__(self, gw: Gateway, surface: str, endpoint: str, request_id: str) -> None:
        self.gw = gw
        self.surface = surface
        self.endpoint = endpoint
        self.request_id = request_id
        self.t0 = time.perf_counter()
        self.created = time.time()
        self.key: KeyEntry | None = None
        self.model = ""
        self.upstream_model = ""
        self.account = ""
        self.stream = False
        self.attempts = 0
        self.attempt_log: list[dict[str, Any]] | None = None
        self.receive: Receive | None = None  # set by the surface, so a relay can see the client leave
        self.session: str | None = None  # the conversation, for session affinity (multi-account groups)
        self.recorded = False
        self.capture: Capture | None = None  # what went upstream, when the client asked to see it
        self.body: Any = None  # the parsed request, for the limit estimates
        self.relayed: list[bytes] | None = None  # a stream's bytes, to estimate usage nobody reported
        self.held: Held | None = None  # what the key's and group's limits hold for this call
        self.account_held: Held | None = None  # the serving account's own caps

    def note_request(self, scope: dict[str, Any], body: Any) -> None:
        """Keep the parsed request (for limit estimates), and start a capture if the client asked."""
        self.body = body
        if wants_capture(scope):
            self.capture = Capture(scope, body)

    def limit_headers(self) -> list[tuple[bytes, bytes]]:
        """The vendor's rate-limit headers for this call, when its key or group has limits."""
        held = self.held
        if held is None or held.meter is None:
            return []
        return meter_headers(self.surface, held.meter, time.time())

    def record(
        self,
        status: int,
        usage: Usage | None = None,
        first_byte_at: float | None = None,
        error: str | None = None,
    ) -> None:
        """Queue this call's usage row (once); calls refused before a key was known leave none."""
        key = self.key
        if key is None or self.recorded:
            return
        self.recorded = True
        estimated = False
        if usage is None and (200 <= status < 300 or first_byte_at is not None):
            # Nothing reported, yet the upstream served the call (or part of it): it bills it anyway.
            usage, estimated = estimate_usage(self.body, self.relayed), True
        price = self.gw.prices.lookup(self.upstream_model or self.model)
        cost = cost_usd(usage, price, key.group.price_multiplier) if usage and price else 0.0
        tokens = usage.input_tokens + usage.output_tokens if usage else 0
        gate = self.gw.gate
        gate.settle(self.held, tokens, cost)
        if self.account_held is not None:
            gate.settle(self.account_held, tokens, 0.0)
        row = usage_row(
            request_id=self.request_id,
            created_at=self.created,
            key_id=key.id,
            key_name=key.name,
            group_name=key.group.name,
            account_name=self.account,
            surface=self.surface,
            platform=key.group.platform,
            endpoint=self.endpoint,
            model=self.model,
            upstream_model=self.upstream_model,
            stream=self.stream,
            status_code=status,
            usage=usage,
            latency_ms=(time.perf_counter() - self.t0) * 1000,
            ttft_ms=(first_byte_at - self.t0) * 1000 if first_byte_at else None,
            attempts=self.attempts,
            error=error,
            session=self.session,
            attempt_log=self.attempt_log,
            cost_usd=cost,
            estimated=estimated,
        )
        self.gw.usage.submit(row)
        if self.capture is not None:
            self._keep_capture(row)
        self.gw.metrics.observe_call(row)

    def _keep_capture(self, row: dict[str, Any]) -> None:
        assert self.capture is not None and self.key is not None
        data = self.capture.data
        data.update(
            request_id=self.request_id,
            surface=self.surface,
            platform=row["platform"],
            account=self.account,
            status_code=row["status_code"],
            error=row["error"],
            latency_ms=row["latency_ms"],
            ttft_ms=row["ttft_ms"],
            cost_usd=row["cost_usd"],
            estimated=row["estimated"],
            usage={
                name: row[name]
                for name in (
                    "input_tokens",
                    "output_tokens",
                    "cached_tokens",
                    "cache_write_tokens",
                    "reasoning_tokens",
                )
            }
            if row["status_code"] < 400 or row["input_tokens"]
            else None,
        )
        self.gw.captures.put(self.request_id, self.key.id, data)
