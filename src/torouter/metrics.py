"""What the operator's scraper and load balancer read: Prometheus metrics and the readiness probe.

Per-call series are fed from the usage row each call leaves (`Metrics.observe_call`); the state
of the upstream accounts and of the usage queue is read from the gateway at scrape time.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import itertools
import math
import operator
import os
import time
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from torouter.catalog import Account
from torouter.routing.health import Health
from torouter.upstreams.call import RETRYABLE
from torouter.writer import BackgroundWriter

if TYPE_CHECKING:
    from torouter.gateway import Gateway

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"

# Seconds, from a cached token count (a few ms) to a long reasoning stream (5 minutes).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300)
TOKEN_FIELDS = (
    ("input", "input_tokens"),
    ("output", "output_tokens"),
    ("cached", "cached_tokens"),
    ("cache_write", "cache_write_tokens"),
    ("reasoning", "reasoning_tokens"),
)
ACCOUNT_STATES = ("active", "cooldown", "disabled")
# A client may send any model id (an unknown one is refused, but it is still a call): past this
# many distinct ids, new ones share the model label "other" so that no client can flood the scrape.
MAX_MODELS = 500
OTHER_MODEL = "other"
# Row errors that mean no account answered at all (the attempt's status is then 0).
NO_ANSWER = frozenset({"upstream_unreachable", "upstream_timeout"})
# Errors the gateway causes itself: an account passed over at its own cap (never contacted), a
# stream cut when the shutdown grace ran out. They fail a call or an attempt, not the upstream.
OWN_ERRORS = frozenset({"account_at_capacity", "shutdown_grace_exceeded"})
DRAIN_AT = 1000  # queued calls that are counted at once, whatever the timer says
# The usage row's columns a drain reads, fetched for a whole batch at once.
_SERIES_OF = operator.itemgetter("surface", "platform", "model")
_STATUS = operator.itemgetter("status_code")
_LATENCY = operator.itemgetter("latency_ms")
_TTFT = operator.itemgetter("ttft_ms")
_STREAM = operator.itemgetter("stream")
_COST = operator.itemgetter("cost_usd")
_ATTEMPT_LOG = operator.itemgetter("attempt_log")
_TOKEN_OF = tuple(operator.itemgetter(name) for _, name in TOKEN_FIELDS)
_THOUSANDS = itertools.repeat(1000)


def upstream_fault(status: int) -> bool:
    """An attempt's status that blames the account, not the request: what makes a call fail over."""
    return status == 0 or status >= 500 or status in RETRYABLE or status in (401, 403)


def upstream_failures(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(account, status) for each failed upstream attempt a usage row tells of."""
    failures: list[tuple[str, str]] = []
    attempts = row.get("attempt_log")
    if attempts:
        failures = [
            (a["account"], str(a["status"]))
            for a in attempts
            if upstream_fault(a["status"]) and a.get("error") not in OWN_ERRORS
        ]
        if upstream_fault(attempts[-1]["status"]):
            return failures  # the call failed with its last attempt, already counted
    # The one attempt, or what befell the last one after it answered (a stream broken mid-way).
    status, error, account = row["status_code"], row.get("error"), row.get("account_name") or ""
    if error in OWN_ERRORS:
        return failures
    if error in NO_ANSWER:  # the account never answered: no HTTP status at all
        failures.append((account or "unknown", "0"))
    elif account and status >= 400 and upstream_fault(status):
        # A 401 from the upstream reaches the client as a 502 (the client's key is not to blame).
        failures.append((account, "401" if error == "upstream_auth_failed" else str(status)))
    return failures


def account_state(health: Health, account: Account, now: float) -> str:
    if account.status != "active":
        return "disabled"
    h = health.state(account)
    if h is None:
        return "active"
    if h.disabled_reason is not None:
        return "disabled"
    return "cooldown" if h.cooldown_until > now else "active"


class _Series:
    """The label children of one (surface, platform, model), looked up once and kept."""

    __slots__ = ("cost", "duration", "labels", "requests", "tokens", "ttft")

    def __init__(self, m: Metrics, surface: str, platform: str, model: str) -> None:
        self.labels = (surface, platform, model)
        self.requests: dict[int, Any] = {}  # by status, added as statuses occur
        self.duration = m.duration.labels(surface, platform, model)
        self.ttft = m.ttft.labels(surface, platform, model)
        self.tokens = tuple(m.tokens.labels(surface, platform, model, kind) for kind, _ in TOKEN_FIELDS)
        self.cost = m.cost.labels(platform, model)


class GatewayState:
    """A collector that reads the gateway's in-memory state when Prometheus scrapes."""

    def __init__(self, gw: Gateway) -> None:
        self._gw = gw

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        states, queue = self._families()
        now = time.time()
        for account in self._gw.catalog.snapshot.accounts.values():
            current = account_state(self._gw.health, account, now)
            for state in ACCOUNT_STATES:
                states.add_metric([account.name, account.platform, state], 1.0 if state == current else 0.0)
        queue.add_metric([], self._gw.usage.pending)
        return [states, queue]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "torouter_upstream_account_state",
                "1 for the state each upstream account is in (active, cooldown, disabled), else 0.",
                labels=["account", "platform", "state"],
            ),
            GaugeMetricFamily(
                "torouter_usage_writer_queue_depth", "Usage records waiting to be written to the store."
            ),
        ]


def observe_all(histogram: Any, values: list[float]) -> None:
    """`histogram.observe(v)` for each value, as one increment per bucket and one of the sum.

    Each observe takes two locks (two mmapped writes with several workers) and walks the bounds
    in Python. This reads the client's per-bucket counters, whose layout it has kept since 0.4;
    a client without them gets plain observe calls.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    # A value goes to the first bucket whose bound is >= it: with the values sorted, a bucket's
    # count is how many are <= its bound less how many are <= the bound before (one search each).
    ordered = sorted(values)
    below = 0
    for bucket, bound in zip(buckets, bounds, strict=True):
        upto = bisect.bisect_right(ordered, bound)
        if upto > below:
            bucket.inc(upto - below)
            below = upto
    total.inc(math.fsum(values))


class Metrics(BackgroundWriter):
    """The gateway's Prometheus series. Calls are queued by the hot path and counted in batches:
    on every scrape, every `interval` seconds, and whenever DRAIN_AT calls are waiting."""

    def __init__(self, gw: Gateway, interval: float = 1.0) -> None:
        super().__init__(interval, "torouter-metrics")
        self._pending: list[dict[str, Any]] = []
        self.registry = CollectorRegistry()
        r = self.registry
        call = ["surface", "platform", "model"]
        self.requests = Counter(
            "torouter_requests", "Calls answered, by HTTP status.", [*call, "status"], registry=r
        )
        self.duration = Histogram(
            "torouter_request_duration_seconds",
            "From the request's arrival to the last byte sent.",
            call,
            buckets=BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "torouter_time_to_first_token_seconds",
            "Streamed calls: from the request's arrival to the first bytes forwarded.",
            call,
            buckets=BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "torouter_tokens",
            "Tokens of the calls, by type, as their usage records count them.",
            [*call, "type"],
            registry=r,
        )
        self.cost = Counter(
            "torouter_cost_usd", "Cost of the calls, in US dollars.", ["platform", "model"], registry=r
        )
        self.upstream_errors = Counter(
            "torouter_upstream_errors",
            "Failed upstream attempts, by account and HTTP status (0: no answer).",
            ["account", "status"],
            registry=r,
        )
        state = GatewayState(gw)
        r.register(state)
        self.exposed = r
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: add up every worker's files
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)
            self.exposed.register(state)  # read from the worker that answers the scrape
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._models: set[str] = set()
        self._upstream: dict[tuple[str, str], Any] = {}

    def observe_call(self, row: dict[str, Any]) -> None:
        """Count one finished call, from the usage row it left: queued, and counted in batches."""
        self._pending.append(row)
        if len(self._pending) >= DRAIN_AT:
            self.drain()

    def drain(self) -> None:
        """Count the queued calls: one increment per series and status for the batch, not per call.

        The prometheus client takes a lock per increment, and with several workers writes an
        mmapped file and asks the kernel for its pid each time; a call would make seven of them.
        The batch is read column by column (C-level maps and sums), not row by row.
        """
        rows, self._pending = self._pending, []
        if not rows:
            return
        keys = list(map(_SERIES_OF, rows))
        if keys.count(keys[0]) == len(keys):  # one series, as nearly always
            self._count(self._series_for(*keys[0]), rows)
            return
        batches: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for key, row in zip(keys, rows, strict=True):
            batches.setdefault(key, []).append(row)
        for key, batch in batches.items():
            self._count(self._series_for(*key), batch)

    def _count(self, series: _Series, rows: list[dict[str, Any]]) -> None:
        for status, n in collections.Counter(map(_STATUS, rows)).items():
            requests = series.requests.get(status)
            if requests is None:
                requests = series.requests[status] = self.requests.labels(*series.labels, str(status))
            requests.inc(n)
        observe_all(series.duration, list(map(operator.truediv, map(_LATENCY, rows), _THOUSANDS)))
        ttfts = [t / 1000 for t in itertools.compress(map(_TTFT, rows), map(_STREAM, rows)) if t is not None]
        if ttfts:
            observe_all(series.ttft, ttfts)
        for child, field in zip(series.tokens, _TOKEN_OF, strict=True):
            n = sum(map(field, rows))
            if n:
                child.inc(n)
        cost = math.fsum(map(_COST, rows))
        if cost > 0:
            series.cost.inc(cost)
        if any(map(_ATTEMPT_LOG, rows)) or max(map(_STATUS, rows)) >= 400:
            failures: dict[Any, int] = {}
            for row in rows:
                if row["status_code"] >= 400 or row.get("attempt_log"):
                    for key in upstream_failures(row):
                        child = self._upstream.get(key)
                        if child is None:
                            child = self._upstream[key] = self.upstream_errors.labels(*key)
                        failures[child] = failures.get(child, 0) + 1
            for child, n in failures.items():
                child.inc(n)

    async def flush(self) -> None:
        self.drain()

    async def start(self) -> None:
        self.start_writing()

    def render(self) -> bytes:
        """The text exposition format (version 0.0.4), served at GET /metrics."""
        self.drain()  # this worker's calls are counted up to now; other workers' within `interval`
        return generate_latest(self.exposed)

    def _label_model(self, model: str) -> str:
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return OTHER_MODEL
        self._models.add(model)
        return model

    def _series_for(self, surface: str, platform: str, model: str) -> _Series:
        key = (surface, platform, model)
        series = self._series.get(key)
        if series is None:
            label = self._label_model(model)
            if label != model:  # past the cap: share one series, and keep no entry per stray id
                key = (surface, platform, label)
                series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(self, surface, platform, label)
        return series


async def readiness(gw: Gateway, timeout: float = 2.0) -> tuple[bool, dict[str, str]]:
    """Whether the store answers `SELECT 1` (and Redis a PING, when configured) within `timeout`."""

    async def store() -> None:
        async with gw.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check(probe: Awaitable[Any]) -> str:
        try:
            async with asyncio.timeout(timeout):
                await probe
        except Exception as exc:  # the name only: a driver's message may carry the URL
            return f"error: {type(exc).__name__}"
        return "ok"

    redis = getattr(gw, "redis", None)
    if redis is None:
        report = {"store": await check(store()), "redis": "not configured"}
    else:
        results = await asyncio.gather(check(store()), check(redis.ping()))
        report = {"store": results[0], "redis": results[1]}
    ready = all(v in ("ok", "not configured") for v in report.values())
    return ready, {"status": "ready" if ready else "not ready", **report}
