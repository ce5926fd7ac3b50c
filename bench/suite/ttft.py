"""Time to first token: one client, one call at a time, timing each streamed call from sending the
request to reading its first whole SSE event (the first blank-line-terminated block).

wrk times whole answers. This measures what a user of a streamed answer waits for, and, against
the floor, what a gateway adds before the first event leaves it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
from harness import TargetError

from suite.calls import request_body, request_headers
from suite.scenarios import Scenario
from suite.targets import Endpoint


@dataclass(frozen=True, slots=True)
class Ttft:
    p50_ms: float
    p99_ms: float
    calls: int


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


async def _one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> float:
    start = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as r:
        if r.status != 200:
            raise TargetError(f"HTTP {r.status}: {(await r.text())[:200]}")
        seen = b""
        first = 0.0
        async for chunk in r.content.iter_any():
            if not first:
                seen += chunk
                if b"\n\n" in seen or b"\r\n\r\n" in seen:
                    first = time.perf_counter()
        if not first:
            raise TargetError("the stream ended without a whole SSE event")
    return (first - start) * 1000


async def _measure(scenario: Scenario, endpoint: Endpoint, calls: int, warmup: int) -> Ttft:
    body = request_body(scenario, endpoint.model)
    headers = request_headers(scenario, endpoint)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(warmup):
            await _one(session, endpoint.url, body, headers)
        times = [await _one(session, endpoint.url, body, headers) for _ in range(calls)]
    return Ttft(percentile(times, 50), percentile(times, 99), calls)


def measure_ttft(scenario: Scenario, endpoint: Endpoint, calls: int, warmup: int = 30) -> Ttft:
    try:
        return asyncio.run(_measure(scenario, endpoint, calls, warmup))
    except aiohttp.ClientError as exc:
        raise TargetError(f"TTFT client: {exc}") from exc
